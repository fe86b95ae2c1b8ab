"""Records inside objects of an S3 bucket (CSV, JSON Lines, JSON; gzip): lifecycle.stores.s3 reads
and writes them, lifecycle.stores.storage_scan tags them, lifecycle.stores.storage_enforce rewrites them (one
PUT per object, then every older version deleted)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Engine, select

from lifecycle.config import Source
from lifecycle.discovery import SubjectHasher
from lifecycle.stores.storage_enforce import ObjectStats, anonymiser, apply_changes, erase, object_keys
from lifecycle.stores.storage_scan import read_records, record_key, scan_object_source, split_record_key
from lifecycle.stores.s3 import MalformedObjectError, ObjectStore, decode_records, object_format
from lifecycle.config import Policy
from lifecycle.tagstore import object_state
from lifecycle.stores.base import Changed, ConnectionInfo, Dependent, RecordChange
from lifecycle.rights import Probe, SourceCheck, allowed_record, record_holds, record_names


class Store:
    """A source's records in the objects under a bucket prefix."""

    count_names = ("objects_rewritten", "objects_deleted", "versions_removed", "delete_markers_removed",
                   "delete_retries", "skipped_objects")

    def __init__(self, source: Source, client: ObjectStore, tag_engine: Engine, *, crash_after_write: bool = False) -> None:
        self.source, self.client, self.tag_engine = source, client, tag_engine
        self.crash_after_write = crash_after_write  # crash tests: die between the PUT and the version purge

    def scan(self, policy: Policy, *, hasher: SubjectHasher, run_id: str, logical_date: date,
             full_rescan: bool = False, progress: Callable[[int, int], None] | None = None,
             rotate_key: bool = False, catalog_file: str = "catalog") -> Any:
        return scan_object_source(self.source, policy, store=self.client, tag_engine=self.tag_engine, hasher=hasher,
                                  run_id=run_id, logical_date=logical_date, full_rescan=full_rescan, progress=progress,
                                  rotate_key=rotate_key)

    def _apply(self, changes: dict[str, RecordChange]) -> Changed:
        if not changes:
            return Changed()
        done: ObjectStats = apply_changes(self.client, self.tag_engine, self.source, changes,
                                          crash_after_write=self.crash_after_write)
        counts = {k: v for k, v in done.to_dict().items() if isinstance(v, int) and k != "records_changed"}
        return Changed(done.records_changed, tuple(done.skipped_keys), counts)

    def erase(self, keys: Sequence[str]) -> Changed:
        return self._apply({k: erase for k in keys})

    def anonymise(self, keys: Sequence[str], columns: Sequence[str]) -> Changed:
        if not columns:
            return Changed()
        change = anonymiser(self.source, list(columns))
        return self._apply({k: change for k in keys})

    def change(self, changes: dict[str, RecordChange]) -> Changed:
        return self._apply(changes)

    def read(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Each object read once, however many of the records it holds."""
        by_object: dict[str, dict[str, str]] = defaultdict(dict)
        for key in keys:
            ref, pk = split_record_key(key)
            by_object[ref][pk] = key
        found = {}
        locations = object_keys(self.tag_engine, self.source, set(by_object))
        for ref, wanted in by_object.items():
            object_key = locations.get(ref)
            read = read_records(self.client, self.source, object_key) if object_key else None
            for record in read[1] if read else []:
                key = wanted.get(str(record[self.source.primary_key]))
                if key is not None:
                    found[key] = record
        return found

    def find(self, probe: Any, allowed: set[tuple[str, str]]) -> Any:
        return check_objects(self.client, self.source, probe, allowed, self._object_refs())

    def _object_refs(self) -> dict[str, str]:
        """{object key: reference} as the scan recorded them: record keys are built from these."""
        with self.tag_engine.connect() as conn:
            return {key: ref for ref, key in conn.execute(
                select(object_state.c.object_ref, object_state.c.object_key)
                .where(object_state.c.source == self.source.name)).all()}

    def dependents(self) -> list[Dependent]:
        """Nothing in a bucket declares a foreign key to it."""
        return []

    def referencing(self, column: str, parent_keys: Sequence[str]) -> dict[str, str]:
        """Every object is read (a bucket has no query to ask); records are keyed by their
        object's reference as the scan recorded it."""
        assert self.source.storage is not None
        wanted = {str(k) for k in parent_keys}
        ref_of = self._object_refs()
        found: dict[str, str] = {}
        for info in self.client.list(self.source.storage.bucket, self.source.storage.prefix):
            if info.key not in ref_of or object_format(info.key, self.source.storage.format) is None:
                continue  # not scanned yet, or another format: nothing of it is indexed either
            try:
                read = read_records(self.client, self.source, info.key)
            except MalformedObjectError:
                continue  # reported by the scan; its records stay as they are
            for record in read[1] if read else []:
                if str(record.get(column)) in wanted:
                    found[record_key(ref_of[info.key], record[self.source.primary_key])] = str(record[column])
        return found


# -- finding a person, independently of the index (lifecycle.rights.verify) --------------------------


def check_objects(store: ObjectStore, source: Source, probe: Probe, allowed: set[tuple[str, str]],
                  refs: dict[str, str] | None = None) -> SourceCheck:
    """Every object under the source's prefix is read (a bucket has no query to ask), and so is
    every older version still kept: an old version of a rewritten object holds what was erased."""
    assert source.storage is not None
    bucket = source.storage.bucket
    check = SourceCheck(source.name, "objects", free_text_columns=list(source.free_text_columns),
                        free_text_kinds=[k for k in ("email", "phone", "personnummer") if k in probe.text_patterns()]
                        if source.free_text_columns else [])
    columns = source.subject.columns()
    check.identifier_columns = {k: [c] for k, c in columns.items() if k in ("email", "phone", "personnummer")}
    allowed_pks = {key for s, key in allowed if s == source.name}
    for info in store.list(bucket, source.storage.prefix):
        if object_format(info.key, source.storage.format) is None:
            continue  # another format: reported by the scan as untagged data, not read
        try:
            read = read_records(store, source, info.key)
        except MalformedObjectError:
            check.objects_unreadable += 1  # cannot vouch for what cannot be read
            continue
        if read is None:
            continue
        check.objects_read += 1
        ref = (refs or {}).get(info.key, info.key)
        for record in read[1]:
            if allowed_record(record, source, allowed_pks):
                continue
            if record_holds(record, source, probe):
                check.records_found += 1
                check.found_keys.append(record_key(ref, record.get(source.primary_key)))
            else:
                key = record_key(ref, record.get(source.primary_key))
                check.name_mentions += [(key, name) for name in record_names(record, source, probe)]
    for key, version_id in _older_versions(store, bucket, source.storage.prefix):
        if object_format(key, source.storage.format) is None:
            continue
        body = store.client.get_object(Bucket=bucket, Key=key, VersionId=version_id)["Body"].read()
        try:
            records, _ = decode_records(source.storage.format, key, body)
        except MalformedObjectError:
            check.objects_unreadable += 1
            continue
        if any(record_holds(r, source, probe) and not allowed_record(r, source, allowed_pks) for r in records):
            check.old_versions_left += 1
    return check


def _older_versions(store: ObjectStore, bucket: str, prefix: str) -> list[tuple[str, str]]:
    """(key, version id) of every kept version that is not an object's current one."""
    older = []
    for page in store.client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        older += [(v["Key"], v["VersionId"]) for v in page.get("Versions", [])
                  if not v.get("IsLatest") and v.get("VersionId") not in (None, "null")]
    return older


def backend(conn: ConnectionInfo) -> ObjectStore:
    """A boto3 S3 client from an AWS Connection, read the way the Amazon provider's AwsBaseHook
    reads one: login = access key id, password = secret access key, extras ``endpoint_url`` (any
    S3-compatible store) and ``region_name``. Without login boto3's own chain applies."""
    return ObjectStore.connect(endpoint_url=conn.extra.get("endpoint_url") or conn.extra.get("host"),
                               access_key=conn.login or None, secret_key=conn.password or None,
                               region=conn.extra.get("region_name"))
