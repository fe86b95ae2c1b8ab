"""Erasure of one person across sources, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import MetaData, Table, select

from lifecycle.rights.certificate import write_certificate
from lifecycle.rights.erasure import RequestScope, apply_erasure, plan_erasure, verify_erasure
from lifecycle.rights.requests import InvalidRequestError, SubjectIdentifiers
from lifecycle.tagstore.tables import record_tag, suppression
from tests.request_world import EMAIL, PHONE, TODAY, World, prepare



def _row(engine, name: str, key: int):  # type: ignore[no-untyped-def]
    t = Table(name, MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        return conn.execute(select(t).where(t.c.id == key)).mappings().first()


@pytest.fixture
def person(db, tag_db, tmp_path):  # type: ignore[no-untyped-def]
    """The demo company and one person in five sources, scanned (tests/request_world.py)."""
    world = World(db.url, db.schema, tag_db.url, tag_db.schema, str(tmp_path / "reports"))
    prepare(world)
    engine, tags = world.engines()
    policy, catalog = world.config()
    ids = SubjectIdentifiers.parse({"email": EMAIL, "phone": PHONE}, 2026)
    return engine, tags, catalog, policy, ids


def _erase(person, hasher, dry_run=False):  # type: ignore[no-untyped-def]
    engine, tags, catalog, policy, ids = person
    hashes = ids.hashes(hasher, 2026)
    actions = plan_erasure(catalog, policy, tags, hashes, TODAY)
    scope = RequestScope(catalog, {"lifecycle_demo": engine}, tags, hasher, ids, hashes)
    outcome = apply_erasure(actions, scope, reference="DSR-1", today=TODAY, dry_run=dry_run)
    return verify_erasure(outcome, actions, scope, year=2026), actions


def test_person_is_erased_everywhere_the_law_allows(person, hasher, tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine, tags, *_ = person
    outcome, actions = _erase(person, hasher)
    assert outcome.verified, outcome.remaining
    assert _row(engine, "newsletter_subscribers", 9001) is None
    assert _row(engine, "customers", 9001) is None
    invoice = _row(engine, "invoices", 9001)  # BFL: accounting kept, contact anonymised, held
    assert invoice["buyer_company"] == "Provbolaget AB" and invoice["buyer_org_number"] == "556898-9718"
    assert invoice["contact_email"] is None and invoice["contact_phone"] is None and invoice["contact_name"] is None
    message = _row(engine, "contact_form_submissions", 9001)["message"]
    assert message == "Hej! Prata med min kollega [raderad] eller [raderad] om offerten."
    assert _row(engine, "contact_form_submissions", 9001)["email"] == "annan@exempel.se"  # the other person stays
    assert _row(engine, "ad_audiences", 9001)["email"] == "test.person@exempel.se"  # processor data: forwarded
    assert outcome.forwarded == {"kund-nordisk-handel": 1}
    assert outcome.held == [{"source": "invoices", "record_key": "9001", "lapses_on": "2031-12-31",
                             "reason": "erasure refused in part: legal obligation (Bokföringslagen)"}]
    with tags.connect() as conn:
        statuses = dict(conn.execute(select(record_tag.c.category, record_tag.c.status).where(
            record_tag.c.source == "invoices", record_tag.c.record_key == "9001")).all())
        suppressed = conn.execute(select(suppression.c.subject_hash)).scalars().all()
    assert statuses == {"accounting_records": "held", "contact_details": "anonymised"}
    assert sorted(suppressed) == sorted(person[4].hashes(hasher, 2026))
    paths = write_certificate({**outcome.to_dict(), "controller": "Millstone Group AB", "received_on": TODAY,
                               "due_on": date(2026, 12, 25), "completed_at": "now"}, tmp_path)
    text = paths.json.read_text() + paths.html.read_text()
    assert "exempel.se" not in text.lower() and "555 12 34" not in text and "5551234" not in text and "Test Person" not in text
    assert json.loads(paths.json.read_text())["verified"] is True


def test_dry_run_erases_nothing(person, hasher) -> None:  # type: ignore[no-untyped-def]
    engine, tags, *_ = person
    outcome, _ = _erase(person, hasher, dry_run=True)
    assert outcome.per_source["newsletter_subscribers"]["erased"] == 1
    assert _row(engine, "newsletter_subscribers", 9001) is not None
    assert not outcome.verified  # nothing was erased, so the person is still there


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"email": "inte-en-adress"}, "not a valid address"),
        ({"email": "a@b.se'; DROP TABLE customers; --"}, "not a valid address"),
        ({"personnummer": "811218-9875"}, "personnummer is not valid"),
        ({"phone": "12345"}, "not a valid Swedish number"),
        ({"name": "Test Person"}, "give both or neither"),
        ({}, "no identifier given"),
    ],
)
def test_invalid_input_is_refused_before_anything_is_read(raw, problem) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidRequestError, match=problem):
        SubjectIdentifiers.parse(raw, 2026)


def test_access_extract_holds_everything_grouped_and_is_owner_only(person, hasher, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os

    from lifecycle.rights.certificate import write_extract
    from lifecycle.rights.extract import build_extract

    engine, tags, catalog, policy, ids = person
    extract = build_extract("DSR-2", catalog=catalog, policy=policy, source_engines={"lifecycle_demo": engine},
                            tag_engine=tags, hashes=ids.hashes(hasher, 2026))
    activities = {g["activity"]: g for g in extract["groups"]}
    assert set(activities) == {"newsletter", "customers", "bookkeeping", "advertising_audiences"}
    assert activities["customers"]["recipients"] == ["G Suite (Dokumentredigering, delning, kommunikation; USA)"]
    invoice = activities["bookkeeping"]["records"][0]["categories"]
    assert {c["category"]: c["lawful_basis"] for c in invoice} == {"accounting_records": "legal_obligation", "contact_details": "contract"}
    assert {c["category"]: c["deadline"] for c in invoice}["accounting_records"] == "2031-12-31"
    assert [{k: m[k] for k in ("activity", "category", "count")} for m in extract["mentions"]] == [
        {"activity": "contact_form", "category": "case_details", "count": 2}]
    paths = write_extract(extract, tmp_path / "protected")
    assert "test.person@exempel.se" in paths.json.read_text()
    assert oct(os.stat(paths.json).st_mode & 0o777) == "0o600" and oct(os.stat(tmp_path / "protected").st_mode & 0o777) == "0o700"


def test_request_ledger_deadlines(tag_db) -> None:  # type: ignore[no-untyped-def]
    from lifecycle.rights.requests import complete_request, open_requests, register_request

    tags = tag_db.tag_store()
    register_request(tags, "DSR-OLD", "erasure", date(2026, 10, 1))
    register_request(tags, "DSR-NEW", "access", date(2026, 11, 20))
    register_request(tags, "DSR-DONE", "access", date(2026, 11, 1))
    complete_request(tags, "DSR-DONE", "completed", {})
    due = {r["reference"]: r for r in open_requests(tags, TODAY)}
    assert set(due) == {"DSR-OLD", "DSR-NEW"}
    assert due["DSR-OLD"]["late"] is True and str(due["DSR-OLD"]["due_on"]) == "2026-11-01"
    assert due["DSR-NEW"]["days_left"] == 25 and due["DSR-NEW"]["late"] is False
    with pytest.raises(InvalidRequestError, match="already taken .request type erasure."):
        register_request(tags, "DSR-OLD", "access", TODAY)
