"""Engines for sources and the tag store, on SQLite or PostgreSQL alike (and sources on MySQL or
MariaDB)."""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from urllib.parse import quote

from sqlalchemy import Engine, MetaData, create_engine, event, inspect, make_url, text
from sqlalchemy.exc import OperationalError

from lifecycle.config import plain_identifier
from lifecycle.tagstore.loading import create_default_partition
from lifecycle.tagstore.tables import metadata, store_metadata


_ENGINES: OrderedDict[tuple[int, str, str | None], Engine] = OrderedDict()
# Databases a process talks to at once: the sources and the tag store. Beyond this the least
# recently used engine's idle connections are closed (it stays usable, with a fresh pool).
ENGINE_CACHE_SIZE = 6


def make_engine(url: str, *, schema: str | None = None) -> Engine:
    """An engine; ``schema`` puts unqualified names in that PostgreSQL schema (search_path).
    One engine (and connection pool) per database and schema in a process, for the few most
    recently used: every task and request asks for its engines anew, and a pool per call would
    hold idle connections until the server refuses more. Keyed by process id too, as a pool must
    never cross a fork."""
    key = (os.getpid(), url, schema)
    if key in _ENGINES:
        _ENGINES.move_to_end(key)
        return _ENGINES[key]
    engine = _ENGINES[key] = _new_engine(url, schema)
    while len(_ENGINES) > ENGINE_CACHE_SIZE:
        _, oldest = _ENGINES.popitem(last=False)
        oldest.dispose()
    return engine


# MySQL / MariaDB: a pooled connection idle past the server's wait_timeout (8 h by default, far
# less on many hosted servers) is closed by the server; recycle well before, and ping on checkout.
MYSQL_POOL_RECYCLE = 1800
# A streamed scan (server-side cursor) is aborted by the server when the client has not read for
# net_write_timeout seconds (60 by default) while it tags a chunk and writes it to the tag store.
MYSQL_NET_WRITE_TIMEOUT = 3600
MYSQL_LOCK_TIMEOUT = 3600  # seconds a writer waits for another writer of the same source


def mysql_url(login: str | None, password: str | None, host: str | None, port: int | None,
              database: str | None, *, conn_id: str = "?") -> str:
    """The SQLAlchemy URL of a MySQL or MariaDB Connection (conn_type mysql; schema = the
    database): PyMySQL, with the full UTF-8 character set (MySQL's "utf8" holds only 3 bytes)."""
    if not database:
        raise ValueError(f"connection {conn_id!r}: a mysql connection names its database in schema")
    auth = quote(login or "", safe="")
    if password:
        auth += ":" + quote(password, safe="")
    where = f"{host or 'localhost'}:{port or 3306}"
    return f"mysql+pymysql://{auth + '@' if auth else ''}{where}/{quote(database, safe='')}?charset=utf8mb4"


def _new_engine(url: str, schema: str | None) -> Engine:
    kwargs: dict = {}
    parsed = make_url(url)
    if parsed.get_backend_name() in ("mysql", "mariadb"):
        # The isolation level stays the server's (InnoDB: REPEATABLE READ): every source
        # transaction of the pipeline is one statement, or a read and its write under the
        # source's lock (lock_source), so nothing depends on it; and READ COMMITTED would make
        # every write fail on a server that logs binlog_format=STATEMENT.
        kwargs.update(pool_pre_ping=True, pool_recycle=MYSQL_POOL_RECYCLE)
        if schema:  # in MySQL a schema is a database
            plain_identifier(schema)
            parsed = parsed.set(database=schema)
        if parsed.get_driver_name() in ("pymysql", "mysqldb") and "init_command" not in parsed.query:
            kwargs["connect_args"] = {"init_command": f"SET SESSION net_write_timeout = {MYSQL_NET_WRITE_TIMEOUT}"}
    if parsed.get_backend_name() in ("postgresql", "mysql", "mariadb"):
        # Few idle connections per engine: a process talks to several databases, and a server
        # has a limit on clients shared with every other process (overflow covers bursts).
        kwargs.update(pool_size=2, max_overflow=12)
    if parsed.get_backend_name() == "postgresql":
        kwargs["pool_pre_ping"] = True
        if schema:
            # In the URL rather than connect_args, so anything rebuilt from engine.url
            # (Great Expectations makes an engine of its own) lands in the same schema.
            plain_identifier(schema)
            parsed = parsed.update_query_dict({"options": f"-csearch_path={schema}"})
    engine = create_engine(parsed, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if engine.dialect.name in ("mysql", "mariadb"):
        event.listen(engine, "checkin", _release_mysql_locks)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets the report read while a scan writes; a busy timeout rides out short locks.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # Foreign keys as the schema declares them: SQLite ignores them unless asked per connection.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def open_tag_store(url: str, *, schema: str | None = None) -> Engine:
    """The tag store engine, with its schema and tables created if missing."""
    postgres = make_url(url).get_backend_name() == "postgresql"
    if postgres and schema:
        plain_identifier(schema)
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
                tables = store_metadata(conn)
                tables.create_all(conn)
                create_default_partition(conn)
                _add_new_columns(conn, tables)
            break
        except OperationalError as exc:
            # SQLite: another process created a table between our check and our CREATE; check again.
            if "already exists" not in str(exc) or attempt == attempts - 1:
                raise
    return engine


def _add_new_columns(conn, tables: MetaData) -> None:  # type: ignore[no-untyped-def]
    """A tag store made by an earlier version lacks the nullable columns added since: add them
    (create_all only creates missing tables), and their indexes."""
    inspector = inspect(conn)
    for table in tables.sorted_tables:
        present = {c["name"] for c in inspector.get_columns(table.name, schema=table.schema)}
        missing = [c for c in table.columns if c.name not in present]
        for column in missing:
            if not column.nullable:
                raise RuntimeError(f"tag store table {table.name} lacks column {column.name}, which cannot be added in place")
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))
        if missing:
            for index in table.indexes:
                if any(c in missing for c in index.columns):
                    index.create(conn, checkfirst=True)


def lock_source(conn, source_name: str) -> None:  # type: ignore[no-untyped-def]
    """Serialise writers of one source for the rest of the transaction.

    PostgreSQL: a transaction-scoped advisory lock keyed by the source name, taken by both the
    nightly enforcement batches and the data-subject requests, so they never interleave on the
    same source. MySQL / MariaDB: a named lock (GET_LOCK) held until the connection is returned
    to the pool. SQLite already allows one writer at a time (with a busy timeout to wait)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext(%(name)s))", {"name": f"lifecycle:{source_name}"})
    elif conn.dialect.name in ("mysql", "mariadb"):
        # GET_LOCK is held by the session, not the transaction: it is released when the
        # connection goes back to the pool, right after the transaction ended
        # (_release_mysql_locks), or by the server when the session ends (a crash).
        # Lock names are server-wide and at most 64 characters: a digest of the source name.
        name = "lifecycle:" + hashlib.sha256(source_name.encode()).hexdigest()[:40]
        got = conn.exec_driver_sql("SELECT GET_LOCK(%(name)s, %(timeout)s)",
                                   {"name": name, "timeout": MYSQL_LOCK_TIMEOUT}).scalar()
        if got != 1:
            raise TimeoutError(f"source {source_name!r}: another writer held its lock for {MYSQL_LOCK_TIMEOUT} s")
        conn.info.setdefault(_MYSQL_LOCKS, []).append(name)


_MYSQL_LOCKS = "lifecycle_locks"


def _release_mysql_locks(dbapi_connection, record) -> None:  # type: ignore[no-untyped-def]
    names = record.info.pop(_MYSQL_LOCKS, None)
    if names and dbapi_connection is not None:
        cursor = dbapi_connection.cursor()
        try:
            for name in names:  # one RELEASE_LOCK per GET_LOCK: the locks count re-entries
                cursor.execute("SELECT RELEASE_LOCK(%s)", (name,))
        finally:
            cursor.close()
