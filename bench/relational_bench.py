"""Erasure of one person from normalised, relational sources: resolve, act and verify per request, without Airflow.

    python bench/relational_bench.py [--url sqlite:///... | postgresql+psycopg://postgres@127.0.0.1:5432/test]
                                     [--scale 1.0] [--requests 9] [--profile] [--indexes none[,identifiers][,all]]

At scale 1.0: 100 000 customers (the only table with the person's e-mail), 1 000 000 orders
referencing them through ``customer_id`` (no e-mail copied; bookkeeping, so recent ones are kept
by law) and 200 000 messages referencing their writer, one in 50 mentioning another customer's
e-mail; RESTRICT foreign keys, indexed. The sources are described to the catalog as relational
sources (``subject.via``, ``retention_clock.parent``), scanned into the tag store once (not
timed), then customers are erased one by one; per request resolve (``plan_erasure``, which
reaches the person's orders and messages through the stores), act (``apply_erasure``) and verify
(``verify_erasure``: subject index, every source searched independently, references asked
again) are timed separately. Baseline, in the same run: the bare indexed lookup
``SELECT id FROM customers WHERE email = ?`` plus ``SELECT id FROM orders WHERE customer_id IN (...)``.

After each request every one of the customer's records is checked against the policy (orders
erased, or held while the bookkeeping period runs; the customer erased, or kept anonymised for
held orders; messages erased) and every planted mention of the person in other customers'
messages must be redacted.

``--indexes`` runs one round of requests per value, adding before each what a source's owner
can give verification so that its independent search is an index lookup instead of a pass over
every row (the search itself, and so its completeness, is unchanged): ``identifiers`` an
expression index on the normalised e-mail (``lower(trim(email))``, SQLite and PostgreSQL);
``all`` also a trigram index on the lower-cased message text (PostgreSQL ``pg_trgm``; SQLite has
no index a ``LIKE '%...%'`` can use). ``--profile`` replays each request's verification part by
part in the request thread (index, each source's independent search, references), timed and
under cProfile.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402
from sqlalchemy import Engine, bindparam, text  # noqa: E402
from tqdm import tqdm  # noqa: E402

from bench.scratch import scratch, server  # noqa: E402
from lifecycle.config.catalog import load_catalog  # noqa: E402
from lifecycle.config.policy import load_policy  # noqa: E402
from lifecycle.discovery.identifiers import SubjectHasher  # noqa: E402
from lifecycle.discovery.scan import scan_source  # noqa: E402
from lifecycle.rights.erasure import RequestScope, apply_erasure, plan_erasure, verify_erasure  # noqa: E402
from lifecycle.rights.requests import SubjectIdentifiers  # noqa: E402
from lifecycle.rights.verify import Probe  # noqa: E402
from lifecycle.tagstore.db import make_engine, open_tag_store  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TODAY = date(2026, 11, 25)
BFL_YEARS = 7  # Bokföringslagen: to the end of the 7th calendar year after the fiscal year (12-31)
SOURCES = ("customers", "orders", "messages")
MENTION_EVERY = 50  # one message in 50 mentions another customer's e-mail
CHUNK = 50_000

SCHEMA = [
    """CREATE TABLE customers (id INTEGER PRIMARY KEY, email VARCHAR(200), phone VARCHAR(40), name VARCHAR(200),
       company VARCHAR(200), contract_ended_at DATE, last_contact_at DATE)""",
    """CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL {fk}, amount VARCHAR(20),
       created_at DATE)""",
    """CREATE TABLE messages (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL {fk}, body TEXT,
       consent_withdrawn_at DATE)""",
]
FK = "REFERENCES customers (id) ON DELETE RESTRICT"
INDEXES = ["CREATE INDEX customers_email ON customers (email)",
           "CREATE INDEX orders_customer_id ON orders (customer_id)",
           "CREATE INDEX messages_customer_id ON messages (customer_id)"]

CATALOG = {
    "version": 1,
    "defaults": {"connection": "bench", "max_destroy_share": 1.0},
    "sources": {
        "customers": {
            "table": "customers", "primary_key": "id", "activity": "customers",
            "retention_clock": ["contract_ended_at", "last_contact_at"], "lawful_basis": "contract",
            "subject": {"email": "email", "phone": "phone", "name": "name", "company": "company"},
            "on_expiry": "erase",
            "columns": {"email": "contact_details", "phone": "contact_details", "name": "contact_details",
                        "company": "company_details"},
        },
        "orders": {
            "table": "orders", "primary_key": "id", "activity": "bookkeeping", "retention_clock": "created_at",
            "lawful_basis": "legal_obligation", "subject": {"via": {"customer_id": "customers"}}, "on_expiry": "erase",
            "columns": {"amount": {"category": "accounting_records", "anonymise": "keep"}},
        },
        "messages": {
            "table": "messages", "primary_key": "id", "activity": "contact_form",
            "retention_clock": {"parent": "customer_id"}, "lawful_basis": "consent",
            "consent": {"withdrawn_at": "consent_withdrawn_at"},
            "subject": {"via": {"customer_id": "customers"}}, "on_expiry": "erase",
            "columns": {"body": {"category": "case_details", "free_text": True, "anonymise": "redact"}},
        },
    },
}


# -- the data ----------------------------------------------------------------------------------------


class Shape:
    """Sizes and the deterministic rules the rows follow, so that the checks know what to expect."""

    def __init__(self, scale: float, requests: int) -> None:
        self.customers, self.orders, self.messages = (max(1, int(x * scale)) for x in (100_000, 1_000_000, 200_000))
        # Customers whose e-mail other customers' messages mention (each about twice).
        self.mentioned = max(requests, self.messages // MENTION_EVERY // 2)

    @staticmethod
    def email(customer: int) -> str:
        return f"kund{customer}@exempel.se"

    def customer_row(self, i: int) -> tuple[Any, ...]:
        return (i, self.email(i), f"070-{i:07d}", f"Kund Person {i}", f"Bolag {i} AB",
                None if i % 2 == 0 else "2026-06-01", "2026-10-01")

    def order_customer(self, j: int) -> int:
        return 1 + (j - 1) % self.customers

    def order_date(self, j: int) -> str:
        customer, k = self.order_customer(j), (j - 1) // self.customers  # k: the customer's k-th order
        # One customer in three ordered only long ago (every order past the bookkeeping period);
        # the others over 2012-2026 (some past it, some still kept by law).
        year = 2008 + (k + customer) % 9 if customer % 3 == 0 else 2012 + (k + customer) % 15
        return f"{year}-{1 + j % 12:02d}-{1 + j % 28:02d}"

    def order_row(self, j: int) -> tuple[Any, ...]:
        return (j, self.order_customer(j), f"{100 + j % 900}.00", self.order_date(j))

    def mention_of(self, m: int) -> int | None:
        """The customer whose e-mail message ``m`` mentions, if any."""
        return 1 + (m // MENTION_EVERY) % self.mentioned if m % MENTION_EVERY == 0 else None

    def message_writer(self, m: int) -> int:
        writer = 1 + (m - 1) % self.customers
        if writer == self.mention_of(m):  # nobody mentions themselves here: a mention is someone else's text
            writer = 1 + writer % self.customers
        return writer

    def message_row(self, m: int) -> tuple[Any, ...]:
        mentioned = self.mention_of(m)
        body = (f"Hej! Prata med {self.email(mentioned)} om offerten." if mentioned
                else "Hej, vi vill veta mer om era tjänster. Order 2024-118833.")
        return (m, self.message_writer(m), body, None)

    def target(self, k: int, requests: int) -> int:
        """The k-th person to erase: spread over the mentioned customers, of every kind (k % 3)."""
        stride = max(1, self.mentioned // requests)
        customer = 1 + k * stride
        customer += (k - customer) % 3  # customer % 3 == k % 3: 0 is a customer whose every order is past the period
        return customer if customer <= self.mentioned else customer - 3


def load(engine: Engine, shape: Shape) -> None:
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        for ddl in SCHEMA:  # PostgreSQL: the foreign keys are added after the load, checked in one pass
            conn.execute(text(ddl.format(fk="" if postgres else FK)))
    tables = [("customers", 7, shape.customers, shape.customer_row),
              ("orders", 4, shape.orders, shape.order_row),
              ("messages", 4, shape.messages, shape.message_row)]
    columns = {"customers": "id, email, phone, name, company, contract_ended_at, last_contact_at",
               "orders": "id, customer_id, amount, created_at", "messages": "id, customer_id, body, consent_withdrawn_at"}
    with tqdm(total=sum(t[2] for t in tables), unit=" rows", unit_scale=True, desc="loading", file=sys.stdout) as bar:
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            for name, width, count, row in tables:
                bar.set_postfix_str(name)
                if postgres:  # COPY: one stream per table
                    with cursor.copy(f"COPY {name} ({columns[name]}) FROM STDIN") as copy:
                        for i in range(1, count + 1):
                            copy.write_row(row(i))
                            if i % CHUNK == 0:
                                bar.update(CHUNK)
                        bar.update(count % CHUNK)
                else:
                    insert = f"INSERT INTO {name} ({columns[name]}) VALUES ({', '.join('?' * width)})"
                    for start in range(1, count + 1, CHUNK):
                        stop = min(count + 1, start + CHUNK)
                        cursor.executemany(insert, [row(i) for i in range(start, stop)])
                        bar.update(stop - start)
                raw.commit()
        finally:
            raw.close()
    with engine.begin() as conn:
        for ddl in INDEXES:
            conn.execute(text(ddl))
        if postgres:
            for table in ("orders", "messages"):
                conn.execute(text(f"ALTER TABLE {table} ADD CONSTRAINT {table}_customer_fk FOREIGN KEY (customer_id) "
                                  f"{FK}"))
        conn.execute(text("ANALYZE"))


def add_verification_indexes(engine: Engine, which: str) -> list[str]:
    """Indexes on exactly the expressions verification queries; returns what was made."""
    made = []
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        if which in ("identifiers", "all"):
            conn.execute(text("CREATE INDEX IF NOT EXISTS customers_email_normalised ON customers ((lower(trim(email))))"))
            made.append("customers (lower(trim(email)))")
        if which == "all" and postgres:
            schema = conn.execute(text("SELECT current_schema()")).scalar_one()
            conn.execute(text(f'CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA "{schema}"'))
            conn.execute(text(f'CREATE INDEX IF NOT EXISTS messages_body_trgm ON messages USING gin ((lower(body)) "{schema}".gin_trgm_ops)'))
            made.append("messages USING gin (lower(body) gin_trgm_ops)")
        conn.execute(text("ANALYZE"))
    return made


# -- one request ---------------------------------------------------------------------------------------


def expected_kept(order_dates: dict[int, Any]) -> set[int]:
    """Orders still within the bookkeeping period today (fiscal years end 12-31)."""
    return {k for k, d in order_dates.items() if int(str(d)[:4]) + BFL_YEARS >= TODAY.year}


class Checks:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.counts = {"orders erased": 0, "orders held": 0, "messages erased": 0, "customers erased": 0,
                       "customers kept anonymised": 0, "mentions planted": 0, "mentions redacted": 0}

    def fail(self, request: str, what: str) -> None:
        self.failures.append(f"{request}: {what}")


def before(engine: Engine, shape: Shape, customer: int) -> dict[str, Any]:
    """What the checks need to know before the request changes anything."""
    email = shape.email(customer)
    with engine.connect() as conn:
        orders = dict(conn.execute(text("SELECT id, created_at FROM orders WHERE customer_id = :c"), {"c": customer}).all())
        messages = set(conn.execute(text("SELECT id FROM messages WHERE customer_id = :c"), {"c": customer}).scalars())
        # Mentions planted by the generator that are still there (their writer may have been erased before).
        planted_ids = [m for m in range(MENTION_EVERY, shape.messages + 1, MENTION_EVERY) if shape.mention_of(m) == customer]
        planted = set(conn.execute(text("SELECT id FROM messages WHERE id IN :ids AND body LIKE :p")
                                   .bindparams(bindparam("ids", expanding=True)),
                                   {"ids": planted_ids or [-1], "p": f"%{email}%"}).scalars())
    return {"orders": orders, "messages": messages, "planted": planted}


def check_request(engine: Engine, shape: Shape, customer: int, seen: dict[str, Any], outcome: Any, checks: Checks) -> None:
    name, email = f"customer {customer}", shape.email(customer)
    kept = expected_kept(seen["orders"])
    with engine.connect() as conn:
        orders = set(conn.execute(text("SELECT id FROM orders WHERE customer_id = :c"), {"c": customer}).scalars())
        messages = set(conn.execute(text("SELECT id FROM messages WHERE customer_id = :c"), {"c": customer}).scalars())
        row = conn.execute(text("SELECT email, phone, name, company FROM customers WHERE id = :c"), {"c": customer}).one_or_none()
        by_email = conn.execute(text("SELECT count(*) FROM customers WHERE lower(email) = :e"), {"e": email}).scalar_one()
        planted = {m: body for m, body in conn.execute(
            text("SELECT id, body FROM messages WHERE id IN :ids").bindparams(bindparam("ids", expanding=True)),
            {"ids": sorted(seen["planted"]) or [-1]})}
        anywhere = conn.execute(text("SELECT count(*) FROM messages WHERE lower(body) LIKE :p"),
                                {"p": f"%{email}%"}).scalar_one()
    if not outcome.verified:
        checks.fail(name, f"not verified: remaining {outcome.remaining}")
    if orders != kept:
        checks.fail(name, f"orders left {sorted(orders)}, expected exactly the held {sorted(kept)}")
    if messages:
        checks.fail(name, f"own messages left: {sorted(messages)}")
    if kept and (row is None or any(v is not None for v in row)):
        checks.fail(name, f"customer row should be kept anonymised for {len(kept)} held orders: {row}")
    if not kept and row is not None:
        checks.fail(name, "customer row should be erased (no order held)")
    if by_email:
        checks.fail(name, "e-mail still in customers")
    lost = seen["planted"] - set(planted)
    unredacted = [m for m, body in planted.items() if email in str(body).lower()]
    if lost:
        checks.fail(name, f"messages mentioning the person were deleted instead of redacted: {sorted(lost)}")
    if unredacted or anywhere:
        checks.fail(name, f"mentions not redacted: {sorted(unredacted)}, {anywhere} messages still hold the e-mail")
    counts = outcome.per_source.get("orders", {})
    if counts.get("held", 0) != len(kept) or counts.get("erased", 0) != len(seen["orders"]) - len(kept):
        checks.fail(name, f"outcome counts {counts} for {len(kept)} held of {len(seen['orders'])} orders")
    c = checks.counts
    c["orders erased"] += len(seen["orders"]) - len(kept & orders)
    c["orders held"] += len(kept & orders)
    c["messages erased"] += len(seen["messages"] - messages)
    c["customers erased"] += row is None
    c["customers kept anonymised"] += row is not None
    c["mentions planted"] += len(seen["planted"])
    c["mentions redacted"] += len(seen["planted"]) - len(lost) - len(unredacted)


def baseline(engine: Engine, email: str) -> float:
    """The bare indexed lookup of the person and their orders, on a warm pooled connection."""
    with engine.connect() as conn:
        t0 = time.perf_counter()
        ids = list(conn.execute(text("SELECT id FROM customers WHERE email = :e"), {"e": email}).scalars())
        conn.execute(text("SELECT id FROM orders WHERE customer_id IN :ids").bindparams(bindparam("ids", expanding=True)),
                     {"ids": ids or [-1]}).all()
        return time.perf_counter() - t0


@contextmanager
def profiled(profile: cProfile.Profile | None) -> Iterator[None]:
    if profile is None:
        yield
        return
    profile.enable()
    try:
        yield
    finally:
        profile.disable()


# -- the run ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="sources and tag store; default: SQLite files under a temporary directory")
    parser.add_argument("--scale", type=float, default=1.0, help="1.0: 100 000 customers, 1 000 000 orders, 200 000 messages")
    parser.add_argument("--requests", type=int, default=9, help="requests per round")
    parser.add_argument("--indexes", default="none",
                        help="comma-separated rounds, each erasing --requests more customers after adding these "
                             "indexes for verification's own expressions: none, identifiers, all (e.g. none,all)")
    parser.add_argument("--profile", action="store_true", help="print where verification spends its time")
    args = parser.parse_args()
    rounds = [r.strip() for r in args.indexes.split(",") if r.strip()]
    if not rounds or any(r not in ROUNDS for r in rounds) or rounds != sorted(rounds, key=ROUNDS.index):
        parser.error(f"--indexes: rounds among {', '.join(ROUNDS)}, in that order")
    if args.url and args.url.startswith("postgresql"):
        with scratch(args.url, "lc_rbench") as schema:
            run(args, rounds, make_engine(args.url, schema=schema), open_tag_store(args.url, schema=schema))
    else:
        with tempfile.TemporaryDirectory(prefix="lc_rbench_") as tmp:
            url = args.url or f"sqlite:///{Path(tmp) / 'sources.db'}"
            run(args, rounds, make_engine(url), open_tag_store(f"sqlite:///{Path(tmp) / 'tags.db'}"))


ROUNDS = ("none", "identifiers", "all")


class Round:
    """The requests of one round: their timings, checks and (with --profile) where verification went."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.timings: dict[str, list[float]] = {"resolve": [], "act": [], "verify": [], "total": [], "baseline": []}
        self.checks = Checks()
        self.parts: dict[str, list[float]] = {}  # verification's parts, replayed one by one
        self.profile = cProfile.Profile()


def replay_verification(r: Round, scope: RequestScope, actions: list[Any]) -> None:
    """Verification's parts one after the other, in this thread, timed and profiled (verify_erasure
    runs the stores' searches side by side in worker threads, which cProfile does not follow)."""
    from lifecycle.discovery import locate
    from lifecycle.rights.erasure import check_references

    allowed = {(a.source, a.record_key) for a in actions if a.action in ("hold", "forward")}
    probe = Probe.of(scope.identifiers, TODAY.year)
    stores = scope.stores()
    steps = [("subject index (locate)", lambda: locate(scope.tag_engine, scope.hashes))]
    steps += [(f"independent search: {name}", lambda store=store: store.find(probe, allowed)) for name, store in stores.items()]
    steps += [("references asked again (check_references)", lambda: check_references(scope.catalog, stores, actions))]
    for name, step in steps:
        t0 = time.perf_counter()
        with profiled(r.profile):
            step()
        r.parts.setdefault(name, []).append(time.perf_counter() - t0)


def run(args: argparse.Namespace, rounds: list[str], engine: Engine, tags: Engine) -> None:
    shape = Shape(args.scale, args.requests * len(rounds))
    print(f"loading {shape.customers:,} customers, {shape.orders:,} orders, {shape.messages:,} messages "
          f"({shape.messages // MENTION_EVERY:,} mentioning one of {shape.mentioned:,} customers) into {server(engine)} ...")
    started = time.perf_counter()
    load(engine, shape)
    print(f"loaded, indexed and foreign keys (ON DELETE RESTRICT) in place in {time.perf_counter() - started:.1f} s")

    policy = load_policy(ROOT / "config" / "policy.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalog.yaml"
        path.write_text(yaml.safe_dump(CATALOG))
        catalog = load_catalog(path, policy)
    hasher = SubjectHasher(b"benchmark-secret-0123456789abcdef")
    started = time.perf_counter()
    for name in SOURCES:
        t0 = time.perf_counter()
        stats = scan_source(catalog.source(name), policy, source_engine=engine, tag_engine=tags, hasher=hasher,
                            run_id="bench", logical_date=TODAY)
        print(f"  scanned {name}: {stats.records:,} records, {stats.subject_refs:,} subject references "
              f"({stats.free_text_refs:,} in free text) in {time.perf_counter() - t0:.1f} s")
    print(f"scanned into the tag store ({server(tags)}) in {time.perf_counter() - started:.1f} s (not timed below)")

    backends = {"bench": engine}
    done: list[Round] = []
    for number, which in enumerate(rounds):
        r = Round(which)
        if which != "none":
            made = add_verification_indexes(engine, which)
            r.label = f"{which}: {', '.join(made)}"
        print(f"round {number + 1} (verification indexes: {r.label}): erasing {args.requests} customers one by one ...")
        for k in range(number * args.requests, (number + 1) * args.requests):
            customer = shape.target(k, args.requests * len(rounds))
            email = shape.email(customer)
            seen = before(engine, shape, customer)
            r.timings["baseline"].append(baseline(engine, email))

            t0 = time.perf_counter()
            ids = SubjectIdentifiers(email=email)
            hashes = ids.hashes(hasher, TODAY.year)
            scope = RequestScope(catalog, backends, tags, hasher, ids, hashes)
            actions = plan_erasure(catalog, policy, tags, hashes, TODAY, stores=scope.stores())
            t1 = time.perf_counter()
            outcome = apply_erasure(actions, scope, reference=f"RB-{k}", today=TODAY, dry_run=False)
            t2 = time.perf_counter()
            outcome = verify_erasure(outcome, actions, scope, year=TODAY.year)
            t3 = time.perf_counter()
            for name, value in (("resolve", t1 - t0), ("act", t2 - t1), ("verify", t3 - t2), ("total", t3 - t0)):
                r.timings[name].append(value)

            if args.profile:
                replay_verification(r, scope, actions)
            check_request(engine, shape, customer, seen, outcome, r.checks)
            held = outcome.per_source.get("orders", {}).get("held", 0)
            print(f"  [{k % args.requests + 1}/{args.requests}] customer {customer}: {len(actions)} records "
                  f"({len(seen['orders'])} orders, {held} held; {len(seen['messages'])} own messages; "
                  f"{len(seen['planted'])} mentions) resolve {t1 - t0:.3f} s, act {t2 - t1:.3f} s, "
                  f"verify {t3 - t2:.3f} s, total {t3 - t0:.3f} s, verified {outcome.verified}", flush=True)
        done.append(r)

    print()
    print(f"sources: {shape.customers:,} customers, {shape.orders:,} orders, {shape.messages:,} messages on "
          f"{server(engine)}; tag store on {server(tags)}")
    failed = False
    for r in done:
        failed |= report(r, args)
    if failed:
        sys.exit(1)


def report(r: Round, args: argparse.Namespace) -> bool:
    """Print one round's figures; True when a check failed."""
    print()
    print(f"verification indexes: {r.label}")
    print(f"{'per request (' + str(args.requests) + ' requests)':<58}{'median s':>10}{'max s':>9}")
    labels = {"resolve": "resolve (plan_erasure, references reached)", "act": "act (apply_erasure)",
              "verify": "verify (verify_erasure)", "total": "total resolve + act + verify",
              "baseline": "bare: indexed e-mail lookup + orders by customer_id"}
    for name in ("resolve", "act", "verify", "total", "baseline"):
        values = r.timings[name]
        target = "   target median < 0.15 s" if name == "total" else ""
        print(f"{labels[name]:<58}{statistics.median(values):>10.4f}{max(values):>9.4f}{target}")
    ratio = statistics.median(r.timings["total"]) / statistics.median(r.timings["baseline"])
    print(f"{'ratio total / bare lookup (medians)':<58}{ratio:>10.0f}")
    print(f"{'target met (median total < 0.15 s)':<58}{'yes' if statistics.median(r.timings['total']) < 0.15 else 'no':>10}")
    c = r.checks.counts
    summary = (f"{c['orders erased']} orders erased, {c['orders held']} held by law; {c['messages erased']} own messages "
               f"erased; {c['customers erased']} customers erased, {c['customers kept anonymised']} kept anonymised; "
               f"planted mentions redacted {c['mentions redacted']}/{c['mentions planted']}")
    if r.checks.failures:
        print(f"CHECKS: FAIL ({len(r.checks.failures)} problems; {summary})")
        for failure in r.checks.failures:
            print(f"  - {failure}")
    else:
        print(f"CHECKS: PASS ({args.requests}/{args.requests} requests handled per the policy: {summary})")
    if args.profile:
        print("verification's parts, replayed one after the other (median s; verify_erasure runs the searches side by side):")
        for name, values in r.parts.items():
            print(f"  {name:<56}{statistics.median(values):>10.4f}{max(values):>9.4f}")
        out = io.StringIO()
        pstats.Stats(r.profile, stream=out).sort_stats("tottime").print_stats(10)
        lines = [line for line in out.getvalue().splitlines() if line.strip()]
        start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
        print("  cProfile of the replay, by own time:")
        print("\n".join("  " + line[:150] for line in lines[start:start + 11]))
    return bool(r.checks.failures)


if __name__ == "__main__":
    main()
