"""Records in a Delta Lake table, read and written with delta-rs (the ``deltalake`` package): a
local table (``file:///...`` or an absolute path) or one on an S3-compatible store (``s3://``).

Scan: the table's current version is streamed in Arrow record batches by delta-rs's own engine
(deletion vectors and column mapping are honoured) and tagged by lifecycle.discovery.scan's machinery, into
the same tag store and subject index as any source (record key: the primary key's value).
Incremental by table version: when every commit since the last scan appended files or was the
pipeline's own, only the files added since are read; any other commit (DELETE, UPDATE, MERGE,
OVERWRITE, OPTIMIZE ... by someone else), a history no longer in the log, or a change of catalog,
policy or detectors reads the table in full, and records gone from it lose their tags.

Writes are one MERGE each with the record keys as Arrow data (no key value is ever written into
SQL text): erase deletes the matched rows, anonymise sets each column by its strategy, change
writes back the changed columns of the changed rows. A Delta table keeps what a commit removed
until it is purged, in three places, and every write purges all three before it returns:

- data files of older versions: vacuumed at once (retention 0);
- the transaction log: each commit's ``add`` actions carry column statistics (minimum and maximum
  values: e-mail addresses, names, free text) of the files it wrote. A checkpoint is written and
  the log before it removed by delta-rs's own clean-up, with ``delta.logRetentionDuration`` set to
  0 for that moment and then restored;
- on a versioned bucket, every noncurrent version and delete marker under the table's prefix.

So time travel to versions before a write is gone after it: that is the point. Writers of one
source are serialised by its lock in the tag store; a producer writing at the same time conflicts
in Delta's optimistic concurrency, and the failed batch stays planned.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable
from deltalake.exceptions import TableNotFoundError
from deltalake.fs import DeltaStorageHandler
from pyarrow.fs import FileSelector, FileType, PyFileSystem
from sqlalchemy import Engine, and_, delete, func, select, update

from lifecycle.config import Source
from lifecycle.tagstore import lock_source
from lifecycle.discovery import REDACTED
from lifecycle.errors import CatalogError, ObjectDeleteError
from lifecycle.discovery import SubjectHasher
from lifecycle.discovery import record_key_identity, source_scope
from lifecycle.tagstore import source_guard
from lifecycle.stores.s3 import DELETE_ATTEMPTS, ObjectStore
from lifecycle.config import Policy
from lifecycle.discovery import (
    ChunkWriter,
    ScanStats,
    Tagger,
    analyze,
    check_anonymisable,
    count_into,
    record_findings,
    refresh_refs,
    save_watermark,
    swap_in_index,
    write_refs,
    write_tags,
    choose_mode,
    key_state,
    schema_drift,
)
from lifecycle.stores.base import Changed, ConnectionInfo, Dependent, RecordChange
from lifecycle.tagstore import record_tag, subject_ref, subject_ref_build, watermark
from lifecycle.rights import Probe, SourceCheck, record_holds, record_names
from lifecycle.discovery import name_search_term

log = logging.getLogger(__name__)

# Commits the pipeline makes carry this key in their commit info: a scan knows them as its own.
COMMIT_MARK = "lifecycle"
LOG_RETENTION = "delta.logRetentionDuration"
DEFAULT_LOG_RETENTION = "interval 30 days"  # the Delta protocol's default
ZERO_LOG_RETENTION = "interval 0 seconds"
VERSION_MARK = "delta_version"  # lc_watermark.tracking_column of lake tables: the version last scanned
# Commits that change no data (a scan since the last one still has every record).
_NO_DATA_CHANGE = {"SET TBLPROPERTIES", "VACUUM START", "VACUUM END", "ADD CONSTRAINT", "DROP CONSTRAINT",
                   "UPDATE TABLE METADATA", "ADD FEATURE", "UPDATE FIELD METADATA", "UPDATE TABLE PROPERTIES"}
_LOG_FILE = re.compile(r"^(\d{20})\.(json|checkpoint(\..+)?\.parquet|crc)$")
_REDACTED_COLUMN = "__lifecycle_redacted"


def _q(name: str) -> str:
    """A column name in delta-rs SQL. Catalog names are plain identifiers (checked on load), so
    double quotes only keep their case."""
    return f'"{name}"'


# -- the Connection ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LakeBackend:
    """What delta-rs needs to reach the tables behind one Connection (its storage options), and
    for tables in S3 a boto3 client, which removes noncurrent versions in versioned buckets."""

    storage_options: dict[str, str] = field(default_factory=dict)
    endpoint_url: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    region: str | None = None

    @cached_property
    def objects(self) -> ObjectStore:
        return ObjectStore.connect(endpoint_url=self.endpoint_url, access_key=self.access_key,
                                   secret_key=self.secret_key, region=self.region)


def backend(conn: ConnectionInfo) -> LakeBackend:
    """delta-rs storage options from an AWS Connection, read as the Amazon provider reads one:
    login = access key id, password = secret access key, extras ``endpoint_url`` (any
    S3-compatible store) and ``region_name``. Requests are path-style (S3-compatible stores rarely
    have a DNS name per bucket); plain ``http://`` endpoints are allowed explicitly; commits are
    conditional PUTs (``If-None-Match``), which delta-rs 1.x needs for safe concurrent writers
    without a lock service (AWS S3 and most compatible stores support them). Extra
    ``delta_storage_options`` (a mapping) is passed on last, for anything else delta-rs takes.
    Local tables need none of it: their Connection may be empty."""
    extra = conn.extra or {}
    endpoint = extra.get("endpoint_url") or extra.get("host") or None
    region = extra.get("region_name") or None
    options: dict[str, str] = {}
    if conn.login:
        options["AWS_ACCESS_KEY_ID"] = conn.login
    if conn.password:
        options["AWS_SECRET_ACCESS_KEY"] = conn.password
    if extra.get("aws_session_token"):
        options["AWS_SESSION_TOKEN"] = str(extra["aws_session_token"])
    if endpoint:
        options["AWS_ENDPOINT_URL"] = str(endpoint)
        if str(endpoint).startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
    if options or region:
        options["AWS_REGION"] = str(region or "us-east-1")
        options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false"
        options["aws_conditional_put"] = "etag"
    options.update({str(k): str(v) for k, v in (extra.get("delta_storage_options") or {}).items()})
    return LakeBackend(options, str(endpoint) if endpoint else None, conn.login or None, conn.password or None,
                       str(region) if region else None)


# -- the store -----------------------------------------------------------------------------------


class Store:
    """A source's Delta table."""

    count_names = ("files_removed", "log_files_removed", "versions_removed")

    def __init__(self, source: Source, lake: LakeBackend | dict[str, str] | None, tag_engine: Engine, **_: Any) -> None:
        if source.lake_table is None:
            raise ValueError(f"source {source.name!r} is not a lake_table source")
        if isinstance(lake, dict):
            lake = LakeBackend(dict(lake))
        elif lake is None:
            lake = LakeBackend()
        elif not isinstance(lake, LakeBackend):
            raise TypeError(f"source {source.name!r}: a lake table needs lifecycle.stores.lake_table.backend(...), "
                            f"not {type(lake).__name__}")
        self.source, self.lake, self.tag_engine = source, lake, tag_engine
        self.uri = source.lake_table.uri

    # -- the table ------------------------------------------------------------------------

    @property
    def _options(self) -> dict[str, str] | None:
        assert self.source.lake_table is not None
        return dict(self.lake.storage_options) if self.source.lake_table.is_s3 else None

    def table(self, version: int | None = None) -> DeltaTable:
        """The table now (or at ``version``)."""
        return DeltaTable(self.uri, version=version, storage_options=self._options)

    def _open(self, catalog_file: str) -> DeltaTable:
        try:
            return self.table()
        except TableNotFoundError as exc:
            raise CatalogError(catalog_file, f"sources.{self.source.name}.lake_table.uri",
                               f"no Delta table at {self.uri!r} ({str(exc).splitlines()[0][:200]})") from exc

    def _filesystem(self) -> Any:
        """The table's folder as a pyarrow filesystem (delta-rs's own object store), paths relative to it."""
        return PyFileSystem(DeltaStorageHandler(self.uri, self._options))

    def _schema(self, dt: DeltaTable) -> pa.Schema:
        return pa.schema(dt.schema().to_arrow())

    def _batches(self, dt: DeltaTable, columns: list[str]) -> Iterator[pa.RecordBatch]:
        """The current version's rows, streamed by delta-rs's engine (row order not guaranteed)."""
        for batch in pa.RecordBatchReader.from_stream(dt.scan(columns=columns)):
            yield _plain(batch)

    def _key_values(self, schema: pa.Schema, keys: Sequence[str]) -> pa.Array:
        """Record keys (strings in the tag store) as an Arrow array of the key column's type."""
        key_type = schema.field(self.source.primary_key).type
        if pa.types.is_integer(key_type):
            return pa.array([int(k) for k in keys], type=key_type)
        if pa.types.is_string(key_type) or pa.types.is_large_string(key_type) or pa.types.is_string_view(key_type):
            return pa.array([str(k) for k in keys], type=key_type)
        raise ValueError(f"source {self.source.name!r}: primary key {self.source.primary_key!r} is {key_type}, "
                         "not an integer or string column")

    def _matching(self, dt: DeltaTable, keys: Sequence[str], columns: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """Rows whose key is in ``keys``, by key: every batch is filtered by Arrow, no SQL text."""
        schema = self._schema(dt)
        wanted = self._key_values(schema, keys)
        pk = self.source.primary_key
        found: dict[str, dict[str, Any]] = {}
        for batch in self._batches(dt, columns or schema.names):
            hits = batch.filter(pc.is_in(batch.column(pk), value_set=wanted))
            for row in hits.to_pylist():
                found[str(row[pk])] = row
        return found

    # -- scan ------------------------------------------------------------------------------

    def scan(self, policy: Policy, *, hasher: SubjectHasher, run_id: str, logical_date: date,
             full_rescan: bool = False, progress: Callable[[int, int], None] | None = None,
             rotate_key: bool = False, catalog_file: str = "catalog") -> ScanStats:
        """Scan the table under the source's guard, so no request runs while its index changes."""
        with source_guard(self.tag_engine, [self.source.name], holder=f"scan of {self.source.name}"):
            return self._scan(policy, hasher=hasher, run_id=run_id, logical_date=logical_date,
                              full_rescan=full_rescan, progress=progress, rotate_key=rotate_key,
                              catalog_file=catalog_file)

    def _check_types(self, schema: pa.Schema, catalog_file: str) -> None:
        key = f"sources.{self.source.name}"
        pk_type = schema.field(self.source.primary_key).type
        if not (pa.types.is_integer(pk_type) or pa.types.is_string(pk_type) or pa.types.is_large_string(pk_type)
                or pa.types.is_string_view(pk_type)):
            raise CatalogError(catalog_file, f"{key}.primary_key",
                               f"column {self.source.primary_key!r} is {pk_type}: the key of a lake table is an "
                               "integer or string column")
        for clock in self.source.clock_columns:
            clock_type = schema.field(clock).type
            if not (pa.types.is_date(clock_type) or pa.types.is_timestamp(clock_type)):
                raise CatalogError(catalog_file, f"{key}.retention_clock",
                                   f"column {clock!r} is {clock_type}, not a date or timestamp column")

    def _scan(self, policy: Policy, *, hasher: SubjectHasher, run_id: str, logical_date: date, full_rescan: bool,
              progress: Callable[[int, int], None] | None, rotate_key: bool, catalog_file: str) -> ScanStats:
        source, tag_engine = self.source, self.tag_engine
        key_reason = key_state(tag_engine, source, hasher, rotate_key)
        started = time.monotonic()
        stats = ScanStats(source=source.name)
        dt = self._open(catalog_file)
        version = dt.version()  # this snapshot is what is read; later commits wait for the next scan
        schema = self._schema(dt)
        columns = {f.name: {"name": f.name, "nullable": f.nullable, "type": f.type} for f in schema}
        stats.schema_findings = schema_drift(source, columns)
        if any(f["finding"] == "missing_column" for f in stats.schema_findings):
            # Tagging without a catalogued column could decide wrongly: leave the tags as they are.
            record_findings(tag_engine, source, stats.schema_findings, run_id)
            stats.mode = "blocked"
            stats.seconds = round(time.monotonic() - started, 3)
            return stats
        check_anonymisable(source, columns, catalog_file)
        self._check_types(schema, catalog_file)

        mark, print_ = choose_mode(tag_engine, source, policy, stats, requested=full_rescan or key_reason is not None,
                                   change_signal=True, first=lambda mark: mark["value"] is None)
        if key_reason:
            stats.full_reason = key_reason
        new_files: list[str] | None = None
        if stats.mode == "incremental":
            reason, new_files = self._appended_files(dt, int(mark["value"]))
            if reason:  # not only appends: read everything, and until that is done the next scan must too
                stats.mode, stats.full_reason = "full", reason
                with tag_engine.begin() as conn:
                    conn.execute(delete(watermark).where(watermark.c.source == source.name))
        with tag_engine.connect() as conn:
            first = conn.execute(select(record_tag.c.record_key).where(record_tag.c.source == source.name).limit(1)).first() is None
            indexed = conn.execute(select(subject_ref.c.record_key).where(subject_ref.c.source == source.name).limit(1)).first() is not None
        build = stats.mode == "full" and indexed  # a full rescan builds its index beside the live one
        ref_target = subject_ref_build if build else subject_ref
        if build:
            with tag_engine.begin() as conn:  # what a crashed rescan left half built
                conn.execute(delete(subject_ref_build).where(subject_ref_build.c.source == source.name))

        tagger = Tagger(source, policy, hasher, run_id, logical_date.year)
        pk = source.primary_key
        wanted = [c for c in source.referenced_columns() if c in columns]
        incremental = stats.mode == "incremental"

        def write(keys: list[str], tags: list[list[Any]], refs: list[list[Any]]) -> None:
            with tag_engine.begin() as conn:
                write_tags(conn, tag_engine, tags, first=first)
                if incremental:
                    refresh_refs(conn, tag_engine, source, keys, refs)
                else:
                    write_refs(conn, tag_engine, refs, fresh=True, target=ref_target)

        seen: set[str] = set()
        untagged = {"no_key": 0, "repeated_key": 0}
        batches = self._batches(dt, wanted) if not incremental else self._file_batches(dt, new_files or [], wanted)
        total = dt.count() if progress and not incremental else 0
        with ChunkWriter(write, threaded=tag_engine.dialect.name == "postgresql") as writer:
            for batch in batches:
                tags: list[list[Any]] = []
                refs: list[list[Any]] = []
                keys: list[str] = []
                rows = batch.to_pylist()
                for row in rows:
                    if row.get(pk) is None:
                        untagged["no_key"] += 1
                        continue
                    key = str(row[pk])
                    if key in seen:  # a key names one record: a second row under it cannot be told apart
                        untagged["repeated_key"] += 1
                        continue
                    seen.add(key)
                    keys.append(key)
                    row_tags, row_refs = tagger.tag(row, key=key)
                    tags += row_tags
                    refs += row_refs
                if keys:
                    writer.submit(keys, tags, refs)
                count_into(stats, len(keys), tagger.take_tally())
                if progress:
                    progress(stats.records, total)
        if untagged["no_key"] or untagged["repeated_key"]:
            # Rows that cannot be tagged are untagged data: a finding (and a validation failure)
            # until the table is fixed, as an unlisted column is.
            stats.schema_findings.append({"column": pk, "finding": "untagged_rows"})
            log.warning("%s: %d rows without %r and %d rows repeating an earlier %r were not tagged",
                        source.name, untagged["no_key"], pk, untagged["repeated_key"], pk)
        record_findings(tag_engine, source, stats.schema_findings, run_id)

        with tag_engine.begin() as conn:
            if stats.mode == "full":  # records gone from the table since the last scan: not seen by this one
                stale = and_(record_tag.c.source == source.name, record_tag.c.run_id != run_id)
                stats.deleted = conn.execute(select(func.count(func.distinct(record_tag.c.record_key))).where(stale)).scalar_one()
                conn.execute(delete(record_tag).where(stale))
                if build:
                    swap_in_index(conn, source)
            record_key_identity(conn, source_scope(source.name), hasher, run_id)
        if stats.mode == "full":
            analyze(tag_engine)
        save_watermark(tag_engine, source, VERSION_MARK, version, print_, run_id)
        stats.seconds = round(time.monotonic() - started, 3)
        return stats

    def _appended_files(self, dt: DeltaTable, since: int) -> tuple[str | None, list[str] | None]:
        """The data files added since version ``since`` when every commit since then appended data
        or was the pipeline's own (its writes update the tag store themselves); else why the table
        must be read in full."""
        version = dt.version()
        if version == since:
            return None, []
        if version < since:
            return f"the table's version went back from {since} to {version} (restored or recreated)", None
        history = {h.get("version"): h for h in dt.history(limit=version - since)}
        for v in range(since + 1, version + 1):
            commit = history.get(v)
            if commit is None:
                return f"the table's history since version {since} is no longer in its log", None
            if commit.get(COMMIT_MARK):
                continue
            operation = str(commit.get("operation", ""))
            params = commit.get("operationParameters") or {}
            mode = str(params.get("mode") or params.get("outputMode") or "").lower()
            if operation in ("WRITE", "STREAMING UPDATE") and mode == "append":
                continue
            if operation not in _NO_DATA_CHANGE:
                return f"{operation or 'a commit'} at version {v}: not only appends since the last scan", None
        protocol = dt.protocol()
        if protocol.reader_features:  # deletion vectors, column mapping...: only the table's engine reads them right
            return f"the table uses reader features ({', '.join(sorted(protocol.reader_features))})", None
        try:
            before = set(_add_paths(self.table(since)))
        except Exception as exc:  # noqa: BLE001 - the old version cannot be loaded: read everything
            log.info("%s: version %d cannot be loaded (%s)", self.source.name, since, exc)
            return f"version {since} of the table can no longer be loaded", None
        return None, [p for p in _add_paths(dt) if p not in before]

    def _file_batches(self, dt: DeltaTable, paths: list[str], columns: list[str]) -> Iterator[pa.RecordBatch]:
        """The rows of some data files of the current version (appended files: no deletion vectors)."""
        if not paths:
            return
        dataset = dt.to_pyarrow_dataset()
        wanted = set(paths)
        fragments = [f for f in dataset.get_fragments() if f.path in wanted]
        subset = pads.FileSystemDataset(fragments, dataset.schema, dataset.format, dataset.filesystem)
        yield from subset.to_batches(columns=columns)

    # -- writes ----------------------------------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[DeltaTable]:
        """The table, under the source's writer lock in the tag store (nightly batches and requests
        never interleave on it)."""
        with self.tag_engine.connect() as lock_conn, lock_conn.begin():
            lock_source(lock_conn, self.source.name)
            yield self.table()

    def _commit(self, what: str) -> CommitProperties:
        return CommitProperties(custom_metadata={COMMIT_MARK: what})

    def _merge(self, dt: DeltaTable, data: pa.Table, what: str) -> Any:
        pk = _q(self.source.primary_key)
        return dt.merge(data, predicate=f"t.{pk} = s.{pk}", source_alias="s", target_alias="t",
                        commit_properties=self._commit(what))

    def erase(self, keys: Sequence[str]) -> Changed:
        if not keys:
            return Changed()
        with self._writing() as dt:
            before = dt.version()
            data = pa.table({self.source.primary_key: self._key_values(self._schema(dt), keys)})
            done = self._merge(dt, data, "erase").when_matched_delete().execute()
            counts = self._purge(dt, before)
        return Changed(int(done.get("num_target_rows_deleted", 0)), counts=counts)

    def anonymise(self, keys: Sequence[str], columns: Sequence[str]) -> Changed:
        if not keys or not columns:
            return Changed()
        updates = {}
        for name in columns:
            col, strategy = f"t.{_q(name)}", self.source.columns[name].anonymise
            if strategy == "null":
                updates[_q(name)] = "NULL"
            elif strategy == "redact":  # the marker travels as data too; a missing value stays missing
                updates[_q(name)] = f"CASE WHEN {col} IS NULL THEN NULL ELSE s.{_q(_REDACTED_COLUMN)} END"
            elif strategy == "email_domain":
                updates[_q(name)] = (f"CASE WHEN strpos({col}, '@') > 0 THEN substr({col}, strpos({col}, '@') + 1) "
                                     f"ELSE {col} END")
        if not updates:
            return Changed()
        with self._writing() as dt:
            before = dt.version()
            data = pa.table({self.source.primary_key: self._key_values(self._schema(dt), keys),
                             _REDACTED_COLUMN: pa.array([REDACTED] * len(keys), pa.string())})
            done = self._merge(dt, data, "anonymise").when_matched_update(updates).execute()
            counts = self._purge(dt, before)
        return Changed(int(done.get("num_target_rows_updated", 0)), counts=counts)

    def change(self, changes: dict[str, RecordChange]) -> Changed:
        """The records are read from the snapshot the MERGE then commits against: a producer's
        commit to the same files in between makes it fail (and the work stays to do)."""
        if not changes:
            return Changed()
        with self._writing() as dt:
            before = dt.version()
            schema = self._schema(dt)
            current = self._matching(dt, list(changes))
            new_rows: dict[str, dict[str, Any]] = {}
            changed_columns: set[str] = set()
            for key, record in current.items():
                new = changes[key](dict(record))
                if new is None:
                    raise ValueError("a record change that drops the record is an erasure: use erase()")
                diff = {c: v for c, v in new.items() if c in record and v != record[c]}
                if diff:
                    new_rows[key] = {**record, **diff}
                    changed_columns |= diff.keys()
            done: dict[str, Any] = {}
            if new_rows:
                pk = self.source.primary_key
                # Every changed row carries each changed column: its new value, or the value it has.
                data = pa.table({c: pa.array([new_rows[k][c] for k in new_rows], type=schema.field(c).type)
                                 for c in [pk, *sorted(changed_columns)]})
                done = self._merge(dt, data, "change").when_matched_update(
                    {_q(c): f"s.{_q(c)}" for c in sorted(changed_columns)}).execute()
            counts = self._purge(dt, before)
        return Changed(int(done.get("num_target_rows_updated", 0)), counts=counts)

    # -- purging what older versions keep ------------------------------------------------

    def _purge(self, dt: DeltaTable, before: int) -> dict[str, int]:
        """Remove every trace of older versions: data files, log entries, bucket versions. Runs
        after every write, also when it changed nothing: a write that crashed before its purge is
        completed by the re-run."""
        ours = _our_versions(dt, before)
        counts = {"files_removed": self._vacuum(dt)}
        ours |= _our_versions(dt, before)
        counts["log_files_removed"] = self._clean_log(dt)
        ours |= _our_versions(dt, before)
        counts["files_removed"] += self._drop_change_data()
        counts["versions_removed"] = self._purge_bucket_versions()
        self._advance_watermark(before, dt.version(), ours)
        return counts

    def _vacuum(self, dt: DeltaTable) -> int:
        """Data files no current row is in, removed now (not after the usual week). The dry run
        lists tombstones older than the retention, already deleted ones too: only files still
        there are counted, and nothing is committed when there are none."""
        doomed = dt.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=True)
        if not doomed:
            return 0
        there = [i for i in self._filesystem().get_file_info(list(doomed)) if i.type != FileType.NotFound]
        if not there:
            return 0
        dt.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False,
                  commit_properties=self._commit("vacuum"))
        return len(there)

    def _drop_change_data(self) -> int:
        """With the change data feed on, a write also keeps the rows it changed or deleted, as they
        were, in files under _change_data/ (which vacuum leaves alone). Once the log is clean no
        remaining commit needs them: every such file that no commit still in the log names goes."""
        fs = self._filesystem()
        found = [i.path for i in fs.get_file_info(FileSelector("_change_data", recursive=True, allow_not_found=True))
                 if i.type == FileType.File]
        if not found:
            return 0
        named: set[str] = set()
        for _, name in self._log_files():
            if name.endswith(".json"):
                with fs.open_input_file(f"_delta_log/{name}") as handle:
                    for line in handle.read().decode("utf-8").splitlines():
                        action = json.loads(line) if line.strip() else {}
                        if "cdc" in action:
                            named.add(str(action["cdc"].get("path", "")))
        doomed = [path for path in found if path not in named]
        for path in doomed:
            fs.delete_file(path)
        return len(doomed)

    def _log_files(self) -> list[tuple[int, str]]:
        found = []
        for info in self._filesystem().get_file_info(FileSelector("_delta_log", allow_not_found=True)):
            name = info.path.rsplit("/", 1)[-1]
            match = _LOG_FILE.match(name)
            if info.type == FileType.File and match:
                found.append((int(match.group(1)), name))
        return found

    def _clean_log(self, dt: DeltaTable) -> int:
        """A checkpoint at the current version, and the log before it removed: old commits hold
        the statistics (minimum and maximum values) of files that held removed rows. delta-rs
        removes log files older than the table's log retention, so the retention is 0 for that
        moment and then what it was. Nothing is done when the log holds only the last clean-up."""
        files = self._log_files()
        if self._log_is_clean(dt, files):
            return 0
        configured = dt.metadata().configuration.get(LOG_RETENTION)
        # A clean-up that crashed left 0 behind: what it replaced is unknown, so the default.
        restore = configured if configured and configured != ZERO_LOG_RETENTION else DEFAULT_LOG_RETENTION
        dt.alter.set_table_properties({LOG_RETENTION: ZERO_LOG_RETENTION}, commit_properties=self._commit("log"))
        dt.create_checkpoint()
        dt.cleanup_metadata()
        dt.alter.set_table_properties({LOG_RETENTION: restore}, commit_properties=self._commit("log"))
        left = {name for _, name in self._log_files()}
        return len([name for _, name in files if name not in left])

    def _log_is_clean(self, dt: DeltaTable, files: list[tuple[int, str]]) -> bool:
        """Only a checkpoint at version c, commit c (retention 0) and commit c + 1 (restored),
        both the pipeline's, and c + 1 is the current version."""
        checkpoints = {v for v, name in files if ".checkpoint" in name}
        commits = {v for v, name in files if name.endswith(".json")}
        if len(checkpoints) != 1:
            return False
        c = next(iter(checkpoints))
        if commits != {c, c + 1} or dt.version() != c + 1 or {v for v, _ in files} != {c, c + 1}:
            return False
        return {c, c + 1} <= _our_versions(dt, c - 1, limit=2)

    def _bucket_prefix(self) -> tuple[str, str]:
        bucket, _, path = self.uri[len("s3://"):].partition("/")
        return bucket, f"{path.strip('/')}/" if path.strip("/") else ""

    def _purge_bucket_versions(self) -> int:
        """In a versioned bucket, deleting a file leaves its data in a noncurrent version: every
        noncurrent version under the table's prefix goes, then the delete markers."""
        assert self.source.lake_table is not None
        if not self.source.lake_table.is_s3:
            return 0
        bucket, prefix = self._bucket_prefix()
        store = self.lake.objects
        versions, markers = _noncurrent(store, bucket, prefix)
        done = store.delete_versions(bucket, versions)
        failures = list(done.failures)
        failed_keys = {f.key for f in failures}
        if markers:  # a marker goes only once the versions under it are gone (else they would come back)
            gone = store.delete_versions(bucket, [(k, v) for k, v in markers if k not in failed_keys])
            failures += gone.failures
        if failures:
            log.error("%s: %d noncurrent version(s) under the table could not be deleted", self.source.name, len(failures))
            raise ObjectDeleteError(failures, DELETE_ATTEMPTS)
        return done.versions

    def _advance_watermark(self, before: int, after: int, ours: set[int]) -> None:
        """When the scan had seen version ``before`` and every commit since is this write's own,
        the tag store already says what the table holds (the caller updates it): the next scan
        starts from ``after`` instead of reading the table again."""
        if after == before or not set(range(before + 1, after + 1)) <= ours:
            return
        with self.tag_engine.begin() as conn:
            conn.execute(update(watermark).where(watermark.c.source == self.source.name,
                                                 watermark.c.tracking_column == VERSION_MARK,
                                                 watermark.c.value == str(before)).values(value=str(after)))

    # -- reading ---------------------------------------------------------------------------

    def read(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not keys:
            return {}
        return self._matching(self.table(), keys)

    def dependents(self) -> list[Dependent]:
        """Delta tables declare no foreign keys."""
        return []

    def referencing(self, column: str, parent_keys: Sequence[str]) -> dict[str, str]:
        """The current version's rows whose ``column`` is one of ``parent_keys``, filtered by Arrow."""
        dt = self.table()
        column_type = self._schema(dt).field(column).type
        values = pa.array([int(k) if pa.types.is_integer(column_type) else str(k) for k in parent_keys],
                          type=column_type if pa.types.is_integer(column_type) else pa.string())
        found: dict[str, str] = {}
        for batch in self._batches(dt, [self.source.primary_key, column]):
            hits = batch.filter(pc.is_in(batch.column(column).cast(values.type), value_set=values))
            found.update(zip(map(str, hits.column(self.source.primary_key).to_pylist()),
                             map(str, hits.column(column).to_pylist())))
        return found

    def find(self, probe: Probe, allowed: set[tuple[str, str]]) -> SourceCheck:
        """Search the current version, then every data file it does not reference (an older
        version's, not yet vacuumed), the transaction log (commits carry column statistics) and,
        in a versioned bucket, every noncurrent version under the table's prefix. Rows are
        picked by Arrow's kernels (``_candidates``: never fewer than ``record_holds`` accepts)
        and only those are confirmed in Python, by ``record_holds`` itself."""
        source = self.source
        identifiers = source.subject.columns()
        check = SourceCheck(source.name, "lake_table", free_text_columns=list(source.free_text_columns),
                            free_text_kinds=[k for k in ("email", "phone", "personnummer") if k in probe.text_patterns()]
                            if source.free_text_columns else [])
        for kind, column in identifiers.items():
            if kind in ("email", "phone", "personnummer") and getattr(probe, {"phone": "phone_national"}.get(kind, kind)):
                check.identifier_columns.setdefault(kind, []).append(column)
        if probe.name and probe.company and "name" in identifiers and "company" in identifiers:
            check.identifier_columns["name_company"] = [f"{identifiers['name']}+{identifiers['company']}"]
        allowed_keys = {key for s, key in allowed if s == source.name}
        dt = self.table()
        wanted = [c for c in dict.fromkeys([source.primary_key, *identifiers.values(), *source.free_text_columns])
                  if c in self._schema(dt).names]
        found: set[str] = set()
        for batch in self._batches(dt, wanted):
            found |= self._holders(batch, probe, allowed_keys)
        check.records_found = len(found)
        check.found_keys = sorted(found)
        if probe.mention_names and source.free_text_columns:
            check.name_mentions = self._name_mentions(dt, probe, allowed_keys | found)

        fs = self._filesystem()
        current = set(_add_paths(dt))
        for info in fs.get_file_info(FileSelector("", recursive=True)):
            if info.type != FileType.File or info.path.startswith("_delta_log/") or not info.path.endswith(".parquet"):
                continue
            if info.path in current:
                continue
            check.objects_read += 1
            with fs.open_input_file(info.path) as handle:
                if self._holders(_read_parquet(handle, wanted), probe, allowed_keys):
                    check.old_versions_left += 1
        # Statistics in the log hold some values of current rows too: of a record allowed to
        # keep the person (held, forwarded), so the log is searched only when none is.
        if not allowed_keys:
            for _, name in self._log_files():
                check.objects_read += 1
                with fs.open_input_file(f"_delta_log/{name}") as handle:
                    text = _log_text(name, handle.read())
                if probe.found_in_text(text):
                    check.old_versions_left += 1
        assert source.lake_table is not None
        if source.lake_table.is_s3:
            self._find_in_bucket_versions(check, probe, allowed_keys, wanted)
        return check

    def _name_mentions(self, dt: Any, probe: Probe, skip: set[str]) -> list[tuple[str, str]]:
        """Keys of current rows whose free text writes one of the person's full names: Arrow
        picks rows holding a name's longest word (lower-cased), Python confirms the name."""
        pk = self.source.primary_key
        names = self._schema(dt).names
        texts = [c for c in self.source.free_text_columns if c in names]
        words = sorted({name_search_term(n).casefold() for n in probe.name_patterns()})
        found: list[tuple[str, str]] = []
        for batch in self._batches(dt, [pk, *texts]):
            mask = None
            for column in texts:
                lowered = pc.utf8_lower(batch.column(column).cast(pa.string()))
                for word in words:
                    hit = pc.fill_null(pc.match_substring(lowered, word), False)
                    mask = hit if mask is None else pc.or_(mask, hit)
            if mask is None:
                continue
            found += [(str(r.get(pk)), name) for r in batch.filter(mask).to_pylist() if str(r.get(pk)) not in skip
                      for name in record_names(r, self.source, probe)]
        return sorted(found)

    def _holders(self, data: pa.Table | pa.RecordBatch, probe: Probe, allowed_keys: set[str]) -> set[str]:
        """Keys of the rows of ``data`` that hold the person and may not keep them."""
        mask = _candidates(data, self.source, probe)
        if mask is None:  # nothing of the person to look for in these columns
            return set()
        pk = self.source.primary_key
        return {str(r.get(pk)) for r in data.filter(mask).to_pylist()
                if record_holds(r, self.source, probe) and str(r.get(pk)) not in allowed_keys}

    def _find_in_bucket_versions(self, check: SourceCheck, probe: Probe, allowed_keys: set[str],
                                 wanted: list[str]) -> None:
        bucket, prefix = self._bucket_prefix()
        store = self.lake.objects
        versions, _ = _noncurrent(store, bucket, prefix)
        for key, version_id in versions:
            body = store.client.get_object(Bucket=bucket, Key=key, VersionId=version_id)["Body"].read()
            check.objects_read += 1
            name = key.rsplit("/", 1)[-1]
            if key.endswith(".parquet") and "/_delta_log/" not in f"/{key}":
                holds = bool(self._holders(_read_parquet(pa.BufferReader(body), wanted), probe, allowed_keys))
            else:
                holds = not allowed_keys and bool(probe.found_in_text(_log_text(name, body)))
            check.old_versions_left += int(holds)


# -- helpers ---------------------------------------------------------------------------------------


def _plain(batch: pa.RecordBatch) -> pa.RecordBatch:
    """String and binary views (what the engine hands out) as plain arrays, which every Arrow
    kernel takes."""
    views = {pa.string_view(): pa.string(), pa.binary_view(): pa.binary()}
    if not any(f.type in views for f in batch.schema):
        return batch
    return batch.cast(pa.schema([f.with_type(views.get(f.type, f.type)) for f in batch.schema]))


def _read_parquet(handle: Any, columns: list[str]) -> pa.Table:
    """The columns of a Parquet file that it has (an older file may lack some)."""
    file = pq.ParquetFile(handle)
    return _plain(file.read(columns=[c for c in columns if c in file.schema_arrow.names]))


# Where Arrow picks the rows that may hold a person. Each test is wider than the Python check it
# stands for (lifecycle.rights.verify.record_holds, which confirms every row picked), so no row
# that check accepts is left out:
# - e-mail, name, company: a value written in ASCII that equals the person's after strip() and
#   lower() / casefold() contains it in any case; any other value is picked (casefold and a few
#   lower-case forms change a text's length, which no Arrow kernel follows);
# - phone, personnummer: every form of the person's ends in the same digits (the national number,
#   the personnummer without its century), so the value's last decimal digits (\p{Nd}; a value
#   whose ``isdigit`` characters make a form has no others) must be those;
# - free text: found_in_text reads a text as a person does (lifecycle.discovery.detect's
#   unicode_view: entities, full-width forms, look-alike letters, invisible characters...). A text
#   of ASCII without '&' and Latin-1 letters reads as written, and every writing of the person in
#   it keeps a part of the e-mail's local part as it is (in any case) and the digits of a number
#   in order with only other characters between them. Any other text is picked.
_PLAIN_TEXT = r"^[\x{0}-\x{25}\x{27}-\x{7f}\x{c0}-\x{d6}\x{d8}-\x{f6}\x{f8}-\x{ff}]*$"
Column = pa.Array | pa.ChunkedArray


def _as_text(column: Column) -> Column | None:
    """The values as Arrow strings when they equal Python's ``str()`` of them; else None."""
    t = column.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return column
    if pa.types.is_integer(t) or pa.types.is_string_view(t) or (
            pa.types.is_dictionary(t) and (pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type))):
        return pc.cast(column, pa.string())
    return None


def _literal(ch: str) -> str:
    return ch if ch.isascii() and ch.isalnum() else f"\\x{{{ord(ch):x}}}"


def _picked(column: Column, test: Callable[[Column], Column]) -> Column:
    text = _as_text(column)
    return pc.is_valid(column) if text is None else test(text)


def _folded(column: Column, value: str) -> Column:
    return _picked(column, lambda t: pc.or_kleene(pc.match_substring(t, value, ignore_case=True),
                                                  pc.invert(pc.string_is_ascii(t))))


def _digits_end(column: Column, digits: str) -> Column:
    """Values whose last decimal digits are ``digits`` (every form of the person's ends so)."""
    pattern = r"\P{Nd}*".join(_literal(ch) for ch in digits) + r"\P{Nd}*$"
    return _picked(column, lambda t: pc.match_substring_regex(t, pattern))


def _mentioned(column: Column, probe: Probe) -> Column | None:
    """Free-text values that may hold a writing of the person (see above)."""
    tests: list[Callable[[Column], Column]] = []
    if probe.email:
        part = max(probe.email.rpartition("@")[0].split("."), key=len)
        tests.append(lambda t: pc.match_substring(t, part, ignore_case=True))
    numbers = [n for n in (probe.phone_national, probe.personnummer and probe.personnummer[2:]) if n]
    if numbers:
        pattern = "|".join("[^0-9]*".join(_literal(ch) for ch in n) for n in numbers)
        tests.append(lambda t: pc.match_substring_regex(t, pattern))
    if not tests:
        return None
    return _picked(column, lambda t: functools.reduce(
        pc.or_kleene, [f(t) for f in tests], pc.invert(pc.match_substring_regex(t, _PLAIN_TEXT))))


def _candidates(data: pa.Table | pa.RecordBatch, source: Source, probe: Probe) -> Column | None:
    """A filter of the rows that may hold the person (see above); None when nothing can."""
    names = set(data.schema.names)
    columns = source.subject.columns()
    masks: list[Column | None] = []
    for kind, name in columns.items():
        if name not in names:
            continue
        if kind == "email" and probe.email:
            masks.append(_folded(data.column(name), probe.email))
        elif kind == "phone" and probe.phone_national:
            masks.append(_digits_end(data.column(name), probe.phone_national))
        elif kind == "personnummer" and probe.personnummer:
            masks.append(_digits_end(data.column(name), probe.personnummer[2:]))
        elif kind == "name" and probe.name and probe.company and columns.get("company") in names:
            masks.append(pc.and_kleene(_folded(data.column(name), probe.name),
                                       _folded(data.column(columns["company"]), probe.company)))
    masks += [_mentioned(data.column(c), probe) for c in source.free_text_columns if c in names]
    found = [m for m in masks if m is not None]
    return functools.reduce(pc.or_kleene, found) if found else None


def _add_paths(dt: DeltaTable) -> list[str]:
    """The data files of a version, relative to the table's folder."""
    actions = pa.table(dt.get_add_actions())
    return [str(p) for p in actions.column("path").to_pylist()]


def _our_versions(dt: DeltaTable, since: int, limit: int | None = None) -> set[int]:
    """Versions after ``since`` still in the log that the pipeline committed."""
    return {int(h["version"]) for h in dt.history(limit=limit or max(dt.version() - since, 1))
            if h.get(COMMIT_MARK) and h.get("version") is not None and int(h["version"]) > since}


def _noncurrent(store: ObjectStore, bucket: str, prefix: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(key, version id) of every noncurrent version, and of every delete marker, under ``prefix``."""
    versions: list[tuple[str, str]] = []
    markers: list[tuple[str, str]] = []
    for page in store.client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        versions += [(v["Key"], v["VersionId"]) for v in page.get("Versions", [])
                     if not v.get("IsLatest") and v.get("VersionId") not in (None, "null")]
        markers += [(m["Key"], m["VersionId"]) for m in page.get("DeleteMarkers", []) if m.get("VersionId")]
    return versions, markers


def _log_text(name: str, body: bytes) -> str:
    """A log file as text to search: commits are JSON lines, checkpoints Parquet."""
    if name.endswith(".parquet"):
        return str(pq.read_table(pa.BufferReader(body)).to_pylist())
    return body.decode("utf-8", errors="replace")
