"""The nightly DAG with object-storage sources, through Airflow (dag.test): an AWS Connection
to the real S3 test server, expiry enforced in the bucket, the report copied to the bucket
encrypted, no personal data in the report or the task logs."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
import yaml

from lifecycle.objects import ObjectStore
from tests.conftest import ROOT
from tests.s3server import ACCESS_KEY, SECRET_KEY


def _csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def test_nightly_dag_enforces_retention_in_a_bucket(tag_db, airflow_db, object_store: ObjectStore, s3_server, bucket: str,
                                                    prefix: str, tmp_path: Path, monkeypatch, capfd, caplog) -> None:  # type: ignore[no-untyped-def]
    from airflow.models import DagBag

    night = pendulum.now("Europe/Stockholm").add(days=3).replace(hour=2, minute=0, second=0, microsecond=0)
    today = night.date()
    old, fresh = (today - timedelta(days=800)).isoformat(), (today - timedelta(days=100)).isoformat()
    catalog = yaml.safe_load((ROOT / "config" / "catalog.objects.yaml").read_text())
    for source in catalog["sources"].values():
        source["storage"]["bucket"] = bucket
        source["storage"]["prefix"] = prefix + source["storage"]["prefix"]
    catalog_path = tmp_path / "catalog.yaml"
    catalog_path.write_text(yaml.safe_dump(catalog))

    people = [{"id": str(i), "name": f"Kund Person{i}", "email": f"kund{i}@example.se",
               "last_confirmed_at": old if i % 2 else fresh, "segment": "b2b"} for i in range(1, 7)]
    client = object_store.client
    client.put_object(Bucket=bucket, Key=f"{prefix}exports/newsletter/all-old.csv", Body=_csv([people[0], people[2]]))
    client.put_object(Bucket=bucket, Key=f"{prefix}exports/newsletter/mixed.csv", Body=_csv(people[3:]))
    audience = [{"id": "a1", "customer_id": "kund-nordisk-handel", "name": "Lisa Lind", "email": "lisa@example.se",
                 "phone": "070-123 45 67", "segment": "retail"}]
    client.put_object(Bucket=bucket, Key=f"{prefix}audiences/nordisk.jsonl",
                      Body="\n".join(json.dumps(a) for a in audience).encode())

    conn = {"conn_type": "aws", "login": ACCESS_KEY, "password": SECRET_KEY,
            "extra": {"endpoint_url": s3_server.endpoint_url, "region_name": "us-east-1"}}
    monkeypatch.setenv("AIRFLOW_CONN_LIFECYCLE_S3", json.dumps(conn))
    monkeypatch.setenv("AIRFLOW_CONN_LIFECYCLE_TAGSTORE", tag_db.airflow_conn())
    monkeypatch.setenv("LIFECYCLE_CATALOG", str(catalog_path))
    monkeypatch.setenv("LIFECYCLE_REPORT_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("LIFECYCLE_ARTIFACT_URL", f"s3://{bucket}/{prefix}artifacts")
    monkeypatch.setenv("LIFECYCLE_ARTIFACT_SSE", "AES256")

    dag = DagBag(dag_folder=str(ROOT / "dags")).dags["lifecycle_nightly"]
    dr = dag.test(logical_date=night, run_conf={})
    assert str(dr.state) == "success"

    assert object_store.versions(bucket, f"{prefix}exports/newsletter/all-old.csv") == []
    mixed = client.get_object(Bucket=bucket, Key=f"{prefix}exports/newsletter/mixed.csv")["Body"].read().decode()
    assert [r["id"] for r in csv.DictReader(io.StringIO(mixed))] == ["4", "6"]  # 5 was past two years
    assert len(object_store.versions(bucket, f"{prefix}exports/newsletter/mixed.csv")) == 1
    assert client.get_object(Bucket=bucket, Key=f"{prefix}audiences/nordisk.jsonl")["Body"].read().startswith(b'{"id": "a1"')

    report_json = next((tmp_path / "reports").glob("*.json"))
    report = json.loads(report_json.read_text())
    per_source = {s["source"]: s for s in report["sources"]}
    assert per_source["newsletter_exports"]["applied"]["records_erased"] == 3
    assert per_source["newsletter_exports"]["objects"]["objects_deleted"] == 1
    assert per_source["newsletter_exports"]["objects"]["versions_removed"] == 2
    assert report["validation"]["after"]["success"] is True
    listed = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}artifacts/reports/")["Contents"]
    assert sorted(o["Key"].rsplit(".", 1)[1] for o in listed) == ["html", "json"]
    head = client.head_object(Bucket=bucket, Key=listed[0]["Key"])
    assert head["ServerSideEncryption"] == "AES256"

    html = report_json.with_suffix(".html").read_text()
    logs = capfd.readouterr().out + caplog.text
    assert "objects of newsletter_exports" in logs
    for text in (report_json.read_text(), html, logs):
        for p in people + audience:
            assert p["email"] not in text and p["name"] not in text
        assert "all-old.csv" not in text and "nordisk.jsonl" not in text  # objects by keyed reference
