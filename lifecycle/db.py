"""Engines for sources and the tag store, on SQLite or PostgreSQL alike."""

from __future__ import annotations

import os

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.exc import OperationalError

from lifecycle.catalog import _identifier
from lifecycle.tables import metadata


_ENGINES: dict[tuple[int, str, str | None], Engine] = {}


def make_engine(url: str, *, schema: str | None = None) -> Engine:
    """An engine; ``schema`` puts unqualified names in that PostgreSQL schema (search_path).
    One engine (and connection pool) per database and schema in a process: every task and
    request asks for its engines anew, and a pool per call would hold idle connections until
    the server refuses more. Keyed by process id too, as a pool must never cross a fork."""
    key = (os.getpid(), url, schema)
    if key not in _ENGINES:
        _ENGINES[key] = _new_engine(url, schema)
    return _ENGINES[key]


def _new_engine(url: str, schema: str | None) -> Engine:
    kwargs: dict = {}
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        kwargs["pool_pre_ping"] = True
        if schema:
            # In the URL rather than connect_args, so anything rebuilt from engine.url
            # (Great Expectations makes an engine of its own) lands in the same schema.
            _identifier(schema)
            parsed = parsed.update_query_dict({"options": f"-csearch_path={schema}"})
    engine = create_engine(parsed, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets the report read while a scan writes; a busy timeout rides out short locks.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
    # The digits of a value (include/sql/sqlite/digits.sql): PostgreSQL has regexp_replace.
    dbapi_connection.create_function("lc_digits", 1, _digits, deterministic=True)


def _digits(value: object) -> str | None:
    return None if value is None else "".join(ch for ch in str(value) if "0" <= ch <= "9")


def open_tag_store(url: str, *, schema: str | None = None) -> Engine:
    """The tag store engine, with its schema and tables created if missing."""
    postgres = make_url(url).get_backend_name() == "postgresql"
    if postgres and schema:
        _identifier(schema)
        bootstrap = create_engine(url)
        with bootstrap.begin() as conn:
            # Parallel tasks open the store at once: CREATE ... IF NOT EXISTS still races in the catalog.
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('lifecycle:tag-store-ddl'))"))
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        bootstrap.dispose()
    engine = make_engine(url, schema=schema)
    attempts = 3 * len(metadata.tables)  # each lost race means another opener made one more table
    for attempt in range(attempts):
        try:
            with engine.begin() as conn:
                if postgres:  # one creator at a time; the others then find the tables there
                    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('lifecycle:tag-store-ddl'))"))
                metadata.create_all(conn)
            break
        except OperationalError as exc:
            # SQLite: another process created a table between our check and our CREATE; check again.
            if "already exists" not in str(exc) or attempt == attempts - 1:
                raise
    return engine


def lock_source(conn, source_name: str) -> None:  # type: ignore[no-untyped-def]
    """Serialise writers of one source for the rest of the transaction.

    PostgreSQL: a transaction-scoped advisory lock keyed by the source name, taken by both the
    nightly enforcement batches and the data-subject requests, so they never interleave on the
    same source. SQLite already allows one writer at a time (with a busy timeout to wait)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext(%(name)s))", {"name": f"lifecycle:{source_name}"})
