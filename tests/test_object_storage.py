"""Object-storage sources against a real S3-compatible server (SeaweedFS, versioning on):
scanning and tagging records in objects, expiry, rewrites, version removal, crashes, bad content.
Every test runs with the tag store on SQLite and on PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from lifecycle.config.catalog import Source, check_against_policy
from lifecycle.enforcement.enforce import enforce_source
from lifecycle.discovery.identifiers import SubjectHasher
from lifecycle.stores.storage_enforce import SimulatedCrash
from lifecycle.stores.storage_scan import scan_object_source
from lifecycle.stores.s3 import CLOCK_METADATA, ObjectDeleteError, ObjectStore
from lifecycle.enforcement.plan import build_plan, register_run, summarise_plan
from lifecycle.config.policy import load_policy
from lifecycle.tagstore.tables import journal, object_state, record_tag, subject_ref
from tests.conftest import ROOT

POLICY = load_policy(ROOT / "config" / "policy.yaml")
TODAY = date(2026, 11, 25)
OLD, FRESH = "2023-06-01", "2026-03-01"  # past and inside the two years of consent


def newsletter_source(bucket: str, prefix: str, fmt: str = "csv", clock: str = "last_confirmed_at") -> Source:
    source = Source.model_validate({
        "name": "newsletter_exports", "connection": "lifecycle_s3",
        "storage": {"bucket": bucket, "prefix": prefix, "format": fmt},
        "primary_key": "id", "activity": "newsletter", "retention_clock": clock, "lawful_basis": "consent",
        "subject": {"email": "email", "name": "name"}, "on_expiry": "erase",
        "columns": {"name": "contact_details", "email": "contact_details"},
        "not_personal": ["segment"],
    })
    check_against_policy(source, POLICY, "test")
    return source


def mail_archive_source(bucket: str, prefix: str) -> Source:
    source = Source.model_validate({
        "name": "mail_archive", "connection": "lifecycle_s3",
        "storage": {"bucket": bucket, "prefix": prefix, "format": "jsonl"},
        "primary_key": "id", "activity": "email", "retention_clock": "last_interaction_at", "lawful_basis": "contract",
        "subject": {"email": "sender_email", "name": "sender_name"}, "on_expiry": "erase",
        "columns": {"sender_name": "contact_details", "sender_email": "contact_details",
                    "body": {"category": "case_details", "anonymise": "redact", "free_text": True}},
    })
    check_against_policy(source, POLICY, "test")
    return source


def person(i: int, clock: str) -> dict[str, Any]:
    return {"id": str(i), "name": f"Person {i}", "email": f"person{i}@example.se", "last_confirmed_at": clock,
            "segment": "b2b"}


def put_csv(store: ObjectStore, bucket: str, key: str, rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return store.client.put_object(Bucket=bucket, Key=key, Body=out.getvalue().encode())["VersionId"]


def read_csv(store: ObjectStore, bucket: str, key: str, version: str | None = None) -> list[dict[str, str]]:
    args = {"VersionId": version} if version else {}
    body = store.client.get_object(Bucket=bucket, Key=key, **args)["Body"].read().decode()
    return list(csv.DictReader(io.StringIO(body)))


def versions(store: ObjectStore, bucket: str, key: str) -> list[dict[str, Any]]:
    return store.versions(bucket, key)


def nightly(store: ObjectStore, tag_engine: Any, source: Source, hasher: SubjectHasher, run_id: str,
            day: date = TODAY, **enforce_args: Any) -> tuple[Any, Any]:
    scanned = scan_object_source(source, POLICY, store=store, tag_engine=tag_engine, hasher=hasher, run_id=run_id,
                                 logical_date=day)
    register_run(tag_engine, run_id, day, False)
    build_plan(tag_engine, [source], run_id, day)
    enforced = enforce_source(source, summarise_plan(tag_engine, source, run_id), source_engine=store,
                              tag_engine=tag_engine, run_id=run_id, dry_run=False, confirmed=True, **enforce_args)
    return scanned, enforced


def tagged_keys(tag_engine: Any, source: Source) -> set[str]:
    with tag_engine.connect() as conn:
        return set(conn.execute(select(record_tag.c.record_key).where(record_tag.c.source == source.name)).scalars())


def test_expired_objects_go_with_every_version_and_partly_expired_ones_are_rewritten(
        object_store: ObjectStore, bucket: str, prefix: str, tag_db: Any, hasher: SubjectHasher) -> None:
    tags = tag_db.tag_store()
    source = newsletter_source(bucket, prefix)
    old_key, mixed_key, fresh_key = prefix + "old.csv", prefix + "mixed.csv", prefix + "fresh.csv"
    put_csv(object_store, bucket, old_key, [person(1, OLD)])
    put_csv(object_store, bucket, old_key, [person(1, OLD), person(2, OLD)])  # a second version
    put_csv(object_store, bucket, mixed_key, [person(3, OLD), person(4, FRESH), person(5, OLD), person(6, FRESH)])
    fresh_version = put_csv(object_store, bucket, fresh_key, [person(7, FRESH)])

    scanned, enforced = nightly(object_store, tags, source, hasher, "run-1")

    assert scanned.objects_read == 3 and scanned.records == 7
    assert versions(object_store, bucket, old_key) == []  # both versions gone, no delete marker left
    mixed = versions(object_store, bucket, mixed_key)
    assert len(mixed) == 1  # the rewritten object, the version holding persons 3 and 5 removed
    assert [r["id"] for r in read_csv(object_store, bucket, mixed_key)] == ["4", "6"]
    assert read_csv(object_store, bucket, mixed_key)[0] == {k: str(v) for k, v in person(4, FRESH).items()}
    assert [v["VersionId"] for v in versions(object_store, bucket, fresh_key)] == [fresh_version]  # untouched
    assert enforced.records_erased == 4
    assert enforced.objects["objects_deleted"] == 1 and enforced.objects["objects_rewritten"] == 1
    assert enforced.objects["versions_removed"] == 3  # two of old.csv, the old one of mixed.csv
    remaining = tagged_keys(tags, source)
    assert len(remaining) == 3 and all(k.endswith(("/4", "/6", "/7")) for k in remaining)

    # The next night: nothing changed in the bucket's view except our own rewrite; nothing to do.
    scanned, enforced = nightly(object_store, tags, source, hasher, "run-2")
    assert scanned.mode == "incremental" and scanned.objects_read == 0 and scanned.objects_unchanged == 2
    assert enforced.records_erased == 0 and enforced.objects["versions_removed"] == 0


def test_incremental_scan_reads_changed_objects_and_drops_deleted_ones(
        object_store: ObjectStore, bucket: str, prefix: str, tag_db: Any, hasher: SubjectHasher) -> None:
    tags = tag_db.tag_store()
    source = newsletter_source(bucket, prefix)
    put_csv(object_store, bucket, prefix + "a.csv", [person(1, FRESH), person(2, FRESH)])
    put_csv(object_store, bucket, prefix + "b.csv", [person(3, FRESH)])
    first = scan_object_source(source, POLICY, store=object_store, tag_engine=tags, hasher=hasher, run_id="r1",
                               logical_date=TODAY)
    assert first.mode == "full" and first.objects_read == 2 and len(tagged_keys(tags, source)) == 3

    put_csv(object_store, bucket, prefix + "a.csv", [person(1, FRESH)])  # person 2 removed by its owner
    object_store.client.delete_object(Bucket=bucket, Key=prefix + "b.csv")
    second = scan_object_source(source, POLICY, store=object_store, tag_engine=tags, hasher=hasher, run_id="r2",
                                logical_date=TODAY)
    assert second.mode == "incremental" and second.objects_read == 1 and second.records == 1
    assert second.deleted == 1
    assert {k.rsplit("/", 1)[1] for k in tagged_keys(tags, source)} == {"1"}
    with tags.connect() as conn:
        refs = conn.execute(select(func.count()).select_from(subject_ref).where(subject_ref.c.source == source.name)).scalar()
    assert refs == 2  # person 1's e-mail and name; nobody else is indexed any more


def test_crash_between_rewrite_and_version_removal_keeps_data_and_rerun_converges(
        object_store: ObjectStore, bucket: str, prefix: str, tag_db: Any, hasher: SubjectHasher) -> None:
    tags = tag_db.tag_store()
    source = newsletter_source(bucket, prefix)
    key = prefix + "list.csv"
    original = put_csv(object_store, bucket, key, [person(1, OLD), person(2, FRESH)])

    with pytest.raises(SimulatedCrash):
        nightly(object_store, tags, source, hasher, "run-crash", crash_after_object_write=True)
    # The rewrite landed; the old version (with person 1) is still there: nothing was lost.
    assert [r["id"] for r in read_csv(object_store, bucket, key)] == ["2"]
    assert [r["id"] for r in read_csv(object_store, bucket, key, original)] == ["1", "2"]
    with tags.connect() as conn:
        assert conn.execute(select(journal.c.state).where(journal.c.run_id == "run-crash")).scalars().all() == ["started"]

    # The re-run of the same night finishes the batch: only the old version is left to delete.
    enforced = enforce_source(source, summarise_plan(tags, source, "run-crash"), source_engine=object_store,
                              tag_engine=tags, run_id="run-crash", dry_run=False, confirmed=True)
    assert enforced.objects["objects_rewritten"] == 0 and enforced.objects["versions_removed"] == 1
    assert len(versions(object_store, bucket, key)) == 1
    assert [r["id"] for r in read_csv(object_store, bucket, key)] == ["2"]
    with tags.connect() as conn:
        assert conn.execute(select(journal.c.state).where(journal.c.run_id == "run-crash")).scalars().all() == ["done"]
    assert {k.rsplit("/", 1)[1] for k in tagged_keys(tags, source)} == {"2"}


def test_bad_objects_are_reported_one_by_one_and_nothing_is_lost(
        object_store: ObjectStore, bucket: str, prefix: str, tag_db: Any, hasher: SubjectHasher) -> None:
    tags = tag_db.tag_store()
    source = newsletter_source(bucket, prefix, fmt="jsonl")
    good = "\n".join(json.dumps(person(i, OLD)) for i in (1, 2)).encode()
    object_store.client.put_object(Bucket=bucket, Key=prefix + "good.jsonl", Body=good)
    object_store.client.put_object(Bucket=bucket, Key=prefix + "later-broken.jsonl", Body=json.dumps(person(3, OLD)).encode())
    object_store.client.put_object(Bucket=bucket, Key=prefix + "notes.pdf", Body=b"%PDF-1.4 person9@example.se")
    object_store.client.put_object(Bucket=bucket, Key=prefix + "archive/", Body=b"")  # a console's folder marker
    scan_object_source(source, POLICY, store=object_store, tag_engine=tags, hasher=hasher, run_id="r0", logical_date=TODAY)
    assert len(tagged_keys(tags, source)) == 3

    broken = json.dumps(person(3, OLD)).encode() + b"\n{\"id\": \"4\", \"email\": \"person4@exa"
    object_store.client.put_object(Bucket=bucket, Key=prefix + "later-broken.jsonl", Body=broken)
    object_store.client.put_object(Bucket=bucket, Key=prefix + "no-key.jsonl", Body=b'{"email": "x@example.se"}\n')
    scanned, enforced = nightly(object_store, tags, source, hasher, "r1")

    problems = {f["finding"]: f for f in scanned.object_findings}
    assert sorted(f["finding"] for f in scanned.object_findings) == ["malformed", "malformed", "unsupported_format"]
    assert "line 2" in next(f["problem"] for f in scanned.object_findings if "JSON" in f["problem"])
    assert "unsupported_format" in problems
    blob = json.dumps(scanned.to_dict())
    assert "person4" not in blob and "x@example.se" not in blob and "later-broken" not in blob  # refs, not keys
    # The good object was handled; the broken ones are untouched, their content all there.
    assert versions(object_store, bucket, prefix + "good.jsonl") == []
    body = object_store.client.get_object(Bucket=bucket, Key=prefix + "later-broken.jsonl")["Body"].read()
    assert body == broken
    assert object_store.client.get_object(Bucket=bucket, Key=prefix + "notes.pdf")["Body"].read().startswith(b"%PDF")
    # Person 3's expired record sits in a malformed object: kept (tag and data), not silently dropped.
    assert {k.rsplit("/", 1)[1] for k in tagged_keys(tags, source)} == {"3"}
    assert enforced.objects["skipped_objects"] == 1
    with tags.connect() as conn:
        statuses = dict(conn.execute(select(object_state.c.status, func.count()).where(
            object_state.c.source == source.name).group_by(object_state.c.status)).all())
    assert statuses == {"malformed": 2, "unsupported": 1}


def test_a_version_that_cannot_be_deleted_is_retried_reported_and_the_batch_stays_open(
        object_store: ObjectStore, s3_server: Any, prefix: str, tag_db: Any, hasher: SubjectHasher) -> None:
    tags = tag_db.tag_store()
    locked = "lifecycle-test-locked"
    client = object_store.client
    if locked not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket=locked, ObjectLockEnabledForBucket=True)
    source = newsletter_source(locked, prefix)
    held_version = put_csv(object_store, locked, prefix + "held.csv", [person(1, OLD)])
    put_csv(object_store, locked, prefix + "free.csv", [person(2, OLD)])
    client.put_object_legal_hold(Bucket=locked, Key=prefix + "held.csv", VersionId=held_version,
                                 LegalHold={"Status": "ON"})

    with pytest.raises(ObjectDeleteError) as failure:
        nightly(object_store, tags, source, hasher, "run-held")
    assert "AccessDenied" in str(failure.value) and failure.value.failures[0].version_id == held_version
    assert versions(object_store, locked, prefix + "free.csv") == []  # the other object was not held back
    assert [r["id"] for r in read_csv(object_store, locked, prefix + "held.csv")] == ["1"]
    with tags.connect() as conn:
        assert conn.execute(select(journal.c.state).where(journal.c.run_id == "run-held")).scalar() == "started"
    assert any(k.endswith("/1") for k in tagged_keys(tags, source))  # still known, still to do

    client.put_object_legal_hold(Bucket=locked, Key=prefix + "held.csv", VersionId=held_version,
                                 LegalHold={"Status": "OFF"})
    enforced = enforce_source(source, summarise_plan(tags, source, "run-held"), source_engine=object_store,
                              tag_engine=tags, run_id="run-held", dry_run=False, confirmed=True)
    assert versions(object_store, locked, prefix + "held.csv") == []
    assert enforced.objects["objects_deleted"] == 1 and tagged_keys(tags, source) == set()


def test_rewrite_keeps_the_records_date_when_the_clock_is_last_modified(
        object_store: ObjectStore, bucket: str, prefix: str, tag_db: Any, hasher: SubjectHasher) -> None:
    tags = tag_db.tag_store()
    source = newsletter_source(bucket, prefix, clock="_object_last_modified")
    key = prefix + "upload.csv"
    put_csv(object_store, bucket, key, [person(1, OLD), person(2, OLD)])
    uploaded = object_store.client.head_object(Bucket=bucket, Key=key)["LastModified"].date()
    scan_object_source(source, POLICY, store=object_store, tag_engine=tags, hasher=hasher, run_id="r1", logical_date=TODAY)
    with tags.connect() as conn:
        assert set(conn.execute(select(record_tag.c.clock_value).where(record_tag.c.source == source.name)).scalars()) == {uploaded}

    # Erase person 1 (an erasure request), and check the rewritten object keeps its date.
    from lifecycle.config.catalog import Catalog
    from lifecycle.rights.erasure import RequestScope, apply_erasure, plan_erasure
    from lifecycle.rights.requests import SubjectIdentifiers

    catalog = Catalog(version=1, sources={source.name: source})
    ids = SubjectIdentifiers.parse({"email": "person1@example.se"}, 2026)
    hashes = ids.hashes(hasher, 2026)
    scope = RequestScope(catalog, {"lifecycle_s3": object_store}, tags, hasher, ids, hashes)
    apply_erasure(plan_erasure(catalog, POLICY, tags, hashes, TODAY), scope, reference="DSR-1", today=TODAY, dry_run=False)
    head = object_store.client.head_object(Bucket=bucket, Key=key)
    assert head["Metadata"][CLOCK_METADATA] == uploaded.isoformat()
    assert [r["id"] for r in read_csv(object_store, bucket, key)] == ["2"]

    # Two years and a day after the upload, the whole object expires, however recently it was rewritten.
    later = uploaded.replace(year=uploaded.year + 2, day=min(uploaded.day, 28)) + timedelta(days=3)
    scanned, enforced = nightly(object_store, tags, source, hasher, "r2", day=later)
    assert enforced.records_erased == 1 and enforced.objects["objects_deleted"] == 1
    assert versions(object_store, bucket, key) == []


def test_a_person_in_several_objects_is_extracted_then_erased_everywhere_and_verified(
        object_store: ObjectStore, bucket: str, prefix: str, tag_db: Any, hasher: SubjectHasher, tmp_path: Any) -> None:
    from lifecycle.config.catalog import Catalog
    from lifecycle.rights.erasure import RequestScope, apply_erasure, plan_erasure, verify_erasure
    from lifecycle.rights.extract import build_extract
    from lifecycle.rights.requests import SubjectIdentifiers

    tags = tag_db.tag_store()
    lists, mails = newsletter_source(bucket, prefix + "lists/"), mail_archive_source(bucket, prefix + "mail/")
    catalog = Catalog(version=1, sources={"newsletter_exports": lists, "mail_archive": mails})
    anna = {"id": "10", "name": "Anna Berg", "email": "Anna.Berg@example.se", "last_confirmed_at": FRESH, "segment": "b2b"}
    first = put_csv(object_store, bucket, prefix + "lists/spring.csv", [person(1, FRESH), anna])
    put_csv(object_store, bucket, prefix + "lists/spring.csv", [person(1, FRESH), anna, person(2, FRESH)])
    put_csv(object_store, bucket, prefix + "lists/autumn.csv", [anna])
    mail_lines = [
        {"id": "m1", "sender_name": "Anna Berg", "sender_email": "anna.berg@example.se", "body": "Hej, ring mig!",
         "last_interaction_at": FRESH},
        {"id": "m2", "sender_name": "Bo Ek", "sender_email": "bo@example.se",
         "body": "Prata med anna.berg@example.se om offerten.", "last_interaction_at": FRESH},
    ]
    object_store.client.put_object(Bucket=bucket, Key=prefix + "mail/2026.jsonl",
                                   Body="\n".join(json.dumps(m) for m in mail_lines).encode())
    for source in (lists, mails):
        scan_object_source(source, POLICY, store=object_store, tag_engine=tags, hasher=hasher, run_id="n1",
                           logical_date=TODAY)

    ids = SubjectIdentifiers.parse({"email": "anna.berg@example.se"}, 2026)
    hashes = ids.hashes(hasher, 2026)
    backends = {"lifecycle_s3": object_store}
    extract = build_extract("DSR-9", catalog=catalog, policy=POLICY, source_engines=backends, tag_engine=tags, hashes=hashes,
                            hasher=hasher, year=2026)
    fields = [c["fields"] for g in extract["groups"] for r in g["records"] for c in r["categories"]]
    assert sum(1 for f in fields if f.get("email") == "Anna.Berg@example.se") == 2
    assert sum(1 for f in fields if f.get("sender_email") == "anna.berg@example.se") == 1
    assert extract["mentions"] == [{"activity": "email", "category": "case_details", "count": 1,
                                    "excerpts": [{"text": "Prata med anna.berg@example.se om offerten.",
                                                  "found_by": "canonical"}]}]

    actions = plan_erasure(catalog, POLICY, tags, hashes, TODAY)
    scope = RequestScope(catalog, backends, tags, hasher, ids, hashes)
    outcome = apply_erasure(actions, scope, reference="DSR-9", today=TODAY, dry_run=False)
    outcome = verify_erasure(outcome, actions, scope, year=2026)

    assert outcome.verified, outcome.remaining
    assert outcome.objects["newsletter_exports"]["objects_rewritten"] == 1
    assert outcome.objects["newsletter_exports"]["objects_deleted"] == 1
    assert outcome.objects["newsletter_exports"]["versions_removed"] == 3  # spring's two old ones, autumn's one
    assert outcome.objects["mail_archive"]["objects_rewritten"] == 2  # her message erased, then the mention redacted
    from lifecycle.rights.certificate import write_certificate

    certificate = write_certificate({**outcome.to_dict(), "controller": "x", "request_type": "erasure",
                                     "received_on": "2026-11-25", "due_on": "2026-12-25", "completed_at": "now"},
                                    tmp_path / "certificates")
    html = certificate.html.read_text()
    assert "versions removed" in html and "anna" not in html.lower() and "spring.csv" not in html
    assert [r["id"] for r in read_csv(object_store, bucket, prefix + "lists/spring.csv")] == ["1", "2"]
    spring = versions(object_store, bucket, prefix + "lists/spring.csv")
    assert len(spring) == 1 and first not in [v["VersionId"] for v in spring]
    assert versions(object_store, bucket, prefix + "lists/autumn.csv") == []
    body = object_store.client.get_object(Bucket=bucket, Key=prefix + "mail/2026.jsonl")["Body"].read().decode()
    kept = [json.loads(line) for line in body.splitlines()]
    assert [m["id"] for m in kept] == ["m2"]
    assert kept[0]["body"] == "Prata med [raderad] om offerten." and kept[0]["sender_email"] == "bo@example.se"
    assert len(versions(object_store, bucket, prefix + "mail/2026.jsonl")) == 1
    with tags.connect() as conn:
        left = conn.execute(select(func.count()).select_from(subject_ref).where(subject_ref.c.subject_hash.in_(hashes))).scalar()
    assert left == 0


def test_reports_and_certificates_can_go_to_a_bucket_encrypted(
        object_store: ObjectStore, bucket: str, prefix: str) -> None:
    from lifecycle.stores.s3 import Encryption
    from lifecycle.reporting.sinks import ArtifactSink

    store = ObjectStore(object_store.client, Encryption("AES256"))
    sink = ArtifactSink.parse(f"s3://{bucket}/{prefix}artifacts", store)
    uri = sink.write("reports/lifecycle-run-1.json", b'{"ok": true}', "application/json")
    assert uri == f"s3://{bucket}/{prefix}artifacts/reports/lifecycle-run-1.json"
    head = object_store.client.head_object(Bucket=bucket, Key=f"{prefix}artifacts/reports/lifecycle-run-1.json")
    assert head["ServerSideEncryption"] == "AES256"
    got = object_store.client.get_object(Bucket=bucket, Key=f"{prefix}artifacts/reports/lifecycle-run-1.json")
    assert got["Body"].read() == b'{"ok": true}'


def test_rectification_changes_the_record_inside_its_object_and_the_index(
        object_store: ObjectStore, bucket: str, prefix: str, tag_db: Any, hasher: SubjectHasher) -> None:
    from lifecycle.config.catalog import Catalog
    from lifecycle.rights.requests import SubjectIdentifiers
    from lifecycle.rights.amend import rectify
    from lifecycle.discovery.subjects import locate

    tags = tag_db.tag_store()
    source = newsletter_source(bucket, prefix)
    catalog = Catalog(version=1, sources={source.name: source})
    key = prefix + "list.csv"
    put_csv(object_store, bucket, key, [person(1, FRESH), person(2, FRESH)])
    scan_object_source(source, POLICY, store=object_store, tag_engine=tags, hasher=hasher, run_id="r1", logical_date=TODAY)

    ids = SubjectIdentifiers.parse({"email": "person1@example.se"}, 2026)
    outcome = rectify(catalog=catalog, policy=POLICY, source_engines={"lifecycle_s3": object_store}, tag_engine=tags,
                      hasher=hasher, identifiers=ids, kind="email", new_value="ny.adress@example.se", reference="DSR-5",
                      today=TODAY, dry_run=False)
    assert outcome.per_source == {source.name: 1}
    rows = read_csv(object_store, bucket, key)
    assert [r["email"] for r in rows] == ["ny.adress@example.se", "person2@example.se"]
    assert len(versions(object_store, bucket, key)) == 1  # the old address is not kept in a version
    new = SubjectIdentifiers.parse({"email": "ny.adress@example.se"}, 2026).hashes(hasher, 2026)
    assert [loc.field for loc in locate(tags, new)] == ["email"]
    assert locate(tags, ids.hashes(hasher, 2026)) == []


def test_expired_records_are_anonymised_in_place_where_the_catalog_says_so(
        object_store: ObjectStore, bucket: str, prefix: str, tag_db: Any, hasher: SubjectHasher) -> None:
    tags = tag_db.tag_store()
    spec = newsletter_source(bucket, prefix).model_dump()
    spec.update(on_expiry="anonymise", columns={"name": {"category": "contact_details", "anonymise": "redact"},
                                                 "email": {"category": "contact_details", "anonymise": "email_domain"}})
    source = Source.model_validate(spec)
    key = prefix + "list.csv"
    put_csv(object_store, bucket, key, [person(1, OLD), person(2, FRESH)])

    _, enforced = nightly(object_store, tags, source, hasher, "run-anon")

    rows = read_csv(object_store, bucket, key)
    assert rows[0] == {"id": "1", "name": "[raderad]", "email": "example.se", "last_confirmed_at": OLD, "segment": "b2b"}
    assert rows[1] == {k: str(v) for k, v in person(2, FRESH).items()}
    assert enforced.records_anonymised == 1 and enforced.objects["objects_rewritten"] == 1
    assert len(versions(object_store, bucket, key)) == 1
    with tags.connect() as conn:
        statuses = dict(conn.execute(select(record_tag.c.record_key, record_tag.c.status).where(
            record_tag.c.source == source.name)).all())
    assert sorted(statuses.values()) == ["active", "anonymised"]
    # Anonymised records keep no index entry: nobody can be found in them any more.
    with tags.connect() as conn:
        indexed = set(conn.execute(select(subject_ref.c.record_key).where(subject_ref.c.source == source.name)).scalars())
    assert all(k.endswith("/2") for k in indexed) and indexed
