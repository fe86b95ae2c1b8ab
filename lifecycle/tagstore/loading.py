"""A new source's subject index loaded in bulk (PostgreSQL).

On PostgreSQL the subject index (``lc_subject_ref``) is partitioned by source: one partition per
scanned source, a default partition for the rest. The first full scan of a source writes its
entries into a table of its own with no index, so the scan pays for no random B-tree inserts
(the keyed hash that leads the primary key spreads them over the whole index); the finish step
builds that table's indexes in one sorted pass each and attaches it as the source's partition.
Until then the source is not indexed, as before its first scan.

Stores made before the index was partitioned keep their plain table and the scan's direct writes,
and stores made before keys compared bytewise keep the database's collation;
``python -m lifecycle.tagstore.loading --url ...`` upgrades one, as an explicit step.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, MetaData, String, Table, text

from lifecycle.tagstore.tables import metadata, store_metadata, subject_ref

# Memory for each index build of a loaded partition: one sort in memory instead of on disk
# (about 100 bytes an entry: a million records' 3.6 M entries need about 400 MB).
BUILD_MEMORY = "512MB"
DEFAULT_PARTITION = f"{subject_ref.name}_default"


def load_table_name(source: str) -> str:
    """The table a source's entries are loaded into, and then its partition: named by a digest,
    since a source name may be longer than PostgreSQL's 63-character identifiers."""
    return f"{subject_ref.name}_{hashlib.sha256(source.encode()).hexdigest()[:16]}"


def load_table(name: str) -> Table:
    """The loading table as a Table, for the scan's writes (the index's columns)."""
    return Table(name, MetaData(), *(c.copy() for c in subject_ref.c))


def is_partitioned(conn: Connection) -> bool:
    """Whether this store's subject index is partitioned by source (stores made since)."""
    if conn.dialect.name != "postgresql":
        return False
    kind = conn.execute(text("SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass(:t)"),
                        {"t": subject_ref.name}).scalar()
    return kind == "p"


def create_default_partition(conn: Connection) -> None:
    """Where entries of sources without a partition of their own go (requests, later scans)."""
    if is_partitioned(conn):
        conn.execute(text(f"CREATE TABLE IF NOT EXISTS {DEFAULT_PARTITION} PARTITION OF {subject_ref.name} DEFAULT"))


def _attached(conn: Connection, name: str) -> bool:
    return conn.execute(text("SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(:n) "
                             "AND inhparent = to_regclass(:p))"), {"n": name, "p": subject_ref.name}).scalar_one()


def _run(conn: Connection, statement: str, *, source: str) -> None:
    """A statement holding ``{source}`` as a string constant (DDL takes no parameters), quoted by
    the driver and run on the connection's own transaction."""
    from psycopg import sql

    driver = conn.connection.driver_connection
    driver.cursor().execute(sql.SQL(statement).format(source=sql.Literal(source)))


def start_load(conn: Connection, source: str) -> str | None:
    """Prepare a bulk load of ``source``'s entries: the name of its empty loading table, or None
    when its entries are written as before (not PostgreSQL, a store not partitioned, or a source
    that already has its partition). What a crashed load left is dropped first."""
    if not is_partitioned(conn):
        return None
    if _attached(conn, load_table_name(source)):
        return None
    return _create_load_table(conn, source)


def _create_load_table(conn: Connection, source: str) -> str:
    """The source's loading table, empty (a leftover of the same name is dropped)."""
    name = load_table_name(source)
    conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
    _run(conn, f"CREATE TABLE {name} (LIKE {subject_ref.name} INCLUDING DEFAULTS, "
               f"CONSTRAINT {name}_source CHECK (source = {{source}}))", source=source)
    return name


def finish_load(conn: Connection, source: str, name: str) -> None:
    """Index the loaded entries and attach them as ``source``'s partition, in the caller's
    transaction; nothing when an earlier attempt did it already. Entries of the source that
    went to the default partition meanwhile (a request's) are moved in first. The caller runs
    ANALYZE afterwards (the scan's finish does, for the whole index)."""
    # One attach at a time: each takes the default partition's lock last, after writing to it.
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('lifecycle:subject-index-attach'))"))
    if _attached(conn, name):
        return
    columns = ", ".join(subject_ref.c.keys())
    conn.execute(text(f"INSERT INTO {name} ({columns}) SELECT {columns} FROM {DEFAULT_PARTITION} d WHERE d.source = :s "
                      f"AND NOT EXISTS (SELECT 1 FROM {name} l WHERE l.subject_hash = d.subject_hash "
                      "AND l.record_key = d.record_key AND l.field = d.field)"), {"s": source})
    conn.execute(text(f"DELETE FROM {DEFAULT_PARTITION} WHERE source = :s"), {"s": source})
    conn.execute(text(f"SET LOCAL maintenance_work_mem = '{BUILD_MEMORY}'"))
    _build_indexes(conn, name)
    _run(conn, f"ALTER TABLE {subject_ref.name} ATTACH PARTITION {name} FOR VALUES IN ({{source}})", source=source)


def _build_indexes(conn: Connection, name: str) -> None:
    """The partition's indexes, each the twin of one of the parent's (which ATTACH then adopts)."""
    keys = ", ".join(c.name for c in subject_ref.primary_key.columns)
    conn.execute(text(f"ALTER TABLE {name} ADD PRIMARY KEY ({keys})"))
    for index in subject_ref.indexes:
        columns = ", ".join(c.name for c in index.columns)
        conn.execute(text(f"CREATE INDEX {name}_{index.name.removeprefix('ix_' + subject_ref.name + '_')} "
                          f"ON {name} ({columns})"))


@dataclass
class Upgrade:
    """What upgrading a store changed: the sources given a partition, the tables whose text
    columns now compare bytewise."""

    sources: list[str] = field(default_factory=list)
    bytewise_tables: list[str] = field(default_factory=list)


def up_to_date(conn: Connection) -> bool:
    """Whether the store has what this version makes (or is not PostgreSQL)."""
    return conn.dialect.name != "postgresql" or (is_partitioned(conn) and store_metadata(conn) is metadata)


def upgrade_store(engine: Engine, progress: Callable[[int, int, str], None] | None = None) -> Upgrade:
    """Bring a PostgreSQL store made by an earlier version up to date, in one transaction: text
    columns compared bytewise, and the subject index rebuilt as a partition per source (each
    built in one pass). Nothing when it is up to date. ``progress(done, total, source)`` is
    called after each source's partition."""
    done = Upgrade()
    with engine.begin() as conn:
        if conn.dialect.name != "postgresql":
            return done
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('lifecycle:tag-store-ddl'))"))
        if up_to_date(conn):
            return done
        if store_metadata(conn) is not metadata:
            done.bytewise_tables = _convert_to_bytewise(conn)
        # The index is rebuilt from a copy: a partition key's collation cannot be altered, and a
        # copy spares renaming the old table, its partitions and their indexes out of the way.
        saved = f"{subject_ref.name}_saved"
        conn.execute(text(f"CREATE TEMPORARY TABLE {saved} ON COMMIT DROP AS SELECT * FROM {subject_ref.name}"))
        conn.execute(text(f"DROP TABLE {subject_ref.name} CASCADE"))  # with its partitions, if any
        subject_ref.create(conn)
        create_default_partition(conn)
        sources = list(conn.execute(text(f"SELECT DISTINCT source FROM {saved} ORDER BY source")).scalars())
        columns = ", ".join(subject_ref.c.keys())  # by name: an older table may order them otherwise
        for n, source in enumerate(sources, 1):
            name = _create_load_table(conn, source)
            conn.execute(text(f"INSERT INTO {name} ({columns}) SELECT {columns} FROM {saved} WHERE source = :s"),
                         {"s": source})
            finish_load(conn, source, name)
            if progress:
                progress(n, len(sources), source)
        conn.execute(text(f"ANALYZE {subject_ref.name}"))
        done.sources = sources
        return done


def _convert_to_bytewise(conn: Connection) -> list[str]:
    """Every text column of the store's tables but the subject index's (rebuilt apart) made
    bytewise, each table in one statement (its indexes are rebuilt); the tables changed."""
    changed = []
    for table in metadata.sorted_tables:
        if table.name == subject_ref.name:
            continue
        present = set(conn.execute(text("SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(:t) "
                                        "AND attnum > 0 AND NOT attisdropped"), {"t": table.name}).scalars())
        # The declared type, which on PostgreSQL names the bytewise collation.
        clauses = [f"ALTER COLUMN {c.name} TYPE {c.type.compile(dialect=conn.dialect)}"
                   for c in table.columns if type(c.type) is String and c.name in present]
        if clauses:
            conn.execute(text(f"ALTER TABLE {table.name} {', '.join(clauses)}"))
            changed.append(table.name)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lifecycle.tagstore.loading",
        description="Bring a PostgreSQL tag store made by an earlier version up to date: its subject index "
                    "partitioned by source, its text keys compared bytewise.")
    parser.add_argument("--url", required=True, help="SQLAlchemy URL of the tag store")
    parser.add_argument("--schema", help="PostgreSQL schema of the tag store")
    args = parser.parse_args(argv)
    from lifecycle.tagstore.db import make_engine

    def progress(done: int, total: int, source: str) -> None:
        print(f"[{done}/{total}] {source}: partition built", file=sys.stderr, flush=True)

    engine = make_engine(args.url, schema=args.schema)
    with engine.connect() as conn:
        if up_to_date(conn):
            print("nothing to do: the store is up to date (or not PostgreSQL)")
            return 0
    done = upgrade_store(engine, progress)
    if done.bytewise_tables:
        print(f"text keys compare bytewise: {len(done.bytewise_tables)} table(s) converted")
    print(f"rebuilt the subject index: {len(done.sources)} source(s) with a partition of their own")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
