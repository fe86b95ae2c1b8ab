"""A new source's tags and subject index loaded in bulk (PostgreSQL).

On PostgreSQL the tag table (``lc_record_tag``) and the subject index (``lc_subject_ref``) are
partitioned by source: one partition per scanned source, a default partition for the rest. The
first full scan of a source writes its tags and entries into tables of their own with no index,
so the scan pays for no random B-tree inserts (a million records' 3 M tags cost the server about
25 s of index upkeep against 12 s for building the same indexes once, and the built ones are
40 % smaller); the finish step builds each table's indexes in one sorted pass and attaches it as
the source's partition. Until then the source is not tagged or indexed, as before its first scan.
Tags are loaded that way when the scan is split into key ranges (the workers then share the
server); a first scan in one task creates the source's tag partition with its indexes and writes
into it, since the server keeps those indexes up beside the scan on a core the scan leaves idle.

Stores made before a table was partitioned keep their plain table and the scan's direct writes,
stores made before keys compared bytewise keep the database's collation, and stores made before
the tags' parent index left out tags without a parent keep their full one (it answers the same
queries, and a loaded partition is given its twin); ``python -m lifecycle.tagstore.loading --url ...`` upgrades one, as an explicit step.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, MetaData, String, Table, delete, text

from lifecycle.tagstore.tables import metadata, record_tag, store_metadata, subject_ref

# The tables partitioned by source, each loaded in bulk on a source's first scan.
PARTITIONED: tuple[Table, ...] = (record_tag, subject_ref)
# Memory for each index build of a loaded partition: one sort in memory instead of on disk
# (about 100 bytes an entry: a million records' 3.6 M entries need about 400 MB).
BUILD_MEMORY = "512MB"


def default_partition(parent: Table) -> str:
    """Where rows of sources without a partition of their own go (requests, later scans)."""
    return f"{parent.name}_default"


def load_table_name(source: str, parent: Table = subject_ref) -> str:
    """The table a source's rows of ``parent`` are loaded into, and then its partition: named by
    a digest, since a source name may be longer than PostgreSQL's 63-character identifiers."""
    return f"{parent.name}_{hashlib.sha256(source.encode()).hexdigest()[:16]}"


def load_table(name: str, parent: Table = subject_ref) -> Table:
    """The loading table as a Table, for the scan's writes (the columns of ``parent``)."""
    return Table(name, MetaData(), *(c.copy() for c in parent.c))


def is_partitioned(conn: Connection, parent: Table = subject_ref) -> bool:
    """Whether this store's ``parent`` table is partitioned by source (stores made since)."""
    if conn.dialect.name != "postgresql":
        return False
    kind = conn.execute(text("SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass(:t)"),
                        {"t": parent.name}).scalar()
    return kind == "p"


def create_default_partition(conn: Connection) -> None:
    """The default partition of each partitioned table."""
    for parent in PARTITIONED:
        if is_partitioned(conn, parent):
            conn.execute(text(f"CREATE TABLE IF NOT EXISTS {default_partition(parent)} PARTITION OF {parent.name} DEFAULT"))


def _attached(conn: Connection, name: str, parent: Table) -> bool:
    return conn.execute(text("SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(:n) "
                             "AND inhparent = to_regclass(:p))"), {"n": name, "p": parent.name}).scalar_one()


def _run(conn: Connection, statement: str, *, source: str) -> None:
    """A statement holding ``{source}`` as a string constant (DDL takes no parameters), quoted by
    the driver and run on the connection's own transaction."""
    from psycopg import sql

    driver = conn.connection.driver_connection
    driver.cursor().execute(sql.SQL(statement).format(source=sql.Literal(source)))


def start_load(conn: Connection, source: str, parent: Table = subject_ref) -> str | None:
    """Prepare a bulk load of ``source``'s rows of ``parent``: the name of its empty loading
    table, or None when they are written as before (not PostgreSQL, a table not partitioned, or
    a source that already has its partition). What a crashed load left is dropped first."""
    if not is_partitioned(conn, parent):
        return None
    if _attached(conn, load_table_name(source, parent), parent):
        return None
    return _create_load_table(conn, source, parent)


def create_partition(conn: Connection, source: str, parent: Table = subject_ref) -> None:
    """``source``'s partition of ``parent``, empty and indexed, for writes that go straight in
    (nothing when it has one, or the table is not partitioned)."""
    name = load_table_name(source, parent)
    if not is_partitioned(conn, parent):
        return
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('lifecycle:partition-attach'))"))
    if not _attached(conn, name, parent):
        conn.execute(text(f"DROP TABLE IF EXISTS {name}"))  # a crashed load's leftover
        _run(conn, f"CREATE TABLE {name} PARTITION OF {parent.name} FOR VALUES IN ({{source}})", source=source)


def _create_load_table(conn: Connection, source: str, parent: Table = subject_ref) -> str:
    """The source's loading table, empty (a leftover of the same name is dropped)."""
    name = load_table_name(source, parent)
    conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
    _run(conn, f"CREATE TABLE {name} (LIKE {parent.name} INCLUDING DEFAULTS, "
               f"CONSTRAINT {name}_source CHECK (source = {{source}}))", source=source)
    return name


def forget_loaded(conn: Connection, tables: Sequence[Table], keys: Sequence[str]) -> None:
    """Remove records ``keys`` from loading tables: a retried key range writes them again, and a
    loading table has no unique key to upsert on. (A scan of the table each: retries are rare.)"""
    if keys:
        for table in tables:
            conn.execute(delete(table).where(table.c.record_key.in_(list(keys))))


def finish_load(conn: Connection, source: str, name: str, parent: Table = subject_ref) -> None:
    """Index the loaded rows and attach them as ``source``'s partition of ``parent``, in the
    caller's transaction; nothing when an earlier attempt did it already. Rows of the source
    that went to the default partition meanwhile (a request's, so newer than what the scan read)
    replace their loaded twins first. The caller runs ANALYZE afterwards (the scan's finish does)."""
    # One attach at a time: each takes the default partition's lock last, after writing to it.
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('lifecycle:partition-attach'))"))
    if _attached(conn, name, parent):
        return
    default = default_partition(parent)
    columns = ", ".join(parent.c.keys())
    twins = " AND ".join(f"l.{c.name} = d.{c.name}" for c in parent.primary_key.columns)
    conn.execute(text(f"DELETE FROM {name} l USING {default} d WHERE d.source = :s AND {twins}"), {"s": source})
    conn.execute(text(f"INSERT INTO {name} ({columns}) SELECT {columns} FROM {default} WHERE source = :s"), {"s": source})
    conn.execute(text(f"DELETE FROM {default} WHERE source = :s"), {"s": source})
    conn.execute(text(f"SET LOCAL maintenance_work_mem = '{BUILD_MEMORY}'"))
    _build_indexes(conn, name, parent)
    _run(conn, f"ALTER TABLE {parent.name} ATTACH PARTITION {name} FOR VALUES IN ({{source}})", source=source)


def _build_indexes(conn: Connection, name: str, parent: Table) -> None:
    """The partition's indexes, each the twin of one of the parent's (which ATTACH then adopts)."""
    keys = ", ".join(c.name for c in parent.primary_key.columns)
    conn.execute(text(f"ALTER TABLE {name} ADD PRIMARY KEY ({keys})"))
    for index in parent.indexes:
        columns = ", ".join(c.name for c in index.columns)
        where = _predicate(conn, index.name)
        conn.execute(text(f"CREATE INDEX {name}_{index.name.removeprefix('ix_' + parent.name + '_')} "
                          f"ON {name} ({columns})" + (f" WHERE {where}" if where else "")))


def _predicate(conn: Connection, index: str) -> str | None:
    """The WHERE of the store's partial index ``index``, None for a full one: read from the store,
    since one made before the index was partial keeps its full index, and ATTACH adopts only a twin."""
    return conn.execute(text("SELECT pg_get_expr(i.indpred, i.indrelid) FROM pg_index i "
                             "WHERE i.indexrelid = to_regclass(:index)"), {"index": index}).scalar()


@dataclass
class Upgrade:
    """What upgrading a store changed: the tables rebuilt as a partition per source, the sources
    given a partition, the tables whose text columns now compare bytewise."""

    rebuilt_tables: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    bytewise_tables: list[str] = field(default_factory=list)


def up_to_date(conn: Connection) -> bool:
    """Whether the store has what this version makes (or is not PostgreSQL)."""
    return conn.dialect.name != "postgresql" or (
        all(is_partitioned(conn, parent) for parent in PARTITIONED) and store_metadata(conn) is metadata)


def upgrade_store(engine: Engine, progress: Callable[[int, int, str], None] | None = None) -> Upgrade:
    """Bring a PostgreSQL store made by an earlier version up to date, in one transaction: text
    columns compared bytewise, and the tag table and subject index rebuilt as a partition per
    source (each built in one pass). Nothing when it is up to date. ``progress(done, total,
    source)`` is called after each source's partitions."""
    done = Upgrade()
    with engine.begin() as conn:
        if conn.dialect.name != "postgresql":
            return done
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('lifecycle:tag-store-ddl'))"))
        if up_to_date(conn):
            return done
        bytewise = store_metadata(conn) is metadata
        # A partition key's collation cannot be altered: without bytewise keys both are rebuilt.
        rebuilt = [parent for parent in PARTITIONED if not bytewise or not is_partitioned(conn, parent)]
        if not bytewise:
            done.bytewise_tables = _convert_to_bytewise(conn, skip=rebuilt)
        # Rebuilt from a copy, which spares renaming the old table, its partitions and their
        # indexes out of the way.
        saved: dict[str, list[str]] = {}  # sources of each rebuilt table
        for parent in rebuilt:
            copy = f"{parent.name}_saved"
            conn.execute(text(f"CREATE TEMPORARY TABLE {copy} ON COMMIT DROP AS SELECT * FROM {parent.name}"))
            conn.execute(text(f"DROP TABLE {parent.name} CASCADE"))  # with its partitions, if any
            parent.create(conn)
            saved[parent.name] = list(conn.execute(text(f"SELECT DISTINCT source FROM {copy}")).scalars())
        create_default_partition(conn)
        sources = sorted({source for names in saved.values() for source in names})
        for n, source in enumerate(sources, 1):
            for parent in rebuilt:
                if source in saved[parent.name]:
                    _load_from_copy(conn, source, parent, f"{parent.name}_saved")
            if progress:
                progress(n, len(sources), source)
        for parent in rebuilt:
            conn.execute(text(f"ANALYZE {parent.name}"))
        done.rebuilt_tables, done.sources = [parent.name for parent in rebuilt], sources
        return done


def _load_from_copy(conn: Connection, source: str, parent: Table, copy: str) -> None:
    """``source``'s rows of ``parent`` from its saved copy, as a partition of its own."""
    name = _create_load_table(conn, source, parent)
    columns = ", ".join(parent.c.keys())  # by name: an older table may order them otherwise
    conn.execute(text(f"INSERT INTO {name} ({columns}) SELECT {columns} FROM {copy} WHERE source = :s"), {"s": source})
    finish_load(conn, source, name, parent)


def _convert_to_bytewise(conn: Connection, skip: Sequence[Table]) -> list[str]:
    """Every text column of the store's tables but ``skip``'s (rebuilt apart) made bytewise,
    each table in one statement (its indexes are rebuilt); the tables changed."""
    changed, skipped = [], {table.name for table in skip}
    for table in metadata.sorted_tables:
        if table.name in skipped:
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
        description="Bring a PostgreSQL tag store made by an earlier version up to date: its tag table and "
                    "subject index partitioned by source, its text keys compared bytewise.")
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
    print(f"rebuilt {', '.join(done.rebuilt_tables)}: {len(done.sources)} source(s) with a partition of their own")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
