"""Which secret built the subject index, recorded as a key identity (never the secret).

Every keyed hash in the tag store — index entries, the suppression list — is only meaningful
under the secret that made it. A run or request under another secret would find nothing and
certify that nothing is there, so it stops before reading anything. A deliberate rotation is a
nightly run with ``rotate_key``: every source is rescanned in full under the new secret and
its identity replaced (README: "Rotating the keyed-hash secret").
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone

from sqlalchemy import Connection, Engine, delete, insert, select

from lifecycle.errors import KeyMismatchError
from lifecycle.discovery.identifiers import SubjectHasher
from lifecycle.tagstore import index_key, subject_ref

INSTALLATION = "installation"
_CONSTANT = "lifecycle:key-identity:v1"


def key_id(hasher: SubjectHasher) -> str:
    """A keyed hash of a constant: equal for equal secrets, and reveals nothing of the secret."""
    return hasher.hash("key-identity", _CONSTANT)[:16]


def source_scope(source: str) -> str:
    return f"source:{source}"


def recorded_keys(tag_engine: Engine) -> dict[str, str]:
    with tag_engine.connect() as conn:
        return {r.scope: r.key_id for r in conn.execute(select(index_key.c.scope, index_key.c.key_id))}


def has_index(tag_engine: Engine, source: str) -> bool:
    """Whether the source has entries in the subject index (one indexed probe)."""
    with tag_engine.connect() as conn:
        return conn.execute(select(subject_ref.c.record_key).where(subject_ref.c.source == source).limit(1)).first() is not None


def check_keys(tag_engine: Engine, hasher: SubjectHasher, sources: Iterable[str], *, installation: bool = True) -> None:
    """Stop, naming the scopes, when any of ``sources`` (or the installation's suppression list
    and requests) was indexed under another secret. A source indexed before key identities were
    recorded counts as unknown: its entries cannot be trusted to match this secret."""
    current = key_id(hasher)
    recorded = recorded_keys(tag_engine)
    wanted = [source_scope(s) for s in sorted(set(sources))] + ([INSTALLATION] if installation else [])
    other = [s for s in wanted if s in recorded and recorded[s] != current]
    unknown = [s for s in wanted if s not in recorded and s != INSTALLATION
               and has_index(tag_engine, s.removeprefix("source:"))] if not other else []
    if other:
        raise KeyMismatchError(
            f"the keyed-hash secret is not the one that built the subject index of {', '.join(other)} "
            f"(key identity {current} here, {recorded[other[0]]} recorded): nothing was read or changed. "
            "Use the secret the index was built with, or rotate deliberately (nightly run with rotate_key)")
    if unknown:
        raise KeyMismatchError(
            f"the subject index of {', '.join(unknown)} was built before key identities were recorded, so it "
            "cannot be shown to match this secret: run the nightly with full_rescan (or rotate_key) first")


def record_key_identity(conn: Connection, scope: str, hasher: SubjectHasher, run_id: str | None = None) -> None:
    """Record (or, in a rotation, replace) the key identity of ``scope``; inside the caller's
    transaction, so an index and its identity change together."""
    conn.execute(delete(index_key).where(index_key.c.scope == scope))
    conn.execute(insert(index_key).values(scope=scope, key_id=key_id(hasher), recorded_at=datetime.now(timezone.utc),
                                          run_id=run_id))


def ensure_installation_key(tag_engine: Engine, hasher: SubjectHasher, *, rotate: bool = False) -> None:
    """The installation's identity (suppression list, request ledger) is recorded on first use;
    under another secret it stops, unless this is a deliberate rotation."""
    recorded = recorded_keys(tag_engine).get(INSTALLATION)
    if recorded == key_id(hasher):
        return
    if recorded is not None and not rotate:
        check_keys(tag_engine, hasher, [], installation=True)
    with tag_engine.begin() as conn:
        record_key_identity(conn, INSTALLATION, hasher)
