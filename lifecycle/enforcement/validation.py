"""Great Expectations validation of the tag store.

Two suites, loaded from ``suite_dir`` at run time: ``tag_store.json`` over the records the
pipeline still processes or keeps (status active, violation or held; anonymised and restricted
ones are out of scope), with its parameters (the purposes the policy allows, the run's logical
date) filled at run time, and ``schema_drift.json`` over the schema findings of the scans.
Results carry counts only, never the unexpected values (they could be keys of personal data).
A run limited to some sources validates only their tags and schema findings, and says so.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from lifecycle.errors import ConfigError, ValidationRunError

if TYPE_CHECKING:
    from great_expectations import ExpectationSuite
    from great_expectations.core import ExpectationSuiteValidationResult, ExpectationValidationResult
    from great_expectations.data_context import AbstractDataContext
    from great_expectations.datasource.fluent import SQLDatasource

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # no usage statistics leave the machine

# `deadline` is selected as stored: a query asset carries no column types, so GX's refusal of
# text columns in ExpectColumnValuesToBeBetween does not apply, and the bound is compared as a
# date (SQLite keeps ISO text, which orders like the date). Never CAST(... AS DATE) here: on
# SQLite that means NUMERIC affinity and turns '2026-11-25' into 2026.
PROCESSED_RECORDS_QUERY = (
    "SELECT source, record_key, category, activity, lawful_basis, deadline, status, "
    "activity || ':' || category || ':' || COALESCE(lawful_basis, '') AS purpose "
    "FROM lc_record_tag WHERE status IN ('active', 'violation', 'held')"
)
SCHEMA_FINDINGS_QUERY = "SELECT source, column_name, finding FROM lc_schema_finding"
# Source names are catalog identifiers; only such a name is ever written into a query.
_SOURCE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


@dataclass(frozen=True)
class _Suite:
    file: str
    asset: str
    query: str


SUITES = (
    _Suite("tag_store.json", "processed_records", PROCESSED_RECORDS_QUERY),
    _Suite("schema_drift.json", "schema_findings", SCHEMA_FINDINGS_QUERY),
)
# Counts only: LIMIT 0 on the unexpected-values query, and none copied into the result.
# (GX fills in missing keys of the dict it is given: pass a copy.)
RESULT_FORMAT: dict[str, Any] = {"result_format": "BASIC", "partial_unexpected_count": 0,
                                 "exclude_unexpected_values": True}


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str
    column: str
    description: str
    success: bool
    element_count: int
    unexpected_count: int


@dataclass(frozen=True)
class ValidationResult:
    stage: str
    success: bool
    evaluated_records: int
    outcomes: tuple[ExpectationOutcome, ...]
    sources: tuple[str, ...] | None = None  # the sources validated; None: the whole tag store

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "success": self.success,
            "evaluated_records": self.evaluated_records,
            "sources": list(self.sources) if self.sources is not None else None,
            "scope": f"sources: {', '.join(self.sources)}" if self.sources is not None else "all sources",
            "outcomes": [asdict(o) for o in self.outcomes],
        }


def validate_tag_store(
    engine: Engine,
    *,
    stage: str,
    logical_date: date,
    allowed_purposes: Sequence[str],
    suite_dir: Path,
    sources: Sequence[str] | None = None,
) -> ValidationResult:
    """Run every suite of ``SUITES`` against the tag store behind ``engine``.

    ``sources`` limits every suite to the tags and schema findings of those sources (a run
    limited to them must not fail on another source's untouched problems); None or empty: all.

    GX builds an engine of its own from ``engine.url``: on PostgreSQL the search_path must be
    in the URL (``lifecycle.tagstore.db.make_engine`` puts it there), not only in ``connect_args``.
    """
    scope = tuple(dict.fromkeys(sources)) if sources else None
    suites = [_Suite(s.file, s.asset, _limited(s.query, scope)) for s in SUITES]
    context = _quiet_context()
    datasource = _add_datasource(context, engine)
    parameters = {"logical_date": logical_date, "allowed_purposes": list(allowed_purposes)}
    try:
        runs = [_run_suite(context, datasource, s, suite_dir, parameters) for s in suites]
    finally:
        # GX keeps two engines (one tested the connection, one ran the suites), each with a pool.
        datasource.get_engine().dispose()
        datasource.get_execution_engine().engine.dispose()
    tag_outcomes = tuple(_outcome(r) for r in runs[0].results)
    outcomes = tag_outcomes + tuple(_outcome(r) for run in runs[1:] for r in run.results)
    return ValidationResult(
        stage=stage,
        success=all(bool(run.success) for run in runs),
        evaluated_records=max((o.element_count for o in tag_outcomes), default=0),
        outcomes=outcomes,
        sources=scope,
    )


def _limited(query: str, sources: tuple[str, ...] | None) -> str:
    """``query`` limited to rows of ``sources`` (a GX query asset takes no bound parameters, so the
    names go in as literals: only catalog identifiers, checked here, never anything else)."""
    if sources is None:
        return query
    bad = [s for s in sources if not isinstance(s, str) or not _SOURCE_NAME.fullmatch(s)]
    if bad:
        raise ValueError(f"{len(bad)} source name(s) are not catalog identifiers (letters, digits and _, at most 63)")
    names = ", ".join(f"'{s}'" for s in sources)
    return f"SELECT * FROM ({query}) AS scoped WHERE source IN ({names})"


def _quiet_context() -> AbstractDataContext:
    import great_expectations as gx  # heavy: imported only when validation runs
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")  # in memory: nothing written to disk
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # task logs, not a terminal
    return context


def _add_datasource(context: AbstractDataContext, engine: Engine) -> SQLDatasource:
    # The dialect's own datasource: the generic one warns, and SQLite gets GX's SQLite engine.
    sources = context.data_sources
    add = {"sqlite": sources.add_sqlite, "postgresql": sources.add_postgres}.get(engine.dialect.name, sources.add_sql)
    return add(name="tag_store", connection_string=engine.url.render_as_string(hide_password=False))


def _run_suite(context: AbstractDataContext, datasource: SQLDatasource, suite: _Suite,
               suite_dir: Path, parameters: dict[str, Any]) -> ExpectationSuiteValidationResult:
    from great_expectations import ValidationDefinition

    batch = datasource.add_query_asset(name=suite.asset, query=suite.query).add_batch_definition_whole_table("all")
    expectations = context.suites.add(_load_suite(suite_dir / suite.file))
    definition = context.validation_definitions.add(
        ValidationDefinition(name=f"{datasource.name}_{suite.asset}", data=batch, suite=expectations))
    run = definition.run(expectation_parameters=parameters, result_format=dict(RESULT_FORMAT))
    _raise_if_not_evaluated(run, suite)
    return run


def _load_suite(path: Path) -> ExpectationSuite:
    from great_expectations import ExpectationSuite

    document = json.loads(path.read_text(encoding="utf-8"))
    suite = ExpectationSuite(**document)
    # ExpectationSuite logs and drops an invalid expectation: a typo would pass validation.
    declared = len(document.get("expectations", []))
    if len(suite.expectations) != declared:
        raise ConfigError(str(path), "expectations",
                          f"{declared - len(suite.expectations)} of {declared} invalid (GX logged why)")
    return suite


def _raise_if_not_evaluated(run: ExpectationSuiteValidationResult, suite: _Suite) -> None:
    # GX turns an exception into a failed expectation with no counts: "0 of 0 unexpected" would
    # read as a data problem, when the tag store could not be read at all.
    for result in run.results:
        info = result.exception_info or {}
        # One dict, or one per metric (keyed by metric id) when a metric raised.
        for entry in [info] if "raised_exception" in info else list(info.values()):
            if isinstance(entry, dict) and entry.get("raised_exception"):
                message = str(entry.get("exception_message") or "").splitlines()[:1]
                raise ValidationRunError(
                    f"suite {suite.file} on {suite.asset}: {result.expectation_config.type} "
                    f"could not be evaluated: {' '.join(message)}")


def _outcome(result: ExpectationValidationResult) -> ExpectationOutcome:
    config = result.expectation_config
    summary = result.result or {}
    if "observed_value" in summary:
        # A table-level expectation (row count = 0 over the findings): every row is a finding.
        rows = int(summary["observed_value"] or 0)
        element_count, unexpected_count = rows, 0 if result.success else rows
    else:
        element_count = int(summary.get("element_count") or 0)
        unexpected_count = int(summary.get("unexpected_count") or 0)
    return ExpectationOutcome(
        expectation=config.type,
        column=str(config.kwargs.get("column", "")),
        # The suite files keep the human text in meta.description.
        description=str((config.meta or {}).get("description", config.type)),
        success=bool(result.success),
        element_count=element_count,
        unexpected_count=unexpected_count,
    )
