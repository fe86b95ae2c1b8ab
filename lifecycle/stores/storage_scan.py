"""Scan an object-storage source: tag the records inside its objects, into the same tag store
and subject index as SQL sources.

Incremental by ETag: the bucket listing is compared with the objects as last scanned
(lc_object_state) and only new or changed objects are read; objects gone from the bucket have
their tags and index entries dropped. A catalog, policy or detector change (the fingerprint)
or a request reads every object again. An object that cannot be read (malformed content, a
format the source does not take) is reported on its own and its existing tags are kept; the
other objects go on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import Engine, and_, delete, insert, select

from lifecycle.config import OBJECT_LAST_MODIFIED, Source
from lifecycle.discovery import SubjectHasher
from lifecycle.stores.s3 import MalformedObjectError, ObjectBody, ObjectInfo, ObjectStore, decode_records, object_format
from lifecycle.config import Policy
from lifecycle.discovery import (
    ScanStats,
    Tagger,
    count_into,
    record_findings,
    save_watermark,
    write_refs,
    write_tags,
    choose_mode,
    key_state,
)
from lifecycle.discovery import record_key_identity, source_scope
from lifecycle.tagstore import source_guard
from lifecycle.tagstore import object_state, record_tag, subject_ref

log = logging.getLogger(__name__)


def object_ref(hasher: SubjectHasher, source: Source, key: str) -> str:
    """A short keyed name for an object: object keys can hold personal data ('anna@x.se.csv'),
    so reports and record keys use this instead."""
    return hasher.hash("object", f"{source.name}\x00{key}")[:16]


def record_key(ref: str, pk: object) -> str:
    return f"{ref}/{pk}"


def split_record_key(key: str) -> tuple[str, str]:
    ref, _, pk = key.partition("/")
    return ref, pk


def of_object(column: Any, ref: str) -> Any:
    """Records of one object: their keys start with '<ref>/' (the ref is hex, nothing to escape)."""
    return column.startswith(f"{ref}/")


def read_records(store: ObjectStore, source: Source, key: str) -> tuple[ObjectBody, list[dict[str, Any]], list[str]] | None:
    """An object's body and records, or None when it no longer exists. Records must carry the
    source's primary key, once each: the key is how erasure finds them again."""
    assert source.storage is not None
    body = store.get(source.storage.bucket, key)
    if body is None:
        return None
    records, fields = decode_records(source.storage.format, key, body.body)
    seen: set[str] = set()
    for n, r in enumerate(records, 1):
        pk = r.get(source.primary_key)
        if pk in (None, ""):
            raise MalformedObjectError(f"record {n} has no {source.primary_key!r}")
        if str(pk) in seen:
            raise MalformedObjectError(f"record {n} repeats {source.primary_key!r} of an earlier record")
        seen.add(str(pk))
    return body, records, fields


def _drift(source: Source, fmt: str, fields: list[str]) -> list[dict[str, str]]:
    present = set(fields)
    findings = [{"column": c, "finding": "untagged_column"} for c in sorted(present - source.known_columns())]
    if fmt == "csv" and fields:
        # A CSV header states its columns; in JSON a missing key is just an empty value.
        findings += [{"column": c, "finding": "missing_column"} for c in source.referenced_columns() if c not in present]
    return findings


def _state(source: Source, ref: str, info: ObjectInfo, run_id: str, **values: Any) -> dict[str, Any]:
    return {"source": source.name, "object_ref": ref, "object_key": info.key, "etag": info.etag, "version_id": None,
            "clock": None, "records": 0, "problem": None, "run_id": run_id, **values}


def _save_state(tag_engine: Engine, row: dict[str, Any]) -> None:
    with tag_engine.begin() as conn:
        _put_state(conn, row)


def _put_state(conn: Any, row: dict[str, Any]) -> None:
    conn.execute(delete(object_state).where(object_state.c.source == row["source"],
                                            object_state.c.object_ref == row["object_ref"]))
    conn.execute(insert(object_state).values(**row))


def forget_object(conn: Any, source: Source, ref: str) -> int:
    """Drop an object's tags, index entries and state; returns how many records it had."""
    gone = conn.execute(select(object_state.c.records).where(
        object_state.c.source == source.name, object_state.c.object_ref == ref)).scalar() or 0
    conn.execute(delete(record_tag).where(record_tag.c.source == source.name, of_object(record_tag.c.record_key, ref)))
    conn.execute(delete(subject_ref).where(subject_ref.c.source == source.name, of_object(subject_ref.c.record_key, ref)))
    conn.execute(delete(object_state).where(object_state.c.source == source.name, object_state.c.object_ref == ref))
    return int(gone)


def scan_object_source(
    source: Source,
    policy: Policy,
    *,
    store: ObjectStore,
    tag_engine: Engine,
    hasher: SubjectHasher,
    run_id: str,
    logical_date: date,
    full_rescan: bool = False,
    progress: Callable[[int, int], None] | None = None,
    rotate_key: bool = False,
) -> ScanStats:
    """Scan the source's objects under its guard, so no request runs while its index changes.
    Each object's index entries are replaced in one transaction: the index stays complete."""
    with source_guard(tag_engine, [source.name], holder=f"scan of {source.name}"):
        return _scan_objects(source, policy, store=store, tag_engine=tag_engine, hasher=hasher, run_id=run_id,
                             logical_date=logical_date, full_rescan=full_rescan, progress=progress, rotate_key=rotate_key)


def _scan_objects(source: Source, policy: Policy, *, store: ObjectStore, tag_engine: Engine, hasher: SubjectHasher,
                  run_id: str, logical_date: date, full_rescan: bool, progress: Callable[[int, int], None] | None,
                  rotate_key: bool) -> ScanStats:
    assert source.storage is not None
    key_reason = key_state(tag_engine, source, hasher, rotate_key)
    started = time.monotonic()
    stats = ScanStats(source=source.name)
    # ETags are the change signal; the watermark only records a completed scan and its fingerprint.
    _, print_ = choose_mode(tag_engine, source, policy, stats, requested=full_rescan or key_reason is not None,
                            change_signal=True, first=lambda mark: False)
    if key_reason:
        stats.full_reason = key_reason
    with tag_engine.connect() as conn:
        known = {r.object_ref: r for r in conn.execute(select(object_state).where(object_state.c.source == source.name))}

    listing = {object_ref(hasher, source, o.key): o for o in store.list(source.storage.bucket, source.storage.prefix)}
    to_read = [(ref, info) for ref, info in listing.items()
               if stats.mode == "full" or ref not in known or known[ref].etag != info.etag]
    stats.objects_unchanged = len(listing) - len(to_read)
    reread = {ref for ref, _ in to_read}
    # Problems persist until the object is fixed: report them every night, not only when found.
    stats.object_findings += [
        {"object_ref": ref, "finding": "malformed" if row.status == "malformed" else "unsupported_format",
         "problem": row.problem or ""}
        for ref, row in known.items() if ref in listing and ref not in reread and row.status != "ok"]
    tagger = Tagger(source, policy, hasher, run_id, logical_date.year)
    findings: dict[tuple[str, str], dict[str, str]] = {}
    for done, (ref, info) in enumerate(to_read, 1):
        _scan_object(source, store, tag_engine, tagger, ref, info, run_id, stats, findings, new_object=ref not in known)
        if progress:
            progress(done, len(to_read))

    with tag_engine.begin() as conn:  # objects deleted from the bucket since the last scan
        for ref in set(known) - set(listing):
            stats.deleted += forget_object(conn, source, ref)
        record_key_identity(conn, source_scope(source.name), hasher, run_id)
    stats.schema_findings = list(findings.values())
    record_findings(tag_engine, source, stats.schema_findings, run_id)
    if any(f["finding"] == "missing_column" for f in stats.schema_findings):
        stats.mode = "blocked"
    save_watermark(tag_engine, source, "etag", None, print_, run_id)
    stats.seconds = round(time.monotonic() - started, 3)
    return stats


def _scan_object(source: Source, store: ObjectStore, tag_engine: Engine, tagger: Tagger, ref: str, info: ObjectInfo,
                 run_id: str, stats: ScanStats, findings: dict[tuple[str, str], dict[str, str]], new_object: bool) -> None:
    assert source.storage is not None
    fmt = object_format(info.key, source.storage.format)
    if fmt is None:
        problem = f"not a {source.storage.format} object by its name: not read, its data is untagged"
        stats.object_findings.append({"object_ref": ref, "finding": "unsupported_format", "problem": problem})
        _save_state(tag_engine, _state(source, ref, info, run_id, status="unsupported", problem=problem))
        return
    try:
        read = read_records(store, source, info.key)
    except MalformedObjectError as exc:
        # Reported on its own; the tags it had stay (a broken upload must not make records vanish).
        stats.object_findings.append({"object_ref": ref, "finding": "malformed", "problem": str(exc)})
        _save_state(tag_engine, _state(source, ref, info, run_id, status="malformed", problem=str(exc)[:300]))
        return
    if read is None:
        return  # deleted while we listed: the next scan drops it
    body, records, fields = read
    for f in _drift(source, fmt, fields):
        findings[(f["column"], f["finding"])] = f
    clock = body.clock()
    tags: list[list[Any]] = []
    refs: list[list[Any]] = []
    for r in records:
        row = {c: r.get(c) for c in source.referenced_columns()}
        row[OBJECT_LAST_MODIFIED] = clock
        row_tags, row_refs = tagger.tag(row, key=record_key(ref, r[source.primary_key]))
        tags += row_tags
        refs += row_refs
    with tag_engine.begin() as conn:
        if new_object:  # nothing of it in the tag store yet: copy straight in
            write_tags(conn, tag_engine, tags, first=True)
            write_refs(conn, tag_engine, refs, fresh=True)
        else:
            conn.execute(delete(subject_ref).where(subject_ref.c.source == source.name,
                                                   of_object(subject_ref.c.record_key, ref)))
            if tags:
                write_tags(conn, tag_engine, tags)
            write_refs(conn, tag_engine, refs, fresh=False)
            # Records no longer in the object: their tags were not refreshed by this run.
            conn.execute(delete(record_tag).where(and_(
                record_tag.c.source == source.name, of_object(record_tag.c.record_key, ref), record_tag.c.run_id != run_id)))
        # In the same transaction as the tags: a known object is never without its state.
        _put_state(conn, _state(source, ref, info, run_id, etag=body.etag, version_id=body.version_id, clock=clock,
                                records=len(records), status="ok"))
    stats.objects_read += 1
    count_into(stats, len(records), tagger.take_tally())
