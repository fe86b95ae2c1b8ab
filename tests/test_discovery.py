"""Discovery: incremental scans, the subject index through changes, schema drift; on SQLite
and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import MetaData, Table, func, select, text

from lifecycle.config.catalog import load_catalog
from demo.company import generate
from lifecycle.enforcement.plan import build_plan, register_run
from lifecycle.config.policy import load_policy
from lifecycle.discovery.scan import scan_source
from lifecycle.discovery.subjects import locate, subject_hashes
from lifecycle.tagstore.tables import plan_item, record_tag, schema_finding, subject_ref

TODAY = date(2026, 11, 25)
LATER = datetime(2026, 11, 25, 23, 0)


@pytest.fixture
def world(db, tag_db, policy_path: Path, catalog_path: Path, hasher):  # type: ignore[no-untyped-def]
    generate(db.url, rows=40, seed=9, as_of=TODAY, schema=db.schema)
    policy = load_policy(policy_path)
    catalog = load_catalog(catalog_path, policy)
    engine, tags = db.engine(), tag_db.tag_store()

    def scan(name: str, run: str, **kw):  # type: ignore[no-untyped-def]
        return scan_source(catalog.source(name), policy, source_engine=engine, tag_engine=tags, hasher=hasher,
                           run_id=run, logical_date=TODAY, **kw)

    return engine, tags, scan, catalog, policy


def _table(engine, name: str) -> Table:  # type: ignore[no-untyped-def]
    return Table(name, MetaData(), autoload_with=engine)


def _where(hasher, tags, **identifiers) -> set[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    return {(l.source, l.record_key, l.field) for l in locate(tags, subject_hashes(hasher, identifiers, 2026))}


def test_incremental_scan_reads_exactly_the_changed_rows(world, hasher) -> None:  # type: ignore[no-untyped-def]
    engine, tags, scan, *_ = world
    first = scan("contact_form_submissions", "n1")
    assert (first.mode, first.full_reason, first.records) == ("full", "first scan", 40)
    forms = _table(engine, "contact_form_submissions")
    with engine.begin() as conn:
        conn.execute(forms.update().where(forms.c.id.in_([3, 7])).values(updated_at=LATER, email="ny.adress@exempel.se"))
        conn.execute(forms.insert().values(id=41, name="Ny Person", email="ny.person@exempel.se", updated_at=LATER,
                                           last_interaction_at=TODAY, message="Hej", message_basis="consent"))
        conn.execute(forms.delete().where(forms.c.id == 12))
    second = scan("contact_form_submissions", "n2")
    assert (second.mode, second.records, second.deleted) == ("incremental", 3, 1)
    with tags.connect() as conn:
        keys = set(conn.execute(select(record_tag.c.record_key).where(record_tag.c.source == "contact_form_submissions")).scalars())
    assert "12" not in keys and "41" in keys and len(keys) == 40
    third = scan("contact_form_submissions", "n3")
    assert (third.mode, third.records, third.deleted) == ("incremental", 0, 0)


def test_subject_index_follows_inserts_updates_and_deletes(world, hasher) -> None:  # type: ignore[no-untyped-def]
    engine, tags, scan, *_ = world
    forms = _table(engine, "contact_form_submissions")
    with engine.connect() as conn:
        row = conn.execute(select(forms).where(forms.c.id == 5)).mappings().one()
    scan("contact_form_submissions", "n1")
    assert ("contact_form_submissions", "5", "email") in _where(hasher, tags, email=row["email"].upper())
    with engine.begin() as conn:
        conn.execute(forms.update().where(forms.c.id == 5).values(
            email="bytt@exempel.se", updated_at=LATER,
            message="Min kollega nås på kollega@exempel.se eller 070-765 43 21, pnr 811218-9876."))
        conn.execute(forms.delete().where(forms.c.id == 6))
    scan("contact_form_submissions", "n2")
    assert ("contact_form_submissions", "5", "email") not in _where(hasher, tags, email=row["email"])
    assert _where(hasher, tags, email="bytt@exempel.se") == {("contact_form_submissions", "5", "email")}
    # Other people in free text are indexed too, in their normalised form.
    assert _where(hasher, tags, email="Kollega@Exempel.se") == {("contact_form_submissions", "5", "message")}
    found = locate(tags, subject_hashes(hasher, {"email": "kollega@exempel.se"}, 2026))
    assert [(f.kind, f.category) for f in found] == [("email", "case_details")]
    assert _where(hasher, tags, phone="+46707654321") == {("contact_form_submissions", "5", "message")}
    assert _where(hasher, tags, personnummer="19811218-9876") == {("contact_form_submissions", "5", "message")}
    with tags.connect() as conn:
        assert conn.execute(select(func.count()).select_from(subject_ref).where(
            subject_ref.c.source == "contact_form_submissions", subject_ref.c.record_key == "6")).scalar_one() == 0


def test_sources_without_change_signal_and_catalog_changes_rescan_in_full(world, hasher) -> None:  # type: ignore[no-untyped-def]
    engine, tags, scan, catalog, policy = world
    scan("job_applications", "n1")
    again = scan("job_applications", "n2")
    assert (again.mode, again.full_reason, again.records) == ("full", "no change signal in the catalog", 10)
    visits = scan("website_visits", "n1")
    assert visits.mode == "full"
    assert scan("website_visits", "n2").mode == "incremental"  # a monotonic key
    assert scan("website_visits", "n3", full_rescan=True).full_reason == "requested"
    changed = catalog.source("website_visits").model_copy(update={"on_expiry": "erase"})
    stats = scan_source(changed, policy, source_engine=engine, tag_engine=tags, hasher=hasher, run_id="n4",
                        logical_date=TODAY)
    assert (stats.mode, stats.full_reason) == ("full", "catalog, policy or detectors changed")


def test_schema_drift_is_reported_and_a_missing_column_blocks_the_source(world, db) -> None:  # type: ignore[no-untyped-def]
    engine, tags, scan, catalog, policy = world
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE tool_users ADD COLUMN notes TEXT"))
    stats = scan("tool_users", "n1")
    assert stats.mode == "full" and stats.schema_findings == [{"column": "notes", "finding": "untagged_column"}]
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE tool_users DROP COLUMN company_url"))
    blocked = scan("tool_users", "n2")
    assert blocked.mode == "blocked"
    assert {"column": "company_url", "finding": "missing_column"} in blocked.schema_findings
    with tags.connect() as conn:
        findings = {(r.column_name, r.finding) for r in conn.execute(select(schema_finding))}
    assert findings == {("notes", "untagged_column"), ("company_url", "missing_column")}
    # Nothing is planned for a blocked source, though its old tags hold expired records.
    register_run(tags, "n2", TODAY, False)
    build_plan(tags, [catalog.source("tool_users")], "n2", TODAY)
    with tags.connect() as conn:
        assert conn.execute(select(func.count()).select_from(plan_item)).scalar_one() == 0
        expired = conn.execute(select(func.count()).select_from(record_tag).where(record_tag.c.deadline < TODAY)).scalar_one()
    assert expired > 0
