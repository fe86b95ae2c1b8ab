"""Search indexes on a PostgreSQL source (lifecycle.stores.search_index): the independent
search of a request uses them (no sequential scan) and finds exactly what a full pass finds,
in every writing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, event

from lifecycle.rights.verify import Probe, verify_in_sources
from lifecycle.stores import create_search_indexes, has_text_indexes, open_stores
from lifecycle.stores.search_index import main as search_index_main
from tests.conftest import PG_URL
from tests.request_world import World, insert, prepare
from tests.test_writings import MESSAGE, SOURCES, WRITINGS, _message_row

PROBE = Probe(email="test.person@exempel.se", phone_national="705551234", personnummer="198504122386",
              mention_names=("test person",))


@pytest.fixture
def pg_world(pg_schema: str, tmp_path) -> World:  # type: ignore[no-untyped-def]
    world = World(PG_URL, pg_schema, PG_URL, pg_schema, str(tmp_path / "reports"))
    prepare(world)
    engine, _ = world.engines()
    for i, (_, (written, _)) in enumerate(WRITINGS.items()):
        source = list(SOURCES)[i % 2]
        insert(engine, source, _message_row(source, 9100 + i, MESSAGE.format(written)))
    insert(engine, "email_threads", _message_row("email_threads", 9090, "Hälsa Test Person från mig."))
    return world


def _found(world: World) -> dict[str, tuple[list[str], list[tuple[str, str]]]]:
    engine, tags = world.engines()
    _, catalog = world.config()
    stores = open_stores(catalog, {"lifecycle_demo": engine}, tags)
    checks = verify_in_sources({s: stores[s] for s in SOURCES}, PROBE, set())
    return {c.source: (sorted(c.found_keys), sorted(c.name_mentions)) for c in checks}


def test_indexed_search_finds_exactly_what_a_full_pass_finds(pg_world: World) -> None:
    engine, _ = pg_world.engines()
    _, catalog = pg_world.config()
    full_pass = _found(pg_world)
    planted = {str(9100 + i) for i in range(len(WRITINGS))}
    assert planted <= {k for keys, _ in full_pass.values() for k in keys}
    made = create_search_indexes(engine, [catalog.source(s) for s in SOURCES])
    assert any("trgm" in m for m in made) and any("disguised" in m for m in made) and any("digits" in m for m in made)
    assert all(has_text_indexes(engine, catalog.source(s)) for s in SOURCES)
    assert _found(pg_world) == full_pass
    assert ("9090", "test person") in full_pass["email_threads"][1]
    assert create_search_indexes(engine, [catalog.source(s) for s in SOURCES]) == made  # safe to re-run


def _captured_queries(engine: Engine, run: Any) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and ("~" in statement or " LIKE " in statement):
            seen.append((statement, parameters))
    event.listen(engine, "before_cursor_execute", capture)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    return seen


def test_the_search_reads_through_the_indexes_not_the_whole_table(pg_world: World) -> None:
    engine, tags = pg_world.engines()
    _, catalog = pg_world.config()
    source = catalog.source("email_threads")
    create_search_indexes(engine, [source])
    store = open_stores(catalog, {"lifecycle_demo": engine}, tags)["email_threads"]
    queries = [q for q in _captured_queries(engine, lambda: store.find(PROBE, set())) if "email_threads" in q[0]]
    assert len(queries) == 2  # the identifiers, then the name
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SET enable_seqscan = off")  # a plan that cannot use the indexes still scans
        for statement, parameters in queries:
            cursor.execute("EXPLAIN " + statement, parameters)
            plan = "\n".join(r[0] for r in cursor.fetchall())
            assert "Seq Scan" not in plan, plan
            assert "lc_search_trgm_email_threads_body" in plan, plan
        cursor.execute("EXPLAIN " + queries[0][0], queries[0][1])
        plan = "\n".join(r[0] for r in cursor.fetchall())
        assert "lc_search_disguised_email_threads_body" in plan and "lc_search_digits_email_threads_body" in plan, plan
    finally:
        raw.close()


def test_search_indexes_are_refused_clearly_off_postgresql(tmp_path) -> None:  # type: ignore[no-untyped-def]
    world = World(f"sqlite:///{tmp_path / 's.db'}", None, f"sqlite:///{tmp_path / 't.db'}", None, str(tmp_path / "r"))
    engine, _ = world.engines()
    _, catalog = world.config()
    with pytest.raises(ValueError, match="PostgreSQL sources; this connection is sqlite"):
        create_search_indexes(engine, [catalog.source("email_threads")])
    assert has_text_indexes(engine, catalog.source("email_threads")) is False


def test_the_command_prints_the_ddl_for_review(pg_schema: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert search_index_main(["--url", PG_URL, "--schema", pg_schema, "--source", "email_threads", "--print"]) == 0
    out = capsys.readouterr().out
    assert "USING gin ((lower(body))" in out and "gin_trgm_ops" in out and "WHERE body ~ '[" in out
