"""Object storage through boto3: listing, reading and writing records in objects, and removing
every version of an object.

Any S3-compatible store works (the endpoint URL is configurable). Records live in CSV, JSON Lines
or JSON (an array of objects) files, optionally gzip-compressed (`.gz`). A rewrite is one PUT of
the whole new body (S3 writes an object atomically: readers see the old or the new body, never
half of one); old versions are deleted only after the new one is written and verified, so a
crash in between leaves the data recoverable and a re-run converges.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from lifecycle.errors import LifecycleError, MalformedObjectError, ObjectDeleteError  # noqa: F401 - re-exported

log = logging.getLogger(__name__)

DELETE_BATCH = 1000  # the most keys one DeleteObjects call takes
DELETE_ATTEMPTS = 4
CLOCK_METADATA = "lifecycle-clock"  # x-amz-meta-lifecycle-clock: the records' original date
EXTENSIONS = {"csv": (".csv",), "jsonl": (".jsonl", ".ndjson"), "json": (".json",)}


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    etag: str
    last_modified: datetime
    size: int


@dataclass(frozen=True)
class ObjectBody:
    key: str
    body: bytes
    etag: str
    version_id: str | None
    last_modified: datetime
    metadata: dict[str, str]

    def clock(self) -> date:
        """The records' date: kept in metadata when the pipeline rewrote the object."""
        kept = self.metadata.get(CLOCK_METADATA)
        return date.fromisoformat(kept) if kept else self.last_modified.date()


@dataclass(frozen=True)
class DeleteFailure:
    key: str
    version_id: str | None
    code: str


@dataclass
class DeleteResult:
    versions: int = 0
    delete_markers: int = 0
    retries: int = 0
    failures: list[DeleteFailure] = field(default_factory=list)


@dataclass(frozen=True)
class Encryption:
    """Server-side encryption for what the pipeline writes: AES256 (SSE-S3) or aws:kms."""

    algorithm: str | None = None
    kms_key_id: str | None = None

    def put_args(self) -> dict[str, str]:
        args = {"ServerSideEncryption": self.algorithm} if self.algorithm else {}
        if self.algorithm == "aws:kms" and self.kms_key_id:
            args["SSEKMSKeyId"] = self.kms_key_id
        return args


class ObjectStore:
    """A boto3 S3 client with the few operations the pipeline needs."""

    def __init__(self, client: Any, encryption: Encryption = Encryption()) -> None:
        self.client = client
        self.encryption = encryption

    @classmethod
    def connect(cls, *, endpoint_url: str | None, access_key: str | None, secret_key: str | None,
                region: str | None = None, encryption: Encryption = Encryption()) -> ObjectStore:
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3", endpoint_url=endpoint_url or None, aws_access_key_id=access_key, aws_secret_access_key=secret_key,
            region_name=region or "us-east-1",
            # Path-style addressing: S3-compatible stores rarely have wildcard DNS for buckets.
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"}),
        )
        return cls(client, encryption)

    def list(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for o in page.get("Contents", []):
                if o["Key"].endswith("/") and not o["Size"]:
                    continue  # a "folder" marker made by consoles: no data
                yield ObjectInfo(o["Key"], o["ETag"].strip('"'), o["LastModified"], int(o["Size"]))

    def get(self, bucket: str, key: str) -> ObjectBody | None:
        try:
            r = self.client.get_object(Bucket=bucket, Key=key)
        except self.client.exceptions.NoSuchKey:
            return None
        return ObjectBody(key, r["Body"].read(), r["ETag"].strip('"'), r.get("VersionId"), r["LastModified"],
                          dict(r.get("Metadata") or {}))

    def put(self, bucket: str, key: str, body: bytes, metadata: dict[str, str] | None = None,
            content_type: str = "application/octet-stream") -> tuple[str | None, str]:
        """Write an object in one request and check the store received exactly ``body``."""
        r = self.client.put_object(Bucket=bucket, Key=key, Body=body, Metadata=metadata or {},
                                   ContentType=content_type, **self.encryption.put_args())
        etag = r["ETag"].strip('"')
        if self.encryption.algorithm != "aws:kms" and etag != hashlib.md5(body).hexdigest():  # noqa: S324 - S3's ETag
            raise LifecycleError(f"object {key!r} in {bucket!r}: the stored ETag does not match what was written")
        return r.get("VersionId"), etag

    def versions(self, bucket: str, key: str) -> list[dict[str, Any]]:
        """Every version and delete marker of exactly ``key`` (a prefix listing also finds 'key2')."""
        found = []
        for page in self.client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key):
            for v in page.get("Versions", []):
                if v["Key"] == key:
                    found.append({"VersionId": v.get("VersionId"), "IsLatest": v.get("IsLatest", False),
                                  "DeleteMarker": False})
            for m in page.get("DeleteMarkers", []):
                if m["Key"] == key:
                    found.append({"VersionId": m.get("VersionId"), "IsLatest": m.get("IsLatest", False),
                                  "DeleteMarker": True})
        return found

    def purge(self, bucket: str, key: str, keep_latest: bool = False) -> DeleteResult:
        """Delete every version and delete marker of ``key``; with ``keep_latest``, all but the
        current version (in an unversioned bucket that leaves the object as it is)."""
        doomed = [v for v in self.versions(bucket, key) if not (keep_latest and v["IsLatest"] and not v["DeleteMarker"])]
        result = self.delete_versions(bucket, [(key, v["VersionId"]) for v in doomed])
        markers = {v["VersionId"] for v in doomed if v["DeleteMarker"]}
        failed = {f.version_id for f in result.failures}
        result.delete_markers = len(markers - failed)
        result.versions -= result.delete_markers
        return result

    def delete_versions(self, bucket: str, items: list[tuple[str, str | None]]) -> DeleteResult:
        """DeleteObjects in batches of up to 1 000 keys; keys that fail are retried with backoff
        and, if they still fail, returned as failures (never dropped)."""
        result = DeleteResult()
        pending = list(items)
        for attempt in range(DELETE_ATTEMPTS):
            if not pending:
                break
            if attempt:
                result.retries += len(pending)
                time.sleep(min(0.2 * 2 ** attempt, 2.0))
            failed: list[DeleteFailure] = []
            for i in range(0, len(pending), DELETE_BATCH):
                chunk = pending[i:i + DELETE_BATCH]
                objects = [{"Key": k, **({"VersionId": v} if v and v != "null" else {})} for k, v in chunk]
                r = self.client.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": False})
                result.versions += len(r.get("Deleted", []))
                failed += [DeleteFailure(e["Key"], e.get("VersionId"), e.get("Code", "Unknown")) for e in r.get("Errors", [])]
            result.failures = failed
            pending = [(f.key, f.version_id) for f in failed]
        return result

    def is_versioned(self, bucket: str) -> bool:
        return self.client.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled"


# -- records in objects ---------------------------------------------------------------------


def object_format(key: str, expected: str) -> str | None:
    """The format of an object by its name, or None when it is not one its source reads."""
    name = key[:-3] if key.endswith(".gz") else key
    return expected if name.lower().endswith(EXTENSIONS[expected]) else None


def decode_records(fmt: str, key: str, body: bytes) -> tuple[list[dict[str, Any]], list[str]]:
    """Records and field names of an object. Errors name the line, never the content."""
    if key.endswith(".gz"):
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError) as exc:
            raise MalformedObjectError(f"not valid gzip ({type(exc).__name__})") from None
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MalformedObjectError(f"not UTF-8 (byte {exc.start})") from None
    if fmt == "csv":
        return _decode_csv(text)
    if fmt == "jsonl":
        records = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                records.append(_json_record(line, f"line {n}"))
        return records, _fields(records)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedObjectError(f"not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise MalformedObjectError("a JSON object file must hold an array of objects")
    return data, _fields(data)


def _decode_csv(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise MalformedObjectError(f"not valid CSV (line {reader.line_num}: {exc})") from None
    rows = [r for r in rows if r]
    if not rows:
        return [], []
    header, records = rows[0], []
    if len(set(header)) != len(header) or any(not h for h in header):
        raise MalformedObjectError("CSV header has empty or repeated column names")
    for n, row in enumerate(rows[1:], 2):
        if len(row) != len(header):
            raise MalformedObjectError(f"not valid CSV (row {n} has {len(row)} fields, the header {len(header)})")
        records.append({h: (v if v != "" else None) for h, v in zip(header, row)})
    return records, header


def _json_record(line: str, where: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise MalformedObjectError(f"not valid JSON Lines ({where}, column {exc.colno})") from None
    if not isinstance(record, dict):
        raise MalformedObjectError(f"not valid JSON Lines ({where} is not an object)")
    return record


def _fields(records: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(k for r in records for k in r))


def encode_records(fmt: str, key: str, records: list[dict[str, Any]], fields: list[str]) -> bytes:
    if fmt == "csv":
        out = io.StringIO(newline="")
        writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows({f: ("" if r.get(f) is None else r.get(f)) for f in fields} for r in records)
        body = out.getvalue().encode()
    elif fmt == "jsonl":
        body = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records).encode()
    else:
        body = json.dumps(records, ensure_ascii=False, default=str, indent=1).encode()
    return gzip.compress(body, mtime=0) if key.endswith(".gz") else body
