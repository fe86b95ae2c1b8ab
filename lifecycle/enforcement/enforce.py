"""Apply a stored plan to a source in journaled batches of set-based SQL.

Each batch is journaled 'started' before the source is touched and 'done' afterwards. The
operations are idempotent (deleting a deleted row, nulling a null, taking the domain of a
domain), so a batch left 'started' by a crash is simply applied again; 'done' batches are
skipped. A re-run therefore finishes the same plan without repeating or skipping work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from itertools import groupby, islice
from typing import Any

from sqlalchemy import Engine, and_, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from lifecycle.config import Source
from lifecycle.errors import PlanNeedsConfirmationError
from lifecycle.discovery import SubjectHasher
from lifecycle.enforcement.plan import SourcePlan
from lifecycle.discovery import redact_text
from lifecycle.reporting import append as audit_append, audit_key, environment_audit_key
from lifecycle.tagstore import statement
from lifecycle.stores import Changed, RecordChange, RecordStore, open_store
from lifecycle.tagstore import PlanAction, journal, record_tag, subject_ref, suppression

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Batch:
    number: int
    scope: str  # record | fields
    action: PlanAction  # redact: mentions of erased people in free text (fields scope)
    category: str | None
    keys: tuple[str, ...]


@dataclass
class EnforceStats:
    source: str
    dry_run: bool
    batches: int = 0
    batches_skipped: int = 0
    records_erased: int = 0
    records_anonymised: int = 0
    records_restricted: int = 0
    fields_anonymised: int = 0
    violations_restricted: int = 0
    # Records whose free text mentioned an erased person (suppression list), redacted span by span.
    mentions_redacted: int = 0
    rows_affected: int = 0
    # Object-storage sources: what happened to the objects holding the records.
    objects: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    planned: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _chunks(keys: Iterator[str], size: int) -> Iterator[tuple[str, ...]]:
    while chunk := tuple(islice(keys, size)):
        yield chunk


def plan_batches(tag_engine: Engine, source: Source, run_id: str) -> list[Batch]:
    """The plan cut into batches; numbering is stable because the plan and its order are."""
    params = {"run_id": run_id, "source": source.name}
    with tag_engine.connect() as conn:
        record_rows = conn.execute(statement(tag_engine, "plan_record_batches"), params).all()
        field_rows = conn.execute(statement(tag_engine, "plan_field_batches"), params).all()
    batches: list[Batch] = []
    for action, rows in groupby(record_rows, key=lambda r: r.action):
        for keys in _chunks((r.record_key for r in rows), source.batch_size):
            batches.append(Batch(len(batches), "record", action, None, keys))
    for (action, category), rows in groupby(field_rows, key=lambda r: (r.action, r.category)):
        for keys in _chunks((r.record_key for r in rows), source.batch_size):
            batches.append(Batch(len(batches), "fields", action, category, keys))
    return batches


def batch_ranges(batches: int, per_partition: int) -> list[tuple[int, int]]:
    """The plan's batches 0..batches-1 cut into ranges (first, last + 1) of ``per_partition``:
    the partitions of a large source's enforcement."""
    step = max(per_partition, 1)
    return [(lo, min(lo + step, batches)) for lo in range(0, batches, step)]


def partitionable(source: Source) -> bool:
    """Whether a source's batches may be enforced by several tasks at once: SQL tables, where a
    batch touches only its own rows. An object or a lake table file holds the records of many
    batches, and two tasks rewriting it at once would lose one's change."""
    return source.location == "table"


_SUMMED = ("batches", "batches_skipped", "records_erased", "records_anonymised", "records_restricted",
           "fields_anonymised", "violations_restricted", "mentions_redacted", "rows_affected")


def merge_stats(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One EnforceStats dict per source from the dicts of its partitions (in the order sources
    first appear): counts summed, ``seconds`` summed (work, not wall time), the plan kept."""
    merged: dict[str, dict[str, Any]] = {}
    for part in parts:
        into = merged.get(part["source"])
        if into is None:
            merged[part["source"]] = {**part, "objects": dict(part.get("objects") or {})}
            continue
        for name in _SUMMED:
            into[name] = into.get(name, 0) + part.get(name, 0)
        into["seconds"] = round(into.get("seconds", 0.0) + part.get("seconds", 0.0), 3)
        for name, value in (part.get("objects") or {}).items():
            into["objects"][name] = into["objects"].get(name, 0) + value
    return list(merged.values())


def _columns_to_anonymise(source: Source, batch: Batch) -> list[str]:
    names = source.columns if batch.scope == "record" else source.columns_of(batch.category or "")
    return [c for c in names if source.columns[c].anonymise != "keep"]


@dataclass(frozen=True)
class Redaction:
    """What a redact batch needs: the keyed hashes of erased people found in the batch's free
    text (from the subject index and the suppression list), the hasher and the logical year."""

    hashes: set[str]
    hasher: SubjectHasher
    year: int


def _mention_fields(source: Source, batch: Batch) -> list[str]:
    """The free-text columns of the batch's category."""
    category = set(source.columns_of(batch.category or ""))
    return [c for c in source.free_text_columns if c in category]


def _suppressed_hashes(tag_engine: Engine, source: Source, batch: Batch) -> set[str]:
    """Keyed hashes of erased people (suppression reason 'erasure') indexed in the free text of
    the batch's records and category."""
    with tag_engine.connect() as conn:
        return set(conn.execute(
            select(subject_ref.c.subject_hash).distinct()
            .join(suppression, and_(suppression.c.subject_hash == subject_ref.c.subject_hash,
                                    suppression.c.reason == "erasure"))
            .where(subject_ref.c.source == source.name, subject_ref.c.record_key.in_(list(batch.keys)),
                   subject_ref.c.field.in_(_mention_fields(source, batch)), subject_ref.c.free_text.is_(True))
        ).scalars())


def _redact_text_changes(fields: list[str], redaction: Redaction, record: dict[str, Any]) -> dict[str, str]:
    """The fields of ``record`` whose text changes when the mentions are redacted, with the new text."""
    changed = {}
    for f in fields:
        value = record.get(f)
        if value:
            new = redact_text(str(value), redaction.hashes, redaction.hasher, redaction.year)
            if new != str(value):
                changed[f] = new
    return changed


def _redactor(fields: list[str], redaction: Redaction) -> RecordChange:
    def change(record: dict[str, Any]) -> dict[str, Any]:
        return {**record, **_redact_text_changes(fields, redaction, record)}
    return change


def _apply(store: RecordStore, source: Source, batch: Batch, redaction: Redaction | None) -> Changed:
    """One batch through the store protocol, whatever kind of store holds the source."""
    if batch.action == "restrict":
        return Changed()  # restriction is recorded in the tag store; the record is left as it is
    if batch.action == "redact":
        assert redaction is not None
        fields = _mention_fields(source, batch)
        if not fields or not redaction.hashes:
            return Changed()
        return store.change({k: _redactor(fields, redaction) for k in batch.keys})
    if batch.action == "erase":
        return store.erase(batch.keys)
    return store.anonymise(batch.keys, _columns_to_anonymise(source, batch))


def _update_tag_store(conn, source: Source, batch: Batch,  # type: ignore[no-untyped-def]
                      redaction: Redaction | None = None) -> None:
    keys = list(batch.keys)
    tags = and_(record_tag.c.source == source.name, record_tag.c.record_key.in_(keys))
    refs = and_(subject_ref.c.source == source.name, subject_ref.c.record_key.in_(keys))
    if batch.action == "redact":
        # The tags stay (the record and its category remain); only the erased people's refs go.
        if redaction is not None and redaction.hashes:
            conn.execute(delete(subject_ref).where(and_(
                refs, subject_ref.c.field.in_(_mention_fields(source, batch)),
                subject_ref.c.subject_hash.in_(sorted(redaction.hashes)))))
        return
    if batch.scope == "fields":
        tags = and_(tags, record_tag.c.category == batch.category)
    if batch.action == "erase":
        conn.execute(delete(record_tag).where(tags))
        conn.execute(delete(subject_ref).where(refs))
        return
    status = "restricted" if batch.action == "restrict" else "anonymised"
    conn.execute(update(record_tag).where(tags).values(status=status))
    if batch.action == "anonymise":
        conn.execute(delete(subject_ref).where(and_(refs, subject_ref.c.field.in_(_columns_to_anonymise(source, batch)))))


def _journal_started(tag_engine: Engine, run_id: str, source: Source, batch: Batch) -> None:
    insert = (postgresql.insert if tag_engine.dialect.name == "postgresql" else sqlite.insert)(journal)
    now = datetime.now(timezone.utc)
    values = dict(
        run_id=run_id, source=source.name, batch_no=batch.number, action=batch.action, scope=batch.scope,
        keys=len(batch.keys), state="started", started_at=now,
    )
    with tag_engine.begin() as conn:
        conn.execute(insert.values(**values).on_conflict_do_update(
            index_elements=["run_id", "source", "batch_no"], set_={"started_at": now, "state": "started"}
        ))


def _done_batches(tag_engine: Engine, run_id: str, source: Source) -> set[int]:
    with tag_engine.connect() as conn:
        return set(conn.execute(
            select(journal.c.batch_no).where(
                journal.c.run_id == run_id, journal.c.source == source.name, journal.c.state == "done"
            )
        ).scalars())


def _count(stats: EnforceStats, batch: Batch) -> None:
    n = len(batch.keys)
    if batch.scope == "record":
        attr = {"erase": "records_erased", "anonymise": "records_anonymised", "restrict": "records_restricted"}[batch.action]
    else:
        attr = {"restrict": "violations_restricted", "redact": "mentions_redacted"}.get(batch.action, "fields_anonymised")
    setattr(stats, attr, getattr(stats, attr) + n)


def enforce_source(
    source: Source,
    plan: SourcePlan,
    *,
    source_engine: Any,
    tag_engine: Engine,
    run_id: str,
    dry_run: bool,
    confirmed: bool = False,
    progress: Callable[[int, int], None] | None = None,
    crash_after_batches: int | None = None,
    crash_after_object_write: bool = False,
    hasher: SubjectHasher | None = None,
    year: int | None = None,
    batch_range: tuple[int, int] | None = None,
) -> EnforceStats:
    """Apply the run's plan for one source, through its store (``source_engine``: a RecordStore,
    or the backend one is opened over: a SQL engine, an S3 client). ``hasher`` and ``year`` (the logical date's) are needed to redact
    mentions of erased people in free text (plan action 'redact'). The crash_* arguments exist
    for crash tests. ``batch_range`` (first, last + 1): only those batches of the
    plan, one partition of a large source; the partitions of one plan may run at once, in tasks
    of their own (the batches are disjoint and each is journaled)."""
    started = time.monotonic()
    stats = EnforceStats(source=source.name, dry_run=dry_run, planned=plan.to_dict())
    if plan.needs_confirmation and not confirmed and not dry_run:
        raise PlanNeedsConfirmationError(
            f"source {source.name!r}: the plan would erase or anonymise {plan.destroy_share:.0%} of its records, "
            f"more than max_destroy_share {source.max_destroy_share:.0%}; review the plan in the report and "
            "trigger again with confirm_large_plan=true"
        )
    batches = plan_batches(tag_engine, source, run_id)
    if batch_range is not None:
        batches = [b for b in batches if batch_range[0] <= b.number < batch_range[1]]
    if dry_run:
        for batch in batches:
            _count(stats, batch)
        stats.batches = len(batches)
        stats.seconds = round(time.monotonic() - started, 3)
        return stats
    done = _done_batches(tag_engine, run_id, source)
    if (hasher is None or year is None) and any(b.action == "redact" and b.number not in done for b in batches):
        raise ValueError(
            f"source {source.name!r}: the plan redacts mentions of erased people in free text, which needs "
            "the keyed-hash hasher and the logical year: pass hasher= and year= to enforce_source")
    store = open_store(source, source_engine, tag_engine, crash_after_write=crash_after_object_write)
    # Every batch done is an entry of the audit trail, committed with the journal's 'done'.
    audit = audit_key(hasher) if hasher is not None else environment_audit_key()
    if audit is None:
        log.warning("source %s: no keyed-hash secret (hasher= or LIFECYCLE_HASH_SECRET): its batches are not "
                    "entered in the audit trail", source.name)
    counts = dict.fromkeys(store.count_names, 0)
    for i, batch in enumerate(batches):
        if batch.number in done:
            stats.batches_skipped += 1
            continue
        if crash_after_batches is not None and stats.batches >= crash_after_batches:
            raise RuntimeError(f"simulated crash before batch {batch.number} of {source.name}")
        _journal_started(tag_engine, run_id, source, batch)
        done_part = batch
        redaction = None
        if batch.action == "redact":
            assert hasher is not None and year is not None
            redaction = Redaction(_suppressed_hashes(tag_engine, source, batch), hasher, year)
        changed = _apply(store, source, batch, redaction)
        affected = changed.records
        for name, value in changed.counts.items():
            counts[name] = counts.get(name, 0) + value
        if changed.skipped_keys:  # records the store could not reach now (an unreadable object): still to do
            skipped = set(changed.skipped_keys)
            done_part = replace(batch, keys=tuple(k for k in batch.keys if k not in skipped))
        with tag_engine.begin() as conn:
            _update_tag_store(conn, source, done_part, redaction)
            conn.execute(
                update(journal)
                .where(journal.c.run_id == run_id, journal.c.source == source.name, journal.c.batch_no == batch.number)
                .values(state="done", rows_affected=affected, finished_at=datetime.now(timezone.utc))
            )
            if audit is not None:
                audit_append(conn, audit, "enforce_batch", source.name, {
                    "run_id": run_id, "batch_no": batch.number, "action": batch.action, "scope": batch.scope,
                    "category": batch.category, "keys": len(batch.keys), "keys_done": len(done_part.keys),
                    "rows_affected": affected, "counts": dict(changed.counts)})
        stats.batches += 1
        stats.rows_affected += max(affected, 0)
        _count(stats, batch)
        if progress:
            progress(i + 1, len(batches))
    stats.objects = counts
    stats.seconds = round(time.monotonic() - started, 3)
    return stats
