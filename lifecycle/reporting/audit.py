"""The tamper-evident audit trail: every destructive batch, request outcome, approval and
configuration fingerprint, appended to ``lc_audit_log`` as a hash chain.

Each entry carries the hash of the one before it, and its own hash is
HMAC-SHA256(audit key, prev_hash + canonical JSON of the entry), with an audit key derived from
the installation's keyed-hash secret (never the secret itself, which is stored nowhere). Without
the secret nobody can rewrite an entry and the hashes after it; with it, ``verify`` finds the
first entry that was changed, removed or moved. The trail holds no personal data: sources,
request references, counts and fingerprints only.

A deliberate rotation of the secret (nightly ``rotate_key``) appends a ``key_rotation`` entry,
keyed with the new secret and linked to the last entry of the old one: entries before it keep
their links (seq and prev_hash are still checked) but their content can be checked only with
the old secret.

A chain cannot show, by itself, that its newest entries were cut off: compare the head with
one recorded earlier (every nightly report records it; ``verify --expect-head``).

    python -m lifecycle.reporting.audit verify --tag-store-url URL [--schema S] [--expect-head HASH]
"""

from __future__ import annotations

import hmac
import json
import os
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from sqlalchemy import Connection, Engine, func, insert, select, text

from lifecycle.discovery import SubjectHasher
from lifecycle.tagstore import audit_log

AuditKind = Literal["enforce_batch", "request_outcome", "config_fingerprint", "approval", "key_rotation"]
KEY_ROTATION = "key_rotation"  # entries from here on are keyed with a new secret
GENESIS = "0" * 64  # the prev_hash of the first entry
_KEY_LABEL = b"lifecycle:audit-chain:v1"


def audit_key(hasher_or_key: SubjectHasher | bytes) -> bytes:
    """The audit chain's own key: derived from the installation's secret (a SubjectHasher), so
    the chain's hashes say nothing about the subject references; bytes are taken as that key."""
    if isinstance(hasher_or_key, SubjectHasher):
        return hmac.digest(hasher_or_key.secret, _KEY_LABEL, "sha256")
    if isinstance(hasher_or_key, (bytes, bytearray)) and len(hasher_or_key) >= 16:
        return bytes(hasher_or_key)
    raise ValueError("the audit key is a SubjectHasher or at least 16 bytes")


def environment_audit_key() -> bytes | None:
    """The audit key from the secret in the environment (LIFECYCLE_HASH_SECRET), for callers
    that were given no hasher; None when no secret is set (a weak one is refused)."""
    from lifecycle.config import HASH_SECRET_ENV, hasher_from_secret

    secret = os.environ.get(HASH_SECRET_ENV)
    return audit_key(hasher_from_secret(secret)) if secret else None


def canonical(value: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, UTF-8 kept; dates and the like as strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str)


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes (written as UTC); PostgreSQL in the session's zone."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def entry_hash(key: bytes, prev_hash: str, seq: int, at: datetime, kind: str, subject: str, details: str) -> str:
    body = canonical({"seq": seq, "at": _utc(at).isoformat(timespec="microseconds"), "kind": kind,
                      "subject": subject, "details": json.loads(details)})
    return hmac.digest(key, (prev_hash + body).encode(), "sha256").hex()


def _lock_chain(conn: Connection) -> None:
    """One appender at a time, so two never take the same head. PostgreSQL: an advisory lock
    for the rest of the transaction (per schema: every tag store has its own chain). SQLite: a
    write that changes nothing takes the database's one write lock before the head is read."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('lifecycle:audit-chain:' || current_schema()))"))
    else:
        conn.execute(audit_log.update().where(audit_log.c.seq < 0).values(seq=audit_log.c.seq))


def _append(conn: Connection, key: bytes, kind: str, subject: str, details: dict[str, Any]) -> dict[str, Any]:
    _lock_chain(conn)
    head = conn.execute(select(audit_log.c.seq, audit_log.c.entry_hash).order_by(audit_log.c.seq.desc()).limit(1)).first()
    seq, prev = (head.seq + 1, head.entry_hash) if head else (1, GENESIS)
    stored = canonical(details)
    at = datetime.now(timezone.utc)
    row = dict(seq=seq, at=at, kind=kind, subject=subject, details=stored, prev_hash=prev,
               entry_hash=entry_hash(key, prev, seq, at, kind, subject, stored))
    conn.execute(insert(audit_log).values(**row))
    return row


def append(tag_engine: Engine | Connection, hasher_or_key: SubjectHasher | bytes, kind: AuditKind | str, subject: str,
           details: dict[str, Any]) -> dict[str, Any]:
    """Append one entry and return it. ``tag_engine`` may be a connection in a transaction, so
    the entry commits (or not) with what it records; else the entry has a transaction of its own.
    ``subject`` and ``details`` must hold no personal data: names, counts, keyed references."""
    if not kind or len(kind) > 40:
        raise ValueError(f"audit entry kind {kind!r}: 1 to 40 characters")
    if len(subject) > 250:
        raise ValueError("audit entry subject: at most 250 characters")
    key = audit_key(hasher_or_key)
    if isinstance(tag_engine, Connection):
        return _append(tag_engine, key, kind, subject, details)
    with tag_engine.begin() as conn:
        return _append(conn, key, kind, subject, details)


def rotate_key(tag_engine: Engine, new: SubjectHasher | bytes) -> dict[str, Any] | None:
    """After a deliberate rotation of the secret: a ``key_rotation`` entry under the new key,
    when the newest entry was written under another one (else nothing: this key already writes)."""
    key = audit_key(new)
    with tag_engine.begin() as conn:
        _lock_chain(conn)
        head = conn.execute(select(audit_log).order_by(audit_log.c.seq.desc()).limit(1)).first()
        if head is None or _matches(key, head):
            return None
        return _append(conn, key, KEY_ROTATION, "installation", {"previous_head": head.entry_hash, "previous_seq": head.seq})


@dataclass(frozen=True)
class AuditCheck:
    entries: int
    head: str | None  # the newest entry's hash
    intact: bool
    first_broken: int | None  # seq of the first entry that is wrong (or missing)
    message: str
    keyed_from: int = 1  # entries from this seq on were checked under this secret (the last key rotation)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def chain_head(tag_engine: Engine | Connection) -> tuple[int, str] | None:
    """(seq, entry_hash) of the newest entry, or None while the trail is empty."""
    query = select(audit_log.c.seq, audit_log.c.entry_hash).order_by(audit_log.c.seq.desc()).limit(1)
    if isinstance(tag_engine, Connection):
        row = tag_engine.execute(query).first()
    else:
        with tag_engine.connect() as conn:
            row = conn.execute(query).first()
    return (row.seq, row.entry_hash) if row else None


def _matches(key: bytes, row: Any) -> bool:
    try:
        expected = entry_hash(key, row.prev_hash, row.seq, row.at, row.kind, row.subject, row.details)
    except ValueError:  # details that are not JSON any more
        return False
    return hmac.compare_digest(expected.encode(), str(row.entry_hash).encode())


def verify(tag_engine: Engine, hasher_or_key: SubjectHasher | bytes, *, expect_head: str | None = None) -> AuditCheck:
    """Walk the chain in seq order and name the first entry that is wrong: a seq out of
    sequence (an entry removed or moved), a prev_hash that is not the previous entry's hash, or
    a hash that does not match the entry's content under this secret (changed, or written
    under another secret). ``expect_head``: a head recorded earlier, which must still be in
    the chain (else entries were cut off its end)."""
    key = audit_key(hasher_or_key)
    entries, prev, expected, broken, message = 0, GENESIS, 1, None, ""
    seen_head = expect_head is None
    with tag_engine.connect() as conn:
        keyed_from = conn.execute(select(func.max(audit_log.c.seq)).where(audit_log.c.kind == KEY_ROTATION)).scalar() or 1
        rows = conn.execution_options(yield_per=1000).execute(select(audit_log).order_by(audit_log.c.seq))
        for row in rows:
            entries += 1
            if broken is None:
                if row.seq != expected:
                    broken = min(row.seq, expected)
                    message = (f"entry {expected} is missing: the entry after {expected - 1} is {row.seq} "
                               "(removed or reordered)" if row.seq > expected
                               else f"entry {row.seq} is out of sequence after entry {expected - 1}")
                elif row.prev_hash != prev:
                    broken, message = row.seq, (f"entry {row.seq}: its prev_hash is not the hash of entry {row.seq - 1} "
                                                "(an entry was removed, replaced or reordered)")
                elif row.seq >= keyed_from and not _matches(key, row):
                    broken, message = row.seq, (f"entry {row.seq}: its hash does not match its content "
                                                "(changed, or written under another secret)")
            seen_head = seen_head or row.entry_hash == expect_head
            prev, expected = row.entry_hash, row.seq + 1
    head = prev if entries else None
    if broken is None and not seen_head:
        broken = entries + 1
        message = (f"the earlier head {expect_head} is not in the chain: entries were removed from its end "
                   f"(it now ends at entry {entries})")
    if broken is not None:
        return AuditCheck(entries, head, False, broken, f"audit trail broken at entry {broken}: {message}", keyed_from)
    earlier = f" (entries before {keyed_from} under an earlier secret: links checked)" if keyed_from > 1 else ""
    return AuditCheck(entries, head, True, None, f"audit trail intact: {entries} entries, head {head or '(empty)'}{earlier}",
                      keyed_from)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from lifecycle.config import HASH_SECRET_ENV, hasher_from_secret
    from lifecycle.errors import LifecycleError
    from lifecycle.tagstore import open_tag_store

    parser = argparse.ArgumentParser(prog="python -m lifecycle.reporting.audit",
                                     description="Check the tag store's audit trail (a keyed hash chain).")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("verify", help=f"walk the chain; the secret comes from {HASH_SECRET_ENV}")
    check.add_argument("--tag-store-url", required=True, help="SQLAlchemy URL of the tag store")
    check.add_argument("--schema", default=None, help="PostgreSQL schema of the tag store")
    check.add_argument("--expect-head", default=None, help="a head recorded earlier (a nightly report's audit.head)")
    args = parser.parse_args(argv)
    try:
        hasher = hasher_from_secret(os.environ.get(HASH_SECRET_ENV))
    except LifecycleError as exc:
        print(exc, file=sys.stderr)
        return 2
    result = verify(open_tag_store(args.tag_store_url, schema=args.schema), hasher, expect_head=args.expect_head)
    print(result.message, file=sys.stdout if result.intact else sys.stderr)
    if result.intact:
        print(f"entries: {result.entries}\nhead: {result.head or '-'}")
    return 0 if result.intact else 1


if __name__ == "__main__":
    raise SystemExit(main())
