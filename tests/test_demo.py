"""The demo company's data: deterministic, shaped like the catalog, and holding the cases that
matter; on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from dateutil.relativedelta import relativedelta
from sqlalchemy import Date, DateTime, Engine, MetaData, create_engine, inspect, select, text

from lifecycle.tagstore.db import make_engine
from demo.company import (
    CLOCK_CASES,
    clock_date,
    first_kept_day,
    generate,
    luhn_check_digit,
    main,
    org_number,
    personnummer,
    phone_number,
    volumes,
)

ROOT = Path(__file__).resolve().parents[1]
CATALOG = yaml.safe_load((ROOT / "config" / "catalog.yaml").read_text(encoding="utf-8"))["sources"]
POLICY = yaml.safe_load((ROOT / "config" / "policy.yaml").read_text(encoding="utf-8"))
PG_URL = os.environ.get("LIFECYCLE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
AS_OF = date(2026, 11, 25)
ROWS = 200
TWO_YEARS = relativedelta(years=2)

TWO_YEAR_CLOCKS = {name: s["retention_clock"] for name, s in CATALOG.items()
                   if name not in ("invoices", "ad_audiences", "orders") and isinstance(s["retention_clock"], str)}
FREE_TEXT = {"contact_form_submissions": ("message", "email"), "email_threads": ("body", "sender_email"),
             "phone_calls": ("call_notes", None), "job_applications": ("cover_letter", "email")}
STRUCTURED_EMAILS = {"newsletter_subscribers": "email", "customers": "contact_email", "tool_users": "user_email"}
ORG_NUMBERS = [("email_threads", "org_number"), ("phone_calls", "org_number"), ("customers", "org_number"),
               ("invoices", "buyer_org_number")]
PHONES = [("contact_form_submissions", "phone"), ("email_threads", "phone"), ("phone_calls", "phone_number"),
          ("job_applications", "phone"), ("customers", "contact_phone"), ("invoices", "contact_phone"),
          ("ad_audiences", "phone")]
EMAILS = [("contact_form_submissions", "email"), ("email_threads", "sender_email"), ("newsletter_subscribers", "email"),
          ("tool_users", "user_email"), ("job_applications", "email"), ("customers", "contact_email"),
          ("invoices", "contact_email"), ("ad_audiences", "email")]

_PHONE = re.compile(r"""^(?:07[0236]-\d{3}\ \d{2}\ \d{2} | \+46\ 7[0236]\ \d{3}\ \d{2}\ \d{2} | 00467[0236]\d{7}
                        | 07[0236]\d{7} | 08-\d{3}\ \d{3}\ \d{2} | 0\d{2}-\d{2,3}\ \d{2}\ \d{2}
                        | \+46\ 8\ \d{3}\ \d{3}\ \d{2} | \+46\ \d{2}\ \d{2,3}\ \d{2}\ \d{2})$""", re.X)
_EMAIL = re.compile(r"^[a-z0-9][a-z0-9.-]*@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}$")
_EMAIL_IN_TEXT = re.compile(r"[a-z0-9._-]+@[a-z0-9.-]+\.[a-z]{2,}")
_PHONE_IN_TEXT = re.compile(r"(?:\+46|0046|\b0)[ -]?\d[\d -]{6,12}\d")
_PNR_IN_TEXT = re.compile(r"\b(?:19|20)?\d{6}-\d{4}\b")

Rows = dict[str, list[dict[str, Any]]]


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str | None]]:
    """A database to generate into: a SQLite file, or a fresh PostgreSQL schema (dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}", None
        return
    schema = f"demo_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL)
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"PostgreSQL is required at {PG_URL} and did not answer: {e}", pytrace=False)
    try:
        yield PG_URL, schema  # generate() creates the schema itself
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="module")
def demo(target: tuple[str, str | None]) -> tuple[Engine, dict[str, int], Rows]:
    """The demo data at ROWS, generated once per backend and read back."""
    url, schema = target
    written = generate(url, rows=ROWS, seed=42, as_of=AS_OF, schema=schema)
    engine = make_engine(url, schema=schema)
    return engine, written, _read(engine)


def _read(engine: Engine) -> Rows:
    md = MetaData()
    md.reflect(engine)
    with engine.connect() as conn:
        return {name: [dict(r) for r in conn.execute(select(t).order_by(t.c.id)).mappings()]
                for name, t in md.tables.items()}


def _luhn_ok(number: str) -> bool:
    ten = re.sub(r"\D", "", number)[-10:]
    return len(ten) == 10 and luhn_check_digit(ten[:9]) == int(ten[9])


def _expired(clock: date) -> bool:
    return clock + TWO_YEARS < AS_OF


# -- shape ---------------------------------------------------------------------------------


def test_deterministic_by_seed(target: tuple[str, str | None]) -> None:
    url, schema = target
    engine = make_engine(url, schema=schema)
    generate(url, rows=ROWS, seed=7, as_of=AS_OF, schema=schema)
    first = _read(engine)
    generate(url, rows=ROWS, seed=7, as_of=AS_OF, schema=schema)  # drops and recreates
    assert _read(engine) == first
    generate(url, rows=ROWS, seed=8, as_of=AS_OF, schema=schema)
    other = _read(engine)
    assert other != first
    assert other["newsletter_subscribers"][0]["email"] != first["newsletter_subscribers"][0]["email"]
    engine.dispose()


def test_same_data_in_another_process(tmp_path: Path) -> None:
    """No dependence on hash randomisation or the wall clock: fresh interpreters agree."""
    code = ("import sys, datetime; from demo.company import generate; "
            "generate(sys.argv[1], rows=40, seed=3, as_of=datetime.date(2026, 11, 25))")
    dumps = []
    for hash_seed in ("1", "2"):
        url = f"sqlite:///{tmp_path / f'p{hash_seed}.db'}"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-c", code, url], cwd=ROOT, env=env, check=True)
        dumps.append(_read(create_engine(url)))
    assert dumps[0] == dumps[1]


def test_volumes_scale_with_rows(demo) -> None:  # type: ignore[no-untyped-def]
    _, written, rows = demo
    assert written == {"customers": 50, "newsletter_subscribers": 200, "tool_users": 100,
                       "contact_form_submissions": 200, "email_threads": 200, "phone_calls": 100,
                       "website_visits": 400, "job_applications": 50, "invoices": 200, "ad_audiences": 200,
                       "orders": 200, "order_lines": 400, "support_tickets": 50, "ticket_messages": 100}
    assert {name: len(r) for name, r in rows.items()} == written
    assert {name: n for name, (n, _) in volumes(1).items()} == dict.fromkeys(written, 4)  # never empty


def test_tables_have_exactly_the_catalog_columns(demo) -> None:  # type: ignore[no-untyped-def]
    engine = demo[0]
    inspector = inspect(engine)
    for name, source in CATALOG.items():
        actual = {c["name"] for c in inspector.get_columns(source["table"])}
        basis_columns = {b["column"] for b in (source.get("category_bases") or {}).values() if isinstance(b, dict)}
        clock = source["retention_clock"]
        clocks = [clock] if isinstance(clock, str) else clock if isinstance(clock, list) else []
        expected = {*source["columns"], source["primary_key"], *clocks, *(source.get("subject") or {}).get("via", {}),
                    *source.get("not_personal", []), *basis_columns}
        if source.get("controller_column"):
            expected.add(source["controller_column"])
        # Anything not listed would be reported as untagged schema drift.
        assert actual == expected, name
        assert inspector.get_pk_constraint(source["table"])["constrained_columns"] == [source["primary_key"]]


def test_dates_are_declared_date_and_timestamps_datetime(demo) -> None:  # type: ignore[no-untyped-def]
    inspector = inspect(demo[0])
    dates = {"newsletter_subscribers": ["subscribed_at"], "tool_users": ["signed_up_at"],
             "customers": ["contract_start"], "website_visits": []}
    timestamps = {"contact_form_submissions": "submitted_at", "email_threads": "received_at",
                  "phone_calls": "called_at", "website_visits": "visited_at"}
    for name, source in CATALOG.items():
        types = {c["name"]: c["type"] for c in inspector.get_columns(source["table"])}
        clock = source["retention_clock"]
        clocks = [clock] if isinstance(clock, str) else clock if isinstance(clock, list) else []
        for column in [*clocks, *dates.get(name, [])]:
            assert isinstance(types[column], Date) and not isinstance(types[column], DateTime), f"{name}.{column}"
        if name in timestamps:
            assert isinstance(types[timestamps[name]], DateTime), name


# -- retention cases -----------------------------------------------------------------------


def test_every_two_year_table_holds_every_retention_case(demo) -> None:  # type: ignore[no-untyped-def]
    rows = demo[2]
    for name, clock in TWO_YEAR_CLOCKS.items():
        clocks = [r[clock] for r in rows[name] if r[clock] is not None]
        deadlines = [c + TWO_YEARS for c in clocks]
        assert any(d > AS_OF + relativedelta(months=6) for d in deadlines), f"{name}: well inside"
        assert any(AS_OF <= d <= AS_OF + relativedelta(days=3) for d in deadlines), f"{name}: just inside"
        assert any(AS_OF - relativedelta(days=3) <= d < AS_OF for d in deadlines), f"{name}: just past"
        assert any(c <= AS_OF - relativedelta(years=3) for c in clocks), f"{name}: far past"
        assert all(c <= AS_OF for c in clocks), f"{name}: no clock in the future"
        share = sum(map(_expired, clocks)) / len(rows[name])
        assert 0.05 < share < 0.4, f"{name}: expired share {share:.0%} must stay well under max_destroy_share"
    ends = [r["contract_end"] for r in rows["customers"]]
    assert 0.3 < ends.count(None) / len(ends) < 0.7, "about half the contracts still run"


@pytest.mark.parametrize("as_of", [AS_OF, date(2028, 2, 29), date(2027, 3, 1), date(2026, 2, 28)])
def test_clock_cases_hold_around_leap_days(as_of: date) -> None:
    import random

    rng = random.Random(1)
    edge = first_kept_day(as_of)
    assert edge + TWO_YEARS >= as_of > (edge - relativedelta(days=1)) + TWO_YEARS
    for case in CLOCK_CASES:
        for _ in range(50):
            clock = clock_date(rng, as_of, case)
            deadline = clock + TWO_YEARS
            if case == "just_inside":
                assert as_of <= deadline <= as_of + relativedelta(days=3), (case, clock)
            elif case == "just_past":
                assert as_of - relativedelta(days=3) <= deadline < as_of, (case, clock)
            elif case == "far_past":
                assert as_of - relativedelta(years=6, days=1) <= clock <= as_of - relativedelta(years=3), (case, clock)
            else:
                assert deadline >= as_of and clock <= as_of, (case, clock)


def test_invoices_fall_in_the_three_bookkeeping_groups(demo) -> None:  # type: ignore[no-untyped-def]
    invoices = demo[2]["invoices"]
    groups = Counter(
        "past_bfl" if date(r["invoice_date"].year + 7, 12, 31) < AS_OF  # BFL 7 kap. 2 §
        else "past_two_years" if _expired(r["invoice_date"]) else "young"
        for r in invoices)
    for group in ("young", "past_two_years", "past_bfl"):
        assert groups[group] >= 0.1 * len(invoices), groups
    assert all(AS_OF - relativedelta(years=9) <= r["invoice_date"] <= AS_OF for r in invoices)
    customers = {r["id"]: r for r in demo[2]["customers"]}
    for r in invoices:
        assert customers[r["customer_id"]]["org_number"] == r["buyer_org_number"]
        assert r["vat_sek"] == (r["amount_sek"] * 25 / 100).quantize(r["vat_sek"])


def test_audiences_of_both_processor_customers_and_one_unknown(demo) -> None:  # type: ignore[no-untyped-def]
    audiences = demo[2]["ad_audiences"]
    customers = Counter(r["customer_id"] for r in audiences)
    processor = POLICY["processor_customers"]
    assert set(customers) == {*processor, "kund-okand"} and "kund-okand" not in processor
    assert customers["kund-okand"] <= 0.05 * len(audiences)
    for customer, minimum, maximum in (("kund-nordisk-handel", 0.4, 0.9), ("kund-fastighetsbyran", 0.05, 0.4)):
        period = relativedelta(days=90) if processor[customer]["retention"] == "P90D" else relativedelta(years=1)
        theirs = [r for r in audiences if r["customer_id"] == customer]
        share = sum(r["uploaded_at"] + period < AS_OF for r in theirs) / len(theirs)
        assert minimum < share < maximum, (customer, share)
    assert all(AS_OF - relativedelta(days=500) <= r["uploaded_at"] <= AS_OF for r in audiences)


def test_lawful_basis_columns_hold_a_few_deliberate_violations(demo) -> None:  # type: ignore[no-untyped-def]
    rows = demo[2]
    seen: Counter[str | None] = Counter()
    for name, column in (("contact_form_submissions", "message_basis"), ("email_threads", "body_basis"),
                         ("phone_calls", "notes_basis")):
        seen.update(r[column] for r in rows[name])
    assert set(seen) == {"consent", "contract", "legitimate_interest", None, "marketing"}
    total = sum(seen.values())
    assert 0 < seen[None] <= 0.02 * total and 0 < seen["marketing"] <= 0.01 * total


# -- identifiers ---------------------------------------------------------------------------


def test_org_numbers_and_personnummer_are_valid(demo) -> None:  # type: ignore[no-untyped-def]
    rows = demo[2]
    for name, column in ORG_NUMBERS:
        numbers = [r[column] for r in rows[name] if r[column] is not None]
        assert numbers, f"{name}.{column}"
        for number in numbers:
            assert re.fullmatch(r"\d{6}-\d{4}", number) and int(number[2]) >= 2 and _luhn_ok(number), number
    kinds = Counter()
    for r in rows["job_applications"]:
        pnr = r["personnummer"]
        assert re.fullmatch(r"(19|20)\d{6}-\d{4}", pnr) and _luhn_ok(pnr), pnr
        day = int(pnr[6:8])
        kinds["samordning" if day > 60 else "person"] += 1
        date(int(pnr[:4]), int(pnr[4:6]), day - 60 if day > 60 else day)  # a real birth date
    assert kinds["samordning"] >= 1 and kinds["person"] > kinds["samordning"]


def test_helpers_make_valid_identifiers() -> None:
    import random

    rng = random.Random(5)
    assert luhn_check_digit("811218987") == 6 and luhn_check_digit("556898971") == 8  # 811218-9876, Millstone
    for _ in range(200):
        assert _luhn_ok(org_number(rng)) and int(org_number(rng)[2]) >= 2
        assert _luhn_ok(personnummer(rng)) and _luhn_ok(personnummer(rng, samordning=True, twelve=False))
        assert _PHONE.match(phone_number(rng)), phone_number(rng)


def test_phones_and_emails_look_swedish(demo) -> None:  # type: ignore[no-untyped-def]
    rows = demo[2]
    for name, column in PHONES:
        for r in rows[name]:
            assert r[column] is None or _PHONE.match(r[column]), (name, r[column])
    for name, column in EMAILS:
        for r in rows[name]:
            assert _EMAIL.match(r[column]), (name, r[column])  # lower-case ASCII: å, ä -> a, ö -> o
    assert len({r["email"] for r in rows["newsletter_subscribers"]}) == len(rows["newsletter_subscribers"])
    assert len({r["org_number"] for r in rows["customers"]}) == len(rows["customers"]), "a company per customer"
    ips = [r["ip_address"] for r in rows["website_visits"]]
    assert any(":" in ip for ip in ips) and any("." in ip for ip in ips)


# -- free text and people ------------------------------------------------------------------


def test_free_texts_hold_personal_data_and_look_alikes(demo) -> None:  # type: ignore[no-untyped-def]
    rows = demo[2]
    texts = [r[column] for name, (column, _) in FREE_TEXT.items() for r in rows[name]]
    assert all(40 <= len(t) <= 400 for t in texts)
    personal = [t for t in texts if _EMAIL_IN_TEXT.search(t) or _PHONE_IN_TEXT.search(t) or _PNR_IN_TEXT.search(t)]
    assert 0.3 < len(personal) / len(texts) < 0.5
    assert any(_PNR_IN_TEXT.search(t) for t in texts)
    assert any(re.search(r"order \d{4}-\d{6}|\d \d{3} kr", t) for t in texts), "look-alikes"


def test_free_texts_mention_people_of_other_records(demo) -> None:  # type: ignore[no-untyped-def]
    rows = demo[2]
    structured = {r[column] for name, column in STRUCTURED_EMAILS.items() for r in rows[name]}
    mentions = 0
    total = 0
    for name, (column, own_column) in FREE_TEXT.items():
        for r in rows[name]:
            total += 1
            own = r[own_column] if own_column else None
            mentions += any(e in structured and e != own for e in _EMAIL_IN_TEXT.findall(r[column]))
    assert 0.03 < mentions / total < 0.1


def test_some_people_appear_in_several_tables(demo) -> None:  # type: ignore[no-untyped-def]
    rows = demo[2]
    per_table = {name: {r[column] for r in rows[name]} for name, column in EMAILS if name != "invoices"}
    tables_of = Counter(e for emails in per_table.values() for e in emails)
    assert any(n >= 3 for n in tables_of.values())
    for name, emails in per_table.items():
        shared = sum(tables_of[e] > 1 for e in emails) / len(emails)
        assert 0.02 < shared < 0.25, (name, shared)


# -- CLI and imports -----------------------------------------------------------------------


def test_cli_prints_rows_per_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", f"sqlite:///{tmp_path / 'cli.db'}", "--rows", "20", "--as-of", "2026-11-25"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^website_visits\s+40$", out, re.M) and len(out.strip().splitlines()) == 14


def test_module_does_not_import_airflow() -> None:
    code = "import sys, demo.company; sys.exit(any(m.split('.')[0] == 'airflow' for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
