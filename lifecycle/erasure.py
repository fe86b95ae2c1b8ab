"""Erasure of one person (Art. 17), resolved through the subject index.

Per location:
- the person's own record: erased; or, where a legal obligation (BFL) still runs, only what
  the law requires is kept, the rest anonymised, and the record held until the obligation
  lapses (the nightly run then erases it as any expired record);
- another person's free text that mentions them: the matched spans are redacted, not the text;
- processor-role data: untouched; the request is recorded as forwarded to that customer.
Afterwards the person's identifiers are searched again (index, touched texts re-detected,
and every free-text column swept for their e-mail); anything left fails the request.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Engine, MetaData, Table, and_, bindparam, delete, func, insert, select, update

from lifecycle.catalog import Catalog, Source
from lifecycle.db import lock_source
from lifecycle.detect import Finding, find_identifiers, redact
from lifecycle.detect import REDACTED
from lifecycle.enforce import _assignments
from lifecycle.object_enforce import ObjectStats, RecordChange, anonymiser, apply_changes, erase, object_keys
from lifecycle.object_scan import read_records, split_record_key
from lifecycle.objects import ObjectStore
from lifecycle.identifiers import SubjectHasher
from lifecycle.policy import Policy
from lifecycle.requests import SubjectIdentifiers
from lifecycle.scan import FREE_TEXT_KINDS
from lifecycle.sqlfiles import statement
from lifecycle.subjects import Location, locate
from lifecycle.tables import record_tag, subject_ref, suppression

log = logging.getLogger(__name__)

HELD_REASON = "erasure refused in part: legal obligation (Bokföringslagen)"


@dataclass(frozen=True)
class RecordAction:
    source: str
    record_key: str
    action: str  # erase | hold | anonymise | redact | forward
    fields: tuple[str, ...] = ()
    anonymise_categories: tuple[str, ...] = ()
    lapses_on: date | None = None
    controller: str = "self"


@dataclass
class ErasureOutcome:
    reference: str
    dry_run: bool
    per_source: dict[str, dict[str, int]] = field(default_factory=dict)
    held: list[dict[str, Any]] = field(default_factory=list)
    forwarded: dict[str, int] = field(default_factory=dict)
    remaining: dict[str, int] = field(default_factory=dict)
    verified: bool = False
    # Object-storage sources: objects rewritten or deleted, versions and delete markers removed.
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_erasure(catalog: Catalog, policy: Policy, tag_engine: Engine, hashes: list[str], today: date) -> list[RecordAction]:
    """What to do with each record that holds the person, from the index and the tags."""
    by_record: dict[tuple[str, str], list[Location]] = defaultdict(list)
    for loc in locate(tag_engine, hashes):
        by_record[(loc.source, loc.record_key)].append(loc)
    actions = []
    for (source_name, key), locs in sorted(by_record.items()):
        if source_name not in catalog.sources:
            continue
        source = catalog.source(source_name)
        with tag_engine.connect() as conn:
            tags = conn.execute(select(record_tag).where(
                record_tag.c.source == source_name, record_tag.c.record_key == key)).mappings().all()
        if policy.activities[source.activity].role == "processor":
            controller = tags[0]["controller"] if tags else "unknown"
            actions.append(RecordAction(source_name, key, "forward", controller=controller))
            continue
        own = any(not loc.free_text for loc in locs)
        if not own:
            actions.append(RecordAction(source_name, key, "redact", tuple(sorted({l.field for l in locs}))))
            continue
        legal = [t for t in tags if t["lawful_basis"] == "legal_obligation" and t["deadline"] and t["deadline"] >= today]
        if legal:
            kept = {t["category"] for t in legal}
            others = tuple(sorted(c for c in source.categories if c not in kept))
            actions.append(RecordAction(source_name, key, "hold", anonymise_categories=others,
                                        lapses_on=max(t["deadline"] for t in legal)))
        else:
            actions.append(RecordAction(source_name, key, "erase"))
    return actions


_REFLECTED: dict[tuple[str, str], Table] = {}


def _table(engine: Engine, source: Source) -> Table:
    """The source table, reflected once per engine and table (reflection costs a round trip
    per column on PostgreSQL, far more than the erasure itself)."""
    key = (engine.url.render_as_string(hide_password=True), source.table)
    if key not in _REFLECTED:
        _REFLECTED[key] = Table(source.table, MetaData(), autoload_with=engine)
    return _REFLECTED[key]


def _mentions(text: str, hashes: set[str], hasher: SubjectHasher, year: int) -> list[Finding]:
    """The identifiers in ``text`` that belong to the person (by keyed hash)."""
    return [x for x in find_identifiers(text, reference_year=year)
            if FREE_TEXT_KINDS.get(x.kind) and hasher.hash(FREE_TEXT_KINDS[x.kind], x.normalised) in hashes]


def _redact_text(text: str, hashes: set[str], hasher: SubjectHasher, ids: SubjectIdentifiers, year: int) -> str:
    """``text`` with the person's identifiers (and their name, when given) replaced."""
    new = redact(text, _mentions(text, hashes, hasher, year), REDACTED)
    if ids.name and ids.name in new:
        new = new.replace(ids.name, REDACTED)
    return new


def _redactor(fields: tuple[str, ...], hashes: set[str], hasher: SubjectHasher, ids: SubjectIdentifiers,
              year: int) -> RecordChange:
    def change(record: dict[str, Any]) -> dict[str, Any]:
        return {**record, **{f: _redact_text(str(record[f]), hashes, hasher, ids, year)
                             for f in fields if record.get(f)}}
    return change


def _redact_record(engine: Engine, source: Source, action: RecordAction, hashes: set[str],
                   hasher: SubjectHasher, ids: SubjectIdentifiers, year: int) -> None:
    """Replace the person's identifiers in the record's free text."""
    t = _table(engine, source)
    pk = t.c[source.primary_key]
    key = pk.type.python_type(action.record_key) if _is_int(pk) else action.record_key
    with engine.begin() as conn:
        lock_source(conn, source.name)
        row = conn.execute(select(*[t.c[f] for f in action.fields]).where(pk == key)).mappings().first()
        if row is None:
            return
        values = {f: new for f in action.fields
                  if (new := _redact_text(row[f] or "", hashes, hasher, ids, year)) != (row[f] or "")}
        if values:
            conn.execute(update(t).where(pk == key).values(**values))


def _is_int(column: Any) -> bool:
    try:
        return column.type.python_type is int
    except NotImplementedError:
        return False


def _keys(engine: Engine, source: Source, keys: list[str]) -> list[Any]:
    t = _table(engine, source)
    return [int(k) for k in keys] if _is_int(t.c[source.primary_key]) else keys


@dataclass(frozen=True)
class RequestScope:
    """Where one person's request is carried out: the catalog and the backend of each of its
    Connections (SQL engine or object store), the tag store, and the person's identifiers with
    their keyed hashes."""

    catalog: Catalog
    backends: dict[str, Any]
    tag_engine: Engine
    hasher: SubjectHasher
    identifiers: SubjectIdentifiers
    hashes: list[str]


def apply_erasure(actions: list[RecordAction], scope: RequestScope, *, reference: str, today: date, dry_run: bool,
                  suppress_as: str | None = "erasure") -> ErasureOutcome:
    catalog, source_engines, tag_engine = scope.catalog, scope.backends, scope.tag_engine
    hasher, identifiers, hashes = scope.hasher, scope.identifiers, scope.hashes
    outcome = ErasureOutcome(reference=reference, dry_run=dry_run)
    wanted = set(hashes)
    groups: dict[tuple[str, str, tuple[str, ...]], list[str]] = defaultdict(list)
    for a in actions:
        counts = outcome.per_source.setdefault(a.source, {"erased": 0, "anonymised": 0, "held": 0, "redacted": 0, "forwarded": 0})
        counts[{"erase": "erased", "hold": "held", "anonymise": "anonymised", "redact": "redacted",
                "forward": "forwarded"}[a.action]] += 1
        if a.action == "forward":
            outcome.forwarded[a.controller] = outcome.forwarded.get(a.controller, 0) + 1
        if a.action == "hold":
            counts["anonymised"] += 1
            outcome.held.append({"source": a.source, "record_key": a.record_key, "reason": HELD_REASON,
                                 "lapses_on": a.lapses_on.isoformat() if a.lapses_on else None})
        if a.action in ("erase", "hold", "anonymise"):
            groups[(a.source, a.action, a.anonymise_categories)].append(a.record_key)
    if dry_run:
        return outcome
    # Set-based: one statement per source and kind of action, not one per record.
    for (source_name, action, categories), keys in groups.items():
        source = catalog.source(source_name)
        engine = source_engines[source.connection]
        if isinstance(engine, ObjectStore):
            columns = [c for cat in categories for c in source.columns_of(cat) if source.columns[c].anonymise != "keep"]
            change = erase if action == "erase" else anonymiser(source, columns)
            _count_objects(outcome, source_name, apply_changes(engine, tag_engine, source, {k: change for k in keys}))
            if action == "erase":
                _forget_records(tag_engine, source_name, keys)
            else:
                _hold_records(tag_engine, source_name, keys, categories, columns, hold=action == "hold")
            continue
        if action == "erase":
            stmt = statement(engine, "erase_records", table=source.table, primary_key=source.primary_key)
            params: dict[str, Any] = {"keys": _keys(engine, source, keys)}
            columns: list[str] = []
        else:
            columns = [c for cat in categories for c in source.columns_of(cat) if source.columns[c].anonymise != "keep"]
            stmt = statement(engine, "anonymise_columns", table=source.table, primary_key=source.primary_key,
                             assignments_sql=_assignments(engine, source, columns)) if columns else None
            params = {"keys": _keys(engine, source, keys), "redacted": REDACTED}
        if stmt is not None:
            if ":redacted" not in stmt.text:
                params.pop("redacted", None)
            with engine.begin() as conn:
                lock_source(conn, source.name)
                conn.execute(stmt.bindparams(bindparam("keys", expanding=True)), params)
        if action == "erase":
            _forget_records(tag_engine, source_name, keys)
        else:
            _hold_records(tag_engine, source_name, keys, categories, columns, hold=action == "hold")
    redactions: dict[str, dict[str, RecordChange]] = defaultdict(dict)
    for a in actions:
        if a.action != "redact":
            continue
        source = catalog.source(a.source)
        backend = source_engines[source.connection]
        if isinstance(backend, ObjectStore):
            redactions[a.source][a.record_key] = _redactor(a.fields, wanted, hasher, identifiers, today.year)
        else:
            _redact_record(backend, source, a, wanted, hasher, identifiers, today.year)
    for source_name, changes in redactions.items():  # one rewrite per object, however many mentions
        source = catalog.source(source_name)
        _count_objects(outcome, source_name,
                       apply_changes(source_engines[source.connection], tag_engine, source, changes))  # type: ignore[arg-type]
    for a in actions:
        if a.action != "redact":
            continue
        with tag_engine.begin() as conn:
            conn.execute(delete(subject_ref).where(
                subject_ref.c.source == a.source, subject_ref.c.record_key == a.record_key,
                subject_ref.c.field.in_(a.fields), subject_ref.c.subject_hash.in_(hashes)))
    if suppress_as:
        _suppress(tag_engine, hashes, reference, today, suppress_as)
    return outcome


def _count_objects(outcome: ErasureOutcome, source: str, done: ObjectStats) -> None:
    totals = outcome.objects.setdefault(source, {})
    for name, value in done.to_dict().items():
        if isinstance(value, int):
            totals[name] = totals.get(name, 0) + value


def _forget_records(tag_engine: Engine, source: str, keys: list[str]) -> None:
    with tag_engine.begin() as conn:
        conn.execute(delete(record_tag).where(record_tag.c.source == source, record_tag.c.record_key.in_(keys)))
        conn.execute(delete(subject_ref).where(subject_ref.c.source == source, subject_ref.c.record_key.in_(keys)))


def _hold_records(tag_engine: Engine, source: str, keys: list[str], categories: tuple[str, ...],
                  anonymised_columns: list[str], hold: bool) -> None:
    mine = and_(record_tag.c.source == source, record_tag.c.record_key.in_(keys))
    with tag_engine.begin() as conn:
        conn.execute(update(record_tag).where(mine, record_tag.c.category.in_(categories)).values(status="anonymised"))
        if hold:
            # Held: out of processing, kept to the obligation's end; the nightly run erases it then.
            conn.execute(update(record_tag).where(mine, record_tag.c.category.notin_(categories))
                         .values(status="held", violation=HELD_REASON[:200]))
        conn.execute(delete(subject_ref).where(subject_ref.c.source == source, subject_ref.c.record_key.in_(keys),
                                               subject_ref.c.field.in_(anonymised_columns)))


def _suppress(tag_engine: Engine, hashes: list[str], reference: str, today: date, reason: str) -> None:
    with tag_engine.begin() as conn:
        existing = set(conn.execute(select(suppression.c.subject_hash).where(
            suppression.c.subject_hash.in_(hashes), suppression.c.reason == reason)).scalars())
        rows = [{"subject_hash": h, "reason": reason, "request_reference": reference, "since": today}
                for h in hashes if h not in existing]
        if rows:
            conn.execute(insert(suppression), rows)


def verify_erasure(outcome: ErasureOutcome, actions: list[RecordAction], scope: RequestScope, *, year: int) -> ErasureOutcome:
    """Search again: the index, every touched free text re-detected, and every free-text
    column swept for the e-mail. Held and forwarded records are allowed to remain."""
    catalog, source_engines, tag_engine = scope.catalog, scope.backends, scope.tag_engine
    hasher, identifiers, hashes = scope.hasher, scope.identifiers, scope.hashes
    allowed = {(a.source, a.record_key) for a in actions if a.action in ("hold", "forward")}
    remaining: dict[str, int] = defaultdict(int)
    for loc in locate(tag_engine, hashes):
        if (loc.source, loc.record_key) not in allowed:
            remaining[loc.source] += 1
    wanted = set(hashes)
    for source_name, left in _left_in_objects(actions, catalog, source_engines, tag_engine, hasher, wanted, year).items():
        remaining[source_name] += left
    for a in actions:
        if a.action != "redact":
            continue
        source = catalog.source(a.source)
        engine = source_engines[source.connection]
        if isinstance(engine, ObjectStore):
            continue  # re-read above, object by object
        t = _table(engine, source)
        pk = t.c[source.primary_key]
        key = int(a.record_key) if _is_int(pk) else a.record_key
        with engine.connect() as conn:
            row = conn.execute(select(*[t.c[f] for f in a.fields]).where(pk == key)).mappings().first()
        for f in a.fields:
            if left := len(_mentions((row or {}).get(f) or "", wanted, hasher, year)):
                remaining[a.source] += left
    if identifiers.email:
        needle = f"%{identifiers.email.lower()}%"
        for source in catalog.sources.values():
            engine = source_engines.get(source.connection)
            if engine is None or isinstance(engine, ObjectStore):
                continue  # objects: the touched ones were re-read in full above
            t = _table(engine, source)
            # Structured columns were verified through the index; free text is swept directly,
            # since a message may have changed since it was last scanned.
            columns = source.free_text_columns
            if not columns:
                continue
            condition = func.lower(t.c[columns[0]]).like(needle)
            for c in columns[1:]:
                condition = condition | func.lower(t.c[c]).like(needle)
            with engine.connect() as conn:
                hits = conn.execute(select(t.c[source.primary_key]).where(condition)).scalars().all()
            left = [h for h in hits if (source.name, str(h)) not in allowed]
            if left:
                remaining[source.name] += len(left)
    outcome.remaining = dict(remaining)
    outcome.verified = not remaining
    return outcome


def _left_in_objects(actions: list[RecordAction], catalog: Catalog, source_engines: dict[str, Any], tag_engine: Engine,
                     hasher: SubjectHasher, wanted: set[str], year: int) -> dict[str, int]:
    """Re-read every object the erasure touched: no record of it may still hold the person
    (in a structured field or in free text), and no older version may be left behind."""
    left: dict[str, int] = defaultdict(int)
    touched: dict[str, set[str]] = defaultdict(set)
    allowed: dict[str, set[str]] = defaultdict(set)
    for a in actions:
        source = catalog.source(a.source)
        if isinstance(source_engines.get(source.connection), ObjectStore):
            ref, pk = split_record_key(a.record_key)
            touched[a.source].add(ref)
            if a.action in ("hold", "forward"):
                allowed[a.source].add(pk)
    for source_name, refs in touched.items():
        source = catalog.source(source_name)
        store: ObjectStore = source_engines[source.connection]
        assert source.storage is not None
        for key in object_keys(tag_engine, source, refs).values():
            read = read_records(store, source, key)
            if len(store.versions(source.storage.bucket, key)) > (1 if read else 0):
                left[source_name] += 1  # an older version may still hold the person
            for record in (read[1] if read else []):
                if str(record[source.primary_key]) not in allowed[source_name] and _holds(record, source, hasher, wanted, year):
                    left[source_name] += 1
    return left


def _holds(record: dict[str, Any], source: Source, hasher: SubjectHasher, wanted: set[str], year: int) -> bool:
    for kind, column in source.subject.columns().items():
        if kind in ("email", "phone", "personnummer", "org_number") and hasher.reference(kind, record.get(column), year) in wanted:
            return True
    return any(_mentions(str(record.get(column) or ""), wanted, hasher, year) for column in source.free_text_columns)
