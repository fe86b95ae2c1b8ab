"""The nightly copy of the audit trail in the artifact bucket, write-once where the store can.

The hash chain shows tampering only to someone who kept an earlier head; a copy that nobody
can change or delete is the stronger witness. Each night the whole chain, up to its head, goes
to the artifact bucket as JSON Lines (one entry a line, exactly the fields that were hashed, so
anyone with the secret can re-check every line), named by the night and the chain's head. In a
bucket with S3 Object Lock the copy is written under COMPLIANCE retention: until the
retain-until date nobody, the bucket's owner included, can delete or shorten it. "Locked" is
said only when the bucket, asked afterwards, confirms that retention on that very version.
Where the store has no Object Lock the copy is written all the same and the result says so.

The trail holds no personal data (sources, keyed request references, counts, fingerprints), so
neither does its copy.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal

from sqlalchemy import Engine, select

from lifecycle.reporting.audit import chain_head
from lifecycle.reporting.sinks import ArtifactSink
from lifecycle.tagstore import audit_log

LOCK_MODE = "COMPLIANCE"
# COMPLIANCE retention can be lengthened later but never shortened, by anybody: a modest
# default that an operator raises is cheaper to correct than one too long.
DEFAULT_LOCK_DAYS = 365
ExportStatus = Literal["locked", "unlocked", "not_confirmed", "empty"]


@dataclass(frozen=True)
class AuditExport:
    """What the night's export did, for the report: never personal data."""

    status: ExportStatus
    message: str  # one plain sentence for the report
    uri: str | None = None  # s3://bucket/key of the copy
    key: str | None = None
    version_id: str | None = None
    entries: int = 0
    head_seq: int | None = None
    head: str | None = None
    lock_mode: str | None = None  # as the bucket reported it on read-back
    retain_until: str | None = None  # ISO 8601 UTC, as the bucket reported it

    @property
    def locked(self) -> bool:
        return self.status == "locked"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "locked": self.locked}


def export_name(day: date, head_seq: int, head: str) -> str:
    """The copy's name under the sink: the night, then the head it ends at (seq and hash)."""
    return f"audit/audit-trail-{day.isoformat()}-seq{head_seq}-{head}.jsonl"


def _utc_text(moment: datetime) -> str:
    """The entry time exactly as it was hashed (UTC, microseconds)."""
    moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    return moment.isoformat(timespec="microseconds")


def entry_lines(tag_engine: Engine, up_to_seq: int) -> Iterator[str]:
    """The chain's entries 1..up_to_seq as JSON lines with the fields that were hashed:
    entry_hash = HMAC(audit key, prev_hash + canonical({seq, at, kind, subject, details}))."""
    query = select(audit_log).where(audit_log.c.seq <= up_to_seq).order_by(audit_log.c.seq)
    with tag_engine.connect() as conn:
        for row in conn.execution_options(yield_per=1000).execute(query):
            yield json.dumps({"seq": row.seq, "at": _utc_text(row.at), "kind": row.kind, "subject": row.subject,
                              "details": json.loads(row.details), "prev_hash": row.prev_hash,
                              "entry_hash": row.entry_hash}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _error_code(exc: Exception) -> str | None:
    """The S3 error code of a botocore ClientError, None for anything else."""
    response = getattr(exc, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def object_lock_enabled(sink: ArtifactSink) -> tuple[bool, str]:
    """Whether the sink's bucket has Object Lock on, and if not, why (for the report)."""
    try:
        conf = sink.store.client.get_object_lock_configuration(Bucket=sink.bucket)
    except Exception as exc:  # noqa: BLE001 - only S3 error codes are answers; anything else is raised
        code = _error_code(exc)
        if code is None:
            raise
        if code == "ObjectLockConfigurationNotFoundError":
            return False, f"bucket {sink.bucket!r} has no Object Lock"
        return False, f"the store did not report Object Lock for bucket {sink.bucket!r} ({code})"
    if conf.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled":
        return True, ""
    return False, f"bucket {sink.bucket!r} has Object Lock turned off"


def _read_retention(sink: ArtifactSink, key: str, version_id: str | None) -> tuple[str | None, datetime | None]:
    """(mode, retain-until) of exactly this version, as the bucket reports it now."""
    args = {"Bucket": sink.bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
    try:
        retention = sink.store.client.get_object_retention(**args).get("Retention", {})
    except Exception as exc:  # noqa: BLE001
        if _error_code(exc) is None:
            raise
        return None, None
    until = retention.get("RetainUntilDate")
    return retention.get("Mode"), until.astimezone(timezone.utc) if until else None


def _existing_copy(sink: ArtifactSink, key: str, md5_hex: str) -> str | None:
    """The version id of a copy already written with this exact body (a re-run of the same
    night at the same head writes nothing new), else None."""
    try:
        head = sink.store.client.head_object(Bucket=sink.bucket, Key=key)
    except Exception as exc:  # noqa: BLE001
        if _error_code(exc) is None:
            raise
        return None
    if head.get("ETag", "").strip('"') != md5_hex:
        return None
    return head.get("VersionId") or "null"


def export_audit_trail(tag_engine: Engine, sink: ArtifactSink, day: date, lock_days: int = DEFAULT_LOCK_DAYS,
                       now: datetime | None = None) -> AuditExport:
    """Write the chain up to its head to ``sink`` (under COMPLIANCE retention for ``lock_days``
    where the bucket has Object Lock) and read the retention back."""
    if lock_days < 1:
        raise ValueError(f"audit export retention: {lock_days} days; at least 1")
    now = now or datetime.now(timezone.utc)
    head = chain_head(tag_engine)
    if head is None:
        return AuditExport("empty", "audit trail empty: nothing exported")
    head_seq, head_hash = head
    body = "".join(line + "\n" for line in entry_lines(tag_engine, head_seq)).encode()
    key = sink.key(export_name(day, head_seq, head_hash))
    uri = f"s3://{sink.bucket}/{key}"
    md5 = hashlib.md5(body)  # noqa: S324 - S3's integrity check, not a security hash
    found = dict(uri=uri, key=key, entries=head_seq, head_seq=head_seq, head=head_hash)
    lockable, why_not = object_lock_enabled(sink)
    version_id = _existing_copy(sink, key, md5.hexdigest())
    if version_id is None:
        put = dict(Bucket=sink.bucket, Key=key, Body=body, ContentType="application/x-ndjson",
                   ContentMD5=base64.b64encode(md5.digest()).decode(),
                   Metadata={"lifecycle-audit-head": head_hash, "lifecycle-audit-seq": str(head_seq)},
                   **sink.store.encryption.put_args())
        if lockable:
            until = now + timedelta(days=lock_days)
            put.update(ObjectLockMode=LOCK_MODE, ObjectLockRetainUntilDate=until)
        version_id = sink.store.client.put_object(**put).get("VersionId")
    found["version_id"] = version_id
    if not lockable:
        return AuditExport("unlocked", f"audit trail exported UNLOCKED to {uri}: {why_not}, so the copy can be "
                                       "changed or deleted like any object", **found)
    mode, until_read = _read_retention(sink, key, version_id)
    if mode != LOCK_MODE or until_read is None or until_read <= now:
        return AuditExport("not_confirmed", f"audit trail exported to {uri}, but the bucket did not confirm "
                                            f"{LOCK_MODE} retention on it (it reports {mode or 'none'})",
                           lock_mode=mode, retain_until=until_read.isoformat() if until_read else None, **found)
    return AuditExport("locked", f"audit trail exported to {uri}, locked ({mode}) until {until_read.isoformat()}",
                       lock_mode=mode, retain_until=until_read.isoformat(), **found)
