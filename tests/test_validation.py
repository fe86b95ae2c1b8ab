"""Great Expectations on the tag store, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from lifecycle.tables import record_tag
from lifecycle.validation import validate_tag_store

SUITES = Path(__file__).resolve().parents[1] / "expectations"
TODAY = date(2026, 11, 25)
ALLOWED = ["newsletter:contact_details:consent"]
BASE = dict(source="newsletter_subscribers", category="contact_details", activity="newsletter", lawful_basis="consent",
            role="controller", controller="self", clock_value=date(2025, 1, 1), on_expiry="erase", run_id="r",
            violation=None, subject_refs=None, status="active", deadline=date(2027, 1, 1))


def _validate(tag_db, rows: list[dict]):  # type: ignore[no-untyped-def]
    engine = tag_db.tag_store()
    if rows:
        with engine.begin() as conn:
            conn.execute(record_tag.insert(), [{**BASE, "record_key": str(i), **r} for i, r in enumerate(rows)])
    result = validate_tag_store(engine, stage="before", logical_date=TODAY, allowed_purposes=ALLOWED, suite_dir=SUITES)
    return result, {o.description: o for o in result.outcomes}


def test_all_good_and_ignored_rows_pass(tag_db) -> None:  # type: ignore[no-untyped-def]
    result, _ = _validate(tag_db, [
        {},
        {"deadline": TODAY},                                   # the last allowed day
        {"deadline": None},                                    # a running contract
        {"deadline": date(2020, 1, 1), "status": "restricted"},  # out of processing
        {"deadline": date(2020, 1, 1), "status": "anonymised"},
    ])
    assert result.success and result.evaluated_records == 3


def test_empty_tag_store_passes(tag_db) -> None:  # type: ignore[no-untyped-def]
    assert _validate(tag_db, [])[0].success


@pytest.mark.parametrize(
    ("row", "failing"),
    [
        ({"deadline": date(2026, 11, 24)}, "no record is past its deadline"),
        ({"lawful_basis": "contract"}, "the policy allows this activity, category and lawful basis"),
        ({"lawful_basis": None, "status": "violation", "violation": "no_lawful_basis"}, "every record has a lawful basis"),
        ({"status": "violation", "violation": "no_retention_clock", "deadline": None},
         "no unresolved violation (undeterminable basis, controller or clock)"),
    ],
)
def test_each_failure_is_reported_by_count(tag_db, row, failing) -> None:  # type: ignore[no-untyped-def]
    result, outcomes = _validate(tag_db, [{}, row])
    assert not result.success
    assert outcomes[failing].unexpected_count == 1 and outcomes[failing].element_count == 2
    # Counts only: the result never carries the unexpected values (keys of personal data).
    assert set(result.to_dict()["outcomes"][0]) == {
        "expectation", "column", "description", "success", "element_count", "unexpected_count"}
