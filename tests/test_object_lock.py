"""The nightly copy of the audit trail, written under S3 Object Lock (COMPLIANCE) on the real
S3 test server (SeaweedFS), and written unlocked, saying so, where the bucket has no lock.

What SeaweedFS 4.48 does, checked here: a bucket made with ObjectLockEnabledForBucket is
versioned with Object Lock on; PutObject with COMPLIANCE retention is read back by
GetObjectRetention; deleting that version (DeleteObject or DeleteObjects with its VersionId)
and shortening its retention are refused with AccessDenied; a PUT to the same key adds a new
version and leaves the locked one as it was (S3 never rewrites a version in place).
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from lifecycle.reporting import append, audit_key, chain_head, export_audit_trail
from lifecycle.reporting.audit import entry_hash
from lifecycle.reporting.sinks import ArtifactSink

NIGHT = date(2026, 3, 14)
LOCKED_BUCKET = "lifecycle-locked"


@pytest.fixture(scope="module")
def locked_bucket(s3_server: object) -> str:
    """A bucket made with Object Lock on (which S3 allows only at creation)."""
    from tests.s3server import ACCESS_KEY, SECRET_KEY

    from lifecycle.stores.s3 import ObjectStore

    client = ObjectStore.connect(endpoint_url=s3_server.endpoint_url, access_key=ACCESS_KEY,  # type: ignore[attr-defined]
                                 secret_key=SECRET_KEY).client
    client.create_bucket(Bucket=LOCKED_BUCKET, ObjectLockEnabledForBucket=True)
    return LOCKED_BUCKET


@pytest.fixture
def tags(tag_db):  # type: ignore[no-untyped-def]
    return tag_db.tag_store()


def _fill(tags, hasher, n: int = 4) -> None:  # type: ignore[no-untyped-def]
    for i in range(1, n + 1):
        append(tags, hasher, "enforce_batch", f"source_{i}", {"run_id": "r1", "batch_no": i, "counts": {"erased": i}})
    append(tags, hasher, "request_outcome", "DSR-0001", {"type": "erasure", "subject_ref": "ab" * 32, "records": 3})


def _denied(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ClientError) as refused:
        call()
    assert refused.value.response["Error"]["Code"] == "AccessDenied", refused.value.response


def test_export_is_locked_in_compliance_mode_and_cannot_be_removed(tags, hasher, object_store, locked_bucket,
                                                                   prefix) -> None:  # type: ignore[no-untyped-def]
    _fill(tags, hasher)
    seq, head = chain_head(tags)
    sink = ArtifactSink.parse(f"s3://{locked_bucket}/{prefix}artifacts", object_store)
    before = datetime.now(timezone.utc)
    result = export_audit_trail(tags, sink, NIGHT, lock_days=30)

    assert result.status == "locked" and result.locked, result
    assert result.key == f"{prefix}artifacts/audit/audit-trail-2026-03-14-seq{seq}-{head}.jsonl"
    assert result.uri == f"s3://{locked_bucket}/{result.key}" and result.head == head and result.entries == seq == 5
    assert "locked (COMPLIANCE)" in result.message and result.key in result.message

    client = object_store.client
    got = client.get_object(Bucket=locked_bucket, Key=result.key, VersionId=result.version_id)
    assert got["Metadata"] == {"lifecycle-audit-head": head, "lifecycle-audit-seq": "5"}
    lines = [json.loads(line) for line in got["Body"].read().decode().splitlines()]
    # The copy is the chain itself: every line re-checks under the secret, and links to the one before.
    key = audit_key(hasher)
    assert [e["seq"] for e in lines] == [1, 2, 3, 4, 5] and lines[-1]["entry_hash"] == head
    for prev, entry in zip(["0" * 64] + [e["entry_hash"] for e in lines], lines):
        assert entry["prev_hash"] == prev
        assert entry_hash(key, prev, entry["seq"], datetime.fromisoformat(entry["at"]), entry["kind"],
                          entry["subject"], json.dumps(entry["details"], sort_keys=True, separators=(",", ":"))
                          ) == entry["entry_hash"]

    retention = client.get_object_retention(Bucket=locked_bucket, Key=result.key, VersionId=result.version_id)["Retention"]
    assert retention["Mode"] == "COMPLIANCE"
    until = retention["RetainUntilDate"].astimezone(timezone.utc)
    assert before + timedelta(days=30) - timedelta(seconds=2) <= until <= datetime.now(timezone.utc) + timedelta(days=30)
    assert result.retain_until == until.isoformat()

    # COMPLIANCE: the version cannot be deleted, its retention cannot be shortened.
    _denied(lambda: client.delete_object(Bucket=locked_bucket, Key=result.key, VersionId=result.version_id))
    errors = client.delete_objects(Bucket=locked_bucket, Delete={"Objects": [
        {"Key": result.key, "VersionId": result.version_id}]}).get("Errors", [])
    assert [e["Code"] for e in errors] == ["AccessDenied"]
    _denied(lambda: client.put_object_retention(Bucket=locked_bucket, Key=result.key, VersionId=result.version_id,
                                                Retention={"Mode": "COMPLIANCE",
                                                           "RetainUntilDate": datetime.now(timezone.utc) + timedelta(days=1)}))
    # An overwrite adds a version on top; a plain delete only adds a delete marker. The locked
    # version stays, byte for byte.
    client.put_object(Bucket=locked_bucket, Key=result.key, Body=b'{"seq": 1, "forged": true}\n')
    client.delete_object(Bucket=locked_bucket, Key=result.key)
    kept = client.get_object(Bucket=locked_bucket, Key=result.key, VersionId=result.version_id)
    assert kept["Body"].read() == "".join(json.dumps(e, sort_keys=True, separators=(",", ":")) + "\n"
                                          for e in lines).encode()


def test_rerun_of_the_same_night_writes_no_second_copy(tags, hasher, object_store, locked_bucket,
                                                       prefix) -> None:  # type: ignore[no-untyped-def]
    _fill(tags, hasher, n=2)
    sink = ArtifactSink.parse(f"s3://{locked_bucket}/{prefix}a", object_store)
    first = export_audit_trail(tags, sink, NIGHT, lock_days=2)
    again = export_audit_trail(tags, sink, NIGHT, lock_days=2)
    assert first.locked and again.locked and again.version_id == first.version_id
    assert again.retain_until == first.retain_until
    assert len(object_store.versions(locked_bucket, first.key)) == 1
    # A new entry is a new head, hence a new copy beside the old one.
    append(tags, hasher, "approval", "run-2", {"approved_by_ref": "cd" * 32})
    later = export_audit_trail(tags, sink, NIGHT, lock_days=2)
    assert later.locked and later.key != first.key and later.head_seq == 4


def test_bucket_without_object_lock_gets_an_unlocked_copy_and_the_report_says_so(
        tags, hasher, object_store, bucket, prefix) -> None:  # type: ignore[no-untyped-def]
    _fill(tags, hasher, n=1)
    result = export_audit_trail(tags, ArtifactSink.parse(f"s3://{bucket}/{prefix}artifacts", object_store), NIGHT)
    assert result.status == "unlocked" and not result.locked and result.lock_mode is None
    assert "UNLOCKED" in result.message and "has no Object Lock" in result.message and result.uri in result.message
    body = object_store.get(bucket, result.key)
    assert body is not None and len(body.body.decode().splitlines()) == 2
    # Nothing protects it: the store deletes it on request.
    object_store.client.delete_object(Bucket=bucket, Key=result.key, VersionId=result.version_id)
    assert object_store.get(bucket, result.key) is None


def test_empty_trail_exports_nothing(tags, object_store, locked_bucket, prefix) -> None:  # type: ignore[no-untyped-def]
    sink = ArtifactSink.parse(f"s3://{locked_bucket}/{prefix}e", object_store)
    result = export_audit_trail(tags, sink, NIGHT)
    assert result.status == "empty" and result.uri is None
    assert list(object_store.list(locked_bucket, prefix)) == []


def test_retention_must_be_at_least_a_day(tags, hasher, object_store, locked_bucket, prefix) -> None:  # type: ignore[no-untyped-def]
    _fill(tags, hasher, n=1)
    with pytest.raises(ValueError, match="0 days"):
        export_audit_trail(tags, ArtifactSink.parse(f"s3://{locked_bucket}/{prefix}x", object_store), NIGHT, lock_days=0)
    assert list(object_store.list(locked_bucket, prefix)) == []


def test_nightly_report_names_the_locked_copy(airflow_db, object_store, s3_server, bucket, locked_bucket, prefix,
                                              tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Through the nightly DAG (dag.test): the report gives the chain head, the copy's key and
    'locked' only after the bucket confirmed the retention."""
    import pendulum
    import yaml
    from airflow.models import DagBag

    from lifecycle.tagstore import open_tag_store
    from tests.conftest import ROOT
    from tests.s3server import ACCESS_KEY, SECRET_KEY

    catalog = yaml.safe_load((ROOT / "config" / "catalog.objects.yaml").read_text())
    for source in catalog["sources"].values():  # the sources: an empty prefix of the ordinary bucket
        source["storage"]["bucket"], source["storage"]["prefix"] = bucket, prefix + source["storage"]["prefix"]
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    tags_url = f"sqlite:///{tmp_path / 'tagstore.db'}"
    conn = {"conn_type": "aws", "login": ACCESS_KEY, "password": SECRET_KEY,
            "extra": {"endpoint_url": s3_server.endpoint_url, "region_name": "us-east-1"}}
    monkeypatch.setenv("AIRFLOW_CONN_LIFECYCLE_S3", json.dumps(conn))
    monkeypatch.setenv("AIRFLOW_CONN_LIFECYCLE_TAGSTORE", json.dumps({"conn_type": "generic",
                                                                      "extra": {"sqlalchemy_url": tags_url}}))
    monkeypatch.setenv("LIFECYCLE_CATALOG", str(tmp_path / "catalog.yaml"))
    monkeypatch.setenv("LIFECYCLE_REPORT_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("LIFECYCLE_ARTIFACT_URL", f"s3://{locked_bucket}/{prefix}artifacts")
    monkeypatch.setenv("AIRFLOW_VAR_LIFECYCLE_AUDIT_LOCK_DAYS", "3")

    night = pendulum.datetime(2026, 3, 14, 2, tz="Europe/Stockholm")
    dr = DagBag(dag_folder=str(ROOT / "dags")).dags["lifecycle_nightly"].test(logical_date=night, run_conf={})
    assert str(dr.state) == "success"

    report_json = next((tmp_path / "reports").glob("lifecycle-2026-03-14-*.json"))
    audit = json.loads(report_json.read_text())["audit"]
    seq, head = chain_head(open_tag_store(tags_url))
    exported = audit["export"]
    assert audit["head"] == head and exported["head"] == head
    assert exported["key"] == f"{prefix}artifacts/audit/audit-trail-2026-03-14-seq{seq}-{head}.jsonl"
    assert exported["status"] == "locked" and exported["locked"] is True and exported["lock_mode"] == "COMPLIANCE"
    retention = object_store.client.get_object_retention(Bucket=locked_bucket, Key=exported["key"],
                                                         VersionId=exported["version_id"])["Retention"]
    until = retention["RetainUntilDate"].astimezone(timezone.utc)
    assert exported["retain_until"] == until.isoformat()
    assert timedelta(days=2, hours=23) < until - datetime.now(timezone.utc) <= timedelta(days=3)
    html = report_json.with_suffix(".html").read_text()
    assert exported["key"] in html and "locked</span> (COMPLIANCE retention until" in html
