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

from lifecycle.stores.s3 import ObjectStore
from tests.conftest import ROOT
from tests.s3server import ACCESS_KEY, SECRET_KEY


def _csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _catalog_in(bucket: str, prefix: str, tmp_path: Path) -> Path:
    """The example catalog of object-storage sources, pointed at the test's bucket and prefix."""
    catalog = yaml.safe_load((ROOT / "config" / "catalog.objects.yaml").read_text())
    for source in catalog["sources"].values():
        source["storage"]["bucket"] = bucket
        source["storage"]["prefix"] = prefix + source["storage"]["prefix"]
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalog))
    return path


def test_nightly_dag_enforces_retention_in_a_bucket(tag_db, airflow_db, object_store: ObjectStore, s3_server, bucket: str,
                                                    prefix: str, tmp_path: Path, monkeypatch, capfd, caplog) -> None:  # type: ignore[no-untyped-def]
    from airflow.models import DagBag

    night = pendulum.now("Europe/Stockholm").add(days=3 if tag_db.kind == "sqlite" else 4).replace(
        hour=2, minute=0, second=0, microsecond=0)
    today = night.date()
    old, fresh = (today - timedelta(days=800)).isoformat(), (today - timedelta(days=100)).isoformat()
    catalog_path = _catalog_in(bucket, prefix, tmp_path)

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


def test_request_dag_extracts_and_erases_a_person_in_a_bucket(tag_db, airflow_db, object_store: ObjectStore, s3_server,
                                                              bucket: str, prefix: str, tmp_path: Path, monkeypatch,
                                                              caplog) -> None:  # type: ignore[no-untyped-def]
    from airflow.models import DagBag

    catalog_path = _catalog_in(bucket, prefix, tmp_path)
    email = "maja.moln@example.se"
    client = object_store.client
    client.put_object(Bucket=bucket, Key=f"{prefix}exports/newsletter/list.csv", Body=_csv([
        {"id": "1", "name": "Maja Moln", "email": email, "last_confirmed_at": "2026-06-01", "segment": "b2b"},
        {"id": "2", "name": "Nils Nord", "email": "nils@example.se", "last_confirmed_at": "2026-06-01", "segment": "b2b"}]))
    client.put_object(Bucket=bucket, Key=f"{prefix}audiences/kund.jsonl", Body=json.dumps(
        {"id": "a1", "customer_id": "kund-nordisk-handel", "name": "Maja Moln", "email": email, "phone": None,
         "segment": "retail"}).encode())

    conn = {"conn_type": "aws", "login": ACCESS_KEY, "password": SECRET_KEY,
            "extra": {"endpoint_url": s3_server.endpoint_url}}
    monkeypatch.setenv("AIRFLOW_CONN_LIFECYCLE_S3", json.dumps(conn))
    monkeypatch.setenv("AIRFLOW_CONN_LIFECYCLE_TAGSTORE", tag_db.airflow_conn())
    monkeypatch.setenv("LIFECYCLE_CATALOG", str(catalog_path))
    monkeypatch.setenv("LIFECYCLE_REPORT_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("LIFECYCLE_EXTRACT_DIR", str(tmp_path / "protected"))
    monkeypatch.setenv("LIFECYCLE_ARTIFACT_URL", f"s3://{bucket}/{prefix}artifacts")
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    nightly, request = bag.dags["lifecycle_nightly"], bag.dags["lifecycle_subject_request"]
    # A night of its own per database: dag.test would reuse an existing run of the same date.
    night = pendulum.now("Europe/Stockholm").add(days=5 if tag_db.kind == "sqlite" else 6).replace(
        hour=2, minute=0, second=0, microsecond=0)
    assert str(nightly.test(logical_date=night).state) == "success"

    blank = {"email": None, "phone": None, "personnummer": None, "name": None, "company": None}
    access = {**blank, "request_type": "access", "reference": "DSR-S3A", "email": email}
    assert str(request.test(logical_date=night.add(minutes=1), run_conf=access).state) == "success"
    extract = json.loads(next((tmp_path / "protected").glob("*DSR-S3A*.json")).read_text())
    assert {g["activity"] for g in extract["groups"]} == {"newsletter", "advertising_audiences"}

    erasure = {**blank, "request_type": "erasure", "reference": "DSR-S3E", "email": email, "dry_run": False}
    assert str(request.test(logical_date=night.add(minutes=2), run_conf=erasure).state) == "success"
    rows = client.get_object(Bucket=bucket, Key=f"{prefix}exports/newsletter/list.csv")["Body"].read().decode()
    assert email not in rows and "nils@example.se" in rows
    assert len(object_store.versions(bucket, f"{prefix}exports/newsletter/list.csv")) == 1
    # Processor data: the customer decides; the request is forwarded, the object untouched.
    assert email in client.get_object(Bucket=bucket, Key=f"{prefix}audiences/kund.jsonl")["Body"].read().decode()
    certificate = json.loads(next((tmp_path / "reports" / "certificates").glob("*DSR-S3E*.json")).read_text())
    assert certificate["verified"] is True and certificate["forwarded"] == {"kund-nordisk-handel": 1}
    assert certificate["objects"]["newsletter_exports"]["versions_removed"] == 1
    copied = {o["Key"].rsplit("/", 2)[-2] for o in client.list_objects_v2(
        Bucket=bucket, Prefix=f"{prefix}artifacts/")["Contents"]}
    assert copied == {"reports", "extracts", "certificates", "audit", "records-of-processing"}
    audit_copies = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}artifacts/audit/")["Contents"]
    for copy in audit_copies:  # the audit trail's nightly copy: keyed references, never the person
        assert email not in client.get_object(Bucket=bucket, Key=copy["Key"])["Body"].read().decode()
    assert email not in caplog.text
