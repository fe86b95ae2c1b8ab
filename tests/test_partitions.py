"""Partitioned scans (lifecycle.discovery.partitions) on SQLite and PostgreSQL: key ranges that
cover the table once, the same tag store and subject index as one whole-table scan through
first scans, full rescans and incremental nights, and a failed partition that leaves the
watermark and the live index alone until a retry of that partition alone completes the night."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, Table, create_engine, func, select, text

import lifecycle.discovery.scan as scan_module
from demo.company import generate
from lifecycle.config.catalog import load_catalog
from lifecycle.config.policy import load_policy
from lifecycle.discovery.partitions import (
    PartitionsIncompleteError, finish_partitions, key_ranges, plan_partitions, run_partition, scan_partitioned,
)
from lifecycle.discovery.scan import scan_source
from lifecycle.enforcement import (
    batch_ranges, build_plan, enforce_source, merge_stats, plan_batches, register_run, summarise_plan,
)
from lifecycle.tagstore.db import make_engine, open_tag_store
from lifecycle.tagstore.tables import record_tag, subject_ref, watermark
from tests.conftest import PG_URL

TODAY = date(2026, 11, 25)
LATER = datetime(2026, 11, 25, 23, 0)
ROWS = 240  # contact forms; ranges of 50 rows: five partitions
SMALL = 50


@pytest.fixture
def second_tag_store(db, tmp_path: Path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    """A second, empty tag store beside the test's: the whole-table scans go to one, the
    partitioned ones to the other, over the same source tables."""
    if db.kind == "sqlite":
        yield open_tag_store(f"sqlite:///{tmp_path / 'partitioned.db'}")
        return
    schema = f"lc_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield open_tag_store(PG_URL, schema=schema)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def world(db, tag_db, second_tag_store, policy_path: Path, catalog_path: Path, hasher):  # type: ignore[no-untyped-def]
    generate(db.url, rows=ROWS, seed=3, as_of=TODAY, schema=db.schema)
    policy = load_policy(policy_path)
    catalog = load_catalog(catalog_path, policy)
    return db.engine(), tag_db.tag_store(), second_tag_store, catalog, policy


def _snapshot(tags: Engine, source: str) -> dict[str, Any]:
    """Everything a scan leaves for a source, without the run that wrote it."""
    with tags.connect() as conn:
        rows = {tuple(r) for r in conn.execute(select(*[c for c in record_tag.c if c.name != "run_id"])
                                               .where(record_tag.c.source == source))}
        refs = {tuple(r) for r in conn.execute(select(subject_ref).where(subject_ref.c.source == source))}
        mark = conn.execute(select(watermark.c.value, watermark.c.fingerprint)
                            .where(watermark.c.source == source)).first()
    return {"tags": rows, "refs": refs, "watermark": tuple(mark) if mark else None}


def _table_sources(catalog) -> list:  # type: ignore[no-untyped-def]
    return [s for s in catalog.sources.values() if s.table is not None]


def test_key_ranges_cover_every_key_once_and_small_or_text_keyed_tables_stay_whole(world, db) -> None:  # type: ignore[no-untyped-def]
    engine, _, _, catalog, _ = world
    forms = catalog.source("contact_form_submissions")
    ranges = key_ranges(engine, forms, SMALL)
    assert len(ranges) == 5 and ranges[0][0] is None and ranges[-1][1] is None
    assert all(hi == lo for (_, hi), (lo, _) in zip(ranges, ranges[1:]))  # adjacent, no gap, no overlap
    ids = Table("contact_form_submissions", MetaData(), autoload_with=engine).c.id
    with engine.connect() as conn:
        counts = [conn.execute(select(ids).where(*([ids >= lo] if lo is not None else []),
                                                 *([ids < hi] if hi is not None else []))).all() for lo, hi in ranges]
    assert sum(len(c) for c in counts) == ROWS and all(30 <= len(c) <= 70 for c in counts)
    assert key_ranges(engine, forms, ROWS) == [(None, None)]  # not above the target: one task
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE coded (code VARCHAR(20) PRIMARY KEY)"))
        conn.execute(text("INSERT INTO coded (code) VALUES " + ", ".join(f"('k{i}')" for i in range(300))))
    coded = forms.model_copy(update={"table": "coded", "primary_key": "code"})
    assert key_ranges(engine, coded, SMALL) == [(None, None)]


def test_partitioned_scans_leave_exactly_what_one_scan_leaves(world, hasher) -> None:  # type: ignore[no-untyped-def]
    engine, whole, split, catalog, policy = world
    sources = _table_sources(catalog)

    def night(run: str, **kw: Any) -> dict[str, tuple[Any, Any]]:
        out = {}
        for source in sources:
            one = scan_source(source, policy, source_engine=engine, tag_engine=whole, hasher=hasher, run_id=run,
                              logical_date=TODAY, **kw)
            parts = scan_partitioned(source, policy, source_engine=engine, tag_engine=split, hasher=hasher, run_id=run,
                                     logical_date=TODAY, partition_rows=SMALL, **kw)
            out[source.name] = (one, parts)
        return out

    def assert_same(scans: dict[str, tuple[Any, Any]]) -> None:
        for name, (one, parts) in scans.items():
            assert (parts.mode, parts.full_reason, parts.records, parts.tags, parts.subject_refs, parts.deleted,
                    parts.by_category_basis) == (one.mode, one.full_reason, one.records, one.tags, one.subject_refs,
                                                 one.deleted, one.by_category_basis), name
            assert _snapshot(split, name) == _snapshot(whole, name), name

    first = night("n1")
    assert_same(first)
    plan = plan_partitions(catalog.source("contact_form_submissions"), policy, source_engine=engine,
                           tag_engine=split, hasher=hasher, run_id="n2", full_rescan=True, partition_rows=SMALL)
    assert len(plan) == 5  # the contact forms did run in partitions
    assert first["contact_form_submissions"][1].records == ROWS and _snapshot(whole, "contact_form_submissions")["refs"]

    # Changes, deletions and a new record, then a full rescan (index built beside the live one
    # and swapped in; deleted records dropped) and an incremental night (one partition).
    forms = Table("contact_form_submissions", MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        conn.execute(forms.update().where(forms.c.id.in_([3, 120, 200])).values(updated_at=LATER,
                                                                                  email="ny.adress@exempel.se"))
        conn.execute(forms.delete().where(forms.c.id.in_([12, 130])))
    rescan = night("n2", full_rescan=True)
    assert rescan["contact_form_submissions"][0].deleted == 2
    assert_same(rescan)
    with engine.begin() as conn:
        conn.execute(forms.update().where(forms.c.id == 7).values(updated_at=datetime(2026, 11, 26, 1, 0),
                                                                  email="annan@exempel.se"))
        conn.execute(forms.delete().where(forms.c.id == 150))
    incremental = night("n3")
    assert incremental["contact_form_submissions"][0].mode == "incremental"
    assert_same(incremental)


class WorkerLost(RuntimeError):
    pass


def test_a_failed_partition_leaves_watermark_and_index_and_its_retry_alone_completes(  # type: ignore[no-untyped-def]
        world, hasher, monkeypatch: pytest.MonkeyPatch) -> None:
    engine, whole, split, catalog, policy = world
    source = catalog.source("contact_form_submissions")
    kw = {"source_engine": engine, "hasher": hasher}
    scan_partitioned(source, policy, tag_engine=split, run_id="n1", logical_date=TODAY, partition_rows=SMALL, **kw)
    before = _snapshot(split, source.name)
    assert before["watermark"] is not None

    # A requested full rescan in five partitions; the third one's worker dies after writing its chunk.
    parts = plan_partitions(source, policy, tag_engine=split, run_id="n2", full_rescan=True, partition_rows=SMALL, **kw)
    assert len(parts) == 5
    real_count = scan_module.count_into
    failing = {"index": 2}

    def count_or_die(*args: Any, **kwargs: Any) -> None:
        real_count(*args, **kwargs)
        if failing["index"] is not None:
            raise WorkerLost("worker lost")

    results = []
    for part in parts:
        failing["index"] = part.index if part.index == 2 else None
        monkeypatch.setattr(scan_module, "count_into", count_or_die)
        try:
            results.append(run_partition(part, source, policy, tag_engine=split, logical_date=TODAY, **kw))
        except WorkerLost:
            pass
        monkeypatch.setattr(scan_module, "count_into", real_count)
    assert [r["partition"]["index"] for r in results] == [0, 1, 3, 4]
    with pytest.raises(PartitionsIncompleteError, match=r"partitions \[0, 1, 3, 4\] reported of 5"):
        finish_partitions(source, results, tag_engine=split, **kw)
    after_failure = _snapshot(split, source.name)
    # The watermark did not advance (a full rescan clears it at the start, so the next night is
    # full again unless this one completes); the live index is the old complete one.
    assert after_failure["watermark"] is None
    assert after_failure["refs"] == before["refs"]

    # Meanwhile a record of the failed range changes; the retry of that range alone sees it,
    # and replaces what its failed attempt wrote.
    forms = Table("contact_form_submissions", MetaData(), autoload_with=engine)
    lo, hi = parts[2].lo, parts[2].hi
    with engine.begin() as conn:
        key = conn.execute(select(forms.c.id).where(forms.c.id >= lo, forms.c.id < hi,
                                                    forms.c.email.is_not(None)).limit(1)).scalar_one()
        conn.execute(forms.update().where(forms.c.id == key).values(email="efter.felet@exempel.se", updated_at=LATER))
    results.append(run_partition(parts[2], source, policy, tag_engine=split, logical_date=TODAY, retry=True, **kw))
    stats = finish_partitions(source, results, tag_engine=split, **kw)
    assert stats.records == ROWS and stats.mode == "full"

    # The same as one whole-table rescan of the same data (first night, then the rescan).
    scan_source(source, policy, tag_engine=whole, run_id="n1", logical_date=TODAY, **kw)
    scan_source(source, policy, tag_engine=whole, run_id="n2", logical_date=TODAY, full_rescan=True, **kw)
    assert _snapshot(split, source.name) == _snapshot(whole, source.name)
    assert _snapshot(split, source.name)["watermark"] is not None


def test_a_first_night_partition_retried_after_writing_loads_its_records_once(  # type: ignore[no-untyped-def]
        world, hasher, monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL a first scan loads tags and index entries into tables with no unique key:
    the retry of a range whose worker died after writing must not load its records twice."""
    engine, whole, split, catalog, policy = world
    source = catalog.source("contact_form_submissions")
    kw = {"source_engine": engine, "hasher": hasher}
    parts = plan_partitions(source, policy, tag_engine=split, run_id="n1", partition_rows=SMALL, **kw)
    real_count = scan_module.count_into

    def count_then_die(*args: Any, **kwargs: Any) -> None:
        real_count(*args, **kwargs)  # its chunk was handed to the writer: the write completes
        raise WorkerLost("worker lost")

    results = []
    for part in parts:
        monkeypatch.setattr(scan_module, "count_into", count_then_die if part.index == 2 else real_count)
        try:
            results.append(run_partition(part, source, policy, tag_engine=split, logical_date=TODAY, **kw))
        except WorkerLost:
            pass
    monkeypatch.setattr(scan_module, "count_into", real_count)
    results.append(run_partition(parts[2], source, policy, tag_engine=split, logical_date=TODAY, retry=True, **kw))
    stats = finish_partitions(source, results, tag_engine=split, **kw)
    assert stats.records == ROWS and stats.tags == ROWS * len(source.categories)

    scan_source(source, policy, tag_engine=whole, run_id="n1", logical_date=TODAY, **kw)
    assert _snapshot(split, source.name) == _snapshot(whole, source.name)
    with split.connect() as conn:
        assert conn.execute(select(func.count()).select_from(record_tag)
                            .where(record_tag.c.source == source.name)).scalar_one() == stats.tags


def test_a_request_between_the_ranges_keeps_its_index_and_the_next_night_rescans(world, hasher) -> None:  # type: ignore[no-untyped-def]
    from lifecycle.discovery.scan import REQUEST_DURING_RESCAN
    from lifecycle.reporting.audit import append

    engine, _, split, catalog, policy = world
    source = catalog.source("contact_form_submissions")
    kw = {"source_engine": engine, "hasher": hasher}
    scan_partitioned(source, policy, tag_engine=split, run_id="n1", logical_date=TODAY, partition_rows=SMALL, **kw)
    parts = plan_partitions(source, policy, tag_engine=split, run_id="n2", full_rescan=True, partition_rows=SMALL, **kw)
    results = [run_partition(p, source, policy, tag_engine=split, logical_date=TODAY, **kw) for p in parts]

    # A request anonymises a record after its range was read: its e-mail is gone from the source
    # and from the live index; the index the ranges built still holds it.
    forms = Table("contact_form_submissions", MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        key = conn.execute(select(forms.c.id).where(forms.c.email.is_not(None)).limit(1)).scalar_one()
        conn.execute(forms.update().where(forms.c.id == key).values(email=None))
    with split.begin() as conn:
        conn.execute(subject_ref.delete().where(subject_ref.c.source == source.name,
                                                subject_ref.c.record_key == str(key), subject_ref.c.field == "email"))
    append(split, hasher, "request_outcome", "DSR-RACE", {"request_type": "erasure"})

    stats = finish_partitions(source, results, tag_engine=split, **kw)
    assert "a request changed the source during the rescan" in stats.full_reason
    with split.connect() as conn:
        emails = conn.execute(select(subject_ref.c.record_key).where(
            subject_ref.c.source == source.name, subject_ref.c.record_key == str(key), subject_ref.c.field == "email")).all()
        mark = conn.execute(select(watermark.c.fingerprint).where(watermark.c.source == source.name)).scalar_one()
    assert emails == []  # what the request removed stays removed
    assert mark == REQUEST_DURING_RESCAN
    again = plan_partitions(source, policy, tag_engine=split, run_id="n3", partition_rows=SMALL, **kw)
    assert len(again) > 1  # the next night is a full scan again, in ranges


# -- partitioned enforcement ------------------------------------------------------------------


@pytest.fixture
def twin(db, tmp_path: Path) -> Iterator[tuple[str, str | None]]:  # type: ignore[no-untyped-def]
    """A second source database and tag store (URL and schema), for the same generated data
    enforced another way."""
    if db.kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'twin.db'}", None
        return
    schema = f"lc_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield PG_URL, schema
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


def _source_rows(engine: Engine, table_name: str) -> list[tuple[Any, ...]]:
    table = Table(table_name, MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key.columns))]


def test_partitioned_enforcement_leaves_exactly_what_one_enforcement_leaves(  # type: ignore[no-untyped-def]
        db, tag_db, twin, policy_path, catalog_path, hasher) -> None:
    policy = load_policy(policy_path)
    catalog = load_catalog(catalog_path, policy)
    forms = catalog.source("contact_form_submissions").model_copy(update={"batch_size": 7})
    twin_url, twin_schema = twin
    generate(db.url, rows=ROWS, seed=5, as_of=TODAY, schema=db.schema)
    generate(twin_url, rows=ROWS, seed=5, as_of=TODAY, schema=twin_schema)
    whole = (db.engine(), tag_db.tag_store())
    twin = (make_engine(twin_url, schema=twin_schema),
            open_tag_store(twin_url if twin_schema else twin_url.replace("twin.db", "twin-tags.db"), schema=twin_schema))
    assert _source_rows(whole[0], forms.table) == _source_rows(twin[0], forms.table)

    def plan(engine: Engine, tags: Engine) -> None:
        scan_source(forms, policy, source_engine=engine, tag_engine=tags, hasher=hasher, run_id="e1", logical_date=TODAY)
        register_run(tags, "e1", TODAY, False)
        build_plan(tags, [forms], "e1", TODAY)

    def enforce(engine: Engine, tags: Engine, batch_range: tuple[int, int] | None = None) -> dict[str, Any]:
        return enforce_source(forms, summarise_plan(tags, forms, "e1"), source_engine=engine, tag_engine=tags,
                              run_id="e1", dry_run=False, hasher=hasher, year=TODAY.year, batch_range=batch_range).to_dict()

    plan(*whole)
    one = enforce(*whole)
    plan(*twin)
    batches = len(plan_batches(twin[1], forms, "e1"))
    ranges = batch_ranges(batches, 3)
    assert batches >= 6 and len(ranges) >= 2  # the plan does split
    with ThreadPoolExecutor(max_workers=2) as pool:  # the ranges side by side, as two workers run them
        parts = list(pool.map(lambda r: enforce(*twin, r), ranges))
    merged = merge_stats(parts)
    assert len(merged) == 1 and merged[0]["batches"] == batches
    for name in ("records_erased", "records_anonymised", "fields_anonymised", "rows_affected", "mentions_redacted"):
        assert merged[0][name] == one[name], name
    assert one["records_erased"] + one["records_anonymised"] > 0
    assert _source_rows(twin[0], forms.table) == _source_rows(whole[0], forms.table)
    assert _snapshot(twin[1], forms.name)["tags"] == _snapshot(whole[1], forms.name)["tags"]
    assert _snapshot(twin[1], forms.name)["refs"] == _snapshot(whole[1], forms.name)["refs"]
    # A partition run again (a retried task) finds its batches journaled and changes nothing.
    again = enforce(*twin, ranges[0])
    assert again["batches"] == 0 and again["batches_skipped"] == ranges[0][1] - ranges[0][0]
    assert _source_rows(twin[0], forms.table) == _source_rows(whole[0], forms.table)
