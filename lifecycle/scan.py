"""Scan a source and tag every record: category, activity, lawful basis, role, deadline.

Rows are streamed from the source in chunks and tagged in Python (the keyed hash of subject
identifiers needs the secret, which never goes into SQL); tags are upserted into the tag
store in bulk. A tag whose record was already anonymised or restricted keeps that status.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, and_, case, column, delete, func, inspect, or_, select, table
from sqlalchemy.dialects import postgresql, sqlite

from lifecycle.catalog import BasisFromColumn, Source, check_against_table
from lifecycle.errors import CatalogError
from lifecycle.identifiers import SubjectHasher
from lifecycle.policy import Policy
from lifecycle.retention import compute_deadline
from lifecycle.tables import record_tag, subject_ref

log = logging.getLogger(__name__)

KEPT_STATUSES = ("anonymised", "restricted")
CHUNK_ROWS = 5000


@dataclass
class ScanStats:
    source: str
    records: int = 0
    tags: int = 0
    violations: int = 0
    subject_refs: int = 0
    by_category_basis: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _as_date(value: object) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def table_columns(engine: Engine, table_name: str) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in inspect(engine).get_columns(table_name)}


def check_source_table(source: Source, engine: Engine, file: str = "catalog") -> None:
    """The catalog agrees with the real table; raises before anything is read or written."""
    if not inspect(engine).has_table(source.table):
        raise CatalogError(file, f"sources.{source.name}.table", f"table {source.table!r} does not exist in its database")
    columns = table_columns(engine, source.table)
    check_against_table(source, set(columns), file)
    for name, spec in source.columns.items():
        if spec.anonymise == "null" and not columns[name].get("nullable", True):
            raise CatalogError(
                file, f"sources.{source.name}.columns.{name}",
                "is NOT NULL in the table, so it cannot be anonymised to NULL; use anonymise: redact",
            )


class Tagger:
    """Turns one source row into tag rows and subject references."""

    def __init__(self, source: Source, policy: Policy, hasher: SubjectHasher, run_id: str, reference_year: int):
        self.source, self.policy, self.hasher, self.run_id = source, policy, hasher, run_id
        self.reference_year = reference_year
        activity = policy.activities[source.activity]
        self.role = activity.role
        self.categories = source.categories
        self.subject_columns = source.subject.columns()

    def basis_of(self, category: str, row: dict[str, Any]) -> str | None:
        spec = self.source.basis_spec(category)
        if isinstance(spec, BasisFromColumn):
            value = row.get(spec.column)
            return str(value).strip() if value not in (None, "") else None
        return spec

    def tag(self, row: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        source = self.source
        key = str(row[source.primary_key])
        controller = self._controller(row)
        clock = _as_date(row[source.retention_clock])
        refs = self._subject_refs(key, row)
        ref_text = ",".join(sorted({r["subject_hash"] for r in refs})) or None
        activity_def = self.policy.activities[source.activity]
        tags = []
        for category in self.categories:
            basis = self.basis_of(category, row)
            outcome = compute_deadline(
                self.policy,
                activity=source.activity,
                basis=basis,
                clock=clock,
                controller=controller,
                fiscal_year_end_md=source.fiscal_year_end,
            )
            violation = outcome.violation
            if violation is None and basis not in activity_def.categories[category]:
                violation = "basis_not_allowed"
            tags.append(
                {
                    "source": source.name,
                    "record_key": key,
                    "category": category,
                    "activity": source.activity,
                    "lawful_basis": basis,
                    "role": self.role,
                    "controller": controller,
                    "clock_value": clock,
                    "deadline": outcome.deadline,
                    "on_expiry": source.on_expiry,
                    "status": "violation" if violation else "active",
                    "violation": violation,
                    "subject_refs": ref_text,
                    "run_id": self.run_id,
                }
            )
        return tags, refs

    def _controller(self, row: dict[str, Any]) -> str:
        if self.role == "controller":
            return "self"
        value = row.get(self.source.controller_column or "")
        return str(value) if value not in (None, "") else "unknown"

    def _subject_refs(self, key: str, row: dict[str, Any]) -> list[dict[str, Any]]:
        refs = []
        for kind, col in self.subject_columns.items():
            value = row.get(col)
            if kind == "company":
                continue  # a company alone is not a person: it only qualifies a name
            if kind == "name" and "company" in self.subject_columns:
                kind = "name_company"  # "Anna Berg" alone is ambiguous; at a company, far less so
                value = f"{value}|{row.get(self.subject_columns['company']) or ''}" if value else None
            ref = self.hasher.reference(kind, value, self.reference_year)
            if ref:
                refs.append({"subject_hash": ref, "source": self.source.name, "record_key": key, "field": col, "kind": kind})
        return refs


def _upsert(engine: Engine):  # type: ignore[no-untyped-def]
    return (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)


def _write_tags(conn, engine: Engine, tags: list[dict[str, Any]]) -> None:  # type: ignore[no-untyped-def]
    insert = _upsert(engine)(record_tag)
    # No IN (...) here: expanding parameters cannot be used with executemany.
    kept = or_(*(record_tag.c.status == s for s in KEPT_STATUSES))
    updates = {
        name: case((kept, record_tag.c[name]), else_=insert.excluded[name])
        for name in record_tag.c.keys()
        if name not in ("source", "record_key", "category", "run_id")
    }
    updates["run_id"] = insert.excluded.run_id  # always: marks the record as still present
    conn.execute(
        insert.on_conflict_do_update(index_elements=["source", "record_key", "category"], set_=updates),
        tags,
    )


def _write_refs(conn, engine: Engine, refs: list[dict[str, Any]]) -> None:  # type: ignore[no-untyped-def]
    if refs:
        conn.execute(_upsert(engine)(subject_ref).on_conflict_do_nothing(), refs)


def stream_rows(engine: Engine, source: Source, chunk_rows: int = CHUNK_ROWS) -> Iterator[list[dict[str, Any]]]:
    cols = source.referenced_columns()
    query = select(*[column(c) for c in cols]).select_from(table(source.table))
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(query)
        for chunk in result.mappings().partitions(chunk_rows):
            yield [dict(r) for r in chunk]


def count_rows(engine: Engine, source: Source) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table(source.table))).scalar_one())


def scan_source(
    source: Source,
    policy: Policy,
    *,
    source_engine: Engine,
    tag_engine: Engine,
    hasher: SubjectHasher,
    run_id: str,
    logical_date: date,
    progress: Callable[[int, int], None] | None = None,
) -> ScanStats:
    """Full scan of one source into the tag store. Records gone from the source lose their tags."""
    started = time.monotonic()
    check_source_table(source, source_engine)
    stats = ScanStats(source=source.name)
    tagger = Tagger(source, policy, hasher, run_id, logical_date.year)
    total = count_rows(source_engine, source)
    with tag_engine.begin() as tconn:
        tconn.execute(delete(subject_ref).where(subject_ref.c.source == source.name))
        for rows in stream_rows(source_engine, source):
            tags: list[dict[str, Any]] = []
            refs: list[dict[str, Any]] = []
            for row in rows:
                row_tags, row_refs = tagger.tag(row)
                tags.extend(row_tags)
                refs.extend(row_refs)
            _write_tags(tconn, tag_engine, tags)
            _write_refs(tconn, tag_engine, refs)
            stats.records += len(rows)
            stats.tags += len(tags)
            stats.subject_refs += len(refs)
            for t in tags:
                if t["status"] == "violation":
                    stats.violations += 1
                label = f"{t['category']}:{t['lawful_basis'] or '(none)'}"
                stats.by_category_basis[label] = stats.by_category_basis.get(label, 0) + 1
            if progress:
                progress(stats.records, total)
        # Records deleted from the source since the last scan.
        tconn.execute(
            delete(record_tag).where(and_(record_tag.c.source == source.name, record_tag.c.run_id != run_id))
        )
    stats.seconds = round(time.monotonic() - started, 3)
    return stats
