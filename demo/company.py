"""A demo company's data: realistic synthetic Swedish records for every activity of the policy.

Deterministic by seed (one ``random.Random`` and a seeded ``Faker("sv_SE")``, never the wall
clock), scalable by ``rows``, written to any SQLAlchemy URL. The data holds the cases that
matter: records well inside, just inside, just past and far past their retention window;
invoices past 2 years but inside BFL's 7 years and invoices past those; free text that mentions
the sender's and other people's e-mail addresses, phone numbers and personnummer (and
look-alikes that are not personal data), some naming a person of another table's structured
columns; people who appear in several tables; processor-role audiences of two customers with
different instructions, and a few deliberate violations (no or a disallowed lawful basis, a
customer without instruction).

    python -m demo.company --url sqlite:///demo.db --rows 500 --as-of 2026-11-25
"""

from __future__ import annotations

import argparse
import random
import re
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from dateutil.relativedelta import relativedelta
from faker import Faker
from sqlalchemy import Column, Date, DateTime, Engine, ForeignKey, Integer, MetaData, Numeric, String, Table, Text, text

from lifecycle.config.catalog import plain_identifier
from lifecycle.tagstore.db import make_engine
from lifecycle.discovery.identifiers import luhn_check_digit  # noqa: F401 - re-exported for callers of the demo

CHUNK = 5000
BASES = ("consent", "contract", "legitimate_interest")
INVALID_BASIS = "marketing"  # not a lawful basis of the policy: a deliberate violation
PROCESSOR_CUSTOMERS = ("kund-nordisk-handel", "kund-fastighetsbyran")
UNKNOWN_CUSTOMER = "kund-okand"  # no instruction in the policy: a deliberate violation
# The catalog gives these sources no updated_at change signal (as some real sources lack one).
# Tables without a change signal: the scan reads them whole (order lines and ticket messages have
# no date of their own at all: they live as long as their order or ticket).
NO_UPDATED_AT = ("website_visits", "job_applications", "order_lines", "ticket_messages")
SHARED_SHARE = 0.10  # share of records whose person comes from the pool shared across tables
MENTION_CAP = 5000  # structured e-mails remembered for free texts to mention

Row = dict[str, Any]


# -- tables --------------------------------------------------------------------------------


def build_tables(metadata: MetaData) -> dict[str, Table]:
    """The demo tables: the catalog's columns plus the non-personal ones it lists."""
    s = String(200)

    def t(name: str, *cols: Column) -> Table:
        # Every table has an integer id; those with a change signal also an indexed updated_at.
        extra = () if name in NO_UPDATED_AT else (Column("updated_at", DateTime, index=True),)
        return Table(name, metadata, Column("id", Integer, primary_key=True), *cols, *extra)

    basis = String(40)
    tables = [
        t("contact_form_submissions", Column("submitted_at", DateTime), Column("last_interaction_at", Date),
          Column("name", s), Column("email", s), Column("ip_address", s), Column("phone", s),
          Column("company_name", s), Column("company_url", s), Column("message", Text),
          Column("message_basis", basis)),
        t("email_threads", Column("received_at", DateTime), Column("last_interaction_at", Date),
          Column("sender_name", s), Column("sender_email", s), Column("sender_ip", s), Column("phone", s),
          Column("company_name", s), Column("company_url", s), Column("org_number", s), Column("body", Text),
          Column("body_basis", basis)),
        t("phone_calls", Column("called_at", DateTime), Column("last_interaction_at", Date),
          Column("phone_number", s), Column("source", s), Column("medium", s), Column("company_name", s),
          Column("org_number", s), Column("call_notes", Text), Column("notes_basis", basis)),
        t("newsletter_subscribers", Column("subscribed_at", Date), Column("last_confirmed_at", Date),
          Column("name", s), Column("email", s)),
        t("website_visits", Column("visited_at", DateTime), Column("visit_date", Date), Column("ip_address", s),
          Column("identified_company", s), Column("page_path", s)),
        t("tool_users", Column("signed_up_at", Date), Column("last_login_at", Date), Column("user_name", s),
          Column("user_email", s), Column("company_name", s), Column("company_url", s), Column("plan", String(20))),
        t("job_applications", Column("applied_at", Date), Column("position", s), Column("applicant_name", s),
          Column("email", s), Column("phone", s), Column("personnummer", s), Column("cover_letter", Text)),
        t("customers", Column("customer_number", s), Column("company_name", s), Column("org_number", s),
          Column("contact_name", s), Column("contact_email", s), Column("contact_phone", s),
          Column("contract_start", Date), Column("contract_end", Date)),
        t("invoices", Column("invoice_number", s), Column("customer_id", Integer), Column("invoice_date", Date),
          Column("amount_sek", Numeric(12, 2)), Column("vat_sek", Numeric(12, 2)), Column("buyer_company", s),
          Column("buyer_org_number", s), Column("buyer_address", s), Column("contact_name", s),
          Column("contact_email", s), Column("contact_phone", s)),
        t("ad_audiences", Column("customer_id", s), Column("uploaded_at", Date), Column("name", s),
          Column("email", s), Column("phone", s), Column("segment", String(40))),
        # The normalised part, as an ORM makes it: children reach their customer only by key.
        t("orders", Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False, index=True),
          Column("order_date", Date), Column("amount_sek", Numeric(12, 2))),
        t("order_lines", Column("order_id", Integer, ForeignKey("orders.id"), nullable=False, index=True),
          Column("product", s), Column("quantity", Integer)),
        t("support_tickets", Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False, index=True),
          Column("opened_at", Date), Column("closed_at", Date), Column("subject", Text)),
        t("ticket_messages", Column("ticket_id", Integer, ForeignKey("support_tickets.id", ondelete="CASCADE"),
                                    nullable=False, index=True), Column("body", Text)),
    ]
    return {table.name: table for table in tables}


# -- Swedish identifiers -------------------------------------------------------------------




def personnummer(rng: random.Random, *, samordning: bool = False, twelve: bool = True, born: date | None = None) -> str:
    """A valid personnummer (or samordningsnummer: day + 60), YYYYMMDD-NNNN or YYMMDD-NNNN."""
    if born is None:
        born = date(1955, 1, 1) + timedelta(days=rng.randrange(50 * 365))
    day = born.day + (60 if samordning else 0)
    body = f"{born:%y%m}{day:02d}{rng.randrange(1000):03d}"
    number = f"{body[:6]}-{body[6:]}{luhn_check_digit(body)}"
    return f"{born.year // 100}{number}" if twelve else number


def org_number(rng: random.Random, *, prefix: str | None = None) -> str:
    """A valid organisationsnummer NNNNNN-NNNN: third digit >= 2, Luhn check digit.
    Default prefixes are those of aktiebolag (556, 559) and handelsbolag (969)."""
    head = prefix or rng.choice(("556", "556", "559", "969"))
    body = f"{head}{rng.randrange(10 ** (9 - len(head))):0{9 - len(head)}d}"
    return f"{body[:6]}-{body[6:]}{luhn_check_digit(body)}"


_LANDLINE_AREAS = (("8", 8), ("31", 7), ("40", 6), ("18", 6), ("13", 6))  # area code, subscriber digits


def phone_number(rng: random.Random, *, mobile: bool | None = None, style: int | None = None) -> str:
    """A valid Swedish number written as people write them: 070-123 45 67, +46 70 123 45 67,
    0046701234567, 0701234567; landlines 08-123 456 78, 031-123 45 67, +46 8 123 456 78."""
    if mobile is None:
        mobile = rng.random() < 0.75
    if style is None:
        style = rng.choice((0, 0, 0, 1, 2, 3))
    if mobile:
        n = f"7{rng.choice('0236')}{rng.randrange(10_000_000):07d}"
        return (f"0{n[:2]}-{n[2:5]} {n[5:7]} {n[7:]}", f"+46 {n[:2]} {n[2:5]} {n[5:7]} {n[7:]}",
                f"0046{n}", f"0{n}")[style]
    area, width = rng.choice(_LANDLINE_AREAS)
    sub = f"{rng.randrange(1, 10)}{rng.randrange(10 ** (width - 1)):0{width - 1}d}"  # no leading 0
    grouped = f"{sub[:3]} {sub[3:6]} {sub[6:]}" if width == 8 else f"{sub[:-4]} {sub[-4:-2]} {sub[-2:]}"
    return f"+46 {area} {grouped}" if style == 1 else f"0{area}-{grouped}"


def ip_address(rng: random.Random) -> str:
    """A public-looking IPv4 address, or (15 %) an IPv6 address in compressed form."""
    if rng.random() < 0.15:
        groups = ":".join(f"{rng.randrange(0x10000):x}" for _ in range(3))
        return f"2a0{rng.choice('0123')}:{groups}::{rng.randrange(1, 0x10000):x}"
    first = rng.choice((31, 46, 62, 78, 81, 83, 85, 90, 94, 95, 130, 155, 176, 185, 193, 194, 212, 213))
    return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


@lru_cache(maxsize=None)  # called for every person; the names come from small pools
def ascii_slug(value: str) -> str:
    """Lower-case ASCII for e-mail local parts and domains: å->a, ä->a, ö->o, é->e."""
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9-]+", "", folded.replace(" ", "-")).strip("-")


# -- people and companies ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    email: str
    phone: str
    personnummer: str  # YYYYMMDD-NNNN; ~10 % samordningsnummer

    @property
    def first_name(self) -> str:
        return self.name.split(" ")[0]


@dataclass(frozen=True, slots=True)
class Company:
    name: str
    url: str
    domain: str
    org_number: str
    address: str


_PUBLIC_DOMAINS = ("gmail.com", "gmail.com", "hotmail.com", "outlook.com", "telia.com", "icloud.com", "live.se",
                   "bredband.net", "spray.se")
_LEGAL_FORMS = {"ab", "hb", "kb", "aktiebolag", "handelsbolag", "och", ""}
_TRADES = ("Bygg", "Konsult", "Fastigheter", "Redovisning", "Design", "Transport", "Elteknik", "Måleri", "Städ",
           "Data", "Revision", "Trädgård", "Bil", "Hälsa")


class Deck:
    """Draws labels in shuffled rounds, so even a small table holds each case near its share."""

    def __init__(self, rng: random.Random, counts: dict[str, int]):
        self._rng = rng
        self._cards = [label for label, n in counts.items() for _ in range(n)]
        self._left: list[str] = []

    def draw(self) -> str:
        if not self._left:
            self._left = self._rng.sample(self._cards, len(self._cards))
        return self._left.pop()


class World:
    """Everything a row maker draws from: the seeded generators, pools of names and companies
    (pre-generated, so a million rows cost no per-row Faker calls), the pool of people shared
    across tables, and the structured e-mails free texts may mention."""

    def __init__(self, *, seed: int, rows: int, as_of: date):
        self.rng = random.Random(seed)
        self.as_of = as_of
        fake = Faker("sv_SE")
        fake.seed_instance(seed)
        self.first_names = _unique(fake.first_name, 800)
        self.last_names = _unique(fake.last_name, 800)
        self.cities = _unique(fake.city, 200)
        self.streets = _unique(fake.street_name, 300)
        self._slugs: dict[str, int] = {}
        self._org_numbers: set[str] = set()
        self._local_parts: dict[str, int] = {}
        self._decks: dict[str, Deck] = {}
        pool_size = min(2000, max(20, rows // 5))
        self.companies = [self._company(name) for name in _unique(fake.company, 2 * pool_size)[:pool_size]]
        while len(self.companies) < pool_size:
            self.new_company()  # appends
        self._not_yet_customers = self.rng.sample(self.companies, len(self.companies))
        self.shared = [self.new_person() for _ in range(min(20_000, max(10, rows // 5)))]
        self._shared_left: dict[str, list[Person]] = {}
        self.mentionable: list[str] = []  # e-mails held in structured columns of earlier tables
        self.customers: list[tuple[Company, Person]] = []  # for invoices, by customers.id - 1
        self.order_count = 0  # orders written so far, for order lines
        self.ticket_contacts: list[Person] = []  # who opened each ticket, by support_tickets.id - 1

    def _company(self, name: str) -> Company:
        """A company of that name with a domain of its own, an org number and an address."""
        rng = self.rng
        slug = _slug_of(name)
        seen = self._slugs.get(slug, 0) + 1
        self._slugs[slug] = seen
        if seen > 1:
            slug = f"{slug}{seen}"  # one domain per company, as for e-mail local parts
        number = org_number(rng, prefix="969" if name.endswith("HB") else None)
        while number in self._org_numbers:  # an org number belongs to one company
            number = org_number(rng, prefix="969" if name.endswith("HB") else None)
        self._org_numbers.add(number)
        address = (f"{rng.choice(self.streets)} {rng.randrange(1, 120)}, "
                   f"{rng.randrange(100, 990)} {rng.randrange(10, 100)} {rng.choice(self.cities)}")
        return Company(name, f"https://www.{slug}.se", f"{slug}.se", number, address)

    def new_company(self) -> Company:
        """A company beyond the Faker pool (for customers at scale), named from the name pools."""
        rng = self.rng
        for _ in range(20):  # registered names are unique; give up (numbered domain) only when crowded
            a, b, trade = rng.choice(self.last_names), rng.choice(self.last_names), rng.choice(_TRADES)
            genitive = a if a.endswith("s") else f"{a}s"
            name = rng.choice((f"{a} {trade} AB", f"{a} & {b} HB", f"{rng.choice(self.cities)} {trade} AB",
                               f"{genitive} {trade} i {rng.choice(self.cities)} AB",
                               f"{rng.choice(self.first_names)} {a} {trade} AB"))
            if _slug_of(name) not in self._slugs:
                break
        company = self._company(name)
        self.companies.append(company)
        return company

    def customer_company(self) -> Company:
        """A company that is not a customer yet: each customer is a company of its own."""
        return self._not_yet_customers.pop() if self._not_yet_customers else self.new_company()

    def deck(self, key: str, counts: dict[str, int]) -> str:
        """The next label of the deck ``key`` (one deck per table and purpose)."""
        if key not in self._decks:
            self._decks[key] = Deck(self.rng, counts)
        return self._decks[key].draw()

    def new_person(self, company: Company | None = None) -> Person:
        """A person not seen before; the e-mail is firstname.lastname (numbered when taken)."""
        rng = self.rng
        first, last = rng.choice(self.first_names), rng.choice(self.last_names)
        local = f"{ascii_slug(first)}.{ascii_slug(last)}"
        seen = self._local_parts.get(local, 0) + 1
        self._local_parts[local] = seen
        if seen > 1:
            local = f"{local}{seen}"
        if company is None and rng.random() < 0.45:
            company = rng.choice(self.companies)
        domain = company.domain if company else rng.choice(_PUBLIC_DOMAINS)
        return Person(f"{first} {last}", f"{local}@{domain}", phone_number(rng),
                      personnummer(rng, samordning=rng.random() < 0.1))

    def person(self, table: str, company: Company | None = None) -> Person:
        """A new person, or (~10 %) the next one of the shared pool this table has not used yet:
        the same people then turn up in several tables, never twice in one."""
        if self.rng.random() < SHARED_SHARE:
            if table not in self._shared_left:
                self._shared_left[table] = self.rng.sample(self.shared, len(self.shared))
            if self._shared_left[table]:
                return self._shared_left[table].pop()
        return self.new_person(company)

    def company(self) -> Company:
        return self.rng.choice(self.companies)

    def remember(self, email: str) -> None:
        if len(self.mentionable) < MENTION_CAP:
            self.mentionable.append(email)

    def mentionable_other(self, own_email: str) -> str | None:
        """An e-mail of another record's person, from a structured column of an earlier table."""
        if not self.mentionable:
            return None
        email = self.rng.choice(self.mentionable)
        return None if email == own_email else email


def _slug_of(company_name: str) -> str:
    """The domain name part of a company: "Hägglund & Eliasson HB" -> "hagglund-eliasson"."""
    words = (ascii_slug(w) for w in company_name.replace("&", " ").split())
    return "-".join(w for w in words if w not in _LEGAL_FORMS) or "bolaget"


def _unique(draw: Callable[[], str], tries: int) -> list[str]:
    """Distinct values of a Faker generator in first-seen order (a set's order is not stable)."""
    return list(dict.fromkeys(draw() for _ in range(tries)))


# -- retention scenarios -------------------------------------------------------------------

# One round of 13 clocks: 7 well inside (54 %), 1 just inside (8 %), 1 just past (8 %),
# 2 far past (15 %), 2 close to the edge but inside (15 %); 23 % expired.
CLOCK_CASES = {"well_inside": 7, "just_inside": 1, "just_past": 1, "far_past": 2, "near_edge": 2}
TWO_YEARS = relativedelta(years=2)


@lru_cache(maxsize=64)  # relativedelta arithmetic is slow and every clock needs this
def first_kept_day(as_of: date, period: relativedelta = TWO_YEARS) -> date:
    """The earliest clock still inside the period on ``as_of`` (deadline = clock + period,
    expired when deadline < as_of); correct around 29 February."""
    day = as_of - period
    while day + period < as_of:
        day += timedelta(days=1)
    while day - timedelta(days=1) + period >= as_of:
        day -= timedelta(days=1)
    return day


@lru_cache(maxsize=64)
def _years_before(day: date, years: int) -> date:
    return day - relativedelta(years=years)


def clock_date(rng: random.Random, as_of: date, case: str) -> date:
    """A 2-year retention clock for one scenario of CLOCK_CASES."""
    edge = first_kept_day(as_of)
    if case == "well_inside":
        return as_of - timedelta(days=rng.randrange(601))
    if case == "just_inside":
        slack = (edge + TWO_YEARS - as_of).days  # 1 when as_of is 29 Feb: no clock ends on it
        return edge + timedelta(days=rng.randrange(4 - slack))  # deadline as_of .. as_of + 3
    if case == "just_past":
        return edge - timedelta(days=rng.randrange(1, 4))  # deadline 1..3 days before as_of
    if case == "far_past":
        return _years_before(as_of, 3) - timedelta(days=rng.randrange(3 * 365 + 1))
    return as_of - timedelta(days=rng.randrange(600, 726))


def _clock(w: World, table: str) -> date:
    return clock_date(w.rng, w.as_of, w.deck(f"{table}:clock", CLOCK_CASES))


def _moment(rng: random.Random, day: date) -> datetime:
    return datetime.combine(day, time(rng.randrange(7, 22), rng.randrange(60), rng.randrange(60)))


def _basis(w: World, table: str) -> str | None:
    # Per 200 records: 2 without a basis (1 %), 1 with a basis the policy does not know (0.5 %).
    label = w.deck(f"{table}:basis", {"valid": 197, "missing": 2, "invalid": 1})
    if label == "missing":
        return None
    return INVALID_BASIS if label == "invalid" else w.rng.choice(BASES)


# -- free text -----------------------------------------------------------------------------

_MONTHS = ("januari", "februari", "mars", "april", "maj", "juni", "augusti", "september", "oktober", "november")
_INQUIRIES = (
    "Hej! Vi på {company} funderar på att komma igång med Google Ads och vill gärna ha en offert.",
    "Hej, vi har en webbshop och trafiken från organisk sök har minskat sedan i somras. Kan ni hjälpa oss?",
    "Hej! Vad kostar det att ta fram en ny landningssida inför vår kampanj i {month}?",
    "Tack för ett bra möte i går. Vi har pratat internt och vill gå vidare med paketet för sökordsoptimering.",
    "Hej, jag har en fråga om den senaste fakturan, beloppet stämmer inte med det vi kom överens om.",
    "Hej! Kan ni hjälpa oss att sätta upp konverteringsspårning i Google Analytics 4?",
    "Vi är ett mindre företag i {city} som behöver hjälp med annonsering på Facebook och Instagram.",
    "Hej, vår hemsida laddar långsamt i mobilen. Gör ni tekniska SEO-granskningar?",
    "Hej! Jag vill säga upp vårt abonnemang på rapporttjänsten från och med {month}.",
    "Hej, vi söker en byrå som kan ta över vår LinkedIn-annonsering. Har ni erfarenhet av B2B?",
    "Hej igen! Tack för offerten. Går det att dela upp betalningen på två tillfällen?",
)
_CALL_NOTES = (
    "Ringde från {company} om offert på Google Ads. Vill ha återkoppling innan fredag.",
    "Kunden hörde av sig om en faktura; beloppet är fel. Skickar kreditnota.",
    "Intresserad av SEO-paketet Bas. Bokat uppstartsmöte i {month}.",
    "Frågade hur cookie-bannern fungerar på deras nya sajt. Hänvisade till supporten.",
    "Samtal via annonsen. Vill veta pris på landningssidor, skickar prislista i dag.",
    "Missnöjd med månadsrapporten, vill gå igenom siffrorna med projektledaren. Återkom.",
    "Företag i {city} som vill synas bättre lokalt. Föreslog Google Företagsprofil och lokal SEO.",
)
_COVER_LETTERS = (
    "Hej! Jag söker tjänsten som {position} hos er. Jag har {years} års erfarenhet av digital marknadsföring "
    "och har senast arbetat på {company}.",
    "Hej, med stort intresse söker jag rollen som {position}. Jag gillar att arbeta datadrivet och att se "
    "kampanjer växa.",
    "Hej! Jag bor i {city} och vill gärna bli en del av ert team som {position}. Jag är nyfiken, noggrann och "
    "lär mig snabbt.",
)
_SIGN_OFFS = ("Mvh {first}", "Vänliga hälsningar, {name}", "Tack på förhand! /{first}", "Hälsningar {first}")


def _lookalike(rng: random.Random) -> str:
    """Numbers that resemble identifiers but are not personal data."""
    year = rng.randrange(2019, 2027)
    return rng.choice((
        f"Det gäller order {year}-{rng.randrange(100_000, 999_999)}.",
        f"Priset var {rng.randrange(1, 20)} {rng.randrange(100, 1000)} kr i månaden.",
        f"Mötet är {year}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d} kl {rng.randrange(8, 17)}.30.",
        f"Ärendenummer {rng.randrange(10_000, 99_999)}-{rng.randrange(10, 99)}.",
        f"Budgeten är {rng.randrange(5, 95)} 000,00 SEK exkl. moms.",
        f"Vi kör version {rng.randrange(1, 9)}.{rng.randrange(10)}.{rng.randrange(10)} av pluginet.",
    ))


def _own_details(rng: random.Random, p: Person, kind: str) -> str:
    if kind == "notes":
        return rng.choice((f"Bad oss ringa tillbaka på {p.phone}.", f"Vill ha svar till {p.email}."))
    if kind == "letter":
        return rng.choice((f"Ni når mig på {p.phone} eller {p.email}.", f"Mitt personnummer är {p.personnummer}.",
                           f"Personnummer: {p.personnummer[2:]}. Telefon {p.phone}."))
    return rng.choice((f"Nå mig enklast på {p.phone}.", f"Mejla mig på {p.email} eller ring {p.phone}.",
                       f"Svara gärna till {p.email}, jag läser inte den andra adressen."))


def _other_details(w: World, kind: str) -> str:
    """Someone else's e-mail, phone number or personnummer, in the many ways people write them."""
    rng = w.rng
    other = w.new_person()
    pnr = other.personnummer if rng.random() < 0.5 else other.personnummer[2:]
    if kind == "notes":
        options = (f"Hänvisade till kollegan {other.name}, {other.email}.",
                   f"Ring även {other.first_name} på {phone_number(rng)} om beslutet.",
                   f"Avtalet ska stå på delägaren {other.name}, pnr {pnr}.")
    elif kind == "letter":
        options = (f"Referens: {other.name}, tidigare chef, {phone_number(rng)}.",
                   f"Referens: {other.name}, {other.email}.")
    else:
        options = (f"Sätt gärna min kollega {other.name} i kopia, {other.email}.",
                   f"Om jag inte svarar kan ni ringa {other.first_name} på {phone_number(rng)}.",
                   f"Fakturan ska till vår ekonomiansvarige {other.name}, {other.email}, tel {phone_number(rng)}.",
                   f"Avtalet ska stå på vår delägare {other.name}, personnummer {pnr}.")
    return rng.choice(options)


def _mention(w: World, sender: Person) -> str | None:
    """A sentence naming the e-mail of another record's person (from a structured column)."""
    email = w.mentionable_other(sender.email)
    if email is None:
        return None
    return w.rng.choice((f"Min kollega ({email}) tipsade om er.", f"Skicka gärna kopia till {email}.",
                         f"Ni har redan pratat med {email} hos oss."))


def free_text(w: World, sender: Person, kind: str, **fields: Any) -> str:
    """A Swedish message of 40-400 characters. ~40 % hold personal data: ~30 % the sender's own
    details, ~15 % someone else's (a third of those another record's structured e-mail);
    ~30 % carry look-alikes. ``kind``: message, notes (a call, written by staff) or letter."""
    rng = w.rng
    templates = {"notes": _CALL_NOTES, "letter": _COVER_LETTERS}.get(kind, _INQUIRIES)
    if fields.get("company") is None:  # a private person, or a company we do not know
        templates = tuple(t for t in templates if "{company}" not in t)
    values = {"month": rng.choice(_MONTHS), "city": rng.choice(w.cities), "years": rng.randrange(1, 12), **fields}
    opening = rng.choice(templates).format(**values)
    personal: list[str] = []
    if rng.random() < 0.30:
        personal.append(_own_details(rng, sender, kind))
    other_roll = rng.random()
    if other_roll < 0.05:
        personal.append(_mention(w, sender) or _other_details(w, kind))
    elif other_roll < 0.15:
        personal.append(_other_details(w, kind))
    extra = [_lookalike(rng)] if rng.random() < 0.30 else []
    if kind == "notes":
        closing = f"/{rng.choice('ABEJKLMS')}{rng.choice('ABEJKLMS')}"  # the colleague who took the call
    else:
        closing = rng.choice(_SIGN_OFFS).format(first=sender.first_name, name=sender.name)
    while True:  # drop look-alikes, then personal bits, rather than cut a sentence in half
        message = " ".join([opening, *personal, *extra, closing])
        if len(message) <= 400:
            return message
        (extra or personal).pop()


# -- row makers ----------------------------------------------------------------------------

RowMaker = Callable[[int, World], Row]
_SOURCES = (("Google Ads", "cpc"), ("Google Ads", "cpc"), ("Facebook", "cpc"), ("LinkedIn", "cpc"),
            ("Organisk sök", "organic"), ("Organisk sök", "organic"), ("Direkt", "direct"), ("Partnerlänk", "referral"))
_PAGES = ("/", "/tjanster/sok", "/tjanster/annonsering", "/kontakt", "/blogg/google-ads-2026", "/priser", "/om-oss",
          "/verktyg/seo-analys", "/karriar")
_POSITIONS = ("SEO-specialist", "Digital marknadsförare", "Säljare", "Webbutvecklare", "Projektledare",
              "Annonsspecialist Google Ads")


def _contact_form(i: int, w: World) -> Row:
    c = w.company()
    p = w.person("contact_form_submissions", c)
    last = _clock(w, "contact_form_submissions")
    return dict(id=i, submitted_at=_moment(w.rng, last - timedelta(days=w.rng.randrange(31))), last_interaction_at=last,
                name=p.name, email=p.email, ip_address=ip_address(w.rng),
                phone=p.phone if w.rng.random() < 0.6 else None,  # "kan förekomma"
                company_name=c.name, company_url=c.url, message=free_text(w, p, "message", company=c.name),
                message_basis=_basis(w, "contact_form_submissions"))


def _email_thread(i: int, w: World) -> Row:
    c = w.company() if w.rng.random() < 0.7 else None
    p = w.person("email_threads", c)
    last = _clock(w, "email_threads")
    return dict(id=i, received_at=_moment(w.rng, last - timedelta(days=w.rng.randrange(61))), last_interaction_at=last,
                sender_name=p.name, sender_email=p.email, sender_ip=ip_address(w.rng),
                phone=p.phone if w.rng.random() < 0.5 else None, company_name=c.name if c else None,
                company_url=c.url if c else None, org_number=c.org_number if c and w.rng.random() < 0.6 else None,
                body=free_text(w, p, "message", company=c.name if c else None), body_basis=_basis(w, "email_threads"))


def _phone_call(i: int, w: World) -> Row:
    c = w.company() if w.rng.random() < 0.5 else None
    p = w.person("phone_calls", c)
    last = _clock(w, "phone_calls")
    source, medium = w.rng.choice(_SOURCES)
    return dict(id=i, called_at=_moment(w.rng, last), last_interaction_at=last, phone_number=p.phone, source=source,
                medium=medium, company_name=c.name if c else None,
                org_number=c.org_number if c and w.rng.random() < 0.7 else None,
                call_notes=free_text(w, p, "notes", company=c.name if c else None),
                notes_basis=_basis(w, "phone_calls"))


def _newsletter(i: int, w: World) -> Row:
    p = w.person("newsletter_subscribers")
    w.remember(p.email)
    last = _clock(w, "newsletter_subscribers")
    return dict(id=i, subscribed_at=last - timedelta(days=w.rng.randrange(400)), last_confirmed_at=last,
                name=p.name, email=p.email)


def _visit(i: int, w: World) -> Row:
    day = _clock(w, "website_visits")
    return dict(id=i, visited_at=_moment(w.rng, day), visit_date=day, ip_address=ip_address(w.rng),
                identified_company=w.company().name if w.rng.random() < 0.4 else None, page_path=w.rng.choice(_PAGES))


def _tool_user(i: int, w: World) -> Row:
    c = w.company()
    p = w.person("tool_users", c)
    w.remember(p.email)
    last = _clock(w, "tool_users")
    return dict(id=i, signed_up_at=last - timedelta(days=w.rng.randrange(700)), last_login_at=last,
                user_name=p.name, user_email=p.email, company_name=c.name, company_url=c.url,
                plan=w.rng.choice(("free", "free", "pro")))


def _application(i: int, w: World) -> Row:
    p = w.person("job_applications")
    position = w.rng.choice(_POSITIONS)
    in_sentence = position[0].lower() + position[1:] if position[1].islower() else position  # keep "SEO"
    return dict(id=i, applied_at=_clock(w, "job_applications"), position=position, applicant_name=p.name,
                email=p.email, phone=p.phone, personnummer=p.personnummer,
                cover_letter=free_text(w, p, "letter", position=in_sentence, company=w.company().name))


def _customer(i: int, w: World) -> Row:
    c = w.customer_company()
    p = w.person("customers", c)
    w.customers.append((c, p))
    w.remember(p.email)
    running = w.deck("customers:running", {"running": 1, "ended": 1}) == "running"
    end = None if running else _clock(w, "customers")
    start = (end or w.as_of) - timedelta(days=w.rng.randrange(200, 1500))
    return dict(id=i, customer_number=f"K{10000 + i}", company_name=c.name, org_number=c.org_number,
                contact_name=p.name, contact_email=p.email, contact_phone=p.phone, contract_start=start,
                contract_end=end)


# One round of 20 invoices: 7 younger than 2 years, 8 past 2 years but inside BFL, 5 past BFL.
INVOICE_CASES = {"young": 7, "bfl": 8, "past_bfl": 5}


def invoice_date(rng: random.Random, as_of: date, case: str) -> date:
    """An invoice date in the last 9 years. BFL keeps an invoice of year Y until 31 Dec Y+7."""
    if case == "young":
        low, high = first_kept_day(as_of), as_of
    elif case == "bfl":
        low, high = date(as_of.year - 7, 1, 1), first_kept_day(as_of) - timedelta(days=1)
    else:
        low, high = _years_before(as_of, 9), date(as_of.year - 8, 12, 31)
    return low + timedelta(days=rng.randrange((high - low).days + 1))


def _invoice(i: int, w: World) -> Row:
    customer_id = w.rng.randrange(len(w.customers)) + 1
    c, contact = w.customers[customer_id - 1]
    if w.rng.random() < 0.1:
        contact = w.person("invoices", c)  # the customer's accounts department
    day = invoice_date(w.rng, w.as_of, w.deck("invoices:case", INVOICE_CASES))
    amount = Decimal(w.rng.randrange(1_000_00, 250_000_00)) / 100
    return dict(id=i, invoice_number=f"F{day.year}-{i:06d}", customer_id=customer_id, invoice_date=day,
                amount_sek=amount, vat_sek=(amount * Decimal("0.25")).quantize(Decimal("0.01")),
                buyer_company=c.name, buyer_org_number=c.org_number, buyer_address=c.address,
                contact_name=contact.name, contact_email=contact.email, contact_phone=contact.phone)


# Per 50 uploads: 25 of Nordisk Handel (P90D), 24 of Fastighetsbyrån (P1Y), 1 of a customer
# without instruction. Half the uploads are recent (0-120 days), half older (121-499 days).
AUDIENCE_CUSTOMERS = {PROCESSOR_CUSTOMERS[0]: 25, PROCESSOR_CUSTOMERS[1]: 24, UNKNOWN_CUSTOMER: 1}


def _audience(i: int, w: World) -> Row:
    p = w.person("ad_audiences")
    age = w.rng.randrange(121) if w.rng.random() < 0.5 else w.rng.randrange(121, 500)
    return dict(id=i, customer_id=w.deck("ad_audiences:customer", AUDIENCE_CUSTOMERS),
                uploaded_at=w.as_of - timedelta(days=age), name=p.name, email=p.email,
                phone=p.phone if w.rng.random() < 0.6 else None,
                segment=w.rng.choice(("retargeting", "lookalike", "nyhetsbrev", "kundklubb")))


_PRODUCTS = ("Google Ads-paket", "SEO-analys", "Annonsproduktion", "Månadsrapport", "Landningssida", "Konsulttimme")


def _order(i: int, w: World) -> Row:
    day = invoice_date(w.rng, w.as_of, w.deck("orders:case", INVOICE_CASES))
    w.order_count = i
    return dict(id=i, customer_id=w.rng.randrange(len(w.customers)) + 1, order_date=day,
                amount_sek=Decimal(w.rng.randrange(500_00, 90_000_00)) / 100)


def _order_line(i: int, w: World) -> Row:
    return dict(id=i, order_id=w.rng.randrange(w.order_count) + 1, product=w.rng.choice(_PRODUCTS),
                quantity=w.rng.randrange(1, 5))


def _ticket(i: int, w: World) -> Row:
    customer_id = w.rng.randrange(len(w.customers)) + 1
    _, contact = w.customers[customer_id - 1]
    opened = _clock(w, "support_tickets")
    closed = None if w.rng.random() < 0.3 else opened + timedelta(days=w.rng.randrange(0, 20))
    w.ticket_contacts.append(contact)
    return dict(id=i, customer_id=customer_id, opened_at=opened, closed_at=min(closed, w.as_of) if closed else None,
                subject=w.rng.choice(("Fråga om faktura", "Kampanjen i oktober", "Inloggning", "Rapporten")))


def _ticket_message(i: int, w: World) -> Row:
    ticket_id = w.rng.randrange(len(w.ticket_contacts)) + 1
    return dict(id=i, ticket_id=ticket_id, body=free_text(w, w.ticket_contacts[ticket_id - 1], "message"))


def volumes(rows: int) -> dict[str, tuple[int, RowMaker]]:
    """Rows per table and its maker, in generation order: customers first (invoices refer to
    them), then the tables whose e-mails later free texts mention."""
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
        "orders": (n(rows), _order),
        "order_lines": (n(2 * rows), _order_line),
        "support_tickets": (n(rows // 4), _ticket),
        "ticket_messages": (n(rows // 2), _ticket_message),
    }


# -- writing -------------------------------------------------------------------------------


def _updated_at(row: Row) -> datetime:
    """The last change of a generated row: its latest date or timestamp."""
    return max(v if isinstance(v, datetime) else datetime.combine(v, time(12))
               for v in row.values() if isinstance(v, date))


def _chunks(maker: RowMaker, count: int, world: World, tracked: bool) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for i in range(1, count + 1):
        row = maker(i, world)
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
    """Drop and recreate the demo tables in ``url`` (in ``schema`` on PostgreSQL, or the database
    ``schema`` on MySQL and MariaDB, created if missing) and fill them; returns the rows written
    per table."""
    world = World(seed=seed, rows=rows, as_of=as_of)
    plan = volumes(rows)
    metadata = MetaData()
    tables = build_tables(metadata)
    engine = _engine(url, schema)
    written: dict[str, int] = {}
    try:
        metadata.drop_all(engine)
        metadata.create_all(engine)
        with _progress(sum(n for n, _ in plan.values()), progress) as advance:
            for name, (count, maker) in plan.items():
                with engine.begin() as conn:  # a transaction per table keeps SQLite's WAL small
                    for chunk in _chunks(maker, count, world, name not in NO_UPDATED_AT):
                        conn.execute(tables[name].insert(), chunk)
                        advance(len(chunk))
                written[name] = count
    finally:
        engine.dispose()
    return written


def _engine(url: str, schema: str | None) -> Engine:
    from sqlalchemy import create_engine, make_url

    backend = make_url(url).get_backend_name()
    if schema and backend in ("postgresql", "mysql", "mariadb"):
        plain_identifier(schema)
        # MySQL and MariaDB: a schema is a database.
        create = (f'CREATE SCHEMA IF NOT EXISTS "{schema}"' if backend == "postgresql"
                  else f"CREATE DATABASE IF NOT EXISTS `{schema}` CHARACTER SET utf8mb4")
        bootstrap = create_engine(url)
        try:
            with bootstrap.begin() as conn:
                conn.execute(text(create))
        finally:
            bootstrap.dispose()
    return make_engine(url, schema=schema)  # sets the search_path (PostgreSQL) or the database (MySQL)


@contextmanager
def _progress(total: int, enabled: bool) -> Iterator[Callable[[int], None]]:
    if not enabled:
        yield lambda n: None
        return
    from tqdm import tqdm

    with tqdm(total=total, unit="rows", desc="demo data") as bar:
        yield bar.update


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the demo company's data.")
    parser.add_argument("--url", required=True, help="SQLAlchemy URL, e.g. sqlite:///demo.db")
    parser.add_argument("--rows", type=int, default=200, help="rows of the main tables (others scale from it)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--as-of", type=date.fromisoformat, required=True,
                        help="YYYY-MM-DD, the date retention is measured from")
    parser.add_argument("--schema", default=None, help="PostgreSQL schema, or MySQL/MariaDB database, for the tables (created if missing)")
    parser.add_argument("--progress", action="store_true", help="show a progress bar")
    args = parser.parse_args(argv)
    written = generate(args.url, rows=args.rows, seed=args.seed, as_of=args.as_of, schema=args.schema,
                       progress=args.progress)
    for table, count in written.items():
        print(f"{table:<28}{count:>9}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
