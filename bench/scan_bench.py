"""Scan, incremental scan and subject lookup on PostgreSQL (or a MariaDB source), against bare baselines.

    python bench/scan_bench.py [--rows 1000000] [--url postgresql+psycopg://postgres@127.0.0.1:5432/test]
                               [--source-url 'mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4']

Builds one contact-form source of ``--rows`` records (20 % with free text holding e-mails,
phone numbers and personnummer) in a schema of its own, set-based in SQL: on PostgreSQL (``--url``,
which always holds the tag store) or, with ``--source-url``, in a database of its own on that
MySQL / MariaDB server (sequence engine, MariaDB). Then it measures, in the same run and on the
same source:
  scan:    full scan+tag vs the bare baseline of streaming the same columns into Python;
  changes: an incremental scan after 1 % of rows changed, vs the full scan;
  lookup:  one subject across all sources through the index, vs a single-subject query by an
           indexed column of the source.
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
from tqdm import tqdm  # noqa: E402

from bench.scratch import create_demo_tables, is_mysql, scratch, server  # noqa: E402
from lifecycle.config.catalog import load_catalog  # noqa: E402
from lifecycle.tagstore.db import make_engine, open_tag_store  # noqa: E402
from lifecycle.discovery.identifiers import SubjectHasher  # noqa: E402
from lifecycle.config.policy import load_policy  # noqa: E402
from lifecycle.discovery.scan import Tagger, _select, scan_source  # noqa: E402
from lifecycle.discovery.subjects import locate, subject_hashes  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TODAY = date(2026, 11, 25)

BUILD_SOURCE = """
CREATE TABLE contact_form_submissions AS
SELECT i AS id,
       TIMESTAMP '2026-11-25 12:00' - (i % 1000) * INTERVAL '1 day' AS submitted_at,
       DATE '2026-11-25' - (i % 1000) AS last_interaction_at,
       'Person ' || i AS name,
       'person' || i || '@exempel.se' AS email,
       '10.' || (i / 65536) % 256 || '.' || (i / 256) % 256 || '.' || i % 256 AS ip_address,
       '070-' || lpad((i % 10000000)::text, 7, '0') AS phone,
       'Bolag ' || (i % 5000) || ' AB' AS company_name,
       'https://www.bolag' || (i % 5000) || '.se' AS company_url,
       CASE WHEN i % 5 = 0 THEN
         'Hej! Nå mig på person' || i || '@exempel.se eller 070-' || lpad((i % 10000000)::text, 7, '0')
         || '. Min kollega har personnummer 811218-9876 och order 2024-118833 gäller, pris 1 299 kr.'
       END AS message,
       (ARRAY['consent', 'contract', 'legitimate_interest'])[1 + i % 3] AS message_basis,
       TIMESTAMP '2026-11-25 12:00' - (i % 1000) * INTERVAL '1 day' AS updated_at
FROM generate_series(1, :rows) AS i;
ALTER TABLE contact_form_submissions ADD PRIMARY KEY (id);
CREATE INDEX ON contact_form_submissions (updated_at);
CREATE INDEX ON contact_form_submissions (email);
ANALYZE contact_form_submissions;
"""

# The same rows on MySQL / MariaDB, into the demo's table (demo.company), from MariaDB's
# sequence engine (seq_1_to_N: a table of 1..N that exists without being created).
BUILD_SOURCE_MYSQL = """
INSERT INTO contact_form_submissions
  (id, submitted_at, last_interaction_at, name, email, ip_address, phone, company_name, company_url, message,
   message_basis, updated_at)
SELECT seq,
       TIMESTAMP '2026-11-25 12:00:00' - INTERVAL (seq % 1000) DAY,
       DATE '2026-11-25' - INTERVAL (seq % 1000) DAY,
       CONCAT('Person ', seq),
       CONCAT('person', seq, '@exempel.se'),
       CONCAT('10.', (seq DIV 65536) % 256, '.', (seq DIV 256) % 256, '.', seq % 256),
       CONCAT('070-', LPAD(seq % 10000000, 7, '0')),
       CONCAT('Bolag ', seq % 5000, ' AB'),
       CONCAT('https://www.bolag', seq % 5000, '.se'),
       CASE WHEN seq % 5 = 0 THEN
         CONCAT('Hej! Nå mig på person', seq, '@exempel.se eller 070-', LPAD(seq % 10000000, 7, '0'),
                '. Min kollega har personnummer 811218-9876 och order 2024-118833 gäller, pris 1 299 kr.')
       END,
       ELT(1 + seq % 3, 'consent', 'contract', 'legitimate_interest'),
       TIMESTAMP '2026-11-25 12:00:00' - INTERVAL (seq % 1000) DAY
FROM seq_1_to_{rows};
CREATE INDEX contact_form_submissions_email ON contact_form_submissions (email);
ANALYZE TABLE contact_form_submissions
"""

COLUMNS = ("id, last_interaction_at, name, email, ip_address, phone, company_name, company_url, message, "
           "message_basis, updated_at")


def timed(fn):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
                        help="PostgreSQL: the tag store, and the source unless --source-url")
    parser.add_argument("--source-url", help="the source on another server, e.g. MariaDB: "
                        "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark schema (and database) afterwards")
    args = parser.parse_args()
    source_url = args.source_url or args.url
    with scratch(args.url, "lc_bench", keep=args.keep) as schema:
        if source_url == args.url:
            run(args, source_url, schema, schema)
        else:  # the same name for the source's database, for whoever looks while it runs
            with scratch(source_url, "lc_bench", name=schema, keep=args.keep) as database:
                run(args, source_url, database, schema)


def build_source(engine, rows: int) -> None:  # type: ignore[no-untyped-def]
    """The source table of ``rows`` records, set-based in the source's own SQL."""
    if engine.dialect.name in ("mysql", "mariadb"):
        create_demo_tables(engine, "contact_form_submissions")
        statements, params = BUILD_SOURCE_MYSQL.format(rows=int(rows)), {}
    else:
        statements, params = BUILD_SOURCE, {"rows": rows}
    with engine.begin() as conn:
        for stmt in statements.split(";"):
            if stmt.strip():
                conn.execute(text(stmt), params)


def run(args: argparse.Namespace, source_url: str, source_schema: str, tag_schema: str) -> None:
    policy = load_policy(ROOT / "config" / "policy.yaml")
    source = load_catalog(ROOT / "config" / "catalog.yaml", policy).source("contact_form_submissions")
    engine = make_engine(source_url, schema=source_schema)
    tags = open_tag_store(args.url, schema=tag_schema)
    hasher = SubjectHasher(b"benchmark-secret-0123456789abcdef")
    where = f"database {source_schema}" if is_mysql(source_url) else f"schema {source_schema}"
    print(f"building {args.rows:,} source rows in {where} on {server(engine)} (tag store: schema {tag_schema} on "
          f"{server(tags)}) ...")
    started = time.perf_counter()
    build_source(engine, args.rows)
    print(f"built in {time.perf_counter() - started:.1f} s; bare read ...")

    def bare_read() -> int:
        n = 0
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=5000).execute(
                text(f"SELECT {COLUMNS} FROM contact_form_submissions"))
            for chunk in result.partitions(5000):
                n += len(chunk)
        return n

    bare_s, _ = timed(bare_read)
    print(f"bare read {bare_s:.2f} s; floors (nothing written) ...")

    # Floors: the scan's own Python work on the same rows with nothing written. The keyed hash of
    # every identifier (the subject index needs it, and the secret stays out of SQL) and the
    # free-text detectors bound what any full scan can reach, whatever the tag store does.
    tagger = Tagger(source, policy, hasher, "floor", TODAY.year)

    def read_and(work) -> int:  # type: ignore[no-untyped-def]
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=5000).execute(_select(source, engine))
            for chunk in result.mappings().partitions(5000):
                for row in chunk:
                    work(row)
        return args.rows

    def hashes_only(row) -> None:  # type: ignore[no-untyped-def]
        key = str(row["id"])
        tagger._free_text_refs(key, row, tagger._structured_refs(key, row))

    hash_s, _ = timed(lambda: read_and(hashes_only))
    python_s, _ = timed(lambda: read_and(tagger.tag))
    print(f"floors {hash_s:.2f} s / {python_s:.2f} s; full scan+tag ...")
    bar = tqdm(total=args.rows, unit="rows", desc="full scan+tag", leave=False)

    def progress(done: int, total: int) -> None:
        bar.n = done
        bar.refresh()

    full_s, full = timed(lambda: scan_source(source, policy, source_engine=engine, tag_engine=tags, hasher=hasher,
                                             run_id="bench-1", logical_date=TODAY, progress=progress))
    bar.close()
    print(f"full scan+tag {full_s:.2f} s; changing 1 % of rows, incremental scan ...")
    with engine.begin() as conn:  # the same statement in PostgreSQL and MySQL / MariaDB
        conn.execute(text("UPDATE contact_form_submissions SET updated_at = TIMESTAMP '2026-11-26 01:00:00', "
                          "email = CONCAT('andrad', id, '@exempel.se') WHERE id % 100 = 0"))
    inc_s, inc = timed(lambda: scan_source(source, policy, source_engine=engine, tag_engine=tags, hasher=hasher,
                                           run_id="bench-2", logical_date=TODAY))

    print(f"incremental scan {inc_s:.2f} s; subject lookups ...")
    probe = [int(args.rows * f) or 1 for f in (0.1, 0.25, 0.5, 0.75, 0.9)] * 4
    lookup_ms, baseline_ms, found = [], [], []
    with engine.connect() as conn:
        for i in probe:
            email = f"person{i}@exempel.se" if i % 100 else f"andrad{i}@exempel.se"
            s, _ = timed(lambda: conn.execute(text("SELECT * FROM contact_form_submissions WHERE email = :e"),
                                              {"e": email}).all())
            baseline_ms.append(s * 1000)
            s, hits = timed(lambda: locate(tags, subject_hashes(hasher, {"email": email}, 2026)))
            lookup_ms.append(s * 1000)
            found.append(len(hits))

    print()
    print(f"source: {args.rows:,} rows on {server(engine)}; tag store on {server(tags)}")
    print(f"{'measure':<46}{'seconds':>9}{'rows/s':>12}{'ratio':>9}")
    print(f"{'bare read (SELECT streamed to Python)':<46}{bare_s:>9.2f}{args.rows / bare_s:>12,.0f}{1:>9.2f}")
    print(f"{'floor: read + keyed hashes + detectors':<46}{hash_s:>9.2f}{args.rows / hash_s:>12,.0f}{bare_s / hash_s:>9.3f}   (nothing written)")
    print(f"{'floor: read + all tagging in Python':<46}{python_s:>9.2f}{args.rows / python_s:>12,.0f}{bare_s / python_s:>9.3f}   (nothing written)")
    print(f"{'full scan+tag':<46}{full_s:>9.2f}{full.records / full_s:>12,.0f}{bare_s / full_s:>9.3f}   target >= 0.333")
    print(f"{'incremental scan after 1 % changed':<46}{inc_s:>9.2f}{inc.records / inc_s:>12,.0f}{inc_s / full_s:>9.3f}   of full; target < 0.05")
    print(f"{'  rows read by the incremental scan':<46}{inc.records:>9,}")
    print(f"{'  identifiers found in free text (full scan)':<46}{full.free_text_refs:>9,}")
    print()
    print(f"{'lookup of one subject':<46}{'median ms':>9}{'p95 ms':>12}")
    print(f"{'bare: source query by indexed e-mail column':<46}{statistics.median(baseline_ms):>9.2f}"
          f"{sorted(baseline_ms)[int(len(baseline_ms) * 0.95) - 1]:>12.2f}")
    print(f"{'subject index (all sources, all fields)':<46}{statistics.median(lookup_ms):>9.2f}"
          f"{sorted(lookup_ms)[int(len(lookup_ms) * 0.95) - 1]:>12.2f}   target < 50 ms")
    print(f"{'  locations found per subject (median)':<46}{statistics.median(found):>9.0f}")


if __name__ == "__main__":
    main()
