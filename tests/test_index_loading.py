"""The tags and subject index loaded in bulk on PostgreSQL (lifecycle.tagstore.loading): a first
scan fills tables of their own without indexes, the finish step indexes and attaches each as the
source's partition; a crashed load is redone from scratch; a store made before partitioning is
converted by an explicit step that keeps every tag and entry."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Index, MetaData, Table, text

from demo.company import generate
from lifecycle.config.catalog import load_catalog
from lifecycle.config.policy import load_policy
from lifecycle.discovery.scan import begin_scan, finish_scan, scan_range, scan_source
from lifecycle.discovery.subjects import locate, subject_hashes
from lifecycle.tagstore.db import make_engine, open_tag_store
from lifecycle.tagstore.loading import load_table_name, upgrade_store
from lifecycle.tagstore.tables import record_tag, subject_ref
from tests.conftest import PG_URL

TODAY = date(2026, 11, 25)
SOURCES = ("contact_form_submissions", "email_threads")


@pytest.fixture
def world(pg_schema: str, policy_path: Path, catalog_path: Path, hasher):  # type: ignore[no-untyped-def]
    generate(PG_URL, rows=60, seed=5, as_of=TODAY, schema=pg_schema)
    policy = load_policy(policy_path)
    catalog = load_catalog(catalog_path, policy)
    engine, tags = make_engine(PG_URL, schema=pg_schema), open_tag_store(PG_URL, schema=pg_schema)

    def scan(name: str, run: str = "r1"):  # type: ignore[no-untyped-def]
        return scan_source(catalog.source(name), policy, source_engine=engine, tag_engine=tags, hasher=hasher,
                           run_id=run, logical_date=TODAY)

    return engine, tags, scan, catalog, policy


def _entries(tags) -> list[tuple]:  # type: ignore[no-untyped-def]
    with tags.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT subject_hash, source, record_key, field, kind, category, free_text, person FROM lc_subject_ref "
            "ORDER BY subject_hash, source, record_key, field"))]


def _tags(tags) -> list[tuple]:  # type: ignore[no-untyped-def]
    """Every tag row, without the run that wrote it."""
    columns = ", ".join(c for c in record_tag.c.keys() if c != "run_id")
    with tags.connect() as conn:
        return [tuple(r) for r in conn.execute(text(f"SELECT {columns} FROM lc_record_tag ORDER BY source, record_key, category"))]


def _partitions(tags, parent: Table = subject_ref) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """Each partition of ``parent``, with the names of its indexes."""
    with tags.connect() as conn:
        rows = conn.execute(text(
            "SELECT c.relname, coalesce(array_agg(i.indexrelid::regclass::text ORDER BY 1) "
            "FILTER (WHERE i.indexrelid IS NOT NULL), '{}') FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid "
            "LEFT JOIN pg_index i ON i.indrelid = c.oid WHERE h.inhparent = to_regclass(:parent) "
            "GROUP BY c.relname"), {"parent": parent.name})
        return {name: list(indexes) for name, indexes in rows}


def _email_of(engine, table: str, column: str) -> str:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL ORDER BY id LIMIT 1")).scalar_one()


def test_a_first_scan_loads_the_source_into_an_indexed_partition_of_its_own(world, hasher) -> None:  # type: ignore[no-untyped-def]
    engine, tags, scan, _catalog, _policy = world
    for name in SOURCES:
        stats = scan(name)
        assert stats.subject_refs > 0
    parts = _partitions(tags)
    for name in SOURCES:
        own = load_table_name(name)
        assert own in parts
        assert len(parts[own]) == 1 + len(subject_ref.indexes)  # primary key and the record index
        # One task writes its tags straight into the source's partition, made with its indexes.
        assert len(_partitions(tags, record_tag)[load_table_name(name, record_tag)]) == 1 + len(record_tag.indexes)
    assert parts["lc_subject_ref_default"] is not None
    with tags.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM lc_subject_ref_default")).scalar_one() == 0
        by_partition = dict(conn.execute(text("SELECT tableoid::regclass::text, count(*) FROM lc_subject_ref GROUP BY 1")).all())
    assert set(by_partition) == {load_table_name(n) for n in SOURCES}
    # The index answers lookups as before: a person's e-mail finds their form.
    email = _email_of(engine, "contact_form_submissions", "email")
    found = {(l.source, l.field) for l in locate(tags, subject_hashes(hasher, {"email": email}, 2026))}
    assert ("contact_form_submissions", "email") in found
    # A later full scan (a catalog change, say) rebuilds the entries beside the live partition.
    before = _entries(tags)
    scan("contact_form_submissions", run="r2")
    assert _entries(tags) == before
    assert set(_partitions(tags)) == set(parts)


def test_a_split_first_scan_loads_the_tags_into_a_partition_the_same_as_direct_writes_make(  # type: ignore[no-untyped-def]
        world, hasher) -> None:
    from lifecycle.discovery.partitions import scan_partitioned

    engine, tags, scan, catalog, policy = world
    for name in SOURCES:  # in key ranges of 20 rows: the tags are loaded in bulk
        stats = scan_partitioned(catalog.source(name), policy, source_engine=engine, tag_engine=tags, hasher=hasher,
                                 run_id="r1", logical_date=TODAY, partition_rows=20)
        assert stats.tags > 0
    parts = _partitions(tags, record_tag)
    for name in SOURCES:  # the primary key and both indexes, adopted by the parent's
        assert len(parts[load_table_name(name, record_tag)]) == 1 + len(record_tag.indexes)
    with tags.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM lc_record_tag_default")).scalar_one() == 0
    loaded = _tags(tags)

    # The same sources scanned in one task into a store whose tag table is plain (an earlier
    # version's): the scan copies its tags straight into the table, and they are the same rows.
    _make_unpartitioned(tags, like=record_tag)
    with tags.begin() as conn:
        conn.execute(text("TRUNCATE lc_record_tag, lc_subject_ref, lc_watermark, lc_index_key"))
    for name in SOURCES:
        scan(name, run="r2")
    assert _partitions(tags, record_tag) == {}
    assert _tags(tags) == loaded and len(loaded) > 0


def test_a_crashed_load_is_dropped_and_redone_and_leaves_the_index_as_a_clean_scan(world, hasher) -> None:  # type: ignore[no-untyped-def]
    engine, tags, scan, catalog, policy = world
    source = catalog.source("contact_form_submissions")
    plan = begin_scan(source, policy, source_engine=engine, tag_engine=tags, hasher=hasher, run_id="crashed", split=True)
    assert (plan.load, plan.tag_load) == (load_table_name(source.name), load_table_name(source.name, record_tag))
    scan_range(plan, source, policy, source_engine=engine, tag_engine=tags, hasher=hasher,
               logical_date=TODAY, lo=None, hi=30)  # then the worker died: no finish
    assert load_table_name(source.name) not in _partitions(tags)
    assert load_table_name(source.name, record_tag) not in _partitions(tags, record_tag)
    with tags.connect() as conn:
        assert conn.execute(text(f"SELECT count(*) FROM {plan.load}")).scalar_one() > 0
        assert conn.execute(text(f"SELECT count(*) FROM {plan.tag_load}")).scalar_one() > 0
        assert conn.execute(text("SELECT count(*) FROM lc_record_tag")).scalar_one() == 0  # not tagged until finished
    scan(source.name, run="r2")
    crashed_then_clean = _entries(tags), _tags(tags)

    with tags.begin() as conn:  # the same source scanned once, cleanly, into an empty store
        conn.execute(text(f"DROP TABLE {plan.load}, {plan.tag_load}"))
        conn.execute(text("TRUNCATE lc_watermark, lc_index_key"))
    scan(source.name, run="r3")
    assert crashed_then_clean == (_entries(tags), _tags(tags))
    assert all(len(rows) > 0 for rows in crashed_then_clean)


def test_finishing_twice_attaches_once(world, hasher) -> None:  # type: ignore[no-untyped-def]
    engine, tags, _scan, catalog, policy = world
    source = catalog.source("contact_form_submissions")
    plan = begin_scan(source, policy, source_engine=engine, tag_engine=tags, hasher=hasher, run_id="r1", split=True)
    assert plan.tag_load and plan.load
    part = scan_range(plan, source, policy, source_engine=engine, tag_engine=tags, hasher=hasher, logical_date=TODAY)
    finish_scan(plan, source, [part], source_engine=engine, tag_engine=tags, hasher=hasher)
    entries, tag_rows = _entries(tags), _tags(tags)
    finish_scan(plan, source, [part], source_engine=engine, tag_engine=tags, hasher=hasher)  # a retried finish task
    assert (_entries(tags), _tags(tags)) == (entries, tag_rows) and len(entries) > 0 and len(tag_rows) > 0


def _predicates(tags, partition: str) -> dict[str, str | None]:  # type: ignore[no-untyped-def]
    """The WHERE of each index of ``partition`` (None: a full index), by the parent index it is attached to."""
    with tags.connect() as conn:
        return dict(conn.execute(text(
            "SELECT h.inhparent::regclass::text, pg_get_expr(i.indpred, i.indrelid) FROM pg_index i "
            "JOIN pg_inherits h ON h.inhrelid = i.indexrelid WHERE i.indrelid = to_regclass(:p)"), {"p": partition}).all())


@pytest.mark.parametrize("store", ["new", "earlier"])
def test_a_loaded_partition_has_the_twin_of_the_stores_parent_index(world, hasher, store) -> None:  # type: ignore[no-untyped-def]
    from lifecycle.discovery.partitions import scan_partitioned

    engine, tags, _scan, catalog, policy = world
    if store == "earlier":  # made before the index left out tags without a parent
        with tags.begin() as conn:
            conn.execute(text("DROP INDEX ix_lc_record_tag_parent"))
            conn.execute(text("CREATE INDEX ix_lc_record_tag_parent ON lc_record_tag (source, parent_key)"))
    source = catalog.source("contact_form_submissions")
    scan_partitioned(source, policy, source_engine=engine, tag_engine=tags, hasher=hasher, run_id="r1",
                     logical_date=TODAY, partition_rows=20)
    partition = load_table_name(source.name, record_tag)
    # ATTACH adopted the loaded table's indexes: none was built twice.
    assert len(_partitions(tags, record_tag)[partition]) == 1 + len(record_tag.indexes)
    expected = "(parent_key IS NOT NULL)" if store == "new" else None
    assert _predicates(tags, partition) == {"lc_record_tag_pkey": None, "ix_lc_record_tag_status_deadline": None,
                                            "ix_lc_record_tag_parent": expected}


def _make_unpartitioned(tags, like: Table = subject_ref) -> None:  # type: ignore[no-untyped-def]
    """``like``'s table (the subject index by default) as an earlier version made it: one plain
    table with ``like``'s columns (and collation) and indexes, the same rows."""
    with tags.begin() as conn:
        conn.execute(text(f"CREATE TABLE saved AS SELECT * FROM {like.name}"))
        conn.execute(text(f"DROP TABLE {like.name} CASCADE"))
        plain = Table(like.name, MetaData(), *(c.copy() for c in like.c))
        for index in like.indexes:
            Index(index.name, *(plain.c[c.name] for c in index.columns))
        plain.create(conn)
        conn.execute(text(f"INSERT INTO {like.name} SELECT * FROM saved"))
        conn.execute(text("DROP TABLE saved"))


def test_the_command_converts_with_a_line_per_source_then_has_nothing_to_do(world, pg_schema, capsys) -> None:  # type: ignore[no-untyped-def]
    from lifecycle.tagstore.loading import main

    _engine, tags, scan, _catalog, _policy = world
    for name in SOURCES:
        scan(name)
    _make_unpartitioned(tags)
    assert main(["--url", PG_URL, "--schema", pg_schema]) == 0
    out = capsys.readouterr()
    assert out.err.splitlines() == [f"[{n}/2] {name}: partition built" for n, name in enumerate(sorted(SOURCES), 1)]
    assert "2 source(s)" in out.out and "bytewise" not in out.out  # its keys compared bytewise already
    assert main(["--url", PG_URL, "--schema", pg_schema]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_an_unpartitioned_store_is_converted_keeping_every_entry(world, hasher) -> None:  # type: ignore[no-untyped-def]
    engine, tags, scan, _catalog, _policy = world
    for name in SOURCES:
        scan(name)
    entries = _entries(tags)
    _make_unpartitioned(tags)
    assert _partitions(tags) == {}
    open_tag_store(PG_URL, schema=tags.url.query["options"].removeprefix("-csearch_path="))  # opening converts nothing
    assert _partitions(tags) == {}

    reported: list[tuple[int, int, str]] = []
    done = upgrade_store(tags, lambda *step: reported.append(step))
    assert (done.sources, done.bytewise_tables) == (sorted(SOURCES), [])
    assert reported == [(n, len(SOURCES), name) for n, name in enumerate(sorted(SOURCES), 1)]
    assert _entries(tags) == entries
    assert set(_partitions(tags)) == {load_table_name(n) for n in SOURCES} | {"lc_subject_ref_default"}
    assert upgrade_store(tags).sources == []  # converted once
    # The scans go on as before on the converted store.
    email = _email_of(engine, "email_threads", "sender_email")
    assert {l.source for l in locate(tags, subject_hashes(hasher, {"email": email}, 2026))} >= {"email_threads"}
    scan("email_threads", run="r2")
    assert _entries(tags) == entries


def test_a_store_whose_tags_are_not_partitioned_has_only_them_rebuilt_keeping_every_tag(  # type: ignore[no-untyped-def]
        world, pg_schema, capsys) -> None:
    from lifecycle.tagstore.loading import main

    _engine, tags, scan, _catalog, _policy = world
    for name in SOURCES:
        scan(name)
    entries, tag_rows, index_parts = _entries(tags), _tags(tags), _partitions(tags)
    _make_unpartitioned(tags, like=record_tag)  # the previous version's store
    assert main(["--url", PG_URL, "--schema", pg_schema]) == 0
    out = capsys.readouterr()
    assert "rebuilt lc_record_tag: 2 source(s)" in out.out and "bytewise" not in out.out
    assert (_entries(tags), _tags(tags), _partitions(tags)) == (entries, tag_rows, index_parts)
    assert set(_partitions(tags, record_tag)) == {load_table_name(n, record_tag) for n in SOURCES} | {"lc_record_tag_default"}
    assert main(["--url", PG_URL, "--schema", pg_schema]) == 0
    assert "nothing to do" in capsys.readouterr().out
    scan("email_threads", run="r2")  # a full rescan upserts into the source's partition
    assert _tags(tags) == tag_rows


def test_a_source_name_that_is_not_an_identifier_is_quoted_not_run(world) -> None:  # type: ignore[no-untyped-def]
    _engine, tags, _scan, _catalog, _policy = world
    from lifecycle.tagstore.loading import finish_load, start_load

    awkward = "x'); DROP TABLE lc_record_tag; --"
    with tags.begin() as conn:
        name = start_load(conn, awkward)
        assert name == load_table_name(awkward)
        conn.execute(text(f"INSERT INTO {name} (subject_hash, source, record_key, field, kind, category, free_text) "
                          "VALUES ('h', :s, '1', 'email', 'email', 'contact_details', false)"), {"s": awkward})
        finish_load(conn, awkward, name)
    with tags.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM lc_subject_ref WHERE source = :s"), {"s": awkward}).scalar_one() == 1
        assert conn.execute(text("SELECT to_regclass('lc_record_tag') IS NOT NULL")).scalar_one()


def _collations(tags) -> dict[str, set[str]]:  # type: ignore[no-untyped-def]
    """The collation of every text column of the store's own tables (partitions left out)."""
    with tags.connect() as conn:
        rows = conn.execute(text(
            "SELECT c.relname, coll.collname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema() "
            "JOIN pg_collation coll ON coll.oid = a.attcollation "
            "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname LIKE 'lc\\_%' AND a.attnum > 0 "
            "AND a.atttypid = 'varchar'::regtype"))
        found: dict[str, set[str]] = {}
        for table, collation in rows:
            found.setdefault(table, set()).add(collation)
        return found


def test_a_new_store_compares_its_keys_bytewise_so_a_key_prefix_uses_the_index(world) -> None:  # type: ignore[no-untyped-def]
    _engine, tags, scan, _catalog, _policy = world
    from lifecycle.tagstore.tables import metadata

    collations = _collations(tags)
    assert set(collations) == set(metadata.tables)
    assert {c for found in collations.values() for c in found} == {"C"}
    scan("contact_form_submissions")
    with tags.begin() as conn:
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(conn.execute(text(
            "EXPLAIN SELECT record_key FROM lc_record_tag WHERE source = 'contact_form_submissions' "
            "AND record_key LIKE '1%'")).scalars())
    assert "(record_key)::text >= '1'::text) AND ((record_key)::text < '2'::text)" in plan  # the prefix bounds the B-tree


def test_a_store_made_with_the_databases_collation_keeps_it_for_what_is_added(pg_schema, policy_path, catalog_path,  # type: ignore[no-untyped-def]
                                                                             hasher) -> None:
    from lifecycle.tagstore.loading import create_default_partition
    from lifecycle.tagstore.tables import _linguistic

    earlier = _linguistic()  # an older version's store: every table but the last one added
    engine = make_engine(PG_URL, schema=pg_schema)
    with engine.begin() as conn:
        earlier.create_all(conn, tables=[t for t in earlier.sorted_tables if t.name != "lc_analytics_state"])
        create_default_partition(conn)
    tags = open_tag_store(PG_URL, schema=pg_schema)
    collations = _collations(tags)
    assert "lc_analytics_state" in collations
    assert {c for found in collations.values() for c in found} == {"default"}
    # It scans and answers lookups as before.
    generate(PG_URL, rows=40, seed=5, as_of=TODAY, schema=pg_schema)
    policy = load_policy(policy_path)
    source = load_catalog(catalog_path, policy).source("contact_form_submissions")
    stats = scan_source(source, policy, source_engine=engine, tag_engine=tags, hasher=hasher, run_id="r1",
                        logical_date=TODAY)
    assert stats.subject_refs > 0
    email = _email_of(engine, "contact_form_submissions", "email")
    assert ("contact_form_submissions", "email") in {
        (l.source, l.field) for l in locate(tags, subject_hashes(hasher, {"email": email}, 2026))}
    assert {c for found in _collations(tags).values() for c in found} == {"default"}


@pytest.mark.parametrize("partitioned", [False, True], ids=["plain-index", "partitioned-index"])
def test_a_store_with_the_databases_collation_is_upgraded_keeping_every_tag_and_entry(  # type: ignore[no-untyped-def]
        pg_schema, policy_path, catalog_path, hasher, capsys, partitioned) -> None:
    from lifecycle.tagstore.loading import create_default_partition, main
    from lifecycle.tagstore.tables import _linguistic

    earlier = _linguistic()
    engine = make_engine(PG_URL, schema=pg_schema)
    with engine.begin() as conn:
        earlier.create_all(conn)
        create_default_partition(conn)
    tags = open_tag_store(PG_URL, schema=pg_schema)
    generate(PG_URL, rows=40, seed=5, as_of=TODAY, schema=pg_schema)
    policy = load_policy(policy_path)
    catalog = load_catalog(catalog_path, policy)

    def scan(name: str, run: str):  # type: ignore[no-untyped-def]
        return scan_source(catalog.source(name), policy, source_engine=engine, tag_engine=tags, hasher=hasher,
                           run_id=run, logical_date=TODAY)

    for name in SOURCES:
        scan(name, "r1")
    if not partitioned:  # in the database's collation, as the versions before partitioning made them
        _make_unpartitioned(tags, like=earlier.tables[subject_ref.name])
        _make_unpartitioned(tags, like=earlier.tables[record_tag.name])

    def tag_rows() -> list[tuple]:  # type: ignore[type-arg]
        with tags.connect() as conn:
            return [tuple(r) for r in conn.execute(text("SELECT * FROM lc_record_tag ORDER BY source, record_key, category"))]

    entries, tag_table = _entries(tags), tag_rows()
    assert {c for found in _collations(tags).values() for c in found} == {"default"}
    assert main(["--url", PG_URL, "--schema", pg_schema]) == 0
    out = capsys.readouterr()
    assert "table(s) converted" in out.out and "2 source(s)" in out.out
    assert {c for found in _collations(tags).values() for c in found} == {"C"}
    assert (_entries(tags), tag_rows()) == (entries, tag_table)
    assert set(_partitions(tags)) == {load_table_name(n) for n in SOURCES} | {"lc_subject_ref_default"}
    assert set(_partitions(tags, record_tag)) == {load_table_name(n, record_tag) for n in SOURCES} | {"lc_record_tag_default"}
    assert main(["--url", PG_URL, "--schema", pg_schema]) == 0
    assert "nothing to do" in capsys.readouterr().out
    # Lookups and scans go on as before on the upgraded store.
    email = _email_of(engine, "email_threads", "sender_email")
    assert {l.source for l in locate(tags, subject_hashes(hasher, {"email": email}, 2026))} >= {"email_threads"}
    scan("email_threads", "r2")
    assert _entries(tags) == entries

