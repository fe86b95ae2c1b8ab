"""The demo company's data: deterministic, complete, and holding the cases that matter."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import yaml
from dateutil.relativedelta import relativedelta
from sqlalchemy import Date, MetaData, inspect, select

from lifecycle.demo import generate, luhn_check_digit

AS_OF = date(2026, 11, 25)
CATALOG = Path(__file__).resolve().parents[1] / "config" / "catalog.yaml"


def _rows(db) -> dict[str, list[dict]]:  # type: ignore[no-untyped-def]
    engine = db.engine()
    md = MetaData()
    md.reflect(engine)
    with engine.connect() as conn:
        return {name: [dict(r) for r in conn.execute(select(t).order_by(t.c.id)).mappings()] for name, t in md.tables.items()}


def _luhn_ok(number: str) -> bool:
    digits = "".join(ch for ch in number if ch.isdigit())[-10:]
    return luhn_check_digit(digits[:9]) == int(digits[9])


def test_deterministic_by_seed(db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    generate(db.url, rows=60, seed=3, as_of=AS_OF, schema=db.schema)
    first = _rows(db)
    generate(db.url, rows=60, seed=3, as_of=AS_OF, schema=db.schema)
    assert _rows(db) == first
    generate(db.url, rows=60, seed=4, as_of=AS_OF, schema=db.schema)
    assert _rows(db) != first


def test_tables_match_catalog_and_dates_are_declared(db) -> None:  # type: ignore[no-untyped-def]
    generate(db.url, rows=40, seed=1, as_of=AS_OF, schema=db.schema)
    inspector = inspect(db.engine())
    for name, source in yaml.safe_load(CATALOG.read_text())["sources"].items():
        columns = {c["name"]: c for c in inspector.get_columns(source["table"])}
        for column in [*source["columns"], source["primary_key"], source["retention_clock"]]:
            assert column in columns, f"{name}.{column}"
        assert isinstance(columns[source["retention_clock"]]["type"], Date), name


def test_cases_that_matter_are_present(db) -> None:  # type: ignore[no-untyped-def]
    written = generate(db.url, rows=400, seed=42, as_of=AS_OF, schema=db.schema)
    assert written["website_visits"] == 800 and written["customers"] == 100
    rows = _rows(db)
    edge = AS_OF - relativedelta(years=2)
    clocks = [r["last_confirmed_at"] for r in rows["newsletter_subscribers"]]
    assert any(edge <= c <= edge + relativedelta(days=3) for c in clocks), "just inside"
    assert any(edge - relativedelta(days=3) <= c < edge for c in clocks), "just past"
    assert any(c < AS_OF - relativedelta(years=3) for c in clocks), "far past"
    assert any(c > AS_OF - relativedelta(years=1) for c in clocks), "well inside"
    years = [r["invoice_date"].year for r in rows["invoices"]]
    assert any(y <= AS_OF.year - 8 for y in years), "past BFL"
    assert any(AS_OF.year - 7 <= y and r["invoice_date"] < edge for y, r in zip(years, rows["invoices"])), "past 2 years, inside BFL"
    assert {r["customer_id"] for r in rows["ad_audiences"]} >= {"kund-nordisk-handel", "kund-fastighetsbyran", "kund-okand"}
    assert any(r["message_basis"] is None for r in rows["contact_form_submissions"])
    assert all(_luhn_ok(r["org_number"]) for r in rows["customers"])
    assert all(_luhn_ok(r["personnummer"]) for r in rows["job_applications"])
    assert any(int(r["personnummer"][6:8]) > 60 for r in rows["job_applications"]), "samordningsnummer"
    structured = {r["email"] for r in rows["newsletter_subscribers"]} | {r["contact_email"] for r in rows["customers"]}
    assert any(e in r["message"] for r in rows["contact_form_submissions"] for e in structured - {r["email"]}), \
        "someone's e-mail from a structured column appears in another person's message"
    texts = [r["message"] for r in rows["contact_form_submissions"]] + [r["body"] for r in rows["email_threads"]]
    assert any("order 2024-118833" in t or "1 299 kr" in t for t in texts), "look-alikes"
