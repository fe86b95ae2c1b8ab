"""Scans and requests of a source never overlap.

A request reads the subject index and the sources, acts, and verifies; a scan rewrites the
index of its source. Both hold the source's guard for their whole duration, so a request never
runs against an index that a scan is rebuilding, and a scan never re-indexes a record that a
request is erasing. The guard is a lock the operating system or database drops when its holder
dies (kill -9 included), so a crash never leaves a source locked:

- PostgreSQL tag store: a session-level advisory lock on a dedicated connection, in the
  two-key space (class, source), apart from the per-transaction writer locks of ``db.lock_source``;
- SQLite tag store: an exclusive ``flock`` on a lock file beside the database, per source.

Guards on several sources are taken in name order, so two holders never deadlock.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from sqlalchemy import Engine, text

log = logging.getLogger(__name__)

_GUARD_CLASS = 0x4C43  # "LC": the advisory-lock class of source guards
WAIT_LOG_SECONDS = 30.0


def _key(source: str) -> int:
    return int.from_bytes(hashlib.sha256(source.encode()).digest()[:4], "big", signed=True)


@contextmanager
def source_guard(tag_engine: Engine, sources: Iterable[str], *, holder: str = "", shared: bool = False) -> Iterator[None]:
    """Hold the guard of every source in ``sources`` until the block ends. ``shared``: the
    partitions of one scan hold it side by side, and a request (exclusive) waits for them all."""
    names = sorted(set(sources))
    with ExitStack() as stack:
        if tag_engine.dialect.name == "postgresql":
            conn = stack.enter_context(tag_engine.connect())
            for name in names:
                _pg_lock(conn, name, holder, shared)
                stack.callback(_pg_unlock, conn, name, shared)
            conn.commit()  # the session lock outlives the transaction; no transaction stays open
        else:
            folder = _lock_folder(tag_engine)
            for name in names:
                stack.enter_context(_file_lock(folder / f"{hashlib.sha256(name.encode()).hexdigest()[:16]}.lock",
                                               name, holder, shared))
        yield


def _pg_lock(conn, name: str, holder: str, shared: bool = False) -> None:  # type: ignore[no-untyped-def]
    args = {"c": _GUARD_CLASS, "k": _key(name)}
    mode = "_shared" if shared else ""
    if conn.execute(text(f"SELECT pg_try_advisory_lock{mode}(:c, :k)"), args).scalar():
        return
    log.info("%s waits for the source guard of %s (a scan or request is running)", holder or "this task", name)
    conn.execute(text(f"SELECT pg_advisory_lock{mode}(:c, :k)"), args)


def _pg_unlock(conn, name: str, shared: bool = False) -> None:  # type: ignore[no-untyped-def]
    mode = "_shared" if shared else ""
    conn.execute(text(f"SELECT pg_advisory_unlock{mode}(:c, :k)"), {"c": _GUARD_CLASS, "k": _key(name)})
    conn.commit()


def _lock_folder(tag_engine: Engine) -> Path:
    database = tag_engine.url.database
    if not database or database == ":memory:":
        raise ValueError("source guards need a file-based SQLite tag store or PostgreSQL")
    folder = Path(database).resolve().parent / (Path(database).name + ".locks")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def _file_lock(path: Path, name: str, holder: str, shared: bool = False) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    try:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("%s waits for the source guard of %s (a scan or request is running)", holder or "this task", name)
            started = time.monotonic()
            while True:
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    time.sleep(0.2)
                    if time.monotonic() - started > WAIT_LOG_SECONDS:
                        log.info("%s still waits for %s", holder or "this task", name)
                        started = time.monotonic()
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
