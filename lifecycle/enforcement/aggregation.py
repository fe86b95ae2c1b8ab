"""Aggregate-only analytics: website visits (and any source the catalog gives ``analytics``)
counted per group and period, with a minimum group size k.

The policy (Bilaga 1) uses visitor data "for research and analysis on an aggregated level only".
Each night, before the plan anonymises expired raw visits, every complete period not yet
aggregated is counted in the source's own database by one set-based statement: visitors are
counted distinct there, so no identifier (an IP address) ever leaves it, only counts. Groups of
fewer than k visitors are merged into "other", and "other" is dropped when it is under k too.
What meets k is stored in the tag store (``lc_analytics_aggregate``): counts and group names,
no identifiers, kept after the raw visits are anonymised. ``lc_analytics_state`` records how far
each source is aggregated: a period is counted once, so a re-run never counts a visit twice
(and a visit that arrives after its period was aggregated is not counted).

``validate_aggregates`` proves the published state with Great Expectations
(``expectations/analytics_aggregates.json``), the way ``validation`` proves the tag store's.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, delete, select, update

from lifecycle.config import Catalog, Source
from lifecycle.config import catalog as catalog_schema
from lifecycle.enforcement.validation import RESULT_FORMAT, ExpectationOutcome, ValidationResult
from lifecycle.errors import ConfigError, LifecycleError, ValidationRunError
from lifecycle.tagstore import load_sql, quote_identifier, statement
from lifecycle.tagstore import tables

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # no usage statistics leave the machine

Period = Literal["day", "week"]
AGGREGATES_SUITE = "analytics_aggregates.json"
# The aggregates as published, with the group size each source requires tonight (the catalog's k;
# for a source no longer aggregated, the k it was published under).
AGGREGATES_QUERY = "SELECT a.*, {required_k} AS required_k FROM lc_analytics_aggregate a"


@dataclass(frozen=True)
class Span:
    """Complete periods [start, until) of one length, counted in one statement."""

    period: Period
    start: date
    until: date


@dataclass(frozen=True)
class GroupCount:
    """One row of ``analytics_aggregate.sql``: a group, or the groups merged into "other"."""

    period: Period
    period_start: date
    group_kind: str  # value | unknown (no group value) | other (groups under k, merged)
    group_value: str  # '' for unknown and other
    visitors: int
    visits: int
    merged_groups: int


@dataclass
class AggregationStats:
    """What one night aggregated for a source: counts only (XCom, logs, report)."""

    source: str
    period: str
    k: int
    dry_run: bool
    aggregated_from: str | None = None
    aggregated_until: str | None = None
    periods: int = 0
    groups_published: int = 0
    # Groups under k: counted into a published "other", or dropped with it when it is under k too.
    groups_merged: int = 0
    groups_suppressed: int = 0
    visits_published: int = 0
    visits_suppressed: int = 0
    # Published rows removed because the catalog's k was raised above them.
    groups_withdrawn: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def period_start(day: date, period: Period) -> date:
    """The first day of the period holding ``day``; weeks start on Monday (ISO 8601)."""
    return day if period == "day" else day - timedelta(days=day.weekday())


def spans(aggregated_until: date, until: date, period: Period) -> list[Span]:
    """The periods between what is aggregated and ``until`` (a period boundary). After a change
    from days to weeks, the days up to the next week boundary are counted as days: no day is
    counted twice and none is skipped."""
    if aggregated_until >= until:
        return []
    boundary = period_start(aggregated_until, period)
    if boundary != aggregated_until:
        boundary += timedelta(days=7)
    boundary = min(boundary, until)
    out = [Span("day", aggregated_until, boundary)] if boundary > aggregated_until else []
    return out + ([Span(period, boundary, until)] if until > boundary else [])


def count_span(source: Source, source_engine: Engine, span: Span) -> list[GroupCount]:
    """Every group of every period in ``span``, counted in the source's database."""
    spec = _spec(source)
    column = quote_identifier(source_engine, spec.date_column)
    period_sql = load_sql(f"analytics_period_{span.period}", source_engine.dialect.name).strip().format(column=column)
    group_sql = load_sql("as_text", source_engine.dialect.name).strip().format(
        column=quote_identifier(source_engine, spec.group_column))
    sql = statement(source_engine, "analytics_aggregate", table=source.table or "", group_sql=group_sql,
                    date_column=spec.date_column, visitor_column=spec.visitor_column or source.primary_key,
                    period_start_sql=period_sql)
    with source_engine.connect() as conn:
        rows = conn.execute(sql, {"from_date": span.start, "until_date": span.until, "k": spec.k}).all()
    return [GroupCount(span.period, _day(r.period_start), _kind(r.group_value), r.group_value or "", int(r.visitors),
                       int(r.visits), int(r.merged_groups)) for r in rows]


def aggregate_source(source: Source, source_engine: Engine, tag_engine: Engine, *, run_id: str,
                     logical_date: date, dry_run: bool = False) -> AggregationStats:
    """Aggregate the complete periods of ``source`` not yet aggregated (those before the period
    holding ``logical_date``) and store the groups of at least k visitors. A dry run counts and
    reports but stores nothing."""
    started = time.monotonic()
    spec = _spec(source)
    stats = AggregationStats(source.name, spec.period, spec.k, dry_run)
    done = aggregated_until(tag_engine, source.name)
    start = done if done is not None else _first_period(source, source_engine)
    until = period_start(logical_date, spec.period)
    todo = spans(start, until, spec.period) if start is not None else []
    counts = [c for span in todo for c in count_span(source, source_engine, span)]
    # The statement merged groups under k into "other"; "other" itself may be under k: left out.
    published = [c for c in counts if c.visitors >= spec.k]
    for c in counts:
        if c.visitors >= spec.k:
            stats.groups_published += 1
            stats.visits_published += c.visits
            stats.groups_merged += c.merged_groups if c.group_kind == "other" else 0
        else:
            stats.groups_suppressed += c.merged_groups
            stats.visits_suppressed += c.visits
    if todo:
        stats.aggregated_from, stats.aggregated_until = todo[0].start.isoformat(), until.isoformat()
        stats.periods = len({(c.period, c.period_start) for c in counts})
    if not dry_run:
        stats.groups_withdrawn = _store(tag_engine, source.name, spec, published, previous=done,
                                        until=until if todo else None, run_id=run_id)
    stats.seconds = round(time.monotonic() - started, 3)
    return stats


def aggregated_until(tag_engine: Engine, source_name: str) -> date | None:
    with tag_engine.connect() as conn:
        value = conn.execute(select(tables.analytics_state.c.aggregated_until)
                             .where(tables.analytics_state.c.source == source_name)).scalar()
    return None if value is None else _day(value)


def _store(tag_engine: Engine, source_name: str, spec: catalog_schema.Analytics, published: list[GroupCount], *,
           previous: date | None, until: date | None, run_id: str) -> int:
    """Store the new groups and move the source's mark, in one transaction; withdraw stored groups
    under the catalog's k (it may have been raised). Returns how many were withdrawn."""
    aggregate, state = tables.analytics_aggregate, tables.analytics_state
    now = datetime.now(timezone.utc)
    with tag_engine.begin() as conn:
        withdrawn = conn.execute(delete(aggregate).where(aggregate.c.source == source_name,
                                                         aggregate.c.visitors < spec.k)).rowcount
        if until is None:
            return int(withdrawn or 0)
        if previous is None:  # a concurrent first run fails here on the primary key
            conn.execute(state.insert().values(source=source_name, aggregated_until=until, run_id=run_id, updated_at=now))
        else:
            moved = conn.execute(update(state).where(state.c.source == source_name, state.c.aggregated_until == previous)
                                 .values(aggregated_until=until, run_id=run_id, updated_at=now)).rowcount
            if moved != 1:
                raise LifecycleError(f"analytics of source {source_name!r}: another run aggregated it meanwhile; "
                                     "nothing was stored by this one")
        if published:
            conn.execute(aggregate.insert(), [
                {"source": source_name, "period": c.period, "period_start": c.period_start, "group_kind": c.group_kind,
                 "group_value": c.group_value, "visitors": c.visitors, "visits": c.visits, "min_group_size": spec.k,
                 "run_id": run_id} for c in published])
    return int(withdrawn or 0)


def _first_period(source: Source, source_engine: Engine) -> date | None:
    spec = _spec(source)
    with source_engine.connect() as conn:
        first = conn.execute(statement(source_engine, "analytics_first_day", table=source.table or "",
                                       date_column=spec.date_column)).scalar()
    return None if first is None else period_start(_day(first), spec.period)


def _spec(source: Source) -> catalog_schema.Analytics:
    if source.analytics is None or source.table is None:
        raise ValueError(f"source {source.name!r} has no analytics in the catalog (a table source's analytics key)")
    return source.analytics


def _kind(group_value: str | None) -> str:
    return "other" if group_value is None else ("unknown" if group_value == "" else "value")


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


# -- Great Expectations ---------------------------------------------------------------------


def aggregates_query(catalog: Catalog) -> str:
    """``AGGREGATES_QUERY`` with each analytics source's k (a GX query asset takes no bound
    parameters: only catalog identifiers and integers, both validated on load, go in)."""
    ks = {s.name: s.analytics.k for s in catalog.sources.values() if s.analytics is not None}
    if not ks:
        return AGGREGATES_QUERY.format(required_k="a.min_group_size")
    cases = " ".join(f"WHEN '{name}' THEN {int(k)}" for name, k in sorted(ks.items()))
    return AGGREGATES_QUERY.format(required_k=f"CASE a.source {cases} ELSE a.min_group_size END")


def validate_aggregates(tag_engine: Engine, catalog: Catalog, suite_dir: Path) -> ValidationResult:
    """Run ``analytics_aggregates.json`` over the published aggregates: no group under its k, no
    column beyond counts and group names. Counts only in the result."""
    import great_expectations as gx  # heavy: imported only when validation runs
    from great_expectations import ExpectationSuite, ValidationDefinition
    from great_expectations.data_context.types.base import ProgressBarsConfig

    path = suite_dir / AGGREGATES_SUITE
    document = json.loads(path.read_text(encoding="utf-8"))
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    sources = context.data_sources
    add = {"sqlite": sources.add_sqlite, "postgresql": sources.add_postgres}.get(tag_engine.dialect.name, sources.add_sql)
    datasource = add(name="tag_store", connection_string=tag_engine.url.render_as_string(hide_password=False))
    try:
        suite = ExpectationSuite(**document)
        if len(suite.expectations) != len(document.get("expectations", [])):  # GX drops an invalid one
            raise ConfigError(str(path), "expectations", "an expectation is invalid (GX logged why)")
        batch = datasource.add_query_asset(name="analytics_aggregates", query=aggregates_query(catalog))
        definition = context.validation_definitions.add(ValidationDefinition(
            name="tag_store_analytics_aggregates", data=batch.add_batch_definition_whole_table("all"),
            suite=context.suites.add(suite)))
        run = definition.run(result_format=dict(RESULT_FORMAT))
    finally:
        datasource.get_engine().dispose()
        datasource.get_execution_engine().engine.dispose()
    outcomes = tuple(_outcome(result) for result in run.results)
    return ValidationResult(stage="analytics", success=bool(run.success),
                            evaluated_records=max((o.element_count for o in outcomes), default=0), outcomes=outcomes)


def _outcome(result: Any) -> ExpectationOutcome:
    config = result.expectation_config
    info = result.exception_info or {}
    for entry in [info] if "raised_exception" in info else list(info.values()):
        # GX turns an exception into a failed expectation with no counts: say so instead.
        if isinstance(entry, dict) and entry.get("raised_exception"):
            message = " ".join(str(entry.get("exception_message") or "").splitlines()[:1])
            raise ValidationRunError(f"suite {AGGREGATES_SUITE}: {config.type} could not be evaluated: {message}")
    summary = result.result or {}
    element_count = int(summary.get("element_count") or 0)
    unexpected_count = int(summary.get("unexpected_count") or 0)
    return ExpectationOutcome(expectation=config.type, column=str(config.kwargs.get("column", "")),
                              description=str((config.meta or {}).get("description", config.type)),
                              success=bool(result.success), element_count=element_count,
                              unexpected_count=unexpected_count)
