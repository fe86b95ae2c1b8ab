"""Partitioned scans: the full scan of a large SQL table split into primary-key ranges, each
scanned as a task of its own (side by side, on as many workers as there are), then finished
once for the source.

Only full scans of tables with an integer primary key are split: the key's min and max and a
cheap row estimate give ranges of about the catalog's ``partition_rows`` (equal key widths; gaps
in the keys make ranges uneven, never wrong: the first and last ranges are open-ended, so a row
inserted meanwhile is read by one of them). An incremental scan reads only what changed and
stays one task, and so does every source that is not a SQL table.

Three steps, the same functions whether there is one range or many:

- ``plan_partitions``: the source-level decisions (key check, schema drift, full or incremental,
  which clears the watermark of a full scan), under the source's guard;
- ``run_partition``: one range read and tagged under the guard held *shared*, so the ranges of
  one scan run side by side while a request (which holds it alone) waits for them;
- ``finish_partitions``: once every range of the plan reported, and only then, records gone from
  the source are dropped, a rebuilt index swapped in, the key identity recorded and the watermark
  advanced. A failed range leaves the watermark where the plan left it; a retry of that range
  alone (upserting what its failed attempt wrote) completes the night.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from sqlalchemy import Engine, MetaData, Table, func, inspect, select, table, text

from lifecycle.config import Policy, Source
from lifecycle.discovery.identifiers import SubjectHasher
from lifecycle.discovery.scan import RangeScan, ScanPlan, ScanStats, begin_scan, finish_scan, scan_range
from lifecycle.errors import LifecycleError
from lifecycle.tagstore import source_guard

# More ranges than this only add task overhead: a 100 M-row table still gets ranges of 400 000.
MAX_PARTITIONS = 256


class PartitionsIncompleteError(LifecycleError):
    """A source's scan was to be finished without every range of its plan."""


@dataclass(frozen=True)
class Partition:
    """One key range [lo, hi) of a source's scan (None: unbounded), with the scan's plan: plain
    values only, so it travels as XCom (keys are integers, never personal data)."""

    source: str
    index: int
    count: int
    lo: int | None
    hi: int | None
    plan: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Partition:
        return cls(**data)


def estimate_rows(engine: Engine, table_name: str) -> int:
    """Rows in the table, cheaply: PostgreSQL's planner estimate where it has one (kept by
    ANALYZE and autovacuum), else a count."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            estimate = conn.execute(text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)"),
                                    {"t": table_name}).scalar()
            if estimate is not None and estimate > 0:
                return int(estimate)
        return int(conn.execute(select(func.count()).select_from(table(table_name))).scalar_one())


def key_ranges(engine: Engine, source: Source, target_rows: int) -> list[tuple[int | None, int | None]]:
    """Ranges of about ``target_rows`` rows over the integer primary key; one unbounded range
    for a small table or a key that is not an integer."""
    whole: list[tuple[int | None, int | None]] = [(None, None)]
    key = Table(source.table, MetaData(), autoload_with=engine).c[source.primary_key]
    try:
        if key.type.python_type is not int:
            return whole
    except NotImplementedError:
        return whole
    rows = estimate_rows(engine, source.table or "")
    if rows <= target_rows:
        return whole
    with engine.connect() as conn:
        low, high = conn.execute(select(func.min(key), func.max(key))).one()
    if low is None:
        return whole
    span = int(high) - int(low) + 1
    count = min(math.ceil(rows / target_rows), MAX_PARTITIONS, span)
    if count <= 1:
        return whole
    bounds = [int(low) + span * i // count for i in range(1, count)]
    return list(zip([None, *bounds], [*bounds, None]))


def plan_partitions(source: Source, policy: Policy, *, source_engine: Engine, tag_engine: Engine,
                    hasher: SubjectHasher, run_id: str, full_rescan: bool = False, rotate_key: bool = False,
                    catalog_file: str = "catalog", partition_rows: int | None = None) -> list[Partition]:
    """Decide the source's scan once and split it: a full scan of a large table into key
    ranges, anything else into one range."""
    ranges: list[tuple[int | None, int | None]] = [(None, None)]
    if source.table and inspect(source_engine).has_table(source.table):  # else begin_scan says what is missing
        ranges = key_ranges(source_engine, source, partition_rows or source.partition_rows)
    with source_guard(tag_engine, [source.name], holder=f"scan plan of {source.name}"):
        plan = begin_scan(source, policy, source_engine=source_engine, tag_engine=tag_engine, hasher=hasher,
                          run_id=run_id, full_rescan=full_rescan, catalog_file=catalog_file, rotate_key=rotate_key,
                          split=len(ranges) > 1)
    if plan.mode != "full":
        ranges = [(None, None)]
    return [Partition(source.name, i, len(ranges), lo, hi, plan.to_dict()) for i, (lo, hi) in enumerate(ranges)]


def run_partition(partition: Partition, source: Source, policy: Policy, *, source_engine: Engine,
                  tag_engine: Engine, hasher: SubjectHasher, logical_date: date, retry: bool = False,
                  progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Scan one range; ``retry``: an earlier attempt of this range may have written part of it.
    Returns the partition and what it read, for ``finish_partitions``."""
    plan = ScanPlan.from_dict(partition.plan)
    with source_guard(tag_engine, [source.name], holder=f"scan of {source.name} [{partition.index}]", shared=True):
        scanned = scan_range(plan, source, policy, source_engine=source_engine, tag_engine=tag_engine, hasher=hasher,
                             logical_date=logical_date, lo=partition.lo, hi=partition.hi, retry=retry,
                             progress=progress)
    return {"partition": partition.to_dict(), "range": scanned.to_dict()}


def finish_partitions(source: Source, results: Iterable[dict[str, Any]], *, source_engine: Engine,
                      tag_engine: Engine, hasher: SubjectHasher) -> ScanStats:
    """Finish the source's scan from the results of ``run_partition`` (other sources' results
    are skipped); refuses, changing nothing, unless every range of one plan is there once."""
    mine = [r for r in results if r["partition"]["source"] == source.name]
    if not mine:
        raise PartitionsIncompleteError(f"source {source.name}: no scanned partition to finish")
    plan = mine[0]["partition"]["plan"]
    count = mine[0]["partition"]["count"]
    indexes = sorted(r["partition"]["index"] for r in mine)
    if indexes != list(range(count)) or any(r["partition"]["plan"] != plan for r in mine):
        raise PartitionsIncompleteError(
            f"source {source.name}: partitions {indexes} reported of {count} planned (or of different plans): "
            "the watermark stays where it was; scan the missing partitions first")
    parts = [RangeScan.from_dict(r["range"]) for r in sorted(mine, key=lambda r: r["partition"]["index"])]
    with source_guard(tag_engine, [source.name], holder=f"end of the scan of {source.name}"):
        return finish_scan(ScanPlan.from_dict(plan), source, parts, source_engine=source_engine,
                           tag_engine=tag_engine, hasher=hasher)


def scan_partitioned(source: Source, policy: Policy, *, source_engine: Engine, tag_engine: Engine,
                     hasher: SubjectHasher, run_id: str, logical_date: date, full_rescan: bool = False,
                     rotate_key: bool = False, partition_rows: int | None = None) -> ScanStats:
    """Plan, scan every range in line and finish: what the DAG does in three tasks, in one call."""
    partitions = plan_partitions(source, policy, source_engine=source_engine, tag_engine=tag_engine, hasher=hasher,
                                 run_id=run_id, full_rescan=full_rescan, rotate_key=rotate_key,
                                 partition_rows=partition_rows)
    results = [run_partition(p, source, policy, source_engine=source_engine, tag_engine=tag_engine, hasher=hasher,
                             logical_date=logical_date) for p in partitions]
    return finish_partitions(source, results, source_engine=source_engine, tag_engine=tag_engine, hasher=hasher)
