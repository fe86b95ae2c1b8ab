"""Website visits used on an aggregated level only (Bilaga 1): complete periods counted per company
with a minimum group size k, stored without identifiers before the raw visits are anonymised,
proven by a Great Expectations suite; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Column, Date, DateTime, Engine, Integer, MetaData, String, Table, insert, select, update

from lifecycle.config import Catalog, Source, load_catalog, load_policy
from lifecycle.enforcement import aggregate_source, validate_aggregates
from lifecycle.enforcement.aggregation import Span, spans
from lifecycle.errors import CatalogError
from lifecycle.reporting import compliance_summary
from lifecycle.config import load_mechanisms
from lifecycle.tagstore.tables import analytics_aggregate, analytics_state

ROOT = Path(__file__).resolve().parents[1]
SUITES = ROOT / "expectations"
WEEK1, WEEK2, WEEK3 = date(2026, 3, 2), date(2026, 3, 9), date(2026, 3, 16)  # Mondays
NIGHT = date(2026, 3, 18)  # a Wednesday in WEEK3: weeks 1 and 2 are complete, week 3 is not


def _ip(n: int) -> str:
    return f"203.0.113.{n}"


# (week, company, distinct visitors, visits): visitors get IPs of their own across the data set.
PLANTED = [
    (WEEK1, "Acme AB", 6, 8),  # published
    (WEEK1, "Beta AB", 3, 3),  # under k: merged into "other"
    (WEEK1, "Gamma AB", 2, 2),  # under k: merged into "other"
    (WEEK1, None, 4, 4),  # company unknown, under k: merged into "other" (which reaches 9)
    (WEEK2, "Acme AB", 5, 5),  # exactly k: published
    (WEEK2, "Beta AB", 2, 2),  # under k, and "other" is only these 2: dropped
    (WEEK3, "Acme AB", 7, 7),  # the current week: not complete, not aggregated
]


def _visits_table(metadata: MetaData) -> Table:
    return Table("website_visits", metadata, Column("id", Integer, primary_key=True), Column("visited_at", DateTime),
                 Column("visit_date", Date), Column("ip_address", String(200)),
                 Column("identified_company", String(200)), Column("page_path", String(200)))


@pytest.fixture
def visits(db) -> Engine:  # type: ignore[no-untyped-def]
    """The planted visits in the source database."""
    return _plant(db.engine())


def _plant(engine: Engine) -> Engine:
    metadata = MetaData()
    table = _visits_table(metadata)
    metadata.create_all(engine)
    rows, ip = [], 0
    for week, company, visitors, n_visits in PLANTED:
        for v in range(n_visits):
            if v < visitors:
                ip += 1
            day = week + timedelta(days=v % 5)
            rows.append({"id": len(rows) + 1, "visited_at": datetime(day.year, day.month, day.day, 9 + v % 8, 15),
                         "visit_date": day, "ip_address": _ip(ip), "identified_company": company, "page_path": "/"})
    with engine.begin() as conn:
        conn.execute(insert(table), rows)
    return engine


@pytest.fixture
def catalog(policy_path: Path, catalog_path: Path) -> Catalog:
    return load_catalog(catalog_path, load_policy(policy_path))


def _source(catalog: Catalog, **analytics: object) -> Source:
    """The demo catalog's website_visits, its analytics changed by ``analytics``."""
    source = catalog.source("website_visits")
    spec = source.analytics.model_copy(update=analytics)  # type: ignore[union-attr]
    return source.model_copy(update={"analytics": spec})


def _published(tag_engine: Engine) -> set[tuple]:
    a = analytics_aggregate
    with tag_engine.connect() as conn:
        rows = conn.execute(select(a.c.period, a.c.period_start, a.c.group_kind, a.c.group_value, a.c.visitors,
                                   a.c.visits, a.c.min_group_size).where(a.c.source == "website_visits")).all()
    return {(p, s if isinstance(s, date) else date.fromisoformat(str(s)), *rest) for p, s, *rest in rows}


EXPECTED = {
    ("week", WEEK1, "value", "Acme AB", 6, 8, 5),
    ("week", WEEK1, "other", "", 9, 9, 5),  # Beta 3 + Gamma 2 + unknown 4 distinct visitors
    ("week", WEEK2, "value", "Acme AB", 5, 5, 5),
}


def test_groups_under_k_are_never_published_and_the_counts_are_right(visits, tag_db, catalog) -> None:  # type: ignore[no-untyped-def]
    tag = tag_db.tag_store()
    stats = aggregate_source(catalog.source("website_visits"), visits, tag, run_id="night-1", logical_date=NIGHT)

    assert _published(tag) == EXPECTED
    assert all(row[4] >= 5 for row in _published(tag))
    assert (stats.groups_published, stats.groups_merged, stats.groups_suppressed) == (3, 3, 1)
    assert (stats.visits_published, stats.visits_suppressed, stats.periods) == (22, 2, 2)
    assert (stats.aggregated_from, stats.aggregated_until) == (WEEK1.isoformat(), WEEK3.isoformat())
    with tag.connect() as conn:  # the small groups' names are nowhere in the aggregates
        values = set(conn.execute(select(analytics_aggregate.c.group_value)).scalars())
        assert values == {"Acme AB", ""}
        assert conn.execute(select(analytics_state.c.aggregated_until)).scalar_one() in (WEEK3, WEEK3.isoformat())


def test_a_source_on_mariadb_is_counted_alike(mariadb, tmp_path, catalog) -> None:  # type: ignore[no-untyped-def]
    from lifecycle.tagstore import make_engine, open_tag_store

    tag = open_tag_store(f"sqlite:///{tmp_path / 'tagstore.db'}")
    source = _plant(make_engine(mariadb))
    aggregate_source(catalog.source("website_visits"), source, tag, run_id="night-1", logical_date=NIGHT)
    assert _published(tag) == EXPECTED


def test_a_rerun_counts_nothing_twice_and_anonymised_visits_stay_counted(visits, tag_db, catalog) -> None:  # type: ignore[no-untyped-def]
    tag, source = tag_db.tag_store(), catalog.source("website_visits")
    aggregate_source(source, visits, tag, run_id="night-1", logical_date=NIGHT)
    again = aggregate_source(source, visits, tag, run_id="night-1-retry", logical_date=NIGHT)
    assert again.periods == 0 and again.groups_published == 0 and _published(tag) == EXPECTED

    # Enforcement anonymises the aggregated visits' IPs; a visit arrives late in a closed week.
    table = _visits_table(MetaData())
    with visits.begin() as conn:
        conn.execute(update(table).where(table.c.visit_date < WEEK3).values(ip_address=None))
        conn.execute(insert(table).values(id=1000, visited_at=datetime(2026, 3, 3, 10), visit_date=date(2026, 3, 3),
                                          ip_address=_ip(250), identified_company="Acme AB", page_path="/"))
    later = aggregate_source(source, visits, tag, run_id="night-2", logical_date=NIGHT + timedelta(days=7))

    assert (later.aggregated_from, later.groups_published) == (WEEK3.isoformat(), 1)
    assert _published(tag) == EXPECTED | {("week", WEEK3, "value", "Acme AB", 7, 7, 5)}


def test_a_dry_run_counts_but_stores_nothing(visits, tag_db, catalog) -> None:  # type: ignore[no-untyped-def]
    tag = tag_db.tag_store()
    stats = aggregate_source(catalog.source("website_visits"), visits, tag, run_id="dry", logical_date=NIGHT,
                             dry_run=True)
    assert stats.groups_published == 3 and _published(tag) == set()
    with tag.connect() as conn:
        assert conn.execute(select(analytics_state)).first() is None


def test_day_periods_on_a_timestamp_column(visits, tag_db, catalog) -> None:  # type: ignore[no-untyped-def]
    tag = tag_db.tag_store()
    source = _source(catalog, date_column="visited_at", period="day", k=2)
    aggregate_source(source, visits, tag, run_id="night-1", logical_date=WEEK1 + timedelta(days=2))
    # Visits fall on weekday v % 5: on Monday Acme has visitors 1 and 6 (2), Beta 1, Gamma 1, unknown 1.
    # Tuesday likewise (Acme 2 and 7: 2 visitors, one of them twice ... counted distinct).
    rows = _published(tag)
    assert {(r[1], r[2], r[3], r[4]) for r in rows} == {
        (WEEK1, "value", "Acme AB", 2), (WEEK1, "other", "", 3),
        (WEEK1 + timedelta(days=1), "value", "Acme AB", 2), (WEEK1 + timedelta(days=1), "other", "", 3)}
    assert {r[0] for r in rows} == {"day"}


def test_switching_from_days_to_weeks_counts_the_gap_as_days() -> None:
    wednesday = date(2026, 3, 4)
    assert spans(wednesday, WEEK3, "week") == [Span("day", wednesday, WEEK2), Span("week", WEEK2, WEEK3)]
    assert spans(WEEK1, WEEK3, "week") == [Span("week", WEEK1, WEEK3)]
    assert spans(WEEK3, WEEK2, "week") == []  # a backfill of an earlier night: nothing new is complete
    assert spans(wednesday, date(2026, 3, 6), "day") == [Span("day", wednesday, date(2026, 3, 6))]


def test_the_suite_fails_on_a_planted_small_group(visits, tag_db, catalog) -> None:  # type: ignore[no-untyped-def]
    tag = tag_db.tag_store()
    aggregate_source(catalog.source("website_visits"), visits, tag, run_id="night-1", logical_date=NIGHT)
    passed = validate_aggregates(tag, catalog, SUITES)
    assert passed.success and passed.evaluated_records == 3
    assert all(o.success for o in passed.outcomes)

    with tag.begin() as conn:  # a group of 2 published past the aggregation
        conn.execute(insert(analytics_aggregate).values(
            source="website_visits", period="week", period_start=WEEK2, group_kind="value", group_value="Beta AB",
            visitors=2, visits=2, min_group_size=2, run_id="tampered"))
    failed = validate_aggregates(tag, catalog, SUITES)
    assert not failed.success
    by_description = {o.description: o for o in failed.outcomes}
    small = by_description["no published group is smaller than the minimum group size k"]
    assert (small.success, small.unexpected_count, small.element_count) == (False, 1, 4)
    assert json.dumps(failed.to_dict()).count("Beta") == 0  # counts only in the result

    # The next night withdraws what is under the catalog's k, and the suite passes again.
    stats = aggregate_source(catalog.source("website_visits"), visits, tag, run_id="night-2", logical_date=NIGHT)
    assert stats.groups_withdrawn == 1 and validate_aggregates(tag, catalog, SUITES).success


def test_a_raised_k_withdraws_groups_that_no_longer_meet_it(visits, tag_db, catalog) -> None:  # type: ignore[no-untyped-def]
    tag = tag_db.tag_store()
    aggregate_source(catalog.source("website_visits"), visits, tag, run_id="night-1", logical_date=NIGHT)
    stricter = catalog.model_copy(update={"sources": {**catalog.sources, "website_visits": _source(catalog, k=6)}})
    assert not validate_aggregates(tag, stricter, SUITES).success  # Acme's week 2 has 5 < 6

    stats = aggregate_source(stricter.source("website_visits"), visits, tag, run_id="night-2", logical_date=NIGHT)
    assert stats.groups_withdrawn == 1
    assert {(r[1], r[2]) for r in _published(tag)} == {(WEEK1, "value"), (WEEK1, "other")}
    assert validate_aggregates(tag, stricter, SUITES).success


def test_no_raw_identifier_leaves_the_source(visits, tag_db, catalog, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    tag = tag_db.tag_store()
    stats = aggregate_source(catalog.source("website_visits"), visits, tag, run_id="night-1", logical_date=NIGHT)
    result = validate_aggregates(tag, catalog, SUITES)
    with tag.connect() as conn:
        stored = [dict(r) for t in (analytics_aggregate, analytics_state) for r in conn.execute(select(t)).mappings()]
    assert stored  # something was published
    with visits.connect() as conn:
        ips = set(conn.execute(select(_visits_table(MetaData()).c.ip_address)).scalars())
    assert len(ips) == 29
    output = json.dumps([stored, stats.to_dict(), result.to_dict()], default=str) + caplog.text
    assert [ip for ip in ips if ip in output] == []
    assert "203.0.113." not in output
    assert not {"ip_address", "visitor", "ip"} & set(analytics_aggregate.c.keys())


def test_the_compliance_page_charts_the_aggregates(visits, tag_db, catalog, policy_path, tmp_path) -> None:  # type: ignore[no-untyped-def]
    tag = tag_db.tag_store()
    aggregate_source(catalog.source("website_visits"), visits, tag, run_id="night-1", logical_date=NIGHT)
    summary = compliance_summary(tag_engine=tag, report_dir=tmp_path,
                                 policy=load_policy(policy_path),
                                 mechanisms=load_mechanisms(ROOT / "config" / "transfer_mechanisms.yaml"), today=NIGHT)
    (chart,) = summary["analytics"]
    assert chart["source"] == "website_visits" and chart["period"] == "week" and chart["k"] == 5
    assert [(p["period_start"], p["visitors"], p["visits"], p["groups"]) for p in chart["periods"]] == [
        ("2026-03-02", 15, 17, 2), ("2026-03-09", 5, 5, 1)]
    env = Environment(loader=FileSystemLoader(ROOT / "lifecycle" / "templates"), autoescape=select_autoescape(["j2"]))
    page = env.get_template("compliance.html.j2").render(s=summary, biggest=1, month_max=1)
    assert 'id="analytics-website_visits"' in page and page.count('class="analytics-bar"') == 2
    assert "203.0.113." not in page


# -- the catalog key ------------------------------------------------------------------------


def _catalog_with(tmp_path: Path, catalog_path: Path, change) -> Path:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(catalog_path.read_text())
    change(data["sources"]["website_visits"])
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(("change", "key", "words"), [
    (lambda s: s.pop("analytics"), "sources.website_visits.analytics", "aggregate-only"),
    (lambda s: s["analytics"].update(group_by=["country"]), "sources.website_visits.analytics", "'country'"),
    (lambda s: s["analytics"].update(k=1), "sources.website_visits.analytics.k", "greater than or equal to 2"),
    (lambda s: s["analytics"].update(period="month"), "sources.website_visits.analytics.period", "'day' or 'week'"),
    (lambda s: s["analytics"].update(date_column="visit date"), "sources.website_visits.analytics.date_column",
     "plain SQL identifier"),
    (lambda s: s["analytics"].update(group_by=["identified_company", "page_path"]),
     "sources.website_visits.analytics.group_by", "at most 1"),
])
def test_analytics_settings_are_validated_on_load(tmp_path, catalog_path, policy_path, change, key, words) -> None:  # type: ignore[no-untyped-def]
    path = _catalog_with(tmp_path, catalog_path, change)
    with pytest.raises(CatalogError) as caught:
        load_catalog(path, load_policy(policy_path))
    assert caught.value.file == str(path) and caught.value.key.startswith(key), caught.value
    assert words in caught.value.problem, caught.value


def test_analytics_default_k_is_five(tmp_path, catalog_path, policy_path) -> None:  # type: ignore[no-untyped-def]
    path = _catalog_with(tmp_path, catalog_path, lambda s: s["analytics"].pop("k"))
    assert load_catalog(path, load_policy(policy_path)).source("website_visits").analytics.k == 5  # type: ignore[union-attr]


def test_the_suite_fails_when_the_aggregates_grow_an_identifier_column(visits, tag_db, catalog) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    tag = tag_db.tag_store()
    aggregate_source(catalog.source("website_visits"), visits, tag, run_id="night-1", logical_date=NIGHT)
    with tag.begin() as conn:
        conn.execute(text("ALTER TABLE lc_analytics_aggregate ADD COLUMN ip_address VARCHAR(200)"))
    result = validate_aggregates(tag, catalog, SUITES)
    failed = [o.description for o in result.outcomes if not o.success]
    assert failed == ["the aggregates carry counts and group names only: no identifier column"]
