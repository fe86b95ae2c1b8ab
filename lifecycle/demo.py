"""A demo company's data: realistic synthetic Swedish records for every activity of the policy.

Deterministic by seed, scalable by ``rows``, written to any SQLAlchemy URL. The data holds the
cases that matter: records well inside, just inside, just past and far past their retention
window; invoices past 2 years but inside BFL's 7; free text that mentions the sender's and
other people's e-mail addresses, phone numbers and personnummer (and look-alikes that are not
personal data); processor-role audiences of two customers with different instructions, and a
few deliberate violations (no or a disallowed lawful basis, a customer without instruction).

    python -m lifecycle.demo --url sqlite:///demo.db --rows 500 --as-of 2026-11-25
"""

from __future__ import annotations

import argparse
import random
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from dateutil.relativedelta import relativedelta
from faker import Faker
from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    text,
)

from lifecycle.db import make_engine

CHUNK = 5000
BASES = ("consent", "contract", "legitimate_interest")
PROCESSOR_CUSTOMERS = ("kund-nordisk-handel", "kund-fastighetsbyran")
UNKNOWN_CUSTOMER = "kund-okand"
# Sources without an updated_at change signal, as some real ones are.
NO_UPDATED_AT = ("website_visits", "job_applications")


def build_tables(metadata: MetaData) -> dict[str, Table]:
    s = String(200)

    def t(name: str, *cols: Column) -> Table:
        # Every table has an id; those with a change signal also an indexed updated_at.
        extra = () if name in NO_UPDATED_AT else (Column("updated_at", DateTime, index=True),)
        return Table(name, metadata, Column("id", Integer, primary_key=True), *cols, *extra)

    return {
        "contact_form_submissions": t(
            "contact_form_submissions", Column("submitted_at", DateTime), Column("last_interaction_at", Date),
            Column("name", s), Column("email", s), Column("ip_address", s), Column("phone", s),
            Column("company_name", s), Column("company_url", s), Column("message", Text), Column("message_basis", String(40)),
        ),
        "email_threads": t(
            "email_threads", Column("received_at", DateTime), Column("last_interaction_at", Date),
            Column("sender_name", s), Column("sender_email", s), Column("sender_ip", s), Column("phone", s),
            Column("company_name", s), Column("company_url", s), Column("org_number", s), Column("body", Text),
            Column("body_basis", String(40)),
        ),
        "phone_calls": t(
            "phone_calls", Column("called_at", DateTime), Column("last_interaction_at", Date), Column("phone_number", s),
            Column("source", s), Column("medium", s), Column("company_name", s), Column("org_number", s),
            Column("call_notes", Text), Column("notes_basis", String(40)),
        ),
        "newsletter_subscribers": t(
            "newsletter_subscribers", Column("subscribed_at", Date), Column("last_confirmed_at", Date),
            Column("name", s), Column("email", s),
        ),
        "website_visits": t(
            "website_visits", Column("visited_at", DateTime), Column("visit_date", Date), Column("ip_address", s),
            Column("identified_company", s), Column("page_path", s),
        ),
        "tool_users": t(
            "tool_users", Column("signed_up_at", Date), Column("last_login_at", Date), Column("user_name", s),
            Column("user_email", s), Column("company_name", s), Column("company_url", s), Column("plan", String(20)),
        ),
        "job_applications": t(
            "job_applications", Column("applied_at", Date), Column("position", s), Column("applicant_name", s),
            Column("email", s), Column("phone", s), Column("personnummer", s), Column("cover_letter", Text),
        ),
        "customers": t(
            "customers", Column("customer_number", s), Column("company_name", s), Column("org_number", s),
            Column("contact_name", s), Column("contact_email", s), Column("contact_phone", s),
            Column("contract_start", Date), Column("contract_end", Date),
        ),
        "invoices": t(
            "invoices", Column("invoice_number", s), Column("customer_id", Integer), Column("invoice_date", Date),
            Column("amount_sek", Numeric(12, 2)), Column("vat_sek", Numeric(12, 2)), Column("buyer_company", s),
            Column("buyer_org_number", s), Column("buyer_address", s), Column("contact_name", s),
            Column("contact_email", s), Column("contact_phone", s),
        ),
        "ad_audiences": t(
            "ad_audiences", Column("customer_id", s), Column("uploaded_at", Date), Column("name", s),
            Column("email", s), Column("phone", s), Column("segment", String(40)),
        ),
    }


# -- Swedish identifiers -------------------------------------------------------------------


def luhn_check_digit(digits: str) -> int:
    """The Luhn check digit of a 9-digit body (personnummer YYMMDDNNN, organisationsnummer)."""
    total = 0
    for i, ch in enumerate(digits):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return (10 - total % 10) % 10


def personnummer(rng: random.Random, *, samordning: bool = False, twelve: bool = True) -> str:
    born = date(1950, 1, 1) + timedelta(days=rng.randrange(0, 55 * 365))
    day = born.day + (60 if samordning else 0)
    body = f"{born:%y%m}{day:02d}{rng.randrange(0, 1000):03d}"
    number = f"{body[:6]}-{body[6:]}{luhn_check_digit(body)}"
    return f"{born.year // 100}{number}" if twelve else number


def org_number(rng: random.Random) -> str:
    body = f"55{rng.randrange(2, 10)}{rng.randrange(0, 1_000_000):06d}"
    return f"{body[:6]}-{body[6:]}{luhn_check_digit(body)}"


def phone_number(rng: random.Random, *, mobile: bool | None = None) -> str:
    """A Swedish number in one of the common writings."""
    if mobile is None:
        mobile = rng.random() < 0.7
    if mobile:
        n = f"7{rng.choice('0236')}{rng.randrange(0, 10_000_000):07d}"
        style = rng.randrange(4)
        if style == 0:
            return f"0{n[:2]}-{n[2:5]} {n[5:7]} {n[7:]}"
        if style == 1:
            return f"+46 {n[:2]} {n[2:5]} {n[5:7]} {n[7:]}"
        if style == 2:
            return f"0046{n}"
        return f"0{n}"
    n = f"{rng.randrange(0, 100_000_000):08d}"
    return f"08-{n[:3]} {n[3:6]} {n[6:]}" if rng.random() < 0.5 else f"+46 8 {n[:3]} {n[3:6]} {n[6:]}"


def _ascii(text_: str) -> str:
    return unicodedata.normalize("NFKD", text_).encode("ascii", "ignore").decode().lower().replace(" ", "")


# -- people and companies ------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    name: str
    email: str
    phone: str
    personnummer: str


@dataclass(frozen=True)
class Company:
    name: str
    url: str
    org_number: str
    address: str


class World:
    """Pools of people and companies drawn deterministically from one seed."""

    def __init__(self, rng: random.Random, fake: Faker, people: int, companies: int):
        self.rng = rng
        self.mentioned: list[str] = []  # e-mails of pool people that free texts repeat
        firsts = [fake.first_name() for _ in range(300)]
        lasts = [fake.last_name() for _ in range(300)]
        domains = ["gmail.com", "outlook.com", "telia.com", "hotmail.se", "icloud.com", "bredband.net"]
        self.companies = []
        for _ in range(companies):
            name = fake.company()
            slug = _ascii(name.split(" ")[0]) or "bolag"
            self.companies.append(Company(name, f"https://www.{slug}.se", org_number(rng),
                                          f"{fake.street_address()}, {fake.postcode()} {fake.city()}"))
        self.people = []
        seen: set[str] = set()
        for i in range(people):
            first, last = rng.choice(firsts), rng.choice(lasts)
            base = f"{_ascii(first)}.{_ascii(last)}"
            domain = rng.choice(domains) if rng.random() < 0.5 else self.companies[i % companies].url.split("www.")[1]
            email = f"{base}@{domain}"
            if email in seen:
                email = f"{base}{i}@{domain}"
            seen.add(email)
            self.people.append(Person(f"{first} {last}", email, phone_number(rng),
                                      personnummer(rng, samordning=rng.random() < 0.1)))

    def person(self) -> Person:
        return self.rng.choice(self.people)

    def company(self) -> Company:
        return self.rng.choice(self.companies)


# -- retention scenarios -------------------------------------------------------------------


def clock_date(rng: random.Random, as_of: date) -> date:
    """A 2-year clock: well inside, just inside, just past, far past, or close to the edge."""
    edge = as_of - relativedelta(years=2)  # deadline == as_of: the last day it may be held
    roll = rng.random()
    if roll < 0.55:
        return as_of - timedelta(days=rng.randrange(0, 600))
    if roll < 0.63:
        return edge + timedelta(days=rng.randrange(0, 4))
    if roll < 0.71:
        return edge - timedelta(days=rng.randrange(1, 4))
    if roll < 0.86:
        return as_of - timedelta(days=rng.randrange(3 * 365, 6 * 365))
    return as_of - timedelta(days=rng.randrange(600, 726))


def _moment(rng: random.Random, day: date) -> datetime:
    return datetime.combine(day, time(rng.randrange(7, 22), rng.randrange(60), rng.randrange(60)))


def _basis(rng: random.Random) -> str | None:
    roll = rng.random()
    if roll < 0.01:
        return None  # deliberate violation: no recorded basis
    if roll < 0.015:
        return "marketing"  # deliberate violation: not a lawful basis of the policy
    return rng.choice(BASES)


# -- free text -----------------------------------------------------------------------------

_OPENINGS = [
    "Hej! Vi är intresserade av er tjänst för digital annonsering.",
    "Hej, jag undrar över priset för en kampanj i vår.",
    "Tack för senast. Kan ni skicka offerten igen?",
    "Hej, vi vill boka ett möte om SEO för vår webbshop.",
    "Jag har frågor om fakturan för förra månaden.",
    "Vi behöver hjälp med Google Ads-kontot.",
]
_LOOKALIKES = [
    "Gäller order 2024-118833.",
    "Priset var 1 299 kr per månad.",
    "Mötet är 2025-03-14 kl 14:30.",
    "Ärendenummer 55123-77.",
    "Budget 12 500,00 SEK exkl moms.",
    "Version 2.4.1 av pluginet.",
]


def free_text(rng: random.Random, world: World, sender: Person, mentioned: list[str]) -> str:
    """A Swedish message; ~40 % hold personal data, some of other people. ``mentioned`` collects
    e-mails of structured records that the text repeats (for tests of free-text discovery)."""
    parts = [rng.choice(_OPENINGS)]
    roll = rng.random()
    if roll < 0.25:
        parts.append(f"Nå mig på {sender.email} eller {sender.phone}.")
    elif roll < 0.33:
        other = world.person()
        parts.append(f"Kontakta gärna min kollega {other.name}, {other.email}, tel {other.phone}.")
        mentioned.append(other.email)
    elif roll < 0.38:
        other = world.person()
        parts.append(f"Det gäller min anställde, personnummer {other.personnummer}.")
    elif roll < 0.40:
        parts.append(f"Mitt personnummer är {sender.personnummer}.")
    if rng.random() < 0.3:
        parts.append(rng.choice(_LOOKALIKES))
    parts.append(rng.choice(["Mvh", "Vänliga hälsningar", "Tack på förhand!"]) + f" {sender.name.split(' ')[0]}")
    return " ".join(parts)[:400]


def ipv4(rng: random.Random) -> str:
    return f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def ip_address(rng: random.Random) -> str:
    if rng.random() < 0.15:
        return f"2001:db8:{rng.randrange(65536):x}::{rng.randrange(1, 65536):x}"
    return ipv4(rng)


# -- row makers ----------------------------------------------------------------------------

RowMaker = Callable[[int, random.Random, World, date], dict[str, Any]]


def _contact_form(i: int, rng: random.Random, w: World, as_of: date) -> dict[str, Any]:
    p, c = w.person(), w.company()
    last = clock_date(rng, as_of)
    return dict(id=i, submitted_at=_moment(rng, last - timedelta(days=rng.randrange(0, 30))), last_interaction_at=last,
                name=p.name, email=p.email, ip_address=ip_address(rng), phone=p.phone if rng.random() < 0.6 else None,
                company_name=c.name, company_url=c.url, message=free_text(rng, w, p, w.mentioned),
                message_basis=_basis(rng))


def _email_thread(i: int, rng: random.Random, w: World, as_of: date) -> dict[str, Any]:
    p = w.person()
    c = w.company() if rng.random() < 0.7 else None
    last = clock_date(rng, as_of)
    return dict(id=i, received_at=_moment(rng, last - timedelta(days=rng.randrange(0, 60))), last_interaction_at=last,
                sender_name=p.name, sender_email=p.email, sender_ip=ip_address(rng),
                phone=p.phone if rng.random() < 0.5 else None, company_name=c.name if c else None,
                company_url=c.url if c else None, org_number=c.org_number if c and rng.random() < 0.6 else None,
                body=free_text(rng, w, p, w.mentioned), body_basis=_basis(rng))


def _phone_call(i: int, rng: random.Random, w: World, as_of: date) -> dict[str, Any]:
    p = w.person()
    c = w.company() if rng.random() < 0.5 else None
    last = clock_date(rng, as_of)
    source, medium = rng.choice([("Google Ads", "cpc"), ("Facebook", "cpc"), ("Organisk sök", "organic"),
                                 ("Direkt", "direct"), ("Partnerlänk", "referral")])
    return dict(id=i, called_at=_moment(rng, last), last_interaction_at=last, phone_number=p.phone, source=source,
                medium=medium, company_name=c.name if c else None, org_number=c.org_number if c else None,
                call_notes=free_text(rng, w, p, w.mentioned), notes_basis=_basis(rng))


def _newsletter(i: int, rng: random.Random, w: World, as_of: date) -> dict[str, Any]:
    p = w.person()
    last = clock_date(rng, as_of)
    return dict(id=i, subscribed_at=last - timedelta(days=rng.randrange(0, 400)), last_confirmed_at=last,
                name=p.name, email=p.email)


def _visit(i: int, rng: random.Random, w: World, as_of: date) -> dict[str, Any]:
    day = clock_date(rng, as_of)
    return dict(id=i, visited_at=_moment(rng, day), visit_date=day, ip_address=ip_address(rng),
                identified_company=w.company().name if rng.random() < 0.4 else None,
                page_path=rng.choice(["/", "/tjanster/sok", "/kontakt", "/blogg/ads-2026", "/priser"]))


def _tool_user(i: int, rng: random.Random, w: World, as_of: date) -> dict[str, Any]:
    p, c = w.person(), w.company()
    last = clock_date(rng, as_of)
    return dict(id=i, signed_up_at=last - timedelta(days=rng.randrange(0, 700)), last_login_at=last,
                user_name=p.name, user_email=p.email, company_name=c.name, company_url=c.url,
                plan=rng.choice(["free", "pro"]))


def _application(i: int, rng: random.Random, w: World, as_of: date) -> dict[str, Any]:
    p = w.person()
    return dict(id=i, applied_at=clock_date(rng, as_of), position=rng.choice(["SEO-specialist", "Säljare", "Utvecklare"]),
                applicant_name=p.name, email=p.email, phone=p.phone, personnummer=p.personnummer,
                cover_letter=free_text(rng, w, p, w.mentioned))


def _customer(i: int, rng: random.Random, w: World, as_of: date) -> dict[str, Any]:
    p, c = w.person(), w.company()
    running = rng.random() < 0.5
    end = None if running else clock_date(rng, as_of)
    start = (end or as_of) - timedelta(days=rng.randrange(200, 1500))
    return dict(id=i, customer_number=f"K{10000 + i}", company_name=c.name, org_number=c.org_number,
                contact_name=p.name, contact_email=p.email, contact_phone=p.phone, contract_start=start, contract_end=end)


def _invoice(i: int, rng: random.Random, w: World, as_of: date) -> dict[str, Any]:
    p, c = w.person(), w.company()
    roll = rng.random()
    if roll < 0.35:
        day = as_of - timedelta(days=rng.randrange(0, 700))  # young
    elif roll < 0.75:
        day = date(rng.randrange(as_of.year - 7, as_of.year - 1), rng.randrange(1, 13), rng.randrange(1, 29))
        day = min(day, as_of - timedelta(days=731))  # past 2 years, inside BFL
    else:
        day = date(rng.randrange(as_of.year - 10, as_of.year - 7), rng.randrange(1, 13), rng.randrange(1, 29))
    amount = Decimal(rng.randrange(1_000_00, 250_000_00)) / 100
    return dict(id=i, invoice_number=f"F{day.year}-{i:06d}", customer_id=rng.randrange(1, 1000), invoice_date=day,
                amount_sek=amount, vat_sek=(amount * Decimal("0.25")).quantize(Decimal("0.01")),
                buyer_company=c.name, buyer_org_number=c.org_number, buyer_address=c.address,
                contact_name=p.name, contact_email=p.email, contact_phone=p.phone)


def _audience(i: int, rng: random.Random, w: World, as_of: date) -> dict[str, Any]:
    p = w.person()
    roll = rng.random()
    customer = UNKNOWN_CUSTOMER if roll < 0.02 else PROCESSOR_CUSTOMERS[0] if roll < 0.51 else PROCESSOR_CUSTOMERS[1]
    return dict(id=i, customer_id=customer, uploaded_at=as_of - timedelta(days=rng.randrange(0, 500)), name=p.name,
                email=p.email, phone=p.phone if rng.random() < 0.6 else None,
                segment=rng.choice(["retargeting", "lookalike", "nyhetsbrev"]))


def volumes(rows: int) -> dict[str, tuple[int, RowMaker]]:
    def n(x: int) -> int:
        return max(4, x)

    return {
        "customers": (n(rows // 4), _customer),
        "newsletter_subscribers": (n(rows), _newsletter),
        "tool_users": (n(rows // 2), _tool_user),
        "contact_form_submissions": (n(rows), _contact_form),
        "email_threads": (n(rows), _email_thread),
        "phone_calls": (n(rows // 2), _phone_call),
        "website_visits": (n(2 * rows), _visit),
        "job_applications": (n(rows // 4), _application),
        "invoices": (n(rows), _invoice),
        "ad_audiences": (n(rows), _audience),
    }


def _updated_at(row: dict[str, Any]) -> datetime:
    """The last change of a generated row: its latest date or timestamp."""
    moments = [v if isinstance(v, datetime) else datetime.combine(v, time(12)) for v in row.values() if isinstance(v, date)]
    return max(moments)


def _chunks(maker: RowMaker, count: int, rng: random.Random, world: World, as_of: date, tracked: bool) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for i in range(1, count + 1):
        row = maker(i, rng, world, as_of)
        if tracked:
            row["updated_at"] = _updated_at(row)
        batch.append(row)
        if len(batch) == CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def generate(
    url: str, *, rows: int = 200, seed: int = 42, as_of: date, schema: str | None = None, progress: bool = False
) -> dict[str, int]:
    """(Re)create the demo tables in ``url`` and fill them; returns rows written per table."""
    rng = random.Random(seed)
    fake = Faker("sv_SE")
    fake.seed_instance(seed)
    world = World(rng, fake, people=max(50, min(rows, 20_000)), companies=max(20, min(rows // 5, 2_000)))
    engine = _engine(url, schema)
    metadata = MetaData()
    tables = build_tables(metadata)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    plan = volumes(rows)
    bar = _progress_bar(sum(n for n, _ in plan.values()), progress)
    written = {}
    with engine.begin() as conn:
        for name, (count, maker) in plan.items():
            for chunk in _chunks(maker, count, rng, world, as_of, name not in NO_UPDATED_AT):
                conn.execute(tables[name].insert(), chunk)
                bar(len(chunk))
            written[name] = count
    engine.dispose()
    bar(0, close=True)
    return written


def _engine(url: str, schema: str | None) -> Engine:
    if schema and url.startswith("postgresql"):
        from sqlalchemy import create_engine

        bootstrap = create_engine(url)
        with bootstrap.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        bootstrap.dispose()
    return make_engine(url, schema=schema)


def _progress_bar(total: int, enabled: bool) -> Callable[..., None]:
    if not enabled:
        return lambda n, close=False: None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="rows", desc="demo data")

    def update(n: int, close: bool = False) -> None:
        bar.update(n)
        if close:
            bar.close()

    return update


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the demo company's data.")
    parser.add_argument("--url", required=True, help="SQLAlchemy URL, e.g. sqlite:///demo.db")
    parser.add_argument("--rows", type=int, default=200, help="rows of the main tables (others scale from it)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--as-of", type=date.fromisoformat, default=date.today(), help="the date retention is measured from")
    parser.add_argument("--schema", default=None, help="PostgreSQL schema for the tables")
    parser.add_argument("--progress", action="store_true", help="show a progress bar")
    args = parser.parse_args(argv)
    written = generate(args.url, rows=args.rows, seed=args.seed, as_of=args.as_of, schema=args.schema, progress=args.progress)
    for table, count in written.items():
        print(f"  {table:<28}{count:>9}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
