"""Scan a source and tag every record: category, activity, lawful basis, role, deadline, and
the keyed hashes of every identifier it holds, in structured columns and in free text.

Nightly scans are incremental where the catalog gives a change signal (an updated-at column
or a monotonic key): only rows past the watermark are read, and records deleted since the last
scan are found by comparing counts (and, only when they differ, keys). A change of catalog,
policy or detectors (the fingerprint) or a request forces a full rescan. Rows are streamed in
chunks and tagged in Python, since the keyed hash needs the secret, which never goes into SQL.
"""

from __future__ import annotations

import gc
import hashlib
import re
import json
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import Boolean, Column, Date, DateTime, Engine, Integer, MetaData, String, Table, and_, case, column, delete, func, insert, inspect, or_, select, table, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from lifecycle.discovery import detect
from lifecycle.config import BasisFromColumn, Source
from lifecycle.errors import CatalogError
from lifecycle.discovery.identifiers import SubjectHasher, normaliser
from lifecycle.config import Policy
from lifecycle.discovery.redaction import FREE_TEXT_KINDS
from lifecycle.discovery.subjects import mentioned_person, own_person
from lifecycle.config import compute_deadline
from lifecycle.errors import KeyMismatchError
from lifecycle.faults import pausepoint
from lifecycle.discovery.keys import has_index, key_id, record_key_identity, recorded_keys, source_scope
from lifecycle.tagstore import create_partition, finish_load, forget_loaded, load_table, source_guard, start_load
from lifecycle.tagstore import TagStatus, audit_log, key_stage, record_tag, schema_finding, subject_ref, subject_ref_build, watermark

log = logging.getLogger(__name__)

KEPT_STATUSES: tuple[TagStatus, ...] = ("anonymised", "restricted", "held")
_MONTH_DAY_TEXT = re.compile(r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")
_CLOCK_PROBLEMS = (None, "no_retention_clock", "awaiting_parent", "no_parent")
_CLEARED = {"false", "0", "no", "n", "f", "none", ""}
_MAX_TEMPLATES = 100_000  # distinct tag inputs a Tagger remembers before starting over
# A tag row is a list of values in lc_record_tag's column order: the writers copy it as it is,
# with no dict to build and take apart again for each of a scan's millions of tags.
TAG_COLUMNS: tuple[str, ...] = tuple(record_tag.c.keys())
_AT = {name: position for position, name in enumerate(TAG_COLUMNS)}
_KEY_AT, _PARENT_AT = _AT["record_key"], _AT["parent_key"]
# An index entry (ref) is a list of values in lc_subject_ref's column order, the same way:
# [subject_hash, source, record_key, field, kind, category, free_text, person].
REF_COLUMNS: tuple[str, ...] = tuple(subject_ref.c.keys())
_HASH_AT, _REF_KEY_AT, _FIELD_AT, _KIND_AT, _FREE_AT, _PERSON_AT = (
    REF_COLUMNS.index(name) for name in ("subject_hash", "record_key", "field", "kind", "free_text", "person"))
CHUNK_ROWS = 5000
KEY_BATCH = 500


@dataclass
class ScanStats:
    source: str
    mode: str = "full"  # full | incremental | blocked
    full_reason: str = ""
    records: int = 0
    tags: int = 0
    violations: int = 0
    subject_refs: int = 0
    free_text_refs: int = 0
    deleted: int = 0
    schema_findings: list[dict[str, str]] = field(default_factory=list)
    # Object-storage sources: objects read and skipped (unchanged ETag), per-object problems.
    objects_read: int = 0
    objects_unchanged: int = 0
    object_findings: list[dict[str, str]] = field(default_factory=list)
    by_category_basis: dict[str, int] = field(default_factory=dict)
    # Identifiers found in free text by how they were written (detect.WRITINGS): canonical,
    # spaced, obfuscated, unicode. Shows operators how much only the wider readings catch.
    free_text_by_writing: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Tally:
    """What a Tagger produced since it was last asked: counted as it tags (a template's uses),
    not by going over every tag row again."""

    tags: int = 0
    refs: int = 0
    free_text_refs: int = 0
    # (category, lawful basis, status, violation) -> tag rows
    by_outcome: Counter[tuple[Any, ...]] = field(default_factory=Counter)
    writings: dict[str, int] = field(default_factory=dict)


def _as_date(value: object) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


# -- schema drift -------------------------------------------------------------------------


def table_columns(engine: Engine, table_name: str) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in inspect(engine).get_columns(table_name)}


def schema_drift(source: Source, columns: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    """Columns the catalog does not account for (untagged data) and catalogued ones that are gone."""
    present = set(columns)
    findings = [{"column": c, "finding": "untagged_column"} for c in sorted(present - source.known_columns())]
    findings += [{"column": c, "finding": "missing_column"} for c in source.referenced_columns() if c not in present]
    return findings


def record_findings(tag_engine: Engine, source: Source, findings: list[dict[str, str]], run_id: str) -> None:
    with tag_engine.begin() as conn:
        conn.execute(delete(schema_finding).where(schema_finding.c.source == source.name))
        if findings:
            conn.execute(insert(schema_finding), [
                {"source": source.name, "column_name": f["column"], "finding": f["finding"], "run_id": run_id}
                for f in findings
            ])


def check_anonymisable(source: Source, columns: dict[str, dict[str, Any]], file: str) -> None:
    for name, spec in source.columns.items():
        if spec.anonymise == "null" and not columns[name].get("nullable", True):
            raise CatalogError(
                file, f"sources.{source.name}.columns.{name}",
                "is NOT NULL in the table, so it cannot be anonymised to NULL; use anonymise: redact",
            )


# -- tagging -------------------------------------------------------------------------------


def tag_row(values: dict[str, Any]) -> list[Any]:
    """A tag row from its values by column name (a column not given is NULL)."""
    return [values.get(name) for name in TAG_COLUMNS]


def tag_dict(row: Sequence[Any]) -> dict[str, Any]:
    """A tag row's values by column name."""
    return dict(zip(TAG_COLUMNS, row))


def ref_row(values: dict[str, Any]) -> list[Any]:
    """An index entry from its values by column name (a column not given is NULL)."""
    return [values.get(name) for name in REF_COLUMNS]


def ref_dict(row: Sequence[Any]) -> dict[str, Any]:
    """An index entry's values by column name."""
    return dict(zip(REF_COLUMNS, row))


def _basis_value(value: Any) -> str | None:
    """A lawful basis as a record's basis column holds it (None: empty)."""
    return str(value).strip() if value not in (None, "") else None


class Tagger:
    """Turns one source row into tag rows and subject references."""

    def __init__(self, source: Source, policy: Policy, hasher: SubjectHasher, run_id: str, reference_year: int):
        self.source, self.policy, self.hasher, self.run_id = source, policy, hasher, run_id
        self.reference_year = reference_year
        self.activity = policy.activities[source.activity]
        self.categories = source.categories
        self.subject_columns = source.subject.columns()
        self.free_text_columns = source.free_text_columns
        # Deadlines depend on few distinct inputs (dates repeat): compute each once.
        self._deadlines: dict[tuple[Any, ...], Any] = {}
        # A record's tag rows differ from another's with the same inputs (activity, bases, clock,
        # controller, fiscal year, consent, parent or none) only in their keys: built once each,
        # with how often each was used since the last tally (a one-item list, counted in place).
        self._templates: dict[tuple[Any, ...], tuple[list[list[Any]], list[int]]] = {}
        self._used: list[tuple[list[list[Any]], list[int]]] = []  # templates used since the last tally
        self._tally = Tally()
        # What the catalog says per row, looked up once instead of per row.
        # Per category (its basis, None) or (None, the column it is read from).
        self._basis_columns = [(None, s.column) if isinstance(s, BasisFromColumn) else (s, None)
                               for s in map(source.basis_spec, self.categories)]
        self._constant_bases = None if any(column for _, column in self._basis_columns) \
            else tuple(spec for spec, _ in self._basis_columns)
        self._clock_parent = source.clock_parent
        self._clock_columns = source.clock_columns
        self._parent_column = self._clock_parent or next(iter(source.subject.via), None)
        # What the catalog fixes for every row is read once, by the same helpers, not per row.
        self._row_activity = source.activity_column is not None
        self._row_controller = self.activity.role != "controller"
        self._row_year_end = source.fiscal_year_end_column is not None
        self._fixed_activity, self._fixed_controller = self.activity_of({}), self._controller({})
        self._fixed_year_end = self._fiscal_year_end({})
        self._field_specs = {name: (spec.category, spec.free_text) for name, spec in source.columns.items()}
        self._identifiers = self._identifier_columns()

    def take_tally(self) -> Tally:
        """What was tagged since the last call: tag rows by outcome, index entries, and the
        free-text identifiers found by writing."""
        self._count_templates()
        taken, self._tally = self._tally, Tally()
        return taken

    def _count_templates(self) -> None:
        by_outcome = self._tally.by_outcome
        for rows, uses in self._used:
            for row in rows:
                by_outcome[row[_AT["category"]], row[_AT["lawful_basis"]], row[_AT["status"]], row[_AT["violation"]]] += uses[0]
            self._tally.tags += len(rows) * uses[0]
            uses[0] = 0
        self._used.clear()

    def tag(self, row: dict[str, Any], key: str | None = None) -> tuple[list[list[Any]], list[list[Any]]]:
        """The record's tag rows (one per category, in TAG_COLUMNS order) and index entries
        (REF_COLUMNS order), each entry once."""
        source = self.source
        key = key if key is not None else str(row[source.primary_key])
        activity_name = self.activity_of(row) if self._row_activity else self._fixed_activity
        controller = self._controller(row) if self._row_controller else self._fixed_controller
        clock = self.clock_of(row)
        year_end = self._fiscal_year_end(row) if self._row_year_end else self._fixed_year_end
        parent_key = self._parent_key(row) if self._parent_column else None
        withdrawn = self._consent_withdrawn(row) if source.consent is not None else None
        refs = self._structured_refs(key, row)
        # Who each entry is about (subjects.label_persons' rule, on value lists); a mention in
        # free text gets the person it names as it is found.
        own = own_person([(r[_KIND_AT], r[_HASH_AT]) for r in refs if not r[_FREE_AT]], source.name, key)
        for ref in refs:
            ref.append(mentioned_person(ref[_KIND_AT], ref[_HASH_AT]) if ref[_FREE_AT] else own)
        refs += self._free_text_refs(key, row, refs)
        bases = self._constant_bases
        if bases is None:
            bases = tuple([spec if column is None else _basis_value(row.get(column))
                           for spec, column in self._basis_columns])
        inputs = (activity_name, bases, clock, controller, year_end, withdrawn, parent_key is None)
        entry = self._templates.get(inputs)
        if entry is None:
            if len(self._templates) >= _MAX_TEMPLATES:
                self._count_templates()  # their uses so far, before they are forgotten
                self._templates.clear()  # inputs that hardly repeat (timestamps): bounded memory
            entry = self._templates[inputs] = (self._category_tags(
                activity_name, bases, clock, controller, year_end, withdrawn, parent_key is not None), [0])
        templates, uses = entry
        if not uses[0]:
            self._used.append(entry)
        uses[0] += 1
        self._tally.refs += len(refs)
        tags = []
        for template in templates:
            tag = template.copy()
            tag[_KEY_AT] = key
            tag[_PARENT_AT] = parent_key
            tags.append(tag)
        return tags, refs

    def _category_tags(self, activity_name: str | None, bases: tuple[str | None, ...], clock: date | None,
                       controller: str, year_end: str | None, withdrawn: date | bool | None,
                       has_parent: bool) -> list[list[Any]]:
        """The tag rows of a record with these inputs, keys left blank: one per category, its
        deadline from the policy, or the violation that stops one being set."""
        source = self.source
        activity = self.policy.activities.get(activity_name) if activity_name else None
        tags = []
        for position, (category, basis) in enumerate(zip(self.categories, bases)):
            memo = (activity_name, basis, clock, controller, year_end)
            outcome = self._deadlines.get(memo)
            if outcome is None:
                outcome = self._deadlines[memo] = compute_deadline(
                    self.policy, activity=activity_name or source.activity, basis=basis, clock=clock,
                    controller=controller, fiscal_year_end_md=year_end or "12-31",
                )
            deadline, violation, reason = outcome.deadline, outcome.violation, None
            if activity is None:
                deadline, violation = None, "unknown_activity"
                activity = self.activity
            if year_end is None:
                violation = violation or "invalid_fiscal_year_end"
            if self._clock_parent and violation in (None, "no_retention_clock"):
                # Filled in from the parent's tags once every source is scanned (inherit_parent_clocks).
                deadline, violation = None, "awaiting_parent" if has_parent else "no_parent"
            if violation is None and basis not in activity.categories[category]:
                violation = "basis_not_allowed"
            when = withdrawn if isinstance(withdrawn, date) else clock if withdrawn else None
            if basis == "consent" and when is not None and violation in _CLOCK_PROBLEMS:
                # Consent is over: the category is due from the day it was withdrawn, whatever its clock.
                deadline, violation, reason = when, None, "consent_withdrawn"
            tags.append(tag_row({
                "source": source.name, "record_key": None, "category": category,
                "activity": activity_name or source.activity, "lawful_basis": basis, "role": activity.role,
                "controller": controller, "clock_value": clock,
                "deadline": deadline, "on_expiry": source.on_expiry,
                "status": "violation" if violation else "active", "violation": violation,
                "run_id": self.run_id, "parent_key": None, "expiry_reason": reason,
                "first_of_record": position == 0,
            }))
        return tags

    def activity_of(self, row: dict[str, Any]) -> str | None:
        """The record's activity: the catalog's, or the one its activity column maps to (None
        for a value the catalog does not map)."""
        mapping = self.source.activity_column
        if mapping is None:
            return self.source.activity
        value = row.get(mapping.column)
        if value in (None, ""):
            return self.source.activity
        return mapping.values.get(str(value).strip())

    def clock_of(self, row: dict[str, Any]) -> date | None:
        """The record's own clock: the first of its clock columns that holds a date."""
        for clock_column in self._clock_columns:
            value = _as_date(row.get(clock_column))
            if value is not None:
                return value
        return None

    def _fiscal_year_end(self, row: dict[str, Any]) -> str | None:
        """MM-DD of the record's fiscal year end; None when its column holds no valid one."""
        column = self.source.fiscal_year_end_column
        if column is None:
            return str(self.source.fiscal_year_end)
        value = row.get(column)
        if isinstance(value, (date, datetime)):
            return value.strftime("%m-%d")
        text = str(value or "").strip()[-5:]
        return text if _MONTH_DAY_TEXT.match(text) else None

    def _parent_key(self, row: dict[str, Any]) -> str | None:
        """The parent record this one goes with: through the clock's ``via`` column, else the first."""
        column = self._parent_column
        value = row.get(column) if column else None
        return None if value in (None, "") else str(value)

    def _consent_withdrawn(self, row: dict[str, Any]) -> date | bool | None:
        """The withdrawal date, True when an opt-in flag is cleared (date unknown), else None."""
        consent = self.source.consent
        if consent is None:
            return None
        if consent.withdrawn_at and (when := _as_date(row.get(consent.withdrawn_at))) is not None:
            return when
        if consent.opt_in and str(row.get(consent.opt_in)).strip().lower() in _CLEARED:
            return True
        return None

    def _controller(self, row: dict[str, Any]) -> str:
        if self.activity.role == "controller":
            return "self"
        value = row.get(self.source.controller_column or "")
        return str(value) if value not in (None, "") else "unknown"

    def _identifier_columns(self) -> list[tuple[str, str, str | None, Callable[[str], str | None], str, bool]]:
        """(kind, column, company column, normaliser, category, free text) of each identifier a
        record holds."""
        columns = self.subject_columns
        plan = []
        for kind, col in columns.items():
            if kind == "company":
                continue  # a company alone is not a person: it only qualifies a name
            company = None
            if kind == "name" and "company" in columns:
                # "Anna Berg" alone is ambiguous; at a company, far less so
                kind, company = "name_company", columns["company"]
            plan.append((kind, col, company, normaliser(kind, self.reference_year), *self._field_specs[col]))
        return plan

    def _structured_refs(self, key: str, row: dict[str, Any]) -> list[list[Any]]:
        """The entries of the record's identifier columns, all but their person."""
        refs = []
        hash_ = self.hasher.hash
        name = self.source.name
        for kind, col, company, normalise, category, free_text in self._identifiers:
            value = row.get(col)
            if company is not None:
                value = f"{value}|{row.get(company) or ''}" if value else None
            if value is None:
                continue
            text = str(value)
            normalised = normalise(text) if text.strip() else None
            if normalised:
                refs.append([hash_(kind, normalised), name, key, col, kind, category, free_text])
        return refs

    def _free_text_refs(self, key: str, row: dict[str, Any], structured: list[list[Any]]) -> list[list[Any]]:
        """Entries of the identifiers each free-text column mentions, once each: an e-mail
        written twice in a message is one entry (the writers copy entries without removing
        duplicates)."""
        refs = []
        writings = self._tally.writings
        name = self.source.name
        for col in self.free_text_columns:
            text = row.get(col)
            if not text:
                continue
            category = self._field_specs[col][0]
            seen: set[str] = set()
            for finding in detect.find_identifiers(str(text), reference_year=self.reference_year):
                kind = FREE_TEXT_KINDS.get(finding.kind)
                if kind:
                    writings[finding.writing] = writings.get(finding.writing, 0) + 1
                    subject_hash = self.hasher.hash(kind, finding.normalised)
                    if subject_hash not in seen:
                        seen.add(subject_hash)
                        refs.append([subject_hash, name, key, col, kind, category, True,
                                     mentioned_person(kind, subject_hash)])
            # The one reliable name signal: the name this record holds in a structured column.
            name_col = self.subject_columns.get("name")
            held = row.get(name_col) if name_col else None
            if held and len(str(held)) > 3 and str(held) in str(text):
                name_ref = next((r for r in structured if r[_FIELD_AT] == name_col), None)
                if name_ref and name_ref[_HASH_AT] not in seen:
                    kind, subject_hash = name_ref[_KIND_AT], name_ref[_HASH_AT]
                    refs.append([subject_hash, name, key, col, kind, category, True,
                                 mentioned_person(kind, subject_hash)])
        self._tally.free_text_refs += len(refs)
        return refs


# -- reading the source --------------------------------------------------------------------


def _select(source: Source, engine: Engine, since: Any = None,  # type: ignore[no-untyped-def]
            lo: int | None = None, hi: int | None = None):
    # The reflected table gives typed values (SQLite hands back dates as text otherwise).
    reflected = Table(source.table, MetaData(), autoload_with=engine)
    query = select(*[reflected.c[c] for c in source.referenced_columns()])
    if since is not None and source.change_tracking:
        # Strictly after the watermark: writers must set updated_at when they commit.
        query = query.where(reflected.c[source.change_tracking.tracking_column] > since)
    if lo is not None:  # a partition: keys in [lo, hi)
        query = query.where(reflected.c[source.primary_key] >= lo)
    if hi is not None:
        query = query.where(reflected.c[source.primary_key] < hi)
    return query


def stream_rows(engine: Engine, query, chunk_rows: int = CHUNK_ROWS) -> Iterator[list[dict[str, Any]]]:  # type: ignore[no-untyped-def]
    """The query's rows as dicts, ``chunk_rows`` at a time, streamed from a server-side cursor."""
    names = list(query.selected_columns.keys())
    with engine.connect() as conn:
        if _driver_values_suffice(conn, query):
            yield from _stream_driver_rows(conn, query, names, chunk_rows)
            return
        result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(query)
        for chunk in result.partitions(chunk_rows):
            yield [dict(zip(names, r)) for r in chunk]


def _driver_values_suffice(conn, query) -> bool:  # type: ignore[no-untyped-def]
    """PostgreSQL in a transaction (a server-side cursor lives in one), and no selected column's
    type converts what the driver returns: then the driver's rows are what SQLAlchemy would give,
    without its per-row result handling (measured: a quarter of the reading's CPU)."""
    dialect = conn.dialect
    if dialect.name != "postgresql" or conn.connection.driver_connection.autocommit:
        return False
    return all(c.type.result_processor(dialect, None) is None for c in query.selected_columns)


def _stream_driver_rows(conn, query, names: list[str], chunk_rows: int) -> Iterator[list[dict[str, Any]]]:  # type: ignore[no-untyped-def]
    compiled = query.compile(dialect=conn.dialect)
    with conn.connection.driver_connection.cursor(name="lc_scan_rows") as cursor:
        cursor.execute(str(compiled), compiled.params)
        while chunk := cursor.fetchmany(chunk_rows):
            yield [dict(zip(names, r)) for r in chunk]


def _count(engine: Engine, query) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(query.subquery())).scalar_one())


def fingerprint(source: Source, policy: Policy) -> str:
    """What the tags of a source depend on: its catalog entry, the policy and the detectors."""
    # How a scan is split (partition_rows) does not change a tag: not part of it.
    blob = json.dumps([source.model_dump(mode="json", exclude={"partition_rows"}), policy.model_dump(mode="json"),
                       detect.VERSION], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _watermark_value(raw: str | None, sample_type: Any) -> Any:
    if raw is None:
        return None
    if sample_type is int:
        return int(raw)
    if sample_type is datetime:
        return datetime.fromisoformat(raw)
    if sample_type is date:
        return date.fromisoformat(raw)
    return raw


def _python_type(columns: dict[str, dict[str, Any]], name: str) -> Any:
    try:
        return columns[name]["type"].python_type
    except (KeyError, NotImplementedError):
        return str


# -- writing the tag store -----------------------------------------------------------------


def _tag_upsert(stmt):  # type: ignore[no-untyped-def]
    """Upsert of tags: a record already anonymised or restricted keeps what it has."""
    # No IN (...) here: expanding parameters cannot be used with executemany.
    kept = or_(*(record_tag.c.status == s for s in KEPT_STATUSES))
    updates = {
        name: case((kept, record_tag.c[name]), else_=stmt.excluded[name])
        for name in record_tag.c.keys()
        if name not in ("source", "record_key", "category", "run_id")
    }
    updates["run_id"] = stmt.excluded.run_id  # always: marks the record as still present
    updates["first_of_record"] = stmt.excluded.first_of_record  # always: the record's rows agree
    return stmt.on_conflict_do_update(index_elements=["source", "record_key", "category"], set_=updates)


def _stage(conn, target: Table, rows: list[list[Any]]) -> Table:  # type: ignore[no-untyped-def]
    """PostgreSQL: COPY value rows (in ``target``'s column order) into a temporary twin of
    ``target`` (an order of magnitude faster than row-by-row inserts), for one set-based
    INSERT ... SELECT ... ON CONFLICT."""
    stage = Table(f"{target.name}_stage", MetaData(), *(c.copy() for c in target.c), prefixes=["TEMPORARY"])
    cursor = conn.connection.driver_connection.cursor()
    cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage.name} (LIKE {target.name}) ON COMMIT DELETE ROWS")
    cursor.execute(f"TRUNCATE {stage.name}")
    _copy_values(cursor, stage, rows)
    return stage


# PostgreSQL's names of the tag store's column types, for binary COPY.
_WIRE_TYPES: tuple[tuple[type, str], ...] = (
    (Boolean, "bool"), (Date, "date"), (Integer, "int4"), (String, "text"),  # Text is a String
)


def _wire_type(col: Column[Any]) -> str:
    if isinstance(col.type, DateTime):
        return "timestamptz" if col.type.timezone else "timestamp"
    return next(name for kind, name in _WIRE_TYPES if isinstance(col.type, kind))


def _copy_values(cursor, table: Table, rows: Iterable[Sequence[Any]]) -> None:  # type: ignore[no-untyped-def]
    """COPY value rows (in the order of ``table``'s columns) into ``table``, in PostgreSQL's
    binary format: dates and flags cost the client a quarter of what their text does."""
    names = list(table.c.keys())
    with cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types([_wire_type(c) for c in table.c])
        for row in rows:
            copy.write_row(row)


def write_tags(conn, engine: Engine, tags: list[list[Any]], first: bool = False,  # type: ignore[no-untyped-def]
               target: Table = record_tag) -> None:
    """Write tag rows (TAG_COLUMNS order). ``first``: ``target`` holds nothing of these records
    (a source's first scan, or its loading table), so there is no status to keep and the tags are
    copied straight in."""
    if not tags:
        return
    if engine.dialect.name == "postgresql" and first:
        _copy_values(conn.connection.driver_connection.cursor(), target, tags)
    elif engine.dialect.name == "postgresql":
        stage = _stage(conn, record_tag, tags)
        names = list(TAG_COLUMNS)
        conn.execute(_tag_upsert(postgresql.insert(record_tag).from_select(names, select(*[stage.c[n] for n in names]))))
    else:
        conn.execute(_tag_upsert(sqlite.insert(record_tag)), [tag_dict(t) for t in tags])


def write_refs(conn, engine: Engine, refs: list[list[Any]], fresh: bool,  # type: ignore[no-untyped-def]
                target: Table = subject_ref) -> None:
    """Write index entries (REF_COLUMNS order). ``fresh``: ``target`` holds none of these
    records' entries yet, so they are copied straight in: the refs are a Tagger's, each
    record's once, and each record once."""
    if not refs:
        return
    if engine.dialect.name == "postgresql" and fresh:
        _copy_values(conn.connection.driver_connection.cursor(), target, refs)
    elif engine.dialect.name == "postgresql":
        stage = _stage(conn, target, refs)
        names = list(target.c.keys())
        conn.execute(postgresql.insert(target).from_select(names, select(*[stage.c[n] for n in names]))
                     .on_conflict_do_nothing())
    else:
        conn.execute(sqlite.insert(target).on_conflict_do_nothing(), [ref_dict(r) for r in refs])


def swap_in_index(conn, source: Source) -> None:  # type: ignore[no-untyped-def]
    """Replace the source's live index entries with the ones a full rescan built beside them,
    in the caller's transaction: readers see the old complete index or the new one."""
    names = list(subject_ref.c.keys())
    built = subject_ref_build.c.source == source.name
    conn.execute(delete(subject_ref).where(subject_ref.c.source == source.name))
    conn.execute(insert(subject_ref).from_select(names, select(*[subject_ref_build.c[n] for n in names]).where(built)))
    conn.execute(delete(subject_ref_build).where(built))


def refresh_refs(conn, engine: Engine, source: Source, keys: list[str], refs: list[list[Any]],  # type: ignore[no-untyped-def]
                 target: Table = subject_ref) -> None:
    """Make the index entries of records ``keys`` exactly ``refs``, touching only what differs:
    most of a changed record's identifiers are unchanged, and every index write is a random
    page in a large index."""
    ref_key = (target.c.subject_hash, target.c.record_key, target.c.field)
    # The person label is compared too: a record that gained an e-mail relabels its phone entry.
    existing: set[tuple[str, str, str, str | None]] = set()
    for i in range(0, len(keys), KEY_BATCH):
        existing.update(tuple(r) for r in conn.execute(select(*ref_key, target.c.person).where(
            target.c.source == source.name, target.c.record_key.in_(keys[i:i + KEY_BATCH]))))
    wanted = {(r[_HASH_AT], r[_REF_KEY_AT], r[_FIELD_AT], r[_PERSON_AT]): r for r in refs}
    gone = sorted({k[:3] for k in existing - wanted.keys()})
    for i in range(0, len(gone), KEY_BATCH):
        conn.execute(delete(target).where(target.c.source == source.name,
                                          tuple_(*ref_key).in_(gone[i:i + KEY_BATCH])))
    write_refs(conn, engine, [r for k, r in wanted.items() if k not in existing], fresh=False, target=target)


def _reconcile_deletions(source: Source, source_engine: Engine, tag_engine: Engine) -> int:
    """Drop tags and references of records no longer in the source.

    The count comparison is cheap; the key comparison runs only when counts differ."""
    with source_engine.connect() as conn:
        in_source = conn.execute(select(func.count()).select_from(table(source.table))).scalar_one()
    with tag_engine.connect() as conn:
        # Every record has one tag per category: count(*) on the key's prefix is an index-only
        # scan, where count(DISTINCT record_key) would sort every key.
        tags = conn.execute(select(func.count()).select_from(record_tag)
                            .where(record_tag.c.source == source.name)).scalar_one()
    tagged = tags // max(len(source.categories), 1)
    if in_source == tagged:
        return 0
    keys_query = select(column(source.primary_key)).select_from(table(source.table))
    with tag_engine.begin() as tconn:
        tconn.execute(delete(key_stage).where(key_stage.c.source == source.name))
        with source_engine.connect() as sconn:
            result = sconn.execution_options(stream_results=True, yield_per=50_000).execute(keys_query)
            for chunk in result.scalars().partitions(50_000):
                tconn.execute(insert(key_stage), [{"source": source.name, "record_key": str(k)} for k in chunk])
        gone = ~select(key_stage.c.record_key).where(
            key_stage.c.source == source.name, key_stage.c.record_key == record_tag.c.record_key).exists()
        tconn.execute(delete(record_tag).where(record_tag.c.source == source.name, gone))
        gone_refs = ~select(key_stage.c.record_key).where(
            key_stage.c.source == source.name, key_stage.c.record_key == subject_ref.c.record_key).exists()
        tconn.execute(delete(subject_ref).where(subject_ref.c.source == source.name, gone_refs))
        tconn.execute(delete(key_stage).where(key_stage.c.source == source.name))
    return int(tagged - in_source)  # every new record was tagged first, so the surplus is what went


_collector_lock = threading.Lock()
_collector_pauses = 0
_collector_was_on = True


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector off while a scan streams rows: a scan's chunks are millions of
    short-lived lists and dicts with no cycles among them (reference counting frees them), yet
    every few hundred allocations the collector walks the ones still waiting to be written.
    Measured: the 300 000-record scan leaves 130-340 objects in cycles, for the collection
    when the last pause ends. Nestable across threads: the collector is on again when the
    last pause ends, if it was on before the first."""
    global _collector_pauses, _collector_was_on
    with _collector_lock:
        if _collector_pauses == 0:
            _collector_was_on = gc.isenabled()
            gc.disable()
        _collector_pauses += 1
    try:
        yield
    finally:
        with _collector_lock:
            _collector_pauses -= 1
            if _collector_pauses == 0 and _collector_was_on:
                gc.enable()


class ChunkWriter:
    """Writes chunks in order, in a background thread when ``threaded``; at most two chunks
    wait, so memory stays bounded. A failed write is raised in the scanning thread. As a
    context manager (how the scans use it) it pauses the collector while the chunks stream, and
    stops the thread on the way out: after a failure in the scan, without raising a write's error
    over it."""

    def __init__(self, write: Callable[..., None], threaded: bool) -> None:
        self._write = write
        self._error: BaseException | None = None
        self._queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue(maxsize=2)
        self._thread = threading.Thread(target=self._run, name="tag-writer", daemon=True) if threaded else None
        if self._thread:
            self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._write(*item)
                except BaseException as exc:  # noqa: BLE001 - handed to the scanning thread
                    self._error = exc

    def submit(self, *item: Any) -> None:
        if self._thread is None:
            self._write(*item)
            return
        if self._error is not None:
            self.close()
        self._queue.put(item)

    def close(self, raise_error: bool = True) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._error is not None and raise_error:
            raise self._error

    def __enter__(self) -> ChunkWriter:
        self._paused = collector_paused()
        self._paused.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: Any) -> None:
        try:
            self.close(raise_error=error is None)
        finally:
            self._paused.__exit__(None, None, None)


# -- the scan ------------------------------------------------------------------------------


def scan_source(
    source: Source,
    policy: Policy,
    *,
    source_engine: Engine,
    tag_engine: Engine,
    hasher: SubjectHasher,
    run_id: str,
    logical_date: date,
    full_rescan: bool = False,
    progress: Callable[[int, int], None] | None = None,
    catalog_file: str = "catalog",
    rotate_key: bool = False,
) -> ScanStats:
    """Scan one source into the tag store, incrementally where it can; under the source's
    guard, so no request runs while its index changes. The whole table is one key range here;
    ``lifecycle.discovery.partitions`` spreads the ranges of a large full scan over workers."""
    with source_guard(tag_engine, [source.name], holder=f"scan of {source.name}"):
        plan = begin_scan(source, policy, source_engine=source_engine, tag_engine=tag_engine, hasher=hasher,
                          run_id=run_id, full_rescan=full_rescan, catalog_file=catalog_file, rotate_key=rotate_key)
        part = scan_range(plan, source, policy, source_engine=source_engine, tag_engine=tag_engine, hasher=hasher,
                          logical_date=logical_date, progress=progress)
        return finish_scan(plan, source, [part], source_engine=source_engine, tag_engine=tag_engine, hasher=hasher)


def key_state(tag_engine: Engine, source: Source, hasher: SubjectHasher, rotate_key: bool) -> str | None:
    """Why the index must be rebuilt in full for the key's sake (or None); stops on another
    secret unless this is a deliberate rotation."""
    recorded = recorded_keys(tag_engine).get(source_scope(source.name))
    if recorded == key_id(hasher):
        return None
    if recorded is None:
        return "index key not recorded" if has_index(tag_engine, source.name) else None
    if not rotate_key:
        raise KeyMismatchError(
            f"source {source.name}: the keyed-hash secret is not the one that built its subject index "
            f"(key identity {key_id(hasher)} here, {recorded} recorded): nothing was read. Use the secret the "
            "index was built with, or rotate deliberately (nightly run with rotate_key)")
    return "keyed-hash secret rotated"


_TRACKING_TYPES: dict[str, type] = {"int": int, "datetime": datetime, "date": date, "str": str}


@dataclass
class ScanPlan:
    """What a scan settles once per source before reading a row. Plain values (names, flags,
    the stored watermark), so it travels between the tasks of a partitioned scan as XCom."""

    source: str
    run_id: str
    mode: str = "full"  # full | incremental | blocked
    full_reason: str = ""
    since: str | None = None  # the watermark as stored: an incremental scan reads rows past it
    tracking: str | None = None
    tracking_type: str = "str"  # a key of _TRACKING_TYPES: how watermark values compare
    fingerprint: str = ""
    first: bool = False  # the tag store holds nothing of this source: tags are copied straight in
    build: bool = False  # a full rescan of an indexed source: the new index is built beside the live one
    load: str | None = None  # a source not yet indexed: its entries are loaded into this table (PostgreSQL)
    tag_load: str | None = None  # a source not yet tagged: its tags are loaded into this table (PostgreSQL)
    schema_findings: list[dict[str, str]] = field(default_factory=list)
    started_at: float = 0.0  # epoch seconds: the scan's wall time spans tasks and processes

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScanPlan:
        return cls(**data)


@dataclass
class RangeScan:
    """One key range's share of a scan: its counts, and the highest change-tracking value it
    read (as the watermark stores it), which the source's watermark may advance to."""

    stats: ScanStats
    highest: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"stats": self.stats.to_dict(), "highest": self.highest}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RangeScan:
        return cls(ScanStats(**data["stats"]), data["highest"])


def begin_scan(source: Source, policy: Policy, *, source_engine: Engine, tag_engine: Engine, hasher: SubjectHasher,
               run_id: str, full_rescan: bool = False, catalog_file: str = "catalog",
               rotate_key: bool = False, split: bool = False) -> ScanPlan:
    """The key check, schema drift, full or incremental (a full scan clears the watermark
    first), and where tags and index are written; a missing catalogued column blocks the scan.
    ``split``: a full scan would run in key ranges (then a new source's tags are loaded in bulk)."""
    key_reason = key_state(tag_engine, source, hasher, rotate_key)
    plan = ScanPlan(source=source.name, run_id=run_id, started_at=time.time())
    if not inspect(source_engine).has_table(source.table):
        raise CatalogError(catalog_file, f"sources.{source.name}.table",
                           f"table {source.table!r} does not exist in its database")
    columns = table_columns(source_engine, source.table)
    plan.schema_findings = schema_drift(source, columns)
    record_findings(tag_engine, source, plan.schema_findings, run_id)
    if any(f["finding"] == "missing_column" for f in plan.schema_findings):
        # Tagging without a catalogued column could decide wrongly: leave the tags as they are.
        plan.mode = "blocked"
        return plan
    check_anonymisable(source, columns, catalog_file)

    tracking = source.change_tracking.tracking_column if source.change_tracking else None
    decided = ScanStats(source=source.name)
    mark, plan.fingerprint = choose_mode(tag_engine, source, policy, decided,
                                         requested=full_rescan or key_reason is not None,
                                         change_signal=tracking is not None, first=lambda mark: mark["value"] is None)
    plan.mode, plan.full_reason = decided.mode, key_reason or decided.full_reason
    plan.tracking = tracking
    if tracking:
        kind = _python_type(columns, tracking)
        plan.tracking_type = next((name for name, t in _TRACKING_TYPES.items() if t is kind), "str")
    with tag_engine.connect() as conn:
        plan.first = conn.execute(select(record_tag.c.record_key).where(record_tag.c.source == source.name).limit(1)).first() is None
        indexed = conn.execute(select(subject_ref.c.record_key).where(subject_ref.c.source == source.name).limit(1)).first() is not None
    # A full rescan of an indexed source builds its new index beside the live one (swapped in
    # at the end); the first scan has nothing to hide and writes the index directly.
    plan.build = plan.mode == "full" and indexed
    if plan.mode == "full" and (plan.first or not indexed):
        with tag_engine.begin() as conn:  # the index of a source not yet indexed is loaded in bulk
            plan.load = start_load(conn, source.name) if not indexed else None
            # Its tags too when the ranges run on several workers, which share the server; one
            # task leaves the server a core to keep the indexes up beside it (measured on 1 M
            # records: 7-13 s faster than building them at the end).
            if plan.first and split:
                plan.tag_load = start_load(conn, source.name, record_tag)
            elif plan.first:
                create_partition(conn, source.name, record_tag)
    if plan.mode == "incremental":
        plan.since = mark["value"]
    elif plan.build:
        with tag_engine.begin() as conn:  # what a crashed rescan left half built
            conn.execute(delete(subject_ref_build).where(subject_ref_build.c.source == source.name))
    return plan


def scan_range(plan: ScanPlan, source: Source, policy: Policy, *, source_engine: Engine, tag_engine: Engine,
               hasher: SubjectHasher, logical_date: date, lo: int | None = None, hi: int | None = None,
               retry: bool = False, progress: Callable[[int, int], None] | None = None) -> RangeScan:
    """Read and tag the rows whose key is in [lo, hi) (None: unbounded) under ``plan``.

    ``retry``: an earlier attempt may have written part of this range, so nothing is copied in
    blindly: tags are upserted and each record's index entries made exactly what it holds now."""
    stats = ScanStats(source=source.name, mode=plan.mode, full_reason=plan.full_reason)
    if plan.mode == "blocked":
        return RangeScan(stats)
    started = time.monotonic()
    since = _watermark_value(plan.since, _TRACKING_TYPES[plan.tracking_type])
    tracking = plan.tracking
    ref_target = load_table(plan.load) if plan.load else subject_ref_build if plan.build else subject_ref
    tag_target = load_table(plan.tag_load, record_tag) if plan.tag_load else record_tag
    # A retried range may have loaded some of its records already: they are removed and copied again.
    reloaded = [table for name, table in ((plan.tag_load, tag_target), (plan.load, ref_target)) if name] if retry else []
    first = bool(plan.tag_load) or (plan.first and not retry)
    per_record = plan.mode == "incremental" or (retry and not plan.load)
    tagger = Tagger(source, policy, hasher, plan.run_id, logical_date.year)
    query = _select(source, source_engine, since, lo, hi)
    total = _count(source_engine, query) if progress else 0
    highest = since

    def write(forget: list[str], tags: list[list[Any]], refs: list[list[Any]]) -> None:
        with tag_engine.begin() as conn:
            forget_loaded(conn, reloaded, forget)
            write_tags(conn, tag_engine, tags, first=first, target=tag_target)
            if per_record:
                refresh_refs(conn, tag_engine, source, forget, refs, target=ref_target)
            else:
                write_refs(conn, tag_engine, refs, fresh=True, target=ref_target)

    # PostgreSQL: chunk n is written by a second thread while chunk n+1 is tagged (the driver
    # releases the GIL while the server works). SQLite writes in line.
    with ChunkWriter(write, threaded=tag_engine.dialect.name == "postgresql") as writer:
        for rows in stream_rows(source_engine, query):
            tags: list[list[Any]] = []
            refs: list[list[Any]] = []
            for row in rows:
                row_tags, row_refs = tagger.tag(row)
                tags.extend(row_tags)
                refs.extend(row_refs)
            if tracking and (tracked := [v for r in rows if (v := r[tracking]) is not None]):
                top = max(tracked)
                highest = top if highest is None or top > highest else highest
            forget = [str(r[source.primary_key]) for r in rows] if per_record or reloaded else []
            writer.submit(forget, tags, refs)
            count_into(stats, len(rows), tagger.take_tally())
            pausepoint("scan:chunk-written")
            if progress:
                progress(stats.records, total)
    stats.seconds = round(time.monotonic() - started, 3)
    return RangeScan(stats, watermark_text(highest))


def finish_scan(plan: ScanPlan, source: Source, parts: Sequence[RangeScan], *, source_engine: Engine,
                tag_engine: Engine, hasher: SubjectHasher) -> ScanStats:
    """Once per source, after every key range was scanned: drop what left the source, swap in
    a rebuilt index, record the key identity, and only then advance the watermark."""
    stats = ScanStats(source=source.name, mode=plan.mode, full_reason=plan.full_reason,
                      schema_findings=list(plan.schema_findings))
    for part in parts:
        add_stats(stats, part.stats)
    if plan.mode == "blocked":
        stats.seconds = round(time.time() - plan.started_at, 3)
        return stats
    fingerprint = plan.fingerprint
    if plan.mode == "full":
        stale = and_(record_tag.c.source == source.name, record_tag.c.run_id != plan.run_id)
        # The ranges ran without holding the source throughout: a request that changed records
        # in between updated the live index, which the index the ranges built may contradict
        # (it was read before). Then the live one stays and the next night rescans in full.
        keep_live = plan.build and len(parts) > 1 and request_since(tag_engine, plan.started_at)
        with tag_engine.begin() as conn:
            if not plan.first:  # records deleted from the source since the last scan (a first scan has none)
                stats.deleted = conn.execute(select(func.count(func.distinct(record_tag.c.record_key))).where(stale)).scalar_one()
                conn.execute(delete(record_tag).where(stale))
            if keep_live:
                conn.execute(delete(subject_ref_build).where(subject_ref_build.c.source == source.name))
                fingerprint = REQUEST_DURING_RESCAN
                stats.full_reason = f"{stats.full_reason}; a request changed the source during the rescan: " \
                                    "its rebuilt index was set aside, the next night rescans in full"
            elif plan.build:
                swap_in_index(conn, source)
            if plan.tag_load:
                finish_load(conn, source.name, plan.tag_load, record_tag)
            if plan.load:
                finish_load(conn, source.name, plan.load)
            record_key_identity(conn, source_scope(source.name), hasher, plan.run_id)
        if len(parts) > 1:
            # The ranges ran without holding the source throughout: a record deleted after its
            # range was read (by a request, say) is dropped here; a count compare when nothing was.
            stats.deleted += max(_reconcile_deletions(source, source_engine, tag_engine), 0)
        analyze(tag_engine)
    else:
        stats.deleted = _reconcile_deletions(source, source_engine, tag_engine)
    kind = _TRACKING_TYPES[plan.tracking_type]
    highs = [_watermark_value(p.highest, kind) for p in parts if p.highest is not None]
    save_watermark(tag_engine, source, plan.tracking, max(highs) if highs else None, fingerprint, plan.run_id)
    stats.seconds = round(time.time() - plan.started_at, 3)
    return stats


# A watermark fingerprint no catalog produces: the next night's scan is full.
REQUEST_DURING_RESCAN = "request-during-rescan"
# Audit entries of requests that change sources' records (lifecycle.rights.dispatcher).
_CHANGING_REQUESTS = ("request_outcome", "name_review")


def request_since(tag_engine: Engine, started_at: float) -> bool:
    """Whether a data-subject request finished (was audited) since ``started_at`` (epoch s)."""
    moment = datetime.fromtimestamp(started_at, timezone.utc)
    if tag_engine.dialect.name == "sqlite":  # stored as naive UTC
        moment = moment.replace(tzinfo=None)
    with tag_engine.connect() as conn:
        return conn.execute(select(audit_log.c.seq).where(audit_log.c.kind.in_(_CHANGING_REQUESTS),
                                                          audit_log.c.at >= moment).limit(1)).first() is not None


def add_stats(into: ScanStats, part: ScanStats) -> None:
    """Add one range's counts to the source's."""
    for name in ("records", "tags", "violations", "subject_refs", "free_text_refs", "deleted"):
        setattr(into, name, getattr(into, name) + getattr(part, name))
    for name in ("by_category_basis", "free_text_by_writing"):
        totals = getattr(into, name)
        for label, n in getattr(part, name).items():
            totals[label] = totals.get(label, 0) + n


def watermark_text(value: Any) -> str | None:
    """A change-tracking value as the watermark stores it."""
    if value is None:
        return None
    return value.isoformat() if isinstance(value, (date, datetime)) else str(value)


def choose_mode(tag_engine: Engine, source: Source, policy: Policy, stats: ScanStats, *, requested: bool,
                change_signal: bool, first: Callable[[Any], bool]) -> tuple[Any, str]:
    """Full or incremental, and why (into ``stats``); returns the last watermark and the
    fingerprint. A full scan clears the watermark first: until it completes, the next scan must
    be full as well."""
    print_ = fingerprint(source, policy)
    with tag_engine.connect() as conn:
        mark = conn.execute(select(watermark).where(watermark.c.source == source.name)).mappings().first()
    if requested:
        stats.full_reason = "requested"
    elif not change_signal:
        stats.full_reason = "no change signal in the catalog"
    elif mark is None or first(mark):
        stats.full_reason = "first scan"
    elif mark["fingerprint"] != print_:
        stats.full_reason = "catalog, policy or detectors changed"
    stats.mode = "full" if stats.full_reason else "incremental"
    if stats.mode == "full":
        with tag_engine.begin() as conn:
            conn.execute(delete(watermark).where(watermark.c.source == source.name))
    return mark, print_


def analyze(tag_engine: Engine) -> None:
    """After a bulk load, fresh planner statistics: without them PostgreSQL may scan the whole
    index table for each small incremental batch."""
    if tag_engine.dialect.name == "postgresql":
        with tag_engine.begin() as conn:
            conn.exec_driver_sql(f"ANALYZE {record_tag.name}")
            conn.exec_driver_sql(f"ANALYZE {subject_ref.name}")


def count_into(stats: ScanStats, records: int, tally: Tally) -> None:
    """Add a Tagger's tally of ``records`` records to the scan's counts."""
    stats.records += records
    for writing, n in tally.writings.items():
        stats.free_text_by_writing[writing] = stats.free_text_by_writing.get(writing, 0) + n
    stats.tags += tally.tags
    stats.subject_refs += tally.refs
    stats.free_text_refs += tally.free_text_refs
    for (category, basis, status, violation), n in tally.by_outcome.items():
        label = f"{category}:{basis or '(none)'}"
        stats.by_category_basis[label] = stats.by_category_basis.get(label, 0) + n
        if status == "violation" and violation != "awaiting_parent":  # settled after the scans: not yet one
            stats.violations += n


def save_watermark(tag_engine: Engine, source: Source, tracking: str | None, highest: Any,
                    print_: str, run_id: str) -> None:
    value = watermark_text(highest)
    with tag_engine.begin() as conn:
        conn.execute(delete(watermark).where(watermark.c.source == source.name))
        conn.execute(insert(watermark).values(
            source=source.name, tracking_column=tracking or "", value=value, fingerprint=print_, run_id=run_id))

