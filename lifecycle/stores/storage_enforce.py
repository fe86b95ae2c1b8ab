"""Erase and anonymise records inside objects.

One object at a time: read the current version, drop or anonymise the records in question,
write the whole new body in one PUT (atomic in S3), check it, and only then delete every older
version and delete marker, which may still hold the data. An object left without records is
removed with all its versions. The steps are idempotent: after a crash between writing and
deleting, the old versions are still there (nothing is lost) and a re-run finds nothing left to
change in the current version and deletes the old versions, so it converges.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Engine, select, update

from lifecycle.config import Source
from lifecycle.tagstore import lock_source
from lifecycle.discovery import REDACTED
from lifecycle.errors import SimulatedCrash
from lifecycle.stores.s3 import (
    DELETE_ATTEMPTS,
    CLOCK_METADATA,
    MalformedObjectError,
    ObjectDeleteError,
    ObjectStore,
    encode_records,
    object_format,
)
from lifecycle.stores.storage_scan import forget_object, read_records, split_record_key
from lifecycle.tagstore import object_state

log = logging.getLogger(__name__)

RecordChange = Callable[[dict[str, Any]], dict[str, Any] | None]  # None: drop the record


# Objects rewritten at once: each rewrite is a handful of round trips, mostly waiting on the store.
OBJECT_WORKERS = 8


@dataclass
class ObjectStats:
    objects_rewritten: int = 0
    objects_deleted: int = 0
    versions_removed: int = 0
    delete_markers_removed: int = 0
    delete_retries: int = 0
    records_changed: int = 0
    skipped_objects: int = 0  # malformed now: left as they are, their records stay planned
    failed_objects: list[str] = field(default_factory=list)
    skipped_keys: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "skipped_keys"}

    def add(self, other: ObjectStats) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


def anonymise_value(strategy: str, value: Any) -> Any:
    if value is None or strategy == "keep":
        return value
    if strategy == "null":
        return None
    if strategy == "redact":
        return REDACTED
    text = str(value)  # email_domain: what research may keep of an address
    return text.split("@", 1)[1] if "@" in text else text


def anonymiser(source: Source, columns: list[str]) -> RecordChange:
    def change(record: dict[str, Any]) -> dict[str, Any]:
        return {**record, **{c: anonymise_value(source.columns[c].anonymise, record.get(c)) for c in columns if c in record}}
    return change


def erase(_: dict[str, Any]) -> None:
    return None


def object_keys(tag_engine: Engine, source: Source, refs: set[str]) -> dict[str, str]:
    with tag_engine.connect() as conn:
        rows = conn.execute(select(object_state.c.object_ref, object_state.c.object_key).where(
            object_state.c.source == source.name, object_state.c.object_ref.in_(sorted(refs)))).all()
    return dict(rows)


def apply_changes(store: ObjectStore, tag_engine: Engine, source: Source, changes: dict[str, RecordChange],
                  *, crash_after_write: bool = False) -> ObjectStats:
    """Apply ``changes`` (record key -> change) object by object; returns what was done.
    Versions that cannot be deleted even after retries raise ObjectDeleteError at the end,
    after every other object was handled."""
    by_object: dict[str, dict[str, RecordChange]] = defaultdict(dict)
    for key, change in changes.items():
        ref, pk = split_record_key(key)
        by_object[ref][pk] = change
    keys = object_keys(tag_engine, source, set(by_object))
    stats, failures = ObjectStats(), []
    # A bucket has no transactions: writers of one source (nightly batches, requests) take the
    # source's advisory lock in the tag store for as long as they rewrite its objects.
    with tag_engine.connect() as lock_conn, lock_conn.begin():
        lock_source(lock_conn, source.name)
        failures = _apply_by_object(store, tag_engine, source, by_object, keys, stats, crash_after_write)
    if failures:
        log.error("%s: versions of %d object(s) could not be deleted: %s", source.name, len(stats.failed_objects),
                  ", ".join(stats.failed_objects))
        raise ObjectDeleteError(failures, DELETE_ATTEMPTS)
    return stats


def _apply_by_object(store: ObjectStore, tag_engine: Engine, source: Source, by_object: dict[str, dict[str, RecordChange]],
                     keys: dict[str, str], stats: ObjectStats, crash_after_write: bool) -> list[Any]:
    """Objects are independent of each other: they are rewritten OBJECT_WORKERS at a time (each
    costs a few round trips to the store). Results are gathered in a fixed order; any error other
    than the two handled per object is raised after every object was attempted."""
    todo = [(ref, per_record) for ref, per_record in sorted(by_object.items()) if ref in keys]  # others: gone already
    failures: list[Any] = []
    errors: list[BaseException] = []
    with ThreadPoolExecutor(max_workers=max(1, min(OBJECT_WORKERS, len(todo))), thread_name_prefix="objects") as pool:
        futures = [(ref, per_record, pool.submit(rewrite_object, store, tag_engine, source, ref, keys[ref], per_record,
                                                 crash_after_write=crash_after_write)) for ref, per_record in todo]
        for ref, per_record, future in futures:
            try:
                stats.add(future.result())
            except ObjectDeleteError as exc:
                stats.failed_objects.append(ref)
                failures += exc.failures
            except MalformedObjectError as exc:
                # Changed into something unreadable since the scan: touch nothing, keep the records planned.
                log.warning("%s: object %s is malformed now (%s); left as it is", source.name, ref, exc)
                stats.skipped_objects += 1
                stats.skipped_keys += [f"{ref}/{pk}" for pk in per_record]
            except BaseException as exc:  # noqa: BLE001 - raised below, once every object was attempted
                errors.append(exc)
    if errors:
        raise errors[0]
    return failures


def rewrite_object(store: ObjectStore, tag_engine: Engine, source: Source, ref: str, key: str,
                   per_record: dict[str, RecordChange], *, crash_after_write: bool = False) -> ObjectStats:
    assert source.storage is not None
    bucket, stats = source.storage.bucket, ObjectStats()
    read = read_records(store, source, key)
    if read is None:
        purged = store.purge(bucket, key)  # only old versions or delete markers may be left
        _count_purge(stats, purged)
        with tag_engine.begin() as conn:
            forget_object(conn, source, ref)
        return stats
    body, records, fields = read
    kept: list[dict[str, Any]] = []
    for record in records:
        change = per_record.get(str(record[source.primary_key]))
        new = change(record) if change else record
        if new != record:
            stats.records_changed += 1
        if new is not None:
            kept.append(new)
    if not kept:
        purged = store.purge(bucket, key)  # every version and delete marker: the object is gone
        _count_purge(stats, purged)
        stats.objects_deleted += 1
        with tag_engine.begin() as conn:
            forget_object(conn, source, ref)
        return stats
    if stats.records_changed:
        fmt = object_format(key, source.storage.format) or source.storage.format
        new_body = encode_records(fmt, key, kept, fields)
        # The records' own date survives the rewrite: last-modified would restart their clock.
        metadata = {**body.metadata, CLOCK_METADATA: body.clock().isoformat()}
        version_id, etag = store.put(bucket, key, new_body, metadata)
        stats.objects_rewritten += 1
        with tag_engine.begin() as conn:
            conn.execute(update(object_state).where(object_state.c.source == source.name,
                                                    object_state.c.object_ref == ref)
                         .values(etag=etag, version_id=version_id, records=len(kept)))
        if crash_after_write:
            raise SimulatedCrash(f"simulated crash after rewriting object {ref} of {source.name}")
    # Older versions hold what was just removed; on a re-run after a crash this is all that is left to do.
    _count_purge(stats, store.purge(bucket, key, keep_latest=True))
    return stats


def _count_purge(stats: ObjectStats, purged: Any) -> None:
    stats.versions_removed += purged.versions
    stats.delete_markers_removed += purged.delete_markers
    stats.delete_retries += purged.retries
    if purged.failures:
        raise ObjectDeleteError(purged.failures, DELETE_ATTEMPTS)
