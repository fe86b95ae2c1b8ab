"""Breach scoping latency on a tag store with 1 000 000 records of one source.

    python bench/breach_bench.py [--records 1000000] [--url postgresql+psycopg://postgres@127.0.0.1:5432/test]

Without --url the tag store is a SQLite file in a temporary folder; with a PostgreSQL URL it is a
scratch schema, dropped afterwards. The store is filled set-based in SQL, straight into
lc_record_tag and lc_subject_ref (with the person labels the scan gives them): every record of
contact_form_submissions has two categories (contact_details, case_details; the first row marked first_of_record, as the scan marks it), an e-mail; 40 % a phone (two neighbouring records share one, so
persons span records); 10 % a message naming someone else's e-mail (~1.5 index entries per
record); one record in ten is a customer's (processor role, two customers); clocks spread over
2020-2026.

Timed: each of the scoping's queries alone (counts, persons, the protected contact list), then
the whole scoping (scope_breach: the queries side by side on one snapshot, and the report), with
and without a time window. Baseline,
in the same run: SELECT COUNT(*) over the same rows of both tables.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine, text  # noqa: E402

from bench.scratch import scratch, server  # noqa: E402
from lifecycle.config.catalog import load_catalog  # noqa: E402
from lifecycle.config.policy import load_policy  # noqa: E402
from lifecycle.reporting import breach  # noqa: E402
from lifecycle.tagstore.db import open_tag_store  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SOURCE = "contact_form_submissions"
NOW = datetime(2026, 11, 25, 12, tzinfo=timezone.utc)

# Per dialect: n(i) = 1..:records, and a 31-digit hex of an integer expression.
NUMBERS = {
    "sqlite": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :records)",
    "postgresql": "WITH n(i) AS (SELECT generate_series(1, :records))",
}
HEX = {"sqlite": "printf('%031x', {e})", "postgresql": "lpad(to_hex({e}), 31, '0')"}
DAY = {"sqlite": "date('2020-01-01', '+' || ({e}) || ' days')", "postgresql": "DATE '2020-01-01' + ({e})"}
KEY = {"sqlite": "CAST(i AS TEXT)", "postgresql": "i::text"}

TAGS = """
INSERT INTO lc_record_tag (source, record_key, category, activity, lawful_basis, role, controller, clock_value,
                           deadline, on_expiry, status, run_id, first_of_record)
{numbers}
SELECT '{source}', {key}, c.category, 'contact_form', 'legitimate_interest',
       CASE WHEN i % 10 = 0 THEN 'processor' ELSE 'controller' END,
       CASE WHEN i % 20 = 0 THEN 'kund-nordisk-handel' WHEN i % 10 = 0 THEN 'kund-fastighetsbyran' ELSE 'self' END,
       {day}, NULL, 'erase', 'active', 'bench', c.first_of_record
FROM n CROSS JOIN (SELECT 'contact_details' AS category, {true} AS first_of_record
                   UNION ALL SELECT 'case_details', {false}) c
"""
REFS = """
INSERT INTO lc_subject_ref (subject_hash, source, record_key, field, kind, category, free_text, person)
{numbers}
SELECT 'e' || {email}, '{source}', {key}, 'email', 'email', 'contact_details', {false}, 'email:e' || {email} FROM n
UNION ALL
SELECT 'p' || {phone}, '{source}', {key}, 'phone', 'phone', 'contact_details', {false}, 'email:e' || {email}
FROM n WHERE i % 5 < 2
UNION ALL
SELECT 'e' || {mention}, '{source}', {key}, 'message', 'email', 'case_details', {true}, 'email:e' || {mention}
FROM n WHERE i % 10 = 3
"""


def populate(engine: Engine, records: int) -> None:
    d = engine.dialect.name
    numbers, key = NUMBERS[d], KEY[d]
    false, true = ("0", "1") if d == "sqlite" else ("false", "true")
    with engine.begin() as conn:
        conn.execute(text(TAGS.format(numbers=numbers, source=SOURCE, key=key, day=DAY[d].format(e="i % 2500"),
                                      true=true, false=false)),
                     {"records": records})
        conn.execute(text(REFS.format(numbers=numbers, source=SOURCE, key=key, false=false, true=true,
                                      email=HEX[d].format(e="i"), phone=HEX[d].format(e="i / 2"),
                                      mention=HEX[d].format(e=f"(i * 7) % {records} + 1"))),
                     {"records": records})
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))


def timed(fn) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def run(engine: Engine, records: int, out: Path) -> None:
    policy = load_policy(ROOT / "config" / "policy.yaml")
    catalog = load_catalog(ROOT / "config" / "catalog.yaml", policy)
    seconds, _ = timed(lambda: populate(engine, records))
    with engine.connect() as conn:
        tags = conn.execute(text("SELECT COUNT(*) FROM lc_record_tag WHERE source = :s"), {"s": SOURCE}).scalar_one()
        refs = conn.execute(text("SELECT COUNT(*) FROM lc_subject_ref WHERE source = :s"), {"s": SOURCE}).scalar_one()
    print(f"{server(engine)}: {records:,} records, {tags:,} tag rows, {refs:,} index entries "
          f"({refs / records:.2f} per record), filled in {seconds:.1f} s")

    def baseline() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT COUNT(*) FROM lc_record_tag WHERE source = :s"), {"s": SOURCE}).scalar_one()
            conn.execute(text("SELECT COUNT(*) FROM lc_subject_ref WHERE source = :s"), {"s": SOURCE}).scalar_one()

    base = min(timed(baseline)[0] for _ in range(3))
    print(f"baseline  SELECT COUNT(*) over the same rows of both tables: {base:.3f} s")

    forms = {"whole source": {}, "window 2022-01-01..2023-12-31": {"window_from": "2022-01-01", "window_to": "2023-12-31"}}
    for label, extra in forms.items():
        scope = breach.parse_scope({"reference": "INC-BENCH", "sources": [SOURCE], "discovered_at": "2026-11-25T09:30",
                                    **extra}, catalog, now=NOW)
        contacts = breach.ContactList(out, out / "contacts-alone.csv")
        queries = breach.breach_queries(scope, catalog=catalog, policy=policy, tag_engine=engine, contacts=contacts)
        for name, query in queries.items():  # each alone, one after the other
            q = timed(lambda: breach._side_by_side(engine, {name: query}))[0]
            print(f"  {label:<32} {name:<20} {q:6.2f} s  ({q / base:5.1f} x baseline)")
        total, result = timed(lambda: breach.scope_breach(scope, catalog=catalog, policy=policy, tag_engine=engine,
                                                          report_dir=out / "reports", protected_dir=out / "protected",
                                                          now=NOW))
        r = result.report  # type: ignore[attr-defined]
        print(f"  {label:<32} {'whole scoping':<20} {total:6.2f} s  ({total / base:5.1f} x baseline): "
              f"{r['totals']['records']:,} records, {r['persons']['total']:,} persons "
              f"({r['persons']['only_mentioned_in_free_text']:,} only mentioned), "
              f"{r['totals']['identifier_locations']:,} locations listed, "
              f"{len(r['processor_customers'])} processor customers; target < 5 s: {'met' if total < 5 else 'MISSED'}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process: {peak:.0f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--url", help="a PostgreSQL URL (a scratch schema is used); default: a SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="breach-bench-") as tmp:
        out = Path(tmp)
        if args.url:
            with scratch(args.url, "breach_bench") as schema:
                engine = open_tag_store(args.url, schema=schema)
                try:
                    run(engine, args.records, out)
                finally:
                    engine.dispose()
        else:
            run(open_tag_store(f"sqlite:///{out / 'tagstore.db'}"), args.records, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
