"""Great Expectations validation of the tag store.

The suite lives in expectations/tag_store.json; its parameters (the purposes the policy allows,
the run's logical date) are filled at run time. Only the records the pipeline still processes
are validated (status active or violation); anonymised and restricted ones are out of scope.
Results carry counts only, never the unexpected values (they could be keys of personal data).
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

log = logging.getLogger(__name__)
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # no usage statistics leave the machine

SCHEMA_FINDINGS_QUERY = "SELECT source, column_name, finding FROM lc_schema_finding"
PROCESSED_RECORDS_QUERY = (
    "SELECT source, record_key, category, activity, lawful_basis, deadline, status, "
    "activity || ':' || category || ':' || COALESCE(lawful_basis, '') AS purpose "
    "FROM lc_record_tag WHERE status IN ('active', 'violation', 'held')"
)


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "success": self.success,
            "evaluated_records": self.evaluated_records,
            "outcomes": [asdict(o) for o in self.outcomes],
        }


def validate_tag_store(
    engine: Engine,
    *,
    stage: str,
    logical_date: date,
    allowed_purposes: Sequence[str],
    suite_dir: Path,
) -> ValidationResult:
    """Run the tag-store suite over the processed records and the drift suite over the
    schema findings; one result with every expectation's outcome."""
    import great_expectations as gx  # heavy: imported only when validation runs
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # task logs, not a terminal
    name = f"tagstore_{uuid.uuid4().hex[:8]}"
    # The URL carries the PostgreSQL search_path (lifecycle.db.make_engine puts it there).
    datasource = context.data_sources.add_sql(name=name, connection_string=engine.url.render_as_string(hide_password=False))
    parameters = {"logical_date": logical_date.isoformat(), "allowed_purposes": list(allowed_purposes)}
    outcomes: list[ExpectationOutcome] = []
    success = True
    evaluated = 0
    for suite_file, asset_name, query in (
        ("tag_store.json", "processed_records", PROCESSED_RECORDS_QUERY),
        ("schema_drift.json", "schema_findings", SCHEMA_FINDINGS_QUERY),
    ):
        suite_doc = json.loads((suite_dir / suite_file).read_text(encoding="utf-8"))
        batch = datasource.add_query_asset(name=asset_name, query=query).add_batch_definition_whole_table("all")
        suite = context.suites.add(gx.ExpectationSuite(name=suite_doc["name"], expectations=suite_doc["expectations"]))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{name}_{asset_name}", data=batch, suite=suite))
        result = definition.run(expectation_parameters=parameters, result_format="SUMMARY")
        success = success and bool(result.success)
        suite_outcomes = [_outcome(r) for r in result.results]
        outcomes += suite_outcomes
        if asset_name == "processed_records":
            evaluated = max((o.element_count for o in suite_outcomes), default=0)
    return ValidationResult(stage=stage, success=success, evaluated_records=evaluated, outcomes=tuple(outcomes))


def _outcome(r: Any) -> ExpectationOutcome:
    config = r.expectation_config
    summary = r.result or {}
    return ExpectationOutcome(
        expectation=config.type,
        column=str(config.kwargs.get("column", "")),
        description=str((config.meta or {}).get("description", config.type)),
        success=bool(r.success),
        element_count=int(summary.get("element_count") or 0),
        # A row-count expectation reports the rows it saw: here every row is a finding.
        unexpected_count=int(summary.get("unexpected_count") or summary.get("observed_value") or 0),
    )
