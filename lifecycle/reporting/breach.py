"""Breach scoping (GDPR Art. 33-34): who and what a personal-data breach touches, from the tag
store and the subject index alone, in seconds.

The operator names the affected sources (or a bucket prefix for object sources), optionally a
window on the records' retention-clock dates, and an incident reference. The answer:

- a report (JSON + HTML, next to the nightly reports) with counts only: records, persons,
  categories of data and of persons, identifier kinds exposed (personnummer, contact data,
  free text), the processor customers to tell (Art. 33(2)), and the frame of the notification
  to the authority: the 72-hour deadline from discovery, with "likely consequences" and
  "measures taken" left for a person to write;
- the contact list (Art. 34): each person's keyed hashes and where they sit (source, record
  key, field), written only to the protected folder, owner-only. Never to logs, XCom or the
  report.

Everything is counted set-based in the tag store (include/sql/breach_*.sql). A person is
counted once per primary identifier: a record's own structured identifiers belong to one
person, known by the first of e-mail, personnummer, phone, name at a company; a record with a
name alone is a person of its own; a mention in free text is the person it names (the same one
when that identifier is someone's primary). Somebody known by different primary identifiers in
different records (an e-mail here, only a phone there) counts more than once: the count errs
towards notifying too many, never too few.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Connection, Date, Engine, String, bindparam
from sqlalchemy.sql.elements import TextClause

from lifecycle.config import Catalog, Policy
from lifecycle.discovery import find_identifiers
from lifecycle.errors import InvalidRequestError
from lifecycle.reporting.report import TEMPLATES, ReportPaths, safe_file_name
from lifecycle.tagstore import load_sql, statement

NOTIFY_WITHIN = timedelta(hours=72)  # Art. 33(1): to the supervisory authority
WORK_MEM = "256MB"  # PostgreSQL, for this transaction only
LOCAL_TIME = ZoneInfo("Europe/Stockholm")
# Incident numbers: INC-2026-0042, IMY-2026.7, ... (letters, digits and . _ -).
INCIDENT_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{2,39}")
S3_PREFIX = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(.*))?", re.DOTALL)
# Sentinels for an open window: every date compares inside.
_EARLIEST, _LATEST = date(1, 1, 1), date(9999, 12, 31)


# -- input ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectPrefix:
    """Objects under s3://bucket/key_prefix, and the object-storage sources whose objects can be there."""

    bucket: str
    key_prefix: str
    sources: tuple[str, ...]

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key_prefix}"


@dataclass(frozen=True)
class BreachScope:
    reference: str
    sources: tuple[str, ...]  # affected as a whole
    prefix: ObjectPrefix | None  # affected objects of object-storage sources
    window_from: date | None
    window_to: date | None
    discovered_at: datetime  # aware, UTC

    @property
    def all_sources(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.sources) | set(self.prefix.sources if self.prefix else ())))

    @property
    def notify_by(self) -> datetime:
        return self.discovered_at + NOTIFY_WITHIN


def _refuse(field_name: str, rule: str, problem: str) -> InvalidRequestError:
    # The value is never repeated: it may be anything a person typed.
    return InvalidRequestError(f"{problem} (rule: {rule})", field=field_name, rule=rule)


def parse_scope(params: Mapping[str, Any], catalog: Catalog, *, now: datetime) -> BreachScope:
    """The form's values, checked against the catalog; the first broken rule raises
    InvalidRequestError naming the field and the rule. Reads nothing but the catalog."""
    reference = str(params.get("reference") or "").strip()
    if not reference:
        raise _refuse("reference", "required", "give the incident reference, e.g. INC-2026-0042")
    if not INCIDENT_REFERENCE.fullmatch(reference):
        raise _refuse("reference", "pattern", "3-40 letters, digits and . _ -, starting with a letter or digit")
    sources = _parse_sources(params.get("sources"), catalog)
    prefix = _parse_prefix(params.get("object_prefix"), catalog)
    if not sources and prefix is None:
        raise _refuse("sources", "required", "name at least one affected source, or give object_prefix")
    window_from = _parse_date(params.get("window_from"), "window_from")
    window_to = _parse_date(params.get("window_to"), "window_to")
    if window_from and window_to and window_from > window_to:
        raise _refuse("window_to", "not_before_window_from", "the window ends before it starts")
    discovered_at = _parse_moment(params.get("discovered_at"), "discovered_at")
    if discovered_at > now.astimezone(timezone.utc) + timedelta(minutes=5):  # a little clock skew is no error
        raise _refuse("discovered_at", "not_in_future", "the breach cannot have been discovered in the future")
    return BreachScope(reference, sources, prefix, window_from, window_to, discovered_at)


def _parse_sources(value: Any, catalog: Catalog) -> tuple[str, ...]:
    if value in (None, "", []):
        return ()
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise _refuse("sources", "list_of_names", "a list of catalog source names")
    for i, name in enumerate(value):
        if name not in catalog.sources:
            raise _refuse(f"sources[{i}]", "known_source",
                          f"not a source of the catalog; it has: {', '.join(sorted(catalog.sources))}")
    return tuple(sorted(set(value)))


def _parse_prefix(value: Any, catalog: Catalog) -> ObjectPrefix | None:
    if value in (None, ""):
        return None
    match = S3_PREFIX.fullmatch(str(value).strip()) if isinstance(value, str) else None
    if match is None or any(ord(ch) < 32 for ch in str(value)):
        raise _refuse("object_prefix", "s3_uri", "give s3://bucket/prefix (a valid bucket name, no control characters)")
    bucket, key_prefix = match.group(1), match.group(2) or ""
    if find_identifiers(key_prefix):  # object keys can hold personal data: keep it out of the report
        raise _refuse("object_prefix", "no_identifier",
                      "the prefix holds an e-mail, phone number or personnummer; use a shorter prefix")
    matched = tuple(sorted(
        s.name for s in catalog.sources.values()
        if s.storage is not None and s.storage.bucket == bucket
        and (key_prefix.startswith(s.storage.prefix) or s.storage.prefix.startswith(key_prefix))))
    if not matched:
        storage = sorted(f"s3://{s.storage.bucket}/{s.storage.prefix}" for s in catalog.sources.values() if s.storage)
        raise _refuse("object_prefix", "matches_object_source",
                      "no object-storage source of the catalog has objects under it; they are: "
                      + (", ".join(storage) or "(none)"))
    return ObjectPrefix(bucket, key_prefix, matched)


def _parse_date(value: Any, field_name: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise _refuse(field_name, "iso_date", "a date as YYYY-MM-DD") from None


def _parse_moment(value: Any, field_name: str) -> datetime:
    if value in (None, ""):
        raise _refuse(field_name, "required", "when the breach was discovered starts the 72 hours (Art. 33(1))")
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise _refuse(field_name, "iso_datetime", "a date and time as YYYY-MM-DDTHH:MM (Stockholm time unless "
                                                  "an offset is given)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LOCAL_TIME)
    return moment.astimezone(timezone.utc)


# -- the queries ---------------------------------------------------------------------------


def _bind(scope: BreachScope) -> dict[str, Any]:
    whole = set(scope.sources)
    narrowed = [s for s in (scope.prefix.sources if scope.prefix else ()) if s not in whole]
    return {
        "sources": list(scope.all_sources),
        "prefix_sources": narrowed,
        "key_prefix": scope.prefix.key_prefix if scope.prefix else "",
        "key_prefix_length": len(scope.prefix.key_prefix) if scope.prefix else 0,
        "from_date": scope.window_from or _EARLIEST,
        "to_date": scope.window_to or _LATEST,
    }


def _fragment(engine: Engine, name: str, **parts: str) -> str:
    """A condition from include/sql (its comment lines dropped: it is spliced into a line)."""
    sql = "\n".join(line for line in load_sql(name, engine.dialect.name).splitlines() if not line.startswith("--"))
    return sql.strip().format(**parts)


def _in_scope(engine: Engine) -> str:
    """The condition every breach query puts on lc_record_tag t (include/sql/breach_in_scope.sql)."""
    object_ref = load_sql("breach_object_ref", engine.dialect.name).strip().format(column="t.record_key")
    return _fragment(engine, "breach_in_scope", object_ref_sql=object_ref)


def _refs_in_scope(engine: Engine, scope: BreachScope) -> str:
    """The condition on the index entries lc_subject_ref r of the affected records. A whole
    source needs no tag rows (the cheap case: no join); a window or a prefix is checked on
    the entry's tag row (include/sql/breach_refs_in_scope.sql)."""
    if not (scope.window_from or scope.window_to or scope.prefix):
        return "r.source IN :sources"
    return _fragment(engine, "breach_refs_in_scope", in_scope_sql=_in_scope(engine))


_TYPED_PARAMETERS = (bindparam("sources", expanding=True, type_=String),
                     bindparam("ref_sources", expanding=True, type_=String),
                     bindparam("prefix_sources", expanding=True, type_=String),
                     bindparam("from_date", type_=Date), bindparam("to_date", type_=Date))


def _statement(engine: Engine, scope: BreachScope, name: str, **parts: str) -> TextClause:
    stmt = statement(engine, name, in_scope_sql=_in_scope(engine), refs_in_scope_sql=_refs_in_scope(engine, scope),
                     **parts)
    # A whole source's entries need no window: only the parameters the text has are typed.
    return stmt.bindparams(*(p for p in _TYPED_PARAMETERS if p.key in _parameters(stmt)))


def _parameters(stmt: TextClause) -> set[str]:
    return set(stmt.compile().params)


def _used(stmt: TextClause, values: dict[str, Any]) -> dict[str, Any]:
    """The values a statement binds (the scope's values are shared by queries that use part of them)."""
    names = _parameters(stmt)
    return {k: v for k, v in values.items() if k in names}


def _parent_edges(catalog: Catalog) -> list[tuple[str, str]]:
    """(child source, parent source) along the column a record's parent_key is read from."""
    edges = []
    for source in catalog.sources.values():
        column = source.clock_parent or next(iter(source.subject.via), None)
        if column:
            edges.append((source.name, source.subject.via[column]))
    return edges


def _with_ancestors(sources: tuple[str, ...], edges: list[tuple[str, str]]) -> list[str]:
    """The sources whose records the breach's index entries can be in: the affected ones and,
    up the edges, their parents' sources."""
    found, grown = set(sources), True
    while grown:
        more = {parent for child, parent in edges if child in found} - found
        found |= more
        grown = bool(more)
    return sorted(found)


def _refs_statement(engine: Engine, scope: BreachScope, name: str,
                    edges: list[tuple[str, str]]) -> tuple[TextClause, dict[str, str]]:
    """breach_persons / breach_processor_persons / breach_contacts over the common CTE of
    breach_refs.sql, with the walk up to parents only when ``edges`` has some. Only
    bind-parameter names are templated into the SQL: the source names of the edges are bound
    like every value."""
    parents = linked = ""
    if edges:
        rows = " UNION ALL ".join(f"SELECT CAST(:child_{i} AS VARCHAR(100)), CAST(:parent_{i} AS VARCHAR(100))"
                                  for i in range(len(edges)))
        parents = _fragment(engine, "breach_refs_parents", edges_sql=rows, in_scope_sql=_in_scope(engine))
        linked = _fragment(engine, "breach_refs_linked")
    refs = load_sql("breach_refs", engine.dialect.name).format(
        parents_sql=parents, linked_sql=linked, refs_in_scope_sql=_refs_in_scope(engine, scope))
    values = {f"child_{i}": c for i, (c, _) in enumerate(edges)} | {f"parent_{i}": p for i, (_, p) in enumerate(edges)}
    return _statement(engine, scope, name, refs_sql=refs), values


# -- the protected contact list ------------------------------------------------------------


@dataclass(frozen=True)
class ContactList:
    """Art. 34, one CSV: each exposed keyed identifier, its person and where it sits."""

    folder: Path
    path: Path


CONTACT_COLUMNS = ("person", "subject_hash", "kind", "source", "record_key", "field", "place", "exposure")


def _owner_only(path: Path, binary: bool = False) -> Any:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_TRUNC: set it again
    return os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")


def _protected_folder(protected_dir: Path, reference: str) -> ContactList:
    protected_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(protected_dir, 0o700)
    folder = protected_dir / f"breach-{safe_file_name(reference)}"
    folder.mkdir(exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    return ContactList(folder, folder / "contacts.csv")


def _write_contacts(conn: Any, stmt: TextClause, values: dict[str, Any], contacts: ContactList,
                    chunk: int = 50_000) -> int:
    """Stream the contact list into the protected file, never whole in memory. PostgreSQL
    writes the CSV itself (COPY ... TO STDOUT, the values bound by the driver); elsewhere it is
    written a chunk of rows at a time."""
    if conn.dialect.name == "postgresql":
        expanded = stmt.bindparams(**_used(stmt, values)).compile(
            dialect=conn.dialect, compile_kwargs={"render_postcompile": True})  # IN lists as single values
        cursor = conn.connection.driver_connection.cursor()
        with _owner_only(contacts.path, binary=True) as f:
            f.write((",".join(CONTACT_COLUMNS) + "\n").encode())
            with cursor.copy(f"COPY ({expanded.string}) TO STDOUT WITH (FORMAT csv)", expanded.params) as copy:
                for data in copy:
                    f.write(data)
        return int(cursor.rowcount)
    written = 0
    with _owner_only(contacts.path) as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CONTACT_COLUMNS)
        result = conn.execution_options(yield_per=chunk).execute(stmt, _used(stmt, values))
        for rows in result.partitions(chunk):
            writer.writerows(rows)
            written += len(rows)
    return written


# -- scoping -------------------------------------------------------------------------------

SIDE_BY_SIDE = 3  # concurrent queries on PostgreSQL: grouping a million keys is one core's work
_SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?")
Query = Callable[[Connection], Any]


def _side_by_side(engine: Engine, queries: dict[str, Query]) -> dict[str, Any]:
    """Run read-only queries, each on its own connection and all on one snapshot of the tag
    store (PostgreSQL: pg_export_snapshot, so the counts agree with each other even while a
    nightly run writes); elsewhere one after the other in one transaction."""
    if engine.dialect.name != "postgresql":
        with engine.connect() as conn, conn.begin():
            return {name: query(conn) for name, query in queries.items()}
    with engine.connect() as lead:
        lead.execution_options(isolation_level="REPEATABLE READ")
        with lead.begin():
            snapshot = str(lead.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
            if not _SNAPSHOT_ID.fullmatch(snapshot):
                raise RuntimeError("PostgreSQL returned a snapshot id of an unexpected form")

            def on_snapshot(query: Query) -> Any:
                with engine.connect() as conn:
                    conn.execution_options(isolation_level="REPEATABLE READ")
                    with conn.begin():
                        conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")  # first in the transaction
                        # Grouping a million identifiers: hash in memory, not sort on disk.
                        conn.exec_driver_sql(f"SET LOCAL work_mem = '{WORK_MEM}'")
                        # The queries are the parallelism: a parallel plan of one would build its
                        # million groups once per worker, then again to merge them.
                        conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
                        return query(conn)

            with ThreadPoolExecutor(max_workers=SIDE_BY_SIDE, thread_name_prefix="breach") as pool:
                running = {name: pool.submit(on_snapshot, query) for name, query in queries.items()}
                return {name: future.result() for name, future in running.items()}


def _rows(stmt: TextClause, values: dict[str, Any]) -> Query:
    return lambda conn: [dict(r._mapping) for r in conn.execute(stmt, values)]


@dataclass(frozen=True)
class TagCounts:
    """The report's records (per source, role and controller) and categories (per source,
    activity, category and lawful basis), from one pass over the tag rows in scope."""

    records: list[dict[str, Any]]
    categories: list[dict[str, Any]]


def _tag_counts(grouped: Query, unlabelled: Query) -> Query:
    """breach_records.sql, folded into records and categories; records whose rows predate
    first_of_record are counted by key (breach_records_unlabelled.sql), only when there are any."""
    def count(conn: Connection) -> TagCounts:
        records: dict[tuple[str, str, str], dict[str, Any]] = {}
        categories: dict[tuple[str, str, str, str], int] = {}
        legacy = False
        for r in grouped(conn):
            rows = int(r["tag_rows"])
            c = (r["source"], r["activity"], r["category"], r["lawful_basis"])
            categories[c] = categories.get(c, 0) + rows
            legacy = legacy or r["first_of_record"] is None
            if r["first_of_record"]:
                _add_records(records, r, rows, int(r["undated"]) * rows)
        for r in unlabelled(conn) if legacy else ():
            _add_records(records, r, int(r["records"]), int(r["undated"]))
        return TagCounts(
            records=[records[k] for k in sorted(records)],
            categories=[{"source": k[0], "activity": k[1], "category": k[2], "lawful_basis": k[3], "records": n}
                        for k, n in sorted(categories.items())])
    return count


def _add_records(into: dict[tuple[str, str, str], dict[str, Any]], row: dict[str, Any], records: int,
                 undated: int) -> None:
    key = (row["source"], row["role"], row["controller"])
    counted = into.setdefault(key, {"source": key[0], "role": key[1], "controller": key[2], "records": 0, "undated": 0})
    counted["records"] += records
    counted["undated"] += undated


@dataclass(frozen=True)
class BreachResult:
    report: dict[str, Any]
    paths: ReportPaths
    contacts: ContactList

    def summary(self) -> dict[str, Any]:
        """Counts and paths: what a log line or XCom may carry."""
        return {"reference": self.report["reference"], "records": self.report["totals"]["records"],
                "persons": self.report["persons"]["total"], "notify_by": self.report["assessment"]["notify_authority_by"],
                "processor_customers": len(self.report["processor_customers"]),
                "report": str(self.paths.html), "contact_list": str(self.contacts.folder)}


def breach_queries(scope: BreachScope, *, catalog: Catalog, policy: Policy, tag_engine: Engine,
                   contacts: ContactList) -> dict[str, Query]:
    """The scoping's queries by name, each a function of a connection; "contacts" writes the
    protected list and returns how many rows it has."""
    values = _bind(scope)
    # Orders, tickets, ...: their owners are affected too. Without such a source, no recursion.
    edges = _parent_edges(catalog) if {c for c, _ in _parent_edges(catalog)} & set(scope.all_sources) else []
    with_edges = values | {f"child_{i}": c for i, (c, _) in enumerate(edges)} | {
        f"parent_{i}": p for i, (_, p) in enumerate(edges)} | {"ref_sources": _with_ancestors(scope.all_sources, edges)}

    def refs_query(name: str) -> TextClause:
        return _refs_statement(tag_engine, scope, name, edges)[0]

    contact_list = refs_query("breach_contacts")
    queries: dict[str, Query] = {  # the largest first: the pool starts them in this order
        "persons": _rows(refs_query("breach_persons"), with_edges),
        "contacts": lambda conn: _write_contacts(conn, contact_list, with_edges, contacts),
        "identifiers": _rows(_statement(tag_engine, scope, "breach_identifiers"), values),
        "tags": _tag_counts(_rows(_statement(tag_engine, scope, "breach_records"), values),
                            _rows(_statement(tag_engine, scope, "breach_records_unlabelled"), values)),
        # Any source may hold a customer's records (an activity column can map to a processor activity).
        "customers": _rows(refs_query("breach_processor_persons"), with_edges),
    }
    return queries


def scope_breach(scope: BreachScope, *, catalog: Catalog, policy: Policy, tag_engine: Engine, report_dir: Path,
                 protected_dir: Path, now: datetime | None = None) -> BreachResult:
    """Count what the breach touches (set-based, on the tag store, the queries side by side),
    write the protected contact list and the report."""
    now = now or datetime.now(timezone.utc)
    contacts = _protected_folder(protected_dir, scope.reference)
    found = _side_by_side(tag_engine, breach_queries(scope, catalog=catalog, policy=policy, tag_engine=tag_engine,
                                                     contacts=contacts))
    report = build_breach_report(scope, policy=policy, records=found["tags"].records, categories=found["tags"].categories,
                                 identifiers=found["identifiers"], persons=found["persons"][0],
                                 customer_persons={r["customer"]: int(r["persons"]) for r in found["customers"]},
                                 locations=found["contacts"], now=now)
    return BreachResult(report, write_breach_report(report, report_dir), contacts)


# -- the report ----------------------------------------------------------------------------


def build_breach_report(scope: BreachScope, *, policy: Policy, records: list[dict[str, Any]],
                        categories: list[dict[str, Any]], identifiers: list[dict[str, Any]],
                        persons: dict[str, Any], customer_persons: dict[str, int], locations: int,
                        now: datetime) -> dict[str, Any]:
    """The report from the queries' rows: counts, categories and kinds only."""
    per_source: dict[str, dict[str, int]] = {}
    for r in records:
        s = per_source.setdefault(r["source"], {"records": 0, "undated": 0})
        s["records"] += int(r["records"])
        s["undated"] += int(r["undated"])
    everyone = persons
    processors = _processor_customers(policy, records, customer_persons)
    kinds = [{"kind": r["kind"], "where": "free_text" if r["free_text"] else "structured",
              "identifiers": int(r["identifiers"]), "occurrences": int(r["occurrences"])} for r in identifiers]
    exposed = {k["kind"] for k in kinds}
    activities = sorted({c["activity"] for c in categories})
    data_categories = sorted({c["category"] for c in categories})
    counted = {"total": int(everyone["persons"]), "with_own_records": int(everyone["with_own_records"]),
               "only_mentioned_in_free_text": int(everyone["only_mentioned"]),
               "only_linked_through_references": int(everyone["only_linked"])}
    indicators = _risk_indicators(exposed, kinds, processors, data_categories, policy)
    notify_by = scope.notify_by
    return {
        "report": "breach scope",
        "reference": scope.reference,
        "controller": policy.controller.name,
        "generated_at": now.astimezone(timezone.utc).isoformat(timespec="seconds"),
        "scope": {
            "sources": list(scope.sources),
            "object_prefix": scope.prefix.uri if scope.prefix else None,
            "object_sources": list(scope.prefix.sources) if scope.prefix else [],
            "window": {"from": _iso(scope.window_from), "to": _iso(scope.window_to)},
            "undated_records_included": bool(scope.window_from or scope.window_to),
        },
        "totals": {"records": sum(s["records"] for s in per_source.values()),
                   "undated_records": sum(s["undated"] for s in per_source.values()),
                   "identifier_locations": locations},
        "sources": [{"source": name, **counts} for name, counts in sorted(per_source.items())],
        "persons": counted,
        "identifier_kinds": kinds,
        "categories": [{**c, "records": int(c["records"]),
                        "label": policy.categories[c["category"]].label_sv if c["category"] in policy.categories else ""}
                       for c in categories],
        "processor_customers": processors,
        "assessment": {
            "discovered_at": scope.discovered_at.isoformat(timespec="minutes"),
            "notify_authority_by": notify_by.isoformat(timespec="minutes"),
            "notify_authority_by_local": notify_by.astimezone(LOCAL_TIME).isoformat(timespec="minutes"),
            "hours_left": round((notify_by - now).total_seconds() / 3600, 1),
            "approximate_persons": counted["total"],
            "approximate_records": sum(s["records"] for s in per_source.values()),
            "categories_of_persons": [{"activity": a, "label": policy.activities[a].label_sv if a in policy.activities else ""}
                                      for a in activities],
            "categories_of_data": data_categories,
            "identifier_kinds_exposed": sorted(exposed),
            "risk_indicators": indicators,
            "processor_customers_to_inform": [p["customer"] for p in processors],
            # For a person to write: the pipeline cannot know them.
            "nature_of_breach": "",
            "likely_consequences": "",
            "measures_taken": "",
            "measures_proposed": "",
            "persons_to_be_informed": "",  # Art. 34: yes/no and why (high risk?)
            "contact_list": "in the protected folder (keyed hashes and record keys; not in this report)",
        },
    }


def _processor_customers(policy: Policy, records: list[dict[str, Any]], persons: dict[str, int]) -> list[dict[str, Any]]:
    """Customers whose (processor-role) data is involved: they are the controllers, and must be told (Art. 33(2))."""
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        if r["role"] != "processor":
            continue
        c = out.setdefault(r["controller"], {"customer": r["controller"], "records": 0, "sources": []})
        c["records"] += int(r["records"])
        c["sources"].append(r["source"])
    for customer, c in out.items():
        known = policy.processor_customers.get(customer)
        c["name"] = known.name if known else ""
        c["known_customer"] = known is not None
        c["persons"] = persons.get(customer, 0)
    return [out[k] for k in sorted(out)]


def _risk_indicators(exposed: set[str], kinds: list[dict[str, Any]], processors: list[dict[str, Any]],
                     data_categories: list[str], policy: Policy) -> list[str]:
    notes = []
    if "personnummer" in exposed:
        notes.append("personnummer exposed: a national identity number (Art. 87; IMY treats it as sensitive), "
                     "a risk of identity fraud")
    if any(k["where"] == "free_text" for k in kinds) or any(
            policy.categories[c].free_text for c in data_categories if c in policy.categories):
        notes.append("free text exposed: messages may hold anything people chose to write, special categories included")
    if exposed & {"email", "phone"}:
        notes.append("contact data exposed: a risk of phishing and unwanted contact")
    if processors:
        notes.append(f"processor data of {len(processors)} customer(s): tell each without undue delay (Art. 33(2))")
    if any(not p["known_customer"] for p in processors):
        notes.append("processor data whose customer is not in the policy: find the controller before notifying")
    return notes


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def write_breach_report(report: dict[str, Any], report_dir: Path) -> ReportPaths:
    report_dir.mkdir(parents=True, exist_ok=True)
    stem = f"breach-{safe_file_name(report['reference'])}"
    paths = ReportPaths(report_dir / f"{stem}.json", report_dir / f"{stem}.html")
    paths.json.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    paths.html.write_text(env.get_template("breach.html.j2").render(r=report), encoding="utf-8")
    return paths
