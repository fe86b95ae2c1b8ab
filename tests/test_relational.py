"""Relational sources: a person's records reached through foreign keys, children before
parents, parents kept for kept children, clocks from parents and fallbacks, consent state and
per-record fiscal year ends from columns. SQLite (foreign keys on) and PostgreSQL."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, select, text

from lifecycle.config.catalog import Catalog, dependency_order, load_catalog
from lifecycle.config.policy import Policy, load_policy
from lifecycle.discovery.scan import scan_source
from lifecycle.enforcement.enforce import enforce_source
from lifecycle.enforcement.plan import build_plan, inherit_parent_clocks, reference_pairs, register_run, summarise_plan
from lifecycle.errors import CatalogError, UndeclaredReferenceError
from lifecycle.rights.erasure import RequestScope, apply_erasure, plan_erasure, verify_erasure
from lifecycle.rights.extract import build_extract
from lifecycle.rights.requests import SubjectIdentifiers
from lifecycle.stores import open_stores
from lifecycle.tagstore.tables import plan_item, record_tag

ROOT = Path(__file__).resolve().parents[1]
TODAY = date(2026, 11, 25)

SCHEMA = [
    """CREATE TABLE crm_customers (id INTEGER PRIMARY KEY, email VARCHAR(200), phone VARCHAR(40),
       name VARCHAR(200), company VARCHAR(200), contract_ended_at DATE, last_contact_at DATE)""",
    """CREATE TABLE crm_orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES crm_customers (id),
       amount VARCHAR(20), created_at DATE, fiscal_year_end VARCHAR(5))""",
    """CREATE TABLE crm_order_lines (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES crm_orders (id),
       product VARCHAR(100))""",
    # No foreign key in the database: the catalog's reference is all there is.
    """CREATE TABLE crm_messages (id INTEGER PRIMARY KEY, customer_id INTEGER, body TEXT,
       consent_withdrawn_at DATE)""",
]

CATALOG = {
    "version": 1,
    "defaults": {"connection": "crm", "max_destroy_share": 1.0},
    "sources": {
        "crm_customers": {
            "table": "crm_customers", "primary_key": "id", "activity": "customers",
            "retention_clock": ["contract_ended_at", "last_contact_at"], "lawful_basis": "contract",
            "subject": {"email": "email", "phone": "phone", "name": "name", "company": "company"},
            "on_expiry": "erase",
            "columns": {"email": "contact_details", "phone": "contact_details", "name": "contact_details",
                        "company": "company_details"},
        },
        "crm_orders": {
            "table": "crm_orders", "primary_key": "id", "activity": "bookkeeping", "retention_clock": "created_at",
            "fiscal_year_end": {"column": "fiscal_year_end"}, "lawful_basis": "legal_obligation",
            "subject": {"via": {"customer_id": "crm_customers"}}, "on_expiry": "erase",
            "columns": {"amount": {"category": "accounting_records", "anonymise": "keep"}},
        },
        "crm_order_lines": {
            "table": "crm_order_lines", "primary_key": "id", "activity": "bookkeeping",
            "retention_clock": {"parent": "order_id"}, "lawful_basis": "legal_obligation",
            "subject": {"via": {"order_id": "crm_orders"}}, "on_expiry": "erase",
            "columns": {"product": {"category": "accounting_records", "anonymise": "keep"}},
        },
        "crm_messages": {
            "table": "crm_messages", "primary_key": "id", "activity": "contact_form",
            "retention_clock": {"parent": "customer_id"}, "lawful_basis": "consent",
            "consent": {"withdrawn_at": "consent_withdrawn_at"},
            "subject": {"via": {"customer_id": "crm_customers"}}, "on_expiry": "erase",
            "columns": {"body": {"category": "case_details", "free_text": True, "anonymise": "redact"}},
        },
    },
}


def _catalog(tmp_path: Path, policy: Policy, data: dict = CATALOG) -> Catalog:  # type: ignore[type-arg]
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_catalog(path, policy)


@pytest.fixture
def policy() -> Policy:
    return load_policy(ROOT / "config" / "policy.yaml")


@pytest.fixture
def crm(db, tag_db, tmp_path, policy, hasher):  # type: ignore[no-untyped-def]
    """Two customers: Anna (recent orders: kept by law) and Bo (orders from 2015: all expired)."""
    engine, tags = db.engine(), tag_db.tag_store()
    with engine.begin() as conn:
        for ddl in SCHEMA:
            conn.execute(text(ddl))
        conn.execute(text("INSERT INTO crm_customers VALUES (1, 'anna.berg@exempel.se', '070-123 45 67', 'Anna Berg', "
                          "'Berg AB', NULL, '2026-10-01'), (2, 'bo.ek@exempel.se', NULL, 'Bo Ek', 'Ek AB', '2015-06-30', "
                          "'2015-06-30'), (3, 'cia.lind@exempel.se', NULL, 'Cia Lind', 'Lind AB', '2023-01-15', NULL)"))
        conn.execute(text("INSERT INTO crm_orders VALUES (10, 1, '100', '2026-03-01', '06-30'), (11, 1, '200', "
                          "'2026-09-01', '12-31'), (20, 2, '300', '2015-03-01', '12-31'), (30, 3, '50', '2024-02-01', '12-31')"))
        conn.execute(text("INSERT INTO crm_order_lines VALUES (100, 10, 'a'), (101, 10, 'b'), (110, 11, 'c'), "
                          "(200, 20, 'd'), (201, 20, 'e'), (300, 30, 'f')"))
        conn.execute(text("INSERT INTO crm_messages VALUES (1000, 1, 'Hej, ring mig', NULL), "
                          "(1001, 1, 'Mitt personnummer är 850412-2386', NULL), (2000, 2, 'Hej från Bo', NULL), "
                          "(3000, 3, 'Avsluta mina utskick', '2025-05-01')"))
    catalog = _catalog(tmp_path, policy)
    for name in catalog.sources:
        scan_source(catalog.source(name), policy, source_engine=engine, tag_engine=tags, hasher=hasher,
                    run_id="scan", logical_date=TODAY)
    return engine, tags, catalog, policy


def _keys(engine: Engine, table: str) -> set[int]:
    with engine.connect() as conn:
        return set(conn.execute(text(f"SELECT id FROM {table}")).scalars())


def _erase(crm, hasher, ids: SubjectIdentifiers, reference: str):  # type: ignore[no-untyped-def]
    engine, tags, catalog, policy = crm
    hashes = ids.hashes(hasher, TODAY.year)
    scope = RequestScope(catalog, {"crm": engine}, tags, hasher, ids, hashes)
    actions = plan_erasure(catalog, policy, tags, hashes, TODAY, stores=scope.stores())
    outcome = apply_erasure(actions, scope, reference=reference, today=TODAY, dry_run=False)
    from lifecycle.rights.journal import stored_actions
    return verify_erasure(outcome, stored_actions(tags, reference) or [], scope, year=TODAY.year), scope


def test_erasure_reaches_every_record_through_references_and_breaks_no_foreign_key(crm, hasher) -> None:  # type: ignore[no-untyped-def]
    engine = crm[0]
    outcome, _ = _erase(crm, hasher, SubjectIdentifiers(email="bo.ek@exempel.se"), "DSR-BO")
    assert outcome.verified, outcome.verification
    # Bo's orders are past the bookkeeping period: lines, orders, messages and the customer go.
    assert _keys(engine, "crm_customers") == {1, 3}
    assert _keys(engine, "crm_orders") == {10, 11, 30}
    assert _keys(engine, "crm_order_lines") == {100, 101, 110, 300}
    assert _keys(engine, "crm_messages") == {1000, 1001, 3000}
    assert outcome.per_source["crm_order_lines"]["erased"] == 2 and outcome.per_source["crm_orders"]["erased"] == 1
    assert outcome.verification["references"]["passed"] is True


def test_a_parent_of_records_kept_by_law_is_anonymised_and_held_not_erased(crm, hasher) -> None:  # type: ignore[no-untyped-def]
    engine = crm[0]
    outcome, _ = _erase(crm, hasher, SubjectIdentifiers(email="anna.berg@exempel.se"), "DSR-ANNA")
    assert outcome.verified, outcome.verification
    assert _keys(engine, "crm_orders") >= {10, 11} and _keys(engine, "crm_order_lines") >= {100, 101, 110}
    assert _keys(engine, "crm_messages") == {2000, 3000}  # her own messages erased (consent, no obligation)
    with engine.connect() as conn:
        anna = conn.execute(text("SELECT email, phone, name, company FROM crm_customers WHERE id = 1")).one()
    assert tuple(anna) == (None, None, None, None)  # kept for the foreign key, nothing of her left
    held = {(h["source"], h["record_key"]): h["reason"] for h in outcome.held}
    assert "referenced by a kept record of crm_orders" in held[("crm_customers", "1")]
    assert held[("crm_orders", "10")].startswith("erasure refused in part: legal obligation")
    # Orders held by law had no column to anonymise: they are not counted as anonymised.
    assert outcome.per_source["crm_orders"] == {"erased": 0, "anonymised": 0, "held": 2, "redacted": 0, "forwarded": 0}
    assert outcome.per_source["crm_customers"]["anonymised"] == 1


def test_verification_fails_when_a_record_referencing_the_person_is_left(crm, hasher) -> None:  # type: ignore[no-untyped-def]
    engine = crm[0]
    outcome, scope = _erase(crm, hasher, SubjectIdentifiers(email="bo.ek@exempel.se"), "DSR-BO2")
    assert outcome.verified
    with engine.begin() as conn:  # a message written for Bo meanwhile (the table has no foreign key)
        conn.execute(text("INSERT INTO crm_messages VALUES (2001, 2, 'Sent later', NULL)"))
    from lifecycle.rights.journal import stored_actions
    again = verify_erasure(outcome, stored_actions(scope.tag_engine, "DSR-BO2") or [], scope, year=TODAY.year)
    assert again.verified is False
    assert again.remaining == {"crm_messages": 1}
    assert again.verification["references"]["left"] == {"crm_messages": 1}


def test_extract_includes_referenced_records_and_no_own_record_as_a_mention(crm, hasher) -> None:  # type: ignore[no-untyped-def]
    engine, tags, catalog, policy = crm
    with engine.begin() as conn:  # Bo mentions Anna, and someone else's phone number, in his message
        conn.execute(text("INSERT INTO crm_messages VALUES (2002, 2, 'Hej! Prata med anna.berg@exempel.se om "
                          "fakturan, eller ring Eva på 070-765 43 21 imorgon.', NULL)"))
    scan_source(catalog.source("crm_messages"), policy, source_engine=engine, tag_engine=tags, hasher=hasher,
                run_id="scan-2", logical_date=TODAY, full_rescan=True)
    ids = SubjectIdentifiers(email="anna.berg@exempel.se", personnummer="198504122386")
    extract = build_extract("DSR-X", catalog=catalog, policy=policy, source_engines={"crm": engine}, tag_engine=tags,
                            hashes=ids.hashes(hasher, TODAY.year), hasher=hasher, year=TODAY.year)
    records = [r for g in extract["groups"] for r in g["records"]]
    by_source: dict[str, int] = {}
    for r in records:
        by_source[r["source"]] = by_source.get(r["source"], 0) + 1
    assert by_source == {"crm_customers": 1, "crm_orders": 2, "crm_order_lines": 3, "crm_messages": 2}
    assert {r["reached_through"] for r in records if r["source"] == "crm_order_lines"} == {"crm_orders"}
    # Her personnummer in her own message is hers, not a mention; Bo's message is one, shown as the
    # text around it with the other person's phone number redacted (Art. 15(4)).
    assert [(m["category"], m["count"]) for m in extract["mentions"]] == [("case_details", 1)]
    excerpt, = extract["mentions"][0]["excerpts"]
    assert "anna.berg@exempel.se" in excerpt["text"] and "[raderad]" in excerpt["text"] and "765" not in excerpt["text"]
    assert excerpt["found_by"] == "canonical"


def test_nightly_plan_follows_parents_fallbacks_withdrawals_and_fiscal_years(crm) -> None:  # type: ignore[no-untyped-def]
    engine, tags, catalog, policy = crm
    names = list(catalog.sources)
    inherit_parent_clocks(tags, catalog, names)
    with tags.connect() as conn:
        tag = {(r.source, r.record_key): r for r in conn.execute(select(record_tag))}
    # First non-empty clock: Anna has no contract end, so her last contact counts.
    assert tag[("crm_customers", "1")].clock_value == date(2026, 10, 1)
    assert tag[("crm_customers", "1")].deadline == date(2028, 10, 1)
    # Per-record fiscal year end: March 2026 falls in the year ending 2026-06-30 -> 7 years -> 2033-12-31;
    # both orders end up at the same BFL deadline year, computed from their own year ends.
    assert tag[("crm_orders", "10")].deadline == date(2033, 12, 31)
    # Children without a clock of their own follow their parent.
    assert tag[("crm_order_lines", "100")].deadline == tag[("crm_orders", "10")].deadline
    assert tag[("crm_messages", "1000")].deadline == tag[("crm_customers", "1")].deadline
    assert tag[("crm_messages", "1000")].status == "active"
    # Withdrawn consent: due from the day it was withdrawn.
    assert (tag[("crm_messages", "3000")].deadline, tag[("crm_messages", "3000")].expiry_reason) == (
        date(2025, 5, 1), "consent_withdrawn")

    register_run(tags, "night", TODAY, False)
    build_plan(tags, [catalog.source(n) for n in names], "night", TODAY, (), reference_pairs(catalog, names))
    with tags.connect() as conn:
        planned = {(r.source, r.record_key): (r.action, r.reason) for r in conn.execute(
            select(plan_item).where(plan_item.c.run_id == "night", plan_item.c.scope == "record"))}
    assert planned[("crm_messages", "3000")] == ("erase", "consent_withdrawn")
    assert planned[("crm_messages", "2000")] == ("erase", "retention_expired")  # Bo's relationship ended 2015
    assert planned[("crm_order_lines", "200")] == ("erase", "retention_expired")
    assert planned[("crm_orders", "20")] == ("erase", "retention_expired")
    assert planned[("crm_customers", "2")] == ("erase", "retention_expired")
    # Cia's contract ended 2023: expired, but her order is kept by law, so she is kept, anonymised.
    assert planned[("crm_customers", "3")] == ("anonymise", "referenced_by_kept_record")
    assert ("crm_orders", "30") not in planned
    assert summarise_plan(tags, catalog.source("crm_messages"), "night").consent_withdrawn == 1

    stores = open_stores(catalog, {"crm": engine}, tags)
    for group in dependency_order(catalog, names):
        for name in group:  # children first: no foreign key breaks
            source = catalog.source(name)
            enforce_source(source, summarise_plan(tags, source, "night"), source_engine=stores[name], tag_engine=tags,
                           run_id="night", dry_run=False)
    assert _keys(engine, "crm_customers") == {1, 3}
    assert _keys(engine, "crm_orders") == {10, 11, 30}
    assert _keys(engine, "crm_messages") == {1000, 1001}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT email FROM crm_customers WHERE id = 3")).scalar() is None


@pytest.mark.parametrize(("change", "key", "problem"), [
    (lambda c: c["sources"]["crm_orders"]["subject"]["via"].update(customer_id="crm_nobody"),
     "sources.crm_orders.subject.via.customer_id", "not a source of the catalog"),
    (lambda c: c["sources"]["crm_customers"]["subject"].update(via={"id": "crm_order_lines"}),
     "subject.via", "cycle"),
    (lambda c: c["sources"]["crm_messages"].update(retention_clock={"parent": "order_id"}),
     "sources.crm_messages", "not a subject.via column"),
])
def test_malformed_references_are_refused_naming_the_key(tmp_path, policy, change, key, problem) -> None:  # type: ignore[no-untyped-def]
    import copy
    data = copy.deepcopy(CATALOG)
    change(data)
    with pytest.raises(CatalogError) as err:
        _catalog(tmp_path, policy, data)
    assert key in str(err.value) and problem in str(err.value)


def test_a_delete_that_would_cascade_into_an_undescribed_table_stops_before_anything_changes(crm, hasher) -> None:  # type: ignore[no-untyped-def]
    engine = crm[0]
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE crm_notes (id INTEGER PRIMARY KEY, "
                          "customer_id INTEGER REFERENCES crm_customers (id) ON DELETE CASCADE, note TEXT)"))
        conn.execute(text("INSERT INTO crm_notes VALUES (1, 2, 'ringt')"))
    before = {t: _keys(engine, t) for t in ("crm_customers", "crm_orders", "crm_order_lines", "crm_messages", "crm_notes")}
    with pytest.raises(UndeclaredReferenceError) as err:
        _erase(crm, hasher, SubjectIdentifiers(email="bo.ek@exempel.se"), "DSR-CASCADE")
    assert "crm_notes.customer_id (ON DELETE CASCADE)" in str(err.value) and "source crm_customers" in str(err.value)
    assert {t: _keys(engine, t) for t in before} == before


def test_activity_per_record_from_a_column(db, tag_db, tmp_path, policy, hasher) -> None:  # type: ignore[no-untyped-def]
    engine, tags = db.engine(), tag_db.tag_store()
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE crm_contacts (id INTEGER PRIMARY KEY, channel VARCHAR(10), email VARCHAR(200), "
                          "note TEXT, last_contact_at DATE)"))
        conn.execute(text("INSERT INTO crm_contacts VALUES (1, 'form', 'a@exempel.se', 'x', '2026-01-01'), "
                          "(2, 'mail', 'b@exempel.se', 'y', '2026-01-01'), (3, 'fax', 'c@exempel.se', 'z', '2026-01-01'), "
                          "(4, NULL, 'd@exempel.se', 'w', '2026-01-01')"))
    data = {"version": 1, "defaults": {"connection": "crm"}, "sources": {"crm_contacts": {
        "table": "crm_contacts", "primary_key": "id", "activity": "email", "retention_clock": "last_contact_at",
        "activity_column": {"column": "channel", "values": {"form": "contact_form", "mail": "email"}},
        "lawful_basis": "legitimate_interest", "subject": {"email": "email"}, "on_expiry": "erase",
        "columns": {"email": "contact_details", "note": {"category": "case_details", "free_text": True}}}}}
    catalog = _catalog(tmp_path, policy, data)
    scan_source(catalog.source("crm_contacts"), policy, source_engine=engine, tag_engine=tags, hasher=hasher,
                run_id="scan", logical_date=TODAY)
    with tags.connect() as conn:
        rows = {(r.record_key, r.category): (r.activity, r.violation) for r in conn.execute(select(record_tag))}
    assert rows[("1", "contact_details")] == ("contact_form", None)
    assert rows[("2", "case_details")] == ("email", None)
    assert rows[("3", "contact_details")][1] == "unknown_activity"  # 'fax' is not mapped: a person must look
    assert rows[("4", "contact_details")] == ("email", None)  # empty: the source's activity
    # Every mapped activity must be the policy's and allow the source's categories and bases.
    data["sources"]["crm_contacts"]["activity_column"]["values"]["tel"] = "newsletter"
    with pytest.raises(CatalogError, match="for activity .newsletter."):
        _catalog(tmp_path, policy, data)


def test_withdrawal_reaches_consent_based_records_through_references(crm, hasher) -> None:  # type: ignore[no-untyped-def]
    from lifecycle.rights.amend import plan_withdrawal

    engine, tags, catalog, policy = crm
    ids = SubjectIdentifiers(email="anna.berg@exempel.se")
    scope = RequestScope(catalog, {"crm": engine}, tags, hasher, ids, ids.hashes(hasher, TODAY.year))
    actions = plan_withdrawal(catalog, policy, tags, scope.hashes, scope.stores())
    assert {(a.source, a.record_key, a.action) for a in actions} == {
        ("crm_messages", "1000", "erase"), ("crm_messages", "1001", "erase")}  # her orders rest on the law
    apply_erasure(actions, scope, reference="DSR-W", today=TODAY, dry_run=False, suppress_as="consent_withdrawn")
    assert _keys(engine, "crm_messages") == {2000, 3000} and _keys(engine, "crm_orders") == {10, 11, 20, 30}
    assert plan_withdrawal(catalog, policy, tags, scope.hashes, scope.stores()) == []


def test_the_parent_index_holds_child_tags_only_and_serves_the_plans_join(crm) -> None:  # type: ignore[no-untyped-def]
    from lifecycle.tagstore.sqlfiles import statement

    engine, tags, catalog, policy = crm
    with tags.begin() as conn:
        if tags.dialect.name == "postgresql":
            # Every source's partition has the parent's partial index (created with it, or adopted).
            predicates = conn.execute(text(
                "SELECT pg_get_expr(i.indpred, i.indrelid) FROM pg_inherits h JOIN pg_index i ON i.indexrelid = h.inhrelid "
                "WHERE h.inhparent = to_regclass('ix_lc_record_tag_parent')")).scalars().all()
            assert len(predicates) == len(catalog.sources) + 1 and set(predicates) == {"(parent_key IS NOT NULL)"}
            conn.execute(text("SET LOCAL enable_seqscan = off"))  # the tables are tiny: ask what an index can do
            explain = "EXPLAIN "
        else:
            definition = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'ix_lc_record_tag_parent'")).scalar_one()
            assert definition.endswith("WHERE parent_key IS NOT NULL")
            explain = "EXPLAIN QUERY PLAN "
        # Keeping a parent whose children stay compares the children's parent_key with a key:
        # the partial index answers it.
        plan = "\n".join(str(row[-1]) for row in conn.execute(
            text(explain + statement(tags, "protect_referenced_parents").text),
            {"run_id": "night", "child": "crm_orders", "parent": "crm_customers"}))
    assert "parent" in plan.lower() and ("parent_key_idx" in plan or "ix_lc_record_tag_parent" in plan), plan
