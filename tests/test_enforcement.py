"""Scan, plan and enforce on hand-built tables, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Column, Date, DateTime, Integer, MetaData, String, Table, Text, func, select

from lifecycle.config.catalog import Catalog, load_catalog
from lifecycle.enforcement.enforce import enforce_source
from lifecycle.errors import CatalogError, PlanNeedsConfirmationError
from lifecycle.enforcement.plan import build_plan, register_run, summarise_plan
from lifecycle.config.policy import Policy, load_policy
from lifecycle.discovery.scan import scan_source
from lifecycle.tagstore.tables import journal, record_tag, subject_ref

TODAY = date(2026, 11, 25)


def _tables(md: MetaData) -> dict[str, Table]:
    return {
        "invoices": Table(
            "invoices", md, Column("id", Integer, primary_key=True), Column("invoice_date", Date),
            Column("buyer_company", String), Column("buyer_org_number", String), Column("buyer_address", String),
            Column("contact_name", String), Column("contact_email", String), Column("contact_phone", String),
            Column("updated_at", DateTime),
        ),
        "newsletter_subscribers": Table(
            "newsletter_subscribers", md, Column("id", Integer, primary_key=True), Column("last_confirmed_at", Date),
            Column("name", String), Column("email", String), Column("updated_at", DateTime),
        ),
        "ad_audiences": Table(
            "ad_audiences", md, Column("id", Integer, primary_key=True), Column("customer_id", String),
            Column("uploaded_at", Date), Column("name", String), Column("email", String), Column("phone", String),
            Column("updated_at", DateTime),
        ),
        "contact_form_submissions": Table(
            "contact_form_submissions", md, Column("id", Integer, primary_key=True), Column("last_interaction_at", Date),
            Column("name", String), Column("email", String), Column("ip_address", String), Column("phone", String),
            Column("company_name", String), Column("company_url", String), Column("message", Text),
            Column("message_basis", String), Column("updated_at", DateTime),
        ),
    }


def _invoice(i: int, day: date) -> dict:
    return dict(id=i, invoice_date=day, buyer_company=f"Bolag {i} AB", buyer_org_number="556898-9718",
                buyer_address="Storgatan 1", contact_name=f"Person {i}", contact_email=f"p{i}@bolag.se",
                contact_phone="070-123 45 67")


@pytest.fixture
def setup(db, tag_db, policy_path: Path, catalog_path: Path):  # type: ignore[no-untyped-def]
    policy = load_policy(policy_path)
    catalog = load_catalog(catalog_path, policy)
    engine = db.engine()
    md = MetaData()
    tables = _tables(md)
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(tables["invoices"].insert(), [
            _invoice(1, date(2026, 3, 1)),    # young: keep everything
            _invoice(2, date(2023, 6, 1)),    # > 2 years, inside BFL: contact fields anonymised
            _invoice(3, date(2018, 12, 31)),  # BFL ended 2025-12-31: erase
            _invoice(4, date(2019, 1, 1)),    # BFL ends 2026-12-31: contact fields anonymised only
        ])
        conn.execute(tables["newsletter_subscribers"].insert(), [
            dict(id=1, last_confirmed_at=date(2024, 11, 25), name="Anna", email="anna@x.se"),  # deadline today: kept
            dict(id=2, last_confirmed_at=date(2024, 11, 24), name="Bo", email="bo@x.se"),      # one day past
            dict(id=3, last_confirmed_at=None, name="Cia", email="cia@x.se"),                  # no clock: violation
        ])
        conn.execute(tables["ad_audiences"].insert(), [
            dict(id=1, customer_id="kund-nordisk-handel", uploaded_at=date(2026, 8, 1), name="A", email="a@k.se", phone=None),  # P90D: expired
            dict(id=2, customer_id="kund-fastighetsbyran", uploaded_at=date(2026, 8, 1), name="B", email="b@k.se", phone=None),  # P1Y: kept
            dict(id=3, customer_id="kund-okand", uploaded_at=date(2026, 8, 1), name="C", email="c@k.se", phone=None),  # no instruction
        ])
        conn.execute(tables["contact_form_submissions"].insert(), [
            dict(id=1, last_interaction_at=date(2026, 1, 1), name="D", email="d@x.se", ip_address="10.0.0.1",
                 phone=None, company_name="D AB", company_url="d.se", message="hej", message_basis="consent"),
            dict(id=2, last_interaction_at=date(2026, 1, 1), name="E", email="e@x.se", ip_address="10.0.0.2",
                 phone=None, company_name="E AB", company_url="e.se", message="hej", message_basis="marketing"),
        ])
    return policy, catalog, engine, tag_db.tag_store(), tables


def _run(policy: Policy, catalog: Catalog, engine, tags, hasher, names, run_id="run-1", dry_run=False, **kw):  # type: ignore[no-untyped-def]
    sources = [catalog.source(n) for n in names]
    for s in sources:
        scan_source(s, policy, source_engine=engine, tag_engine=tags, hasher=hasher, run_id=run_id, logical_date=TODAY)
    register_run(tags, run_id, TODAY, dry_run)
    build_plan(tags, sources, run_id, TODAY)
    return {s.name: enforce_source(s, summarise_plan(tags, s, run_id), source_engine=engine, tag_engine=tags,
                                   run_id=run_id, dry_run=dry_run, **kw) for s in sources}


def test_bfl_invoices_keep_accounting_fields_and_lose_contact_fields(setup, hasher) -> None:  # type: ignore[no-untyped-def]
    policy, catalog, engine, tags, tables = setup
    stats = _run(policy, catalog, engine, tags, hasher, ["invoices"])["invoices"]
    inv = tables["invoices"]
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(inv))}
    assert set(rows) == {1, 2, 4}                                  # 3 erased: BFL over
    assert rows[1].contact_email == "p1@bolag.se"                  # young: untouched
    for i in (2, 4):                                               # contact fields anonymised, books kept
        assert rows[i].contact_email is None and rows[i].contact_name is None and rows[i].contact_phone is None
        assert rows[i].buyer_company == f"Bolag {i} AB" and rows[i].buyer_org_number == "556898-9718"
    assert (stats.records_erased, stats.fields_anonymised) == (1, 2)
    with tags.connect() as conn:
        statuses = dict(conn.execute(
            select(record_tag.c.record_key + ":" + record_tag.c.category, record_tag.c.status)
            .where(record_tag.c.source == "invoices")).all())
        refs = conn.execute(select(subject_ref.c.record_key, subject_ref.c.field).where(subject_ref.c.source == "invoices")).all()
    assert statuses["2:contact_details"] == "anonymised" and statuses["2:accounting_records"] == "active"
    assert "3:accounting_records" not in statuses
    assert {r.record_key for r in refs if r.field == "contact_email"} == {"1"}


def test_deadline_boundary_violations_and_processor_instructions(setup, hasher) -> None:  # type: ignore[no-untyped-def]
    policy, catalog, engine, tags, tables = setup
    stats = _run(policy, catalog, engine, tags, hasher, ["newsletter_subscribers", "ad_audiences", "contact_form_submissions"])
    with engine.connect() as conn:
        subs = {r.id for r in conn.execute(select(tables["newsletter_subscribers"]))}
        ads = {r.id for r in conn.execute(select(tables["ad_audiences"]))}
        forms = {r.id: r for r in conn.execute(select(tables["contact_form_submissions"]))}
    assert subs == {1, 3}        # deadline == logical date is kept; one day past is erased; no clock is kept (restricted)
    assert ads == {2, 3}         # 90-day customer's row erased, 1-year customer's kept, unknown customer restricted
    assert set(forms) == {1, 2} and forms[2].message == "hej"  # disallowed basis: restricted, not deleted
    assert stats["newsletter_subscribers"].violations_restricted == 1
    assert stats["ad_audiences"].violations_restricted == 1
    assert stats["contact_form_submissions"].violations_restricted == 1
    with tags.connect() as conn:
        restricted = set(conn.execute(
            select(record_tag.c.source + ":" + record_tag.c.record_key).where(record_tag.c.status == "restricted")).scalars())
    assert restricted == {"newsletter_subscribers:3", "ad_audiences:3", "contact_form_submissions:2"}


def test_dry_run_changes_nothing(setup, hasher) -> None:  # type: ignore[no-untyped-def]
    policy, catalog, engine, tags, tables = setup
    stats = _run(policy, catalog, engine, tags, hasher, ["invoices"], dry_run=True)["invoices"]
    assert (stats.records_erased, stats.fields_anonymised) == (1, 2)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(tables["invoices"])).scalar_one() == 4
        assert conn.execute(select(func.count()).where(tables["invoices"].c.contact_email.is_(None))).scalar_one() == 0
    with tags.connect() as conn:
        assert conn.execute(select(func.count()).select_from(journal)).scalar_one() == 0


def test_crash_and_rerun_finishes_the_same_plan(setup, hasher, policy_path, catalog_path) -> None:  # type: ignore[no-untyped-def]
    policy, catalog, engine, tags, tables = setup
    small = catalog.model_copy(update={"sources": {
        "invoices": catalog.source("invoices").model_copy(update={"batch_size": 1})}})
    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(policy, small, engine, tags, hasher, ["invoices"], crash_after_batches=1)
    with tags.connect() as conn:
        assert conn.execute(select(func.count()).select_from(journal).where(journal.c.state == "done")).scalar_one() == 1
    # Re-run of the same night: the plan is reused, the finished batch skipped, the rest applied.
    stats = _run(policy, small, engine, tags, hasher, ["invoices"])["invoices"]
    assert stats.batches_skipped == 1 and stats.batches == 2
    with engine.connect() as conn:
        ids = {r.id for r in conn.execute(select(tables["invoices"]))}
        anonymised = conn.execute(select(func.count()).where(tables["invoices"].c.contact_email.is_(None))).scalar_one()
    assert ids == {1, 2, 4} and anonymised == 2
    # And a third run has nothing left to do.
    again = _run(policy, small, engine, tags, hasher, ["invoices"])["invoices"]
    assert again.batches == 0 and again.batches_skipped == 3


def test_large_plan_needs_confirmation(setup, hasher) -> None:  # type: ignore[no-untyped-def]
    policy, catalog, engine, tags, tables = setup
    strict = catalog.model_copy(update={"sources": {
        "invoices": catalog.source("invoices").model_copy(update={"max_destroy_share": 0.1, "confirm_min_records": 1})}})
    with pytest.raises(PlanNeedsConfirmationError, match="25%"):
        _run(policy, strict, engine, tags, hasher, ["invoices"])
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(tables["invoices"])).scalar_one() == 4
    stats = _run(policy, strict, engine, tags, hasher, ["invoices"], run_id="run-2", confirmed=True)["invoices"]
    assert stats.records_erased == 1


def test_catalogued_column_missing_from_table_writes_nothing(setup, hasher) -> None:  # type: ignore[no-untyped-def]
    policy, catalog, engine, tags, tables = setup
    source = catalog.source("website_visits")  # no such table was created
    with pytest.raises(CatalogError, match="table .website_visits. does not exist"):
        scan_source(source, policy, source_engine=engine, tag_engine=tags, hasher=hasher, run_id="r", logical_date=TODAY)
    with tags.connect() as conn:
        assert conn.execute(select(func.count()).select_from(record_tag)).scalar_one() == 0


def test_tag_store_opens_from_parallel_tasks_at_once(tag_db) -> None:  # type: ignore[no-untyped-def]
    """Mapped scan tasks open a fresh tag store at the same moment: creating it must not race."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import inspect

    with ThreadPoolExecutor(max_workers=6) as pool:
        engines = list(pool.map(lambda _: tag_db.tag_store(), range(6)))
    assert "lc_record_tag" in inspect(engines[0]).get_table_names()
