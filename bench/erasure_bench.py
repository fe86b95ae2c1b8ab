"""Single-subject erasure latency on PostgreSQL: resolve, act and verify, without Airflow.

    python bench/erasure_bench.py [--scale 1.0] [--requests 9]

Builds, at scale 1.0, 100 000 customers, 1 000 000 invoices (orders) and 200 000 free-text
contact-form messages in which some customers' e-mails appear in other people's messages,
scans them into the tag store (subject index included), then erases several customers one by
one and prints the median latency and the share of planted free-text occurrences that were
found and redacted. Baseline, in the same run: the bare single-subject lookup of one
customer by its indexed e-mail column in the source.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text  # noqa: E402

from lifecycle.catalog import load_catalog  # noqa: E402
from lifecycle.db import make_engine, open_tag_store  # noqa: E402
from lifecycle.erasure import RequestScope, apply_erasure, plan_erasure, verify_erasure  # noqa: E402
from lifecycle.identifiers import SubjectHasher  # noqa: E402
from lifecycle.policy import load_policy  # noqa: E402
from lifecycle.requests import SubjectIdentifiers  # noqa: E402
from lifecycle.scan import scan_source  # noqa: E402
from lifecycle.sqlfiles import load_sql  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--requests", type=int, default=9)
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    n_customers, n_invoices, n_messages = (int(x * args.scale) for x in (100_000, 1_000_000, 200_000))
    mentioned = max(args.requests, n_messages // 50 // 2)  # customers whose e-mail others mention (twice each)
    schema = f"lc_ebench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        engine = make_engine(args.url, schema=schema)
        tags = open_tag_store(args.url, schema=schema)
        print(f"building {n_customers:,} customers, {n_invoices:,} invoices, {n_messages:,} messages in {schema} ...")
        with engine.begin() as conn:
            for stmt in BUILD.split(";"):
                if stmt.strip():
                    conn.execute(text(stmt), {"customers": n_customers, "invoices": n_invoices,
                                              "messages": n_messages, "mentioned": mentioned})
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
                customer = 1 + k * max(1, mentioned // (2 * args.requests))
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

        plain = erase_some(0, args.requests)
        # What a source's owner can do to make verification an index lookup: expression indexes
        # on exactly the expressions it queries (lower-cased e-mail, phone without separators).
        digits = load_sql("digits", "postgresql").strip()
        with engine.begin() as conn:
            for table in ("customers", "invoices"):
                conn.execute(text(f"CREATE INDEX ON {table} ((lower(trim(contact_email))))"))
                conn.execute(text(f"CREATE INDEX ON {table} (({digits.format(column='contact_phone')}))"))
                conn.execute(text(f"ANALYZE {table}"))
        indexed = erase_some(args.requests, args.requests)
        print()
        print(f"{'measure':<66}{'median s':>10}{'max s':>9}")
        print(f"{'bare: one customer by indexed e-mail in the source':<66}{statistics.median(plain[2]):>10.4f}{max(plain[2]):>9.4f}")
        for label, (latencies, verifications, baselines, planted, left) in (
                ("no expression indexes", plain), ("expression indexes on the identifier columns", indexed)):
            print(f"{'erasure of one subject, ' + label:<66}{statistics.median(latencies):>10.4f}{max(latencies):>9.4f}"
                  f"   target median < 0.3 s")
            print(f"{'  of which independent verification (every source searched)':<66}"
                  f"{statistics.median(verifications):>10.4f}{max(verifications):>9.4f}")
            print(f"{'  ratio to the bare lookup (median)':<66}{statistics.median(latencies) / statistics.median(baselines):>10.0f}")
            print(f"{'  planted free-text occurrences found and redacted':<66}{(planted - left)}/{planted}"
                  f" = {(planted - left) / planted if planted else 1:.3f}")
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


if __name__ == "__main__":
    main()
