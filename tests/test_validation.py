"""Great Expectations on the tag store, on SQLite and PostgreSQL (``tag_db`` runs both)."""

from __future__ import annotations

import json
import logging
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from lifecycle.errors import ConfigError
from lifecycle.tagstore.tables import record_tag, schema_finding
from lifecycle.enforcement.validation import ExpectationOutcome, ValidationResult, ValidationRunError, validate_tag_store

SUITES = Path(__file__).resolve().parents[1] / "expectations"
TODAY = date(2026, 11, 25)
PAST = date(2020, 1, 1)
ALLOWED = ["newsletter:contact_details:consent"]
BASE: dict[str, Any] = dict(
    source="newsletter_subscribers", category="contact_details", activity="newsletter", lawful_basis="consent",
    role="controller", controller="self", clock_value=date(2025, 1, 1), on_expiry="erase", run_id="r",
    violation=None, status="active", deadline=date(2027, 1, 1))

BASIS = "every record has a lawful basis"
PURPOSE = "the policy allows this activity, category and lawful basis"
DEADLINE = "no record is past its deadline"
STATUS = "no unresolved violation (undeterminable basis, controller or clock)"
DRIFT = "no untagged or missing columns in any source (schema drift)"
TAG_STORE = (BASIS, PURPOSE, DEADLINE, STATUS)


Outcomes = dict[str, ExpectationOutcome]


def _validate(tag_db, rows: list[dict[str, Any]],  # type: ignore[no-untyped-def]
              findings: list[dict[str, Any]] | None = None,
              suite_dir: Path = SUITES, sources: list[str] | None = None) -> tuple[ValidationResult, Outcomes]:
    engine = tag_db.tag_store()
    with engine.begin() as conn:
        if rows:
            conn.execute(record_tag.insert(), [{**BASE, "record_key": str(i), **r} for i, r in enumerate(rows)])
        if findings:
            conn.execute(schema_finding.insert(), findings)
    try:
        result = validate_tag_store(engine, stage="before", logical_date=TODAY, allowed_purposes=ALLOWED,
                                    suite_dir=suite_dir, sources=sources)
    finally:
        engine.dispose()
    return result, {o.description: o for o in result.outcomes}


def test_all_good_passes(tag_db) -> None:  # type: ignore[no-untyped-def]
    result, outcomes = _validate(tag_db, [
        {},
        {"deadline": TODAY},  # the last allowed day
        {"status": "held", "violation": "legal obligation"},  # kept, and still checked
    ])
    assert result.success and result.evaluated_records == 3 and result.stage == "before"
    assert set(outcomes) == {*TAG_STORE, DRIFT}
    assert all(o.success and o.unexpected_count == 0 for o in result.outcomes)
    assert all(outcomes[d].element_count == 3 for d in TAG_STORE)


def test_null_deadline_is_a_running_contract_not_a_failure(tag_db) -> None:  # type: ignore[no-untyped-def]
    result, outcomes = _validate(tag_db, [{}, {"deadline": None}])
    assert result.success
    assert (outcomes[DEADLINE].element_count, outcomes[DEADLINE].unexpected_count) == (2, 0)


def test_rows_out_of_processing_are_ignored(tag_db) -> None:  # type: ignore[no-untyped-def]
    gone = {"deadline": PAST, "lawful_basis": None, "activity": "unknown"}  # would fail everything
    result, _ = _validate(tag_db, [{}, {**gone, "status": "restricted"}, {**gone, "status": "anonymised"}])
    assert result.success and result.evaluated_records == 1


def test_empty_tag_store_passes(tag_db) -> None:  # type: ignore[no-untyped-def]
    result, _ = _validate(tag_db, [])
    assert result.success and result.evaluated_records == 0
    assert all(o.success and o.element_count == 0 for o in result.outcomes)


@pytest.mark.parametrize(
    ("row", "failing"),
    [
        pytest.param({"deadline": date(2026, 11, 24)}, {DEADLINE}, id="past-deadline"),
        pytest.param({"status": "held", "deadline": PAST}, {DEADLINE}, id="held-past-lapse"),
        pytest.param({"lawful_basis": "contract"}, {PURPOSE}, id="disallowed-purpose"),
        # No basis also makes the purpose 'newsletter:contact_details:', which no policy allows.
        pytest.param({"lawful_basis": None}, {BASIS, PURPOSE}, id="null-basis"),
        pytest.param({"status": "violation", "violation": "no_retention_clock"}, {STATUS}, id="violation"),
    ],
)
def test_each_failure_is_counted_on_its_expectation(tag_db, row, failing) -> None:  # type: ignore[no-untyped-def]
    result, outcomes = _validate(tag_db, [{}, row])
    assert not result.success
    for description in TAG_STORE:
        o = outcomes[description]
        assert (o.success, o.element_count, o.unexpected_count) == (description not in failing, 2,
                                                                   int(description in failing)), description
    assert outcomes[DRIFT].success


def test_schema_drift_fails_the_validation(tag_db) -> None:  # type: ignore[no-untyped-def]
    finding = {"source": "crm", "column_name": "notes", "finding": "untagged_column", "run_id": "r"}
    result, outcomes = _validate(tag_db, [{}], findings=[finding])
    assert not result.success
    assert (outcomes[DRIFT].success, outcomes[DRIFT].unexpected_count) == (False, 1)
    assert all(outcomes[d].success for d in TAG_STORE)


def test_results_and_logs_carry_counts_never_values(tag_db, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    secret = "anna.svensson@example.se"
    result, _ = _validate(tag_db, [{"record_key": secret, "lawful_basis": None, "deadline": PAST,
                                    "activity": secret, "status": "violation"}])
    assert not result.success
    assert secret not in json.dumps(result.to_dict()) and secret not in caplog.text
    assert set(result.to_dict()["outcomes"][0]) == {
        "expectation", "column", "description", "success", "element_count", "unexpected_count"}


def test_an_invalid_expectation_is_refused_not_dropped(tag_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    suites = tmp_path / "suites"
    shutil.copytree(SUITES, suites)
    doc = json.loads((suites / "tag_store.json").read_text())
    doc["expectations"][0]["type"] = "expect_column_values_to_not_be_nul"
    (suites / "tag_store.json").write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="1 of 4 invalid"):
        _validate(tag_db, [], suite_dir=suites)


def test_an_unreadable_tag_store_is_an_error_not_a_failure(db) -> None:  # type: ignore[no-untyped-def]
    engine = db.engine()  # no lc_record_tag: as if the search_path had been lost
    try:
        with pytest.raises(ValidationRunError, match="lc_record_tag"):
            validate_tag_store(engine, stage="after", logical_date=TODAY, allowed_purposes=ALLOWED, suite_dir=SUITES)
    finally:
        engine.dispose()


# -- a run limited to some sources validates those sources only --------------------------------

OTHER = "customers"  # source B, with problems of its own that a run limited to A must not fail on


def test_a_violation_in_another_source_does_not_fail_a_limited_run(tag_db) -> None:  # type: ignore[no-untyped-def]
    rows = [{}, {"source": OTHER, "deadline": PAST}, {"source": OTHER, "status": "violation", "violation": "x"}]
    finding = {"source": OTHER, "column_name": "notes", "finding": "untagged_column", "run_id": "r"}
    result, outcomes = _validate(tag_db, rows, findings=[finding], sources=["newsletter_subscribers"])
    assert result.success and result.evaluated_records == 1
    assert all(o.success and o.unexpected_count == 0 for o in result.outcomes)
    assert outcomes[DRIFT].element_count == 0
    assert result.sources == ("newsletter_subscribers",)
    assert result.to_dict()["sources"] == ["newsletter_subscribers"]
    assert result.to_dict()["scope"] == "sources: newsletter_subscribers"


def test_a_violation_in_an_included_source_fails(tag_db) -> None:  # type: ignore[no-untyped-def]
    rows = [{}, {"source": OTHER, "deadline": PAST}]
    finding = {"source": OTHER, "column_name": "notes", "finding": "untagged_column", "run_id": "r"}
    result, outcomes = _validate(tag_db, rows, findings=[finding], sources=["newsletter_subscribers", OTHER])
    assert not result.success and result.evaluated_records == 2
    assert (outcomes[DEADLINE].success, outcomes[DEADLINE].unexpected_count) == (False, 1)
    assert (outcomes[DRIFT].success, outcomes[DRIFT].unexpected_count) == (False, 1)
    assert result.to_dict()["sources"] == ["newsletter_subscribers", OTHER]


def test_limited_to_the_failing_source_alone(tag_db) -> None:  # type: ignore[no-untyped-def]
    result, outcomes = _validate(tag_db, [{}, {"source": OTHER, "lawful_basis": None}], sources=[OTHER])
    assert not result.success and result.evaluated_records == 1
    assert not outcomes[BASIS].success and outcomes[DRIFT].success


def test_unlimited_validation_covers_every_source(tag_db) -> None:  # type: ignore[no-untyped-def]
    result, outcomes = _validate(tag_db, [{}, {"source": OTHER, "deadline": PAST}], sources=None)
    assert not result.success and result.evaluated_records == 2 and not outcomes[DEADLINE].success
    assert result.sources is None and result.to_dict()["scope"] == "all sources"


@pytest.mark.parametrize("name", ["x'); DROP TABLE lc_record_tag; --", "a b", "", "1abc"])
def test_only_catalog_identifiers_reach_the_query(tmp_path: Path, name: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{tmp_path / 't.db'}")
    with pytest.raises(ValueError, match="not catalog identifiers") as caught:
        validate_tag_store(engine, stage="before", logical_date=TODAY, allowed_purposes=ALLOWED, suite_dir=SUITES,
                           sources=["newsletter_subscribers", name])
    assert not name or name not in str(caught.value)
