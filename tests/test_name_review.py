"""An erased person's name in other people's messages: listed for review, never redacted
unreviewed; a reviewer's decision (redact or keep) is applied by a later run and verified."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import MetaData, Table, select

from lifecycle.discovery.detect import REDACTED
from lifecycle.errors import InvalidRequestError
from lifecycle.reporting import compliance_summary
from lifecycle.config import load_mechanisms, load_policy
from lifecycle.rights import ReviewDecision, Workspace, fulfil_review, listed_items, pending
from lifecycle.rights.verify import Probe, verify_in_sources
from lifecycle.stores import open_stores
from tests.request_world import ROOT, TODAY, World, erase, insert, prepare, scan_all

NOW = datetime(2026, 11, 20, 9)
# Others' messages: the first three write the person's full name (one across a line break, one
# in capitals), the last only a longer name that merely starts the same way.
MESSAGES = {
    9501: ("contact_form_submissions", "Hej, jag pratade med Test Person igår om offerten."),
    9502: ("email_threads", "Möte bokat med test\nperson och mig nästa vecka."),
    9503: ("email_threads", "Hälsningar från TEST PERSON på mässan"),
    9504: ("contact_form_submissions", "Test Personsson hör av sig om fakturan."),
}


def _row(source: str, key: int, text: str) -> dict[str, object]:
    common = dict(id=key, last_interaction_at=TODAY, updated_at=NOW)
    if source == "contact_form_submissions":
        return dict(common, submitted_at=NOW, name="Eva Ek", email="eva.ek@exempel.se", message=text, message_basis="consent")
    return dict(common, received_at=NOW, sender_name="Eva Ek", sender_email="eva.ek@exempel.se", body=text,
                body_basis="contract")


def _text(world: World, source: str, key: int) -> str:
    engine, _ = world.engines()
    t = Table(source, MetaData(), autoload_with=engine)
    column = "message" if source == "contact_form_submissions" else "body"
    with engine.connect() as conn:
        return conn.execute(select(t.c[column]).where(t.c.id == key)).scalar_one()


@pytest.fixture
def erased(db, tag_db, tmp_path):  # type: ignore[no-untyped-def]
    world = World(db.url, db.schema, tag_db.url, tag_db.schema, str(tmp_path / "reports"))
    prepare(world)
    engine, _ = world.engines()
    for key, (source, text) in MESSAGES.items():
        insert(engine, source, _row(source, key, text))
    scan_all(world, run_id="n2")
    result = erase(world, reference="DSR-NAME")  # e-mail and phone only: the name comes from their own records
    return world, result


def _workspace(world: World) -> Workspace:
    engine, tags = world.engines()
    policy, catalog = world.config()
    return Workspace(policy, catalog, {"lifecycle_demo": engine}, tags, world.hasher())


def _review(world: World, decision: str, items: list[int], name: str = "Test Person", reviewer: str = "reviewer-2"):  # type: ignore[no-untyped-def]
    parsed = ReviewDecision.parse({"reference": "DSR-NAME", "review_decision": decision, "review_items": items,
                                   "name": name}, reviewer)
    return fulfil_review(parsed, _workspace(world), report_dir=Path(world.report_dir), year=TODAY.year)


def test_names_in_others_messages_are_listed_not_redacted(erased) -> None:  # type: ignore[no-untyped-def]
    world, result = erased
    assert result.verified is True  # a name is not an identifier the erasure must remove
    for key, (source, text) in MESSAGES.items():
        assert _text(world, source, key) == text  # nothing redacted unreviewed
    _, tags = world.engines()
    items = listed_items(tags, "DSR-NAME")
    assert {(i["source"], i["record_key"]) for i in items} == {(s, str(k)) for k, (s, _) in MESSAGES.items() if k != 9504}
    assert {i["status"] for i in items} == {"pending"}
    assert pending(tags) == {"DSR-NAME": 3}
    certificate = json.loads(result.documents.json.read_text(encoding="utf-8"))
    assert certificate["names_for_review"] == {"contact_form_submissions": 1, "email_threads": 2}
    assert "Test Person" not in result.documents.json.read_text() + result.documents.html.read_text()
    assert "Names waiting for review" in result.documents.html.read_text()

    policy = load_policy(ROOT / "config" / "policy.yaml")
    summary = compliance_summary(tag_engine=tags, report_dir=Path(world.report_dir), policy=policy,
                                 mechanisms=load_mechanisms(ROOT / "config" / "transfer_mechanisms.yaml"), today=TODAY)
    assert summary["names_pending_review"] == {"DSR-NAME": 3}


def test_a_reviewed_decision_is_applied_by_a_later_run_and_verified(erased) -> None:  # type: ignore[no-untyped-def]
    world, _ = erased
    _, tags = world.engines()
    numbers = {(i["source"], i["record_key"]): i["item_no"] for i in listed_items(tags, "DSR-NAME")}
    redact = [numbers[("contact_form_submissions", "9501")], numbers[("email_threads", "9502")]]
    keep = [numbers[("email_threads", "9503")]]

    done = _review(world, "redact", redact)
    assert done.verified is True
    assert _text(world, "contact_form_submissions", 9501) == f"Hej, jag pratade med {REDACTED} igår om offerten."
    assert _text(world, "email_threads", 9502) == f"Möte bokat med {REDACTED} och mig nästa vecka."
    assert _text(world, "email_threads", 9503) == MESSAGES[9503][1]  # not chosen: untouched
    assert _text(world, "contact_form_submissions", 9504) == MESSAGES[9504][1]
    assert pending(tags, "DSR-NAME") == {"email_threads": 1}

    kept = _review(world, "keep", keep, reviewer="reviewer-3")
    assert kept.summary["per_source"] == {"email_threads": {"redacted": 0, "kept": 1}}
    assert _text(world, "email_threads", 9503) == MESSAGES[9503][1]
    assert pending(tags) == {}
    by_status = {i["item_no"]: (i["status"], i["decided_by"]) for i in listed_items(tags, "DSR-NAME")}
    assert by_status == {redact[0]: ("redacted", "reviewer-2"), redact[1]: ("redacted", "reviewer-2"),
                         keep[0]: ("kept", "reviewer-3")}
    certificate = (Path(world.report_dir) / "certificates" / "name_review-certificate-DSR-NAME.html").read_text()
    assert "reviewer-3" in certificate and "Test Person" not in certificate

    again = _review(world, "redact", redact)  # a re-run changes nothing twice
    assert again.summary["per_source"] == {} and again.verified is True


def test_review_input_is_checked_before_anything_changes(erased) -> None:  # type: ignore[no-untyped-def]
    world, _ = erased
    _, tags = world.engines()
    with pytest.raises(InvalidRequestError, match="name: does not match") as wrong:
        _review(world, "redact", [], name="Anna Andersson")
    assert "Anna" not in str(wrong.value)
    with pytest.raises(InvalidRequestError, match="review_items: items 99 are not listed"):
        _review(world, "redact", [99])
    with pytest.raises(InvalidRequestError, match="review_decision"):
        ReviewDecision.parse({"reference": "DSR-NAME", "review_decision": "delete", "name": "Test Person"}, "r")
    with pytest.raises(InvalidRequestError, match="name:"):
        ReviewDecision.parse({"reference": "DSR-NAME", "review_decision": "keep", "name": "x'; DROP TABLE t;--"}, "r")
    for key, (source, text) in MESSAGES.items():
        assert _text(world, source, key) == text
    assert pending(tags) == {"DSR-NAME": 3}


def test_every_store_kind_lists_a_name_only_as_a_whole_name(erased) -> None:  # type: ignore[no-untyped-def]
    world, _ = erased
    engine, tags = world.engines()
    _, catalog = world.config()
    stores = open_stores(catalog, {"lifecycle_demo": engine}, tags)
    probe = Probe().with_names(["Test Person"])
    checks = {c.source: c for c in verify_in_sources(stores, probe, set())}
    assert sorted(checks["email_threads"].name_mentions) == [("9502", "test person"), ("9503", "test person")]
    assert checks["contact_form_submissions"].name_mentions == [("9501", "test person")]
    assert all(c.records_found == 0 for c in checks.values())  # a name alone is no identifier left
    assert checks["email_threads"].to_dict()["name_mentions"] == 2  # counts only in documents
