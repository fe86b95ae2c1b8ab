"""The nightly run redacts mentions of erased people (suppression list) that come back in other
people's free text, span by span, on SQLite and PostgreSQL and in object storage."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy import MetaData, Table, insert, select

from lifecycle.config.catalog import load_catalog
from demo.company import generate
from lifecycle.discovery.detect import REDACTED
from lifecycle.enforcement.enforce import enforce_source
from lifecycle.rights.erasure import RequestScope, apply_erasure, plan_erasure, verify_erasure
from lifecycle.enforcement.plan import build_plan, register_run, summarise_plan
from lifecycle.config.policy import load_policy
from lifecycle.rights.requests import SubjectIdentifiers
from lifecycle.discovery.scan import scan_source
from lifecycle.tagstore.tables import plan_item, record_tag, subject_ref, suppression

TODAY = date(2026, 11, 25)
EMAIL = "Test.Person@Exempel.se"
PHONE = "070-555 12 34"
SOURCE = "contact_form_submissions"
NOW = datetime(2026, 11, 20, 12)

# Someone else's message naming the erased person, written differently than the request did.
MESSAGE = ("Hej! Jag fick ert nummer av en kollega, ring +46 70 555 12 34 eller skriv till "
           "TEST.PERSON@exempel.se om offerten. Mitt eget: eva.ek@exempel.se, 0701234567. Mvh Eva")
REDACTED_MESSAGE = (f"Hej! Jag fick ert nummer av en kollega, ring {REDACTED} eller skriv till "
                    f"{REDACTED} om offerten. Mitt eget: eva.ek@exempel.se, 0701234567. Mvh Eva")
EVA = dict(name="Eva Ek", email="eva.ek@exempel.se", phone="070-123 45 67", company_name="Eks Bygg AB")


def _table(engine, name: str = SOURCE) -> Table:  # type: ignore[no-untyped-def]
    return Table(name, MetaData(), autoload_with=engine)


def _rows(engine, name: str = SOURCE) -> dict[int, dict[str, Any]]:  # type: ignore[no-untyped-def]
    t = _table(engine, name)
    with engine.connect() as conn:
        return {r["id"]: dict(r) for r in conn.execute(select(t)).mappings()}


def _refs(tags, source: str = SOURCE) -> set[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    with tags.connect() as conn:
        return set(conn.execute(select(subject_ref.c.record_key, subject_ref.c.field, subject_ref.c.subject_hash)
                                .where(subject_ref.c.source == source)).all())


def _plan(tags, run_id: str, source: str = SOURCE) -> set[tuple[str, str, str, str, str]]:  # type: ignore[no-untyped-def]
    with tags.connect() as conn:
        return set(conn.execute(select(plan_item.c.record_key, plan_item.c.category, plan_item.c.scope,
                                       plan_item.c.action, plan_item.c.reason)
                                .where(plan_item.c.run_id == run_id, plan_item.c.source == source)).all())


@pytest.fixture
def erased(db, tag_db, policy_path, catalog_path, hasher):  # type: ignore[no-untyped-def]
    """Demo data, a person erased through a request, and one nightly run afterwards."""
    generate(db.url, rows=40, seed=4, as_of=TODAY, schema=db.schema)
    engine, tags = db.engine(), tag_db.tag_store()
    with engine.begin() as conn:
        conn.execute(_table(engine, "newsletter_subscribers").insert().values(
            id=9001, subscribed_at=date(2026, 1, 1), last_confirmed_at=date(2026, 6, 1), name="Test Person",
            email="test.person@exempel.se", updated_at=NOW))
        conn.execute(_table(engine).insert().values(
            id=9001, submitted_at=NOW, last_interaction_at=date(2026, 11, 1), name="Annan Person",
            email="annan@exempel.se", message=f"Prata med {EMAIL.lower()} eller 0705551234 om offerten.",
            message_basis="consent", updated_at=NOW))
    policy = load_policy(policy_path)
    catalog = load_catalog(catalog_path, policy)
    for source in catalog.sources.values():
        scan_source(source, policy, source_engine=engine, tag_engine=tags, hasher=hasher, run_id="n0", logical_date=TODAY)
    ids = SubjectIdentifiers.parse({"email": EMAIL, "phone": PHONE}, 2026)
    hashes = ids.hashes(hasher, 2026)
    actions = plan_erasure(catalog, policy, tags, hashes, TODAY)
    scope = RequestScope(catalog, {"lifecycle_demo": engine}, tags, hasher, ids, hashes)
    outcome = apply_erasure(actions, scope, reference="DSR-1", today=TODAY, dry_run=False)
    assert verify_erasure(outcome, actions, scope, year=2026).verified
    with tags.connect() as conn:
        assert set(conn.execute(select(suppression.c.subject_hash).where(suppression.c.reason == "erasure")).scalars()) \
            == set(hashes)
    source = catalog.source(SOURCE)
    nightly(engine, tags, policy, source, hasher, "night-1")  # expiry of the demo data: out of the way
    return engine, tags, policy, source, hashes


_HASHER = object()


def nightly(engine, tags, policy, source, hasher, run_id: str, *, dry_run: bool = False, scan: bool = True,  # type: ignore[no-untyped-def]
            enforce_hasher: Any = _HASHER):
    if scan:
        scan_source(source, policy, source_engine=engine, tag_engine=tags, hasher=hasher, run_id=run_id,
                    logical_date=TODAY, full_rescan=True)
    register_run(tags, run_id, TODAY, dry_run)
    build_plan(tags, [source], run_id, TODAY)
    plan = summarise_plan(tags, source, run_id)
    stats = enforce_source(source, plan, source_engine=engine, tag_engine=tags, run_id=run_id, dry_run=dry_run,
                           confirmed=True, hasher=hasher if enforce_hasher is _HASHER else enforce_hasher,
                           year=TODAY.year)
    return plan, stats


def test_returned_mentions_are_redacted_span_by_span(erased, hasher) -> None:  # type: ignore[no-untyped-def]
    engine, tags, policy, source, hashes = erased
    before = _rows(engine)
    assert before[9001]["message"] == f"Prata med {REDACTED} eller {REDACTED} om offerten."  # by the request
    with engine.begin() as conn:
        for row in [
            # Someone else's message, restored from a backup: mentions redacted, the rest stays.
            dict(id=9100, submitted_at=NOW, last_interaction_at=date(2026, 11, 10), message=MESSAGE,
                 message_basis="consent", updated_at=NOW, **EVA),
            # The erased person's own submission, back again: erased whole, not redacted.
            dict(id=9101, submitted_at=NOW, last_interaction_at=date(2026, 11, 10), name="Test Person",
                 email="test.person@exempel.se", message="Ring mig på 0705551234.", message_basis="consent",
                 updated_at=NOW),
            # An expired message mentioning them: erased by its deadline, not redacted.
            dict(id=9102, submitted_at=NOW, last_interaction_at=date(2023, 1, 10), name="Gammal Kund",
                 email="gammal@exempel.se", message=f"Fråga {EMAIL}.", message_basis="consent", updated_at=NOW),
        ]:
            conn.execute(_table(engine).insert().values(**row))
    restored = _rows(engine)

    # A dry run plans the redaction and changes nothing.
    plan, stats = nightly(engine, tags, policy, source, hasher, "night-2-dry", dry_run=True)
    assert plan.mentions_to_redact == 1 and plan.fields_to_anonymise == 0
    assert stats.mentions_redacted == 1 and stats.fields_anonymised == 0
    assert _rows(engine) == restored
    assert {h for k, f, h in _refs(tags) if k == "9100" and f == "message"} & set(hashes)

    plan, stats = nightly(engine, tags, policy, source, hasher, "night-2")
    planned = _plan(tags, "night-2")
    assert {p for p in planned if p[0] == "9100"} == {("9100", "case_details", "fields", "redact", "erased_subject_mentioned")}
    assert {p[2:4] for p in planned if p[0] in ("9101", "9102")} == {("record", "erase")}
    assert not {p for p in planned if p[3] == "redact" and p[0] != "9100"}
    assert plan.mentions_to_redact == 1 and stats.mentions_redacted == 1 and stats.records_erased == 2

    after = _rows(engine)
    assert after[9100]["message"] == REDACTED_MESSAGE
    assert {k: v for k, v in after[9100].items() if k != "message"} == \
        {k: v for k, v in restored[9100].items() if k != "message"}  # Eva's own data: unchanged
    assert 9101 not in after and 9102 not in after
    assert {k: v for k, v in after.items() if k != 9100} == {k: v for k, v in before.items()}  # others untouched
    refs = _refs(tags)
    assert not {r for r in refs if r[2] in set(hashes)}  # the index no longer knows them here
    eva = hasher.reference("email", EVA["email"], 2026)
    assert ("9100", "message", eva) in refs and ("9100", "email", eva) in refs  # Eva is still indexed
    with tags.connect() as conn:
        status = conn.execute(select(record_tag.c.status).where(
            record_tag.c.source == SOURCE, record_tag.c.record_key == "9100", record_tag.c.category == "case_details")
        ).scalar_one()
    assert status == "active"

    # A re-run of the same night finds every batch done; the next night finds nothing to redact.
    _, again = nightly(engine, tags, policy, source, hasher, "night-2", scan=False)
    assert again.batches == 0 and again.batches_skipped == stats.batches
    plan, next_night = nightly(engine, tags, policy, source, hasher, "night-3")
    assert plan.mentions_to_redact == 0 and next_night.mentions_redacted == 0
    assert not {p for p in _plan(tags, "night-3") if p[3] == "redact"}
    assert _rows(engine) == after


def test_a_redact_plan_needs_the_hasher(erased, hasher) -> None:  # type: ignore[no-untyped-def]
    engine, tags, policy, source, _ = erased
    with engine.begin() as conn:
        conn.execute(_table(engine).insert().values(
            id=9100, submitted_at=NOW, last_interaction_at=date(2026, 11, 10), message=MESSAGE,
            message_basis="consent", updated_at=NOW, **EVA))
    restored = _rows(engine)
    with pytest.raises(ValueError, match="hasher"):
        nightly(engine, tags, policy, source, hasher, "night-2", enforce_hasher=None)
    assert _rows(engine) == restored


def test_plan_leaves_processor_data_planned_records_and_undetectable_refs_alone(tag_db, hasher) -> None:  # type: ignore[no-untyped-def]
    """The planning statement alone, on hand-made tags: who gets a redaction and who does not."""
    from lifecycle.config.catalog import load_catalog as _load
    from tests.conftest import ROOT

    policy = load_policy(ROOT / "config" / "policy.yaml")
    source = _load(ROOT / "config" / "catalog.yaml", policy).source(SOURCE)
    tags = tag_db.tag_store()
    erased_hash, objected_hash = hasher.reference("email", "x@exempel.se"), hasher.reference("email", "y@exempel.se")
    future, past = date(2027, 6, 1), date(2025, 1, 1)

    def tag(key: str, category: str, *, role: str = "controller", status: str = "active", deadline: date = future):
        return dict(source=SOURCE, record_key=key, category=category, activity="contact_form", lawful_basis="consent",
                    role=role, controller="self", clock_value=date(2026, 1, 1), deadline=deadline, on_expiry="erase",
                    status=status, run_id="n0")

    def ref(key: str, h: str, *, free_text: bool = True, kind: str = "email", field: str = "message"):
        return dict(subject_hash=h, source=SOURCE, record_key=key, field=field, kind=kind,
                    category="case_details" if free_text else "contact_details", free_text=free_text)

    tags_rows, refs = [], []
    for key, kw in {"mention": {}, "processor": {"role": "processor"}, "anonymised": {"status": "anonymised"},
                    "own": {}, "name": {}, "objected": {}, "expired": {"deadline": past}}.items():
        tags_rows.append(tag(key, "case_details", **kw))
        tags_rows.append(tag(key, "contact_details", **({"deadline": past} if key == "expired" else {})))
    refs += [ref("mention", erased_hash), ref("processor", erased_hash), ref("anonymised", erased_hash),
             ref("own", erased_hash), ref("own", erased_hash, free_text=False, field="email"),
             ref("name", erased_hash, kind="name_company"), ref("objected", objected_hash), ref("expired", erased_hash)]
    with tags.begin() as conn:
        conn.execute(insert(record_tag), tags_rows)
        conn.execute(insert(subject_ref), refs)
        conn.execute(insert(suppression), [
            dict(subject_hash=erased_hash, reason="erasure", request_reference="DSR-1", since=TODAY),
            dict(subject_hash=objected_hash, reason="objection", request_reference="DSR-2", since=TODAY)])
    register_run(tags, "night", TODAY, True)
    build_plan(tags, [source], "night", TODAY)
    planned = _plan(tags, "night")
    assert {p for p in planned if p[3] == "redact"} == {
        ("mention", "case_details", "fields", "redact", "erased_subject_mentioned")}
    assert {p[0] for p in planned if p[2] == "record"} == {"own", "expired"}
    plan = summarise_plan(tags, source, "night")
    assert plan.mentions_to_redact == 1 and plan.fields_to_anonymise == 0 and plan.records_to_erase == 2


# -- object storage ------------------------------------------------------------------------------


def test_returned_mentions_in_objects_are_redacted_and_old_versions_removed(
        object_store, bucket: str, prefix: str, tag_db: Any, hasher) -> None:  # type: ignore[no-untyped-def]
    from lifecycle.stores.storage_scan import scan_object_source
    from tests.test_object_storage import POLICY, mail_archive_source, versions

    def object_nightly(run_id: str):  # type: ignore[no-untyped-def]
        scan_object_source(source, POLICY, store=object_store, tag_engine=tags, hasher=hasher, run_id=run_id,
                           logical_date=TODAY)
        register_run(tags, run_id, TODAY, False)
        build_plan(tags, [source], run_id, TODAY)
        return enforce_source(source, summarise_plan(tags, source, run_id), source_engine=object_store,
                              tag_engine=tags, run_id=run_id, dry_run=False, confirmed=True, hasher=hasher,
                              year=TODAY.year)

    tags = tag_db.tag_store()
    source = mail_archive_source(bucket, prefix)
    hashes = [hasher.reference("email", EMAIL, 2026), hasher.reference("phone", PHONE, 2026)]
    with tags.begin() as conn:  # erased earlier: on the suppression list
        conn.execute(insert(suppression), [dict(subject_hash=h, reason="erasure", request_reference="DSR-1", since=TODAY)
                                           for h in hashes])
    mails = [
        {"id": "m1", "sender_name": "Eva Ek", "sender_email": "eva.ek@exempel.se", "body": MESSAGE,
         "last_interaction_at": "2026-11-10"},
        {"id": "m2", "sender_name": "Bo Ek", "sender_email": "bo@exempel.se", "body": "Hej, ring mig på 0701234567!",
         "last_interaction_at": "2026-11-10"},
        {"id": "m3", "sender_name": "Test Person", "sender_email": "test.person@exempel.se",
         "body": "Ring mig på 0705551234.", "last_interaction_at": "2026-11-10"},
    ]
    key = prefix + "2026.jsonl"
    object_store.client.put_object(Bucket=bucket, Key=key, Body="\n".join(json.dumps(m) for m in mails).encode())

    enforced = object_nightly("run-1")

    body = object_store.client.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    records = {r["id"]: r for r in map(json.loads, body.splitlines())}
    assert set(records) == {"m1", "m2"}  # the erased person's own mail is erased
    assert records["m1"] == {**mails[0], "body": REDACTED_MESSAGE}
    assert records["m2"] == mails[1]
    assert len(versions(object_store, bucket, key)) == 1  # the version with the mention is gone
    assert enforced.mentions_redacted == 1 and enforced.records_erased == 1
    refs = _refs(tags, source.name)
    assert refs and not {r for r in refs if r[2] in set(hashes)}

    again = object_nightly("run-2")
    assert again.mentions_redacted == 0 and again.objects["objects_rewritten"] == 0
