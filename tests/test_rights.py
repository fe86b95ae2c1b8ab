"""Consent withdrawal, objection and rectification of one person, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import select

from lifecycle.rights.erasure import RequestScope, apply_erasure
from lifecycle.enforcement.plan import build_plan, register_run
from lifecycle.rights.requests import InvalidRequestError, SubjectIdentifiers
from lifecycle.rights.amend import plan_objection, plan_withdrawal, rectify
from lifecycle.discovery.scan import scan_source
from lifecycle.discovery.subjects import locate, subject_hashes
from lifecycle.tagstore.tables import plan_item, suppression
from test_erasure import TODAY, _row, person  # noqa: F401 - the shared fixture
from tests.request_world import insert as _insert


def _apply(person, hasher, actions, reason):  # type: ignore[no-untyped-def]
    engine, tags, catalog, policy, ids = person
    scope = RequestScope(catalog, {"lifecycle_demo": engine}, tags, hasher, ids, ids.hashes(hasher, 2026))
    return apply_erasure(actions, scope, reference="DSR-R", today=TODAY, dry_run=False, suppress_as=reason)


def test_withdrawal_erases_only_what_rests_on_consent(person, hasher) -> None:  # type: ignore[no-untyped-def]
    engine, tags, catalog, policy, ids = person
    actions = plan_withdrawal(catalog, policy, tags, ids.hashes(hasher, 2026))
    assert [(a.source, a.action) for a in actions] == [("newsletter_subscribers", "erase")]
    _apply(person, hasher, actions, "consent_withdrawn")
    assert _row(engine, "newsletter_subscribers", 9001) is None
    assert _row(engine, "customers", 9001) is not None and _row(engine, "invoices", 9001)["contact_email"]
    assert plan_withdrawal(catalog, policy, tags, ids.hashes(hasher, 2026)) == []


def test_objection_removes_from_marketing_and_keeps_them_out(person, hasher) -> None:  # type: ignore[no-untyped-def]
    engine, tags, catalog, policy, ids = person
    actions = plan_objection(catalog, policy, tags, ids.hashes(hasher, 2026))
    assert {(a.source, a.action) for a in actions} == {("newsletter_subscribers", "erase"), ("ad_audiences", "forward")}
    outcome = _apply(person, hasher, actions, "objection")
    assert outcome.forwarded == {"kund-nordisk-handel": 1}
    assert _row(engine, "newsletter_subscribers", 9001) is None and _row(engine, "customers", 9001) is not None
    with tags.connect() as conn:
        assert set(conn.execute(select(suppression.c.reason)).scalars()) == {"objection"}
    # They sign up again through an old import: the nightly plan removes them again.
    _insert(engine, "newsletter_subscribers", dict(id=9002, subscribed_at=date(2026, 11, 20), last_confirmed_at=date(2026, 11, 20),
                                                   name="Test Person", email="test.person@exempel.se",
                                                   updated_at=datetime(2026, 11, 25, 22)))
    source = catalog.source("newsletter_subscribers")
    scan_source(source, policy, source_engine=engine, tag_engine=tags, hasher=hasher, run_id="n2", logical_date=TODAY)
    register_run(tags, "n2", TODAY, False)
    build_plan(tags, [source], "n2", TODAY, marketing_activities=("newsletter",))
    with tags.connect() as conn:
        planned = conn.execute(select(plan_item.c.record_key, plan_item.c.reason).where(plan_item.c.run_id == "n2")).all()
    assert ("9002", "objection_to_marketing") in planned


def test_rectification_updates_every_own_record_and_the_index(person, hasher) -> None:  # type: ignore[no-untyped-def]
    engine, tags, catalog, policy, ids = person
    outcome = rectify(catalog=catalog, policy=policy, source_engines={"lifecycle_demo": engine}, tag_engine=tags, hasher=hasher,
                      identifiers=ids, kind="email", new_value="ratt.adress@exempel.se", reference="DSR-9",
                      today=TODAY, dry_run=False)
    assert outcome.per_source == {"customers": 1, "invoices": 1, "newsletter_subscribers": 1}
    assert outcome.forwarded == {"kund-nordisk-handel": 1}  # the customer's audience: theirs to correct
    assert _row(engine, "customers", 9001)["contact_email"] == "ratt.adress@exempel.se"
    assert "exempel" not in outcome.before_hash + outcome.after_hash and outcome.before_hash != outcome.after_hash
    found = {(l.source, l.record_key) for l in locate(tags, subject_hashes(hasher, {"email": "ratt.adress@exempel.se"}, 2026))}
    assert ("invoices", "9001") in found and ("customers", "9001") in found
    with pytest.raises(InvalidRequestError, match="not a valid address"):
        rectify(catalog=catalog, policy=policy, source_engines={"lifecycle_demo": engine}, tag_engine=tags, hasher=hasher,
                identifiers=ids, kind="email", new_value="fel", reference="DSR-10", today=TODAY, dry_run=False)
