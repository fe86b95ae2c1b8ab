"""Single-subject erasure latency on PostgreSQL (or MariaDB sources): resolve, act and verify, without Airflow.

    python bench/erasure_bench.py [--scale 1.0] [--requests 9]
                                  [--source-url 'mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4']

Builds, at scale 1.0, 100 000 customers, 1 000 000 invoices (orders) and 200 000 free-text
contact-form messages in which some customers' e-mails appear in other people's messages,
scans them into the tag store (subject index included), then erases several customers one by
one and prints the median latency and the share of planted free-text occurrences that were
found and redacted. Baseline, in the same run: the bare single-subject lookup of one
customer by its indexed e-mail column in the source.

The sources are built set-based in SQL on PostgreSQL (``--url``, which always holds the tag
store) or, with ``--source-url``, in a database of their own on that MySQL / MariaDB server
(MariaDB's sequence engine). The second round, with expression indexes on the identifier
columns, runs on PostgreSQL only: MariaDB has no expression indexes (an index on a generated
column is used only by queries that name that column).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from bench.scratch import create_demo_tables, is_mysql, scratch, server  # noqa: E402
from lifecycle.config.catalog import load_catalog  # noqa: E402
from lifecycle.tagstore.db import make_engine, open_tag_store  # noqa: E402
from lifecycle.rights.erasure import RequestScope, apply_erasure, plan_erasure, verify_erasure  # noqa: E402
from lifecycle.discovery.identifiers import SubjectHasher  # noqa: E402
from lifecycle.config.policy import load_policy  # noqa: E402
from lifecycle.rights.requests import SubjectIdentifiers  # noqa: E402
from lifecycle.discovery.scan import scan_source  # noqa: E402
from lifecycle.tagstore.sqlfiles import load_sql  # noqa: E402
from lifecycle.stores.search_index import create_search_indexes  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TODAY = date(2026, 11, 25)
SOURCES = ("customers", "invoices", "contact_form_submissions")

BUILD = """
CREATE TABLE customers AS
SELECT i AS id, 'K' || i AS customer_number, 'Bolag ' || i || ' AB' AS company_name, '556898-9718' AS org_number,
       'Kund Person ' || i AS contact_name, 'kund' || i || '@exempel.se' AS contact_email,
       '070-' || lpad(i::text, 7, '0') AS contact_phone, DATE '2024-01-01' AS contract_start,
       CASE WHEN i % 2 = 0 THEN NULL ELSE DATE '2026-06-01' END AS contract_end,
       TIMESTAMP '2026-11-01 12:00' AS updated_at
FROM generate_series(1, :customers) AS i;
ALTER TABLE customers ADD PRIMARY KEY (id);
CREATE INDEX ON customers (contact_email);
CREATE TABLE invoices AS
SELECT i AS id, 'F' || i AS invoice_number, 1 + i % :customers AS customer_id,
       DATE '2026-11-01' - (i % 2000) AS invoice_date, 1000.00 AS amount_sek, 250.00 AS vat_sek,
       'Bolag ' || (1 + i % :customers) || ' AB' AS buyer_company, '556898-9718' AS buyer_org_number,
       'Storgatan 1' AS buyer_address, 'Kund Person ' || (1 + i % :customers) AS contact_name,
       'kund' || (1 + i % :customers) || '@exempel.se' AS contact_email, NULL::text AS contact_phone,
       TIMESTAMP '2026-11-01 12:00' AS updated_at
FROM generate_series(1, :invoices) AS i;
ALTER TABLE invoices ADD PRIMARY KEY (id);
CREATE TABLE contact_form_submissions AS
SELECT i AS id, TIMESTAMP '2026-11-01 12:00' AS submitted_at, DATE '2026-11-01' AS last_interaction_at,
       'Skribent ' || i AS name, 'skribent' || i || '@exempel.se' AS email, '10.0.0.1' AS ip_address,
       NULL::text AS phone, NULL::text AS company_name, NULL::text AS company_url,
       CASE WHEN i % 50 = 0 THEN 'Hej! Prata med kund' || (1 + (i / 50) % :mentioned) || '@exempel.se om offerten.'
            ELSE 'Hej, vi vill veta mer om era tjänster. Order 2024-118833.' END AS message,
       'consent' AS message_basis, TIMESTAMP '2026-11-01 12:00' AS updated_at
FROM generate_series(1, :messages) AS i;
ALTER TABLE contact_form_submissions ADD PRIMARY KEY (id);
ANALYZE
"""

# The same rows on MySQL / MariaDB, into the demo's tables (demo.company), from MariaDB's
# sequence engine (seq_1_to_N: a table of 1..N that exists without being created).
BUILD_MYSQL = """
INSERT INTO customers (id, customer_number, company_name, org_number, contact_name, contact_email, contact_phone,
                       contract_start, contract_end, updated_at)
SELECT seq, CONCAT('K', seq), CONCAT('Bolag ', seq, ' AB'), '556898-9718', CONCAT('Kund Person ', seq),
       CONCAT('kund', seq, '@exempel.se'), CONCAT('070-', LPAD(seq, 7, '0')), DATE '2024-01-01',
       CASE WHEN seq % 2 = 0 THEN NULL ELSE DATE '2026-06-01' END, TIMESTAMP '2026-11-01 12:00:00'
FROM seq_1_to_{customers};
CREATE INDEX customers_contact_email ON customers (contact_email);
INSERT INTO invoices (id, invoice_number, customer_id, invoice_date, amount_sek, vat_sek, buyer_company,
                      buyer_org_number, buyer_address, contact_name, contact_email, contact_phone, updated_at)
SELECT seq, CONCAT('F', seq), 1 + seq % :customers, DATE '2026-11-01' - INTERVAL (seq % 2000) DAY, 1000.00, 250.00,
       CONCAT('Bolag ', 1 + seq % :customers, ' AB'), '556898-9718', 'Storgatan 1',
       CONCAT('Kund Person ', 1 + seq % :customers), CONCAT('kund', 1 + seq % :customers, '@exempel.se'), NULL,
       TIMESTAMP '2026-11-01 12:00:00'
FROM seq_1_to_{invoices};
INSERT INTO contact_form_submissions (id, submitted_at, last_interaction_at, name, email, ip_address, phone,
                                      company_name, company_url, message, message_basis, updated_at)
SELECT seq, TIMESTAMP '2026-11-01 12:00:00', DATE '2026-11-01', CONCAT('Skribent ', seq),
       CONCAT('skribent', seq, '@exempel.se'), '10.0.0.1', NULL, NULL, NULL,
       CASE WHEN seq % 50 = 0
            THEN CONCAT('Hej! Prata med kund', 1 + (seq DIV 50) % :mentioned, '@exempel.se om offerten.')
            ELSE 'Hej, vi vill veta mer om era tjänster. Order 2024-118833.' END,
       'consent', TIMESTAMP '2026-11-01 12:00:00'
FROM seq_1_to_{messages};
ANALYZE TABLE customers, invoices, contact_form_submissions
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--requests", type=int, default=9)
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
                        help="PostgreSQL: the tag store, and the sources unless --source-url")
    parser.add_argument("--source-url", help="the sources on another server, e.g. MariaDB: "
                        "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4")
    args = parser.parse_args()
    source_url = args.source_url or args.url
    with scratch(args.url, "lc_ebench") as schema:
        if source_url == args.url:
            run(args, source_url, schema, schema)
        else:  # the same name for the sources' database
            with scratch(source_url, "lc_ebench", name=schema) as database:
                run(args, source_url, database, schema)


def run(args: argparse.Namespace, source_url: str, source_schema: str, tag_schema: str) -> None:
    n_customers, n_invoices, n_messages = (int(x * args.scale) for x in (100_000, 1_000_000, 200_000))
    mentioned = max(args.requests, n_messages // 50 // 2)  # customers whose e-mail others mention (twice each)
    engine = make_engine(source_url, schema=source_schema)
    tags = open_tag_store(args.url, schema=tag_schema)
    mysql = is_mysql(source_url)
    print(f"building {n_customers:,} customers, {n_invoices:,} invoices, {n_messages:,} messages in "
          f"{'database' if mysql else 'schema'} {source_schema} on {server(engine)} (tag store on {server(tags)}) ...")
    started = time.perf_counter()
    if mysql:
        create_demo_tables(engine, *SOURCES)
    build = (BUILD_MYSQL.format(customers=n_customers, invoices=n_invoices, messages=n_messages) if mysql
             else BUILD)
    with engine.begin() as conn:
        for stmt in build.split(";"):
            if stmt.strip():
                conn.execute(text(stmt), {"customers": n_customers, "invoices": n_invoices,
                                          "messages": n_messages, "mentioned": mentioned})
    print(f"built in {time.perf_counter() - started:.1f} s; scanning into the tag store ...")
    policy = load_policy(ROOT / "config" / "policy.yaml")
    full = load_catalog(ROOT / "config" / "catalog.yaml", policy)
    catalog = full.model_copy(update={"sources": {n: full.source(n) for n in SOURCES}})
    hasher = SubjectHasher(b"benchmark-secret-0123456789abcdef")
    started = time.perf_counter()
    for name in SOURCES:
        scan_source(catalog.source(name), policy, source_engine=engine, tag_engine=tags, hasher=hasher,
                    run_id="bench", logical_date=TODAY)
    print(f"scanned into the tag store in {time.perf_counter() - started:.1f} s")

    def erase_some(first: int, count: int) -> tuple[list[float], list[float], list[float], int, int]:
        """Erase ``count`` customers; per request: total latency, its verification, a bare lookup."""
        latencies, verifications, baselines, planted, left = [], [], [], 0, 0
        for k in range(first, first + count):
            customer = 1 + k * max(1, mentioned // (3 * args.requests))
            email = f"kund{customer}@exempel.se"
            with engine.connect() as conn:
                t0 = time.perf_counter()
                conn.execute(text("SELECT * FROM customers WHERE contact_email = :e"), {"e": email}).all()
                baselines.append(time.perf_counter() - t0)
                planted += conn.execute(text("SELECT count(*) FROM contact_form_submissions WHERE message LIKE :p"),
                                        {"p": f"%{email}%"}).scalar_one()
            t0 = time.perf_counter()
            ids = SubjectIdentifiers.parse({"email": email}, 2026)
            hashes = ids.hashes(hasher, 2026)
            actions = plan_erasure(catalog, policy, tags, hashes, TODAY)
            scope = RequestScope(catalog, {"lifecycle_demo": engine}, tags, hasher, ids, hashes)
            outcome = apply_erasure(actions, scope, reference=f"B-{k}", today=TODAY, dry_run=False)
            t1 = time.perf_counter()
            outcome = verify_erasure(outcome, actions, scope, year=2026)
            latencies.append(time.perf_counter() - t0)
            verifications.append(time.perf_counter() - t1)
            assert outcome.verified, outcome.remaining
            with engine.connect() as conn:
                left += conn.execute(text("SELECT count(*) FROM contact_form_submissions WHERE message LIKE :p"),
                                     {"p": f"%{email}%"}).scalar_one()
        return latencies, verifications, baselines, planted, left

    print(f"erasing {args.requests} customers one by one ...")
    rounds = [("no expression indexes", erase_some(0, args.requests))]
    if engine.dialect.name == "postgresql":
        # What a source's owner can do to make verification an index lookup: expression indexes
        # on exactly the expressions it queries (lower-cased e-mail, phone without separators).
        # MariaDB has none, so its sources are measured without.
        print(f"with expression indexes, erasing {args.requests} more ...")
        digits = load_sql("digits", "postgresql").strip()
        with engine.begin() as conn:
            for table in ("customers", "invoices"):
                conn.execute(text(f"CREATE INDEX ON {table} ((lower(trim(contact_email))))"))
                conn.execute(text(f"CREATE INDEX ON {table} (({digits.format(column='contact_phone')}))"))
                conn.execute(text(f"ANALYZE {table}"))
        rounds.append(("expression indexes on the identifier columns", erase_some(args.requests, args.requests)))
        # The product's own search indexes (lifecycle.stores.search_index): trigram indexes on the
        # free text and its digits, a partial index on rows holding disguising characters.
        print(f"with search indexes on the free text too, erasing {args.requests} more ...")
        create_search_indexes(engine, [catalog.source(n) for n in SOURCES])
        rounds.append(("search indexes (free text too)", erase_some(2 * args.requests, args.requests)))
    baseline = rounds[0][1][2]
    print()
    print(f"sources: {n_customers:,} customers, {n_invoices:,} invoices, {n_messages:,} messages on {server(engine)}; "
          f"tag store on {server(tags)}")
    print(f"{'measure':<66}{'median s':>10}{'max s':>9}")
    print(f"{'bare: one customer by indexed e-mail in the source':<66}"
          f"{statistics.median(baseline):>10.4f}{max(baseline):>9.4f}")
    for label, (latencies, verifications, baselines, planted, left) in rounds:
        print(f"{'erasure of one subject, ' + label:<66}{statistics.median(latencies):>10.4f}{max(latencies):>9.4f}"
              f"   target median < 0.3 s")
        print(f"{'  of which independent verification (every source searched)':<66}"
              f"{statistics.median(verifications):>10.4f}{max(verifications):>9.4f}")
        print(f"{'  ratio to the bare lookup (median)':<66}{statistics.median(latencies) / statistics.median(baselines):>10.0f}")
        print(f"{'  planted free-text occurrences found and redacted':<66}{(planted - left)}/{planted}"
              f" = {(planted - left) / planted if planted else 1:.3f}")


if __name__ == "__main__":
    main()
