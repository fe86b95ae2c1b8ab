"""What the benchmarks share about where their data lives: a scratch schema (PostgreSQL) or
database (MySQL / MariaDB) of their own, dropped afterwards, and the demo's table definitions
for sources built on MySQL / MariaDB."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, MetaData, create_engine, make_url, text

from lifecycle.tagstore import db as lifecycle_db
from demo.company import build_tables


def is_mysql(url: str) -> bool:
    """MySQL or MariaDB (where a schema is a database)."""
    return make_url(url).get_backend_name() in ("mysql", "mariadb")


@contextmanager
def scratch(url: str, prefix: str, *, name: str | None = None, keep: bool = False) -> Iterator[str]:
    """A PostgreSQL schema, or a MySQL / MariaDB database, ``<prefix>_<random>`` (or ``name``),
    created empty and dropped with everything in it at the end, whatever happened (unless ``keep``)."""
    name = name or f"{prefix}_{uuid.uuid4().hex[:8]}"
    mysql = is_mysql(url)
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4" if mysql else f'CREATE SCHEMA "{name}"'))
    try:
        yield name
    finally:
        try:
            if not keep:
                # Pools of lifecycle.tagstore.db.make_engine on the scratch space: an idle MySQL connection
                # using the database would not stop the DROP, but its pool has no further use.
                for key, engine in list(lifecycle_db._ENGINES.items()):
                    if key[1] == url and key[2] == name:
                        engine.dispose()
                        del lifecycle_db._ENGINES[key]
                drop = f"DROP DATABASE IF EXISTS `{name}`" if mysql else f'DROP SCHEMA "{name}" CASCADE'
                with admin.begin() as conn:
                    conn.execute(text(drop))
                print(f"dropped {'database' if mysql else 'schema'} {name}")
        finally:
            admin.dispose()


def server(engine: Engine) -> str:
    """The database server of an engine, as people name it: ``MariaDB 10.11``, ``PostgreSQL 15``."""
    with engine.connect():  # the dialect learns the server's version on the first connection
        pass
    dialect = engine.dialect
    name = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}.get(dialect.name, "MySQL")
    if getattr(dialect, "is_mariadb", False):
        name = "MariaDB"
    version = ".".join(str(v) for v in (dialect.server_version_info or ())[:2])
    return f"{name} {version}".strip()


def create_demo_tables(engine: Engine, *names: str) -> None:
    """Empty tables with the demo's columns and types (demo.company: integer ``id`` key, indexed
    ``updated_at``), to be filled set-based by the caller."""
    metadata = MetaData()
    tables = build_tables(metadata)
    metadata.create_all(engine, tables=[tables[n] for n in names])
