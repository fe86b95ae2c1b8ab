"""Scan, incremental scan and single-subject erasure of a Delta Lake source, against bare baselines.

    python bench/delta_bench.py [--rows 1000000] [--requests 5] [--file-rows 100000]
                                [--url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--dir /tmp]

Builds a local Delta table of ``--rows`` contact-form records with pyarrow, one append of
``--file-rows`` records at a time (a table that grew by appends: one data file per append). Each
record has an e-mail, a phone number, a name, a company and a date clock. 20 % of them have a free-text
message, and in one message in ten of those the writer names another person's e-mail (each
mentioned person twice). The tag store is on PostgreSQL (``--url``), in a scratch schema dropped
at the end; the table lives in a temporary folder, also removed. Then it measures, in the same
run and on the same table:
  scan:    full scan+tag through the store's ``scan``, against the bare read (the same columns
           as Arrow batches streamed by delta-rs, nothing else);
  append:  an incremental scan after appending 1 % new rows, against the full scan;
  erasure: ``lifecycle.rights.dispatcher.fulfil`` of one person (resolve, MERGE, purge of older versions and
           log, independent verification) for ``--requests`` people, against the bare filtered
           read of the table for that e-mail (delta-rs's engine with a predicate, all columns).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow as pa  # noqa: E402
import yaml  # noqa: E402
from deltalake import DeltaTable, write_deltalake  # noqa: E402
from tqdm import tqdm  # noqa: E402

import lifecycle.rights.dispatcher as fulfil_module  # noqa: E402
from bench.scan_bench import timed  # noqa: E402
from bench.scratch import scratch, server  # noqa: E402
from lifecycle.config.catalog import load_catalog  # noqa: E402
from lifecycle.tagstore.db import open_tag_store  # noqa: E402
from lifecycle.rights.dispatcher import SubjectRequest, Workspace, fulfil  # noqa: E402
from lifecycle.discovery.identifiers import SubjectHasher  # noqa: E402
from lifecycle.config.policy import load_policy  # noqa: E402
from lifecycle.rights.requests import SubjectIdentifiers  # noqa: E402
from lifecycle.discovery.scan import Tagger  # noqa: E402
from lifecycle.stores import open_store  # noqa: E402
from lifecycle.stores.base import ConnectionInfo  # noqa: E402
from lifecycle.stores.lake_table import Store  # noqa: E402
from lifecycle.stores.lake_table import backend as lake_backend  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TODAY = date(2026, 11, 25)
CONN = "lifecycle_lake"
SOURCE = "lake_contacts"

SCHEMA = pa.schema([
    ("id", pa.int64()), ("name", pa.string()), ("email", pa.string()), ("phone", pa.string()),
    ("company_name", pa.string()), ("message", pa.string()), ("last_interaction_at", pa.date32()),
    ("submitted_at", pa.timestamp("us", tz="UTC")),
])

# The contact form of config/policy.yaml, as a lake table (as tests/test_lake_table.py catalogues it).
SPEC = {
    "primary_key": "id", "activity": "contact_form", "retention_clock": "last_interaction_at",
    "lawful_basis": "legitimate_interest", "on_expiry": "erase", "not_personal": ["submitted_at"],
    "subject": {"email": "email", "phone": "phone", "name": "name", "company": "company_name"},
    "columns": {"name": "contact_details", "email": "contact_details", "phone": "contact_details",
                "company_name": "company_details",
                "message": {"category": "case_details", "anonymise": "redact", "free_text": True}},
}


def email(i: int) -> str:
    return f"person{i}@exempel.se"


def batch(first: int, last: int, mentioned: int) -> pa.Table:
    """Records ``first``..``last`` (inclusive): every fifth has a message, every fiftieth names
    another person's e-mail in it (person 1 + (i / 50) % mentioned)."""
    ids = range(first, last + 1)
    messages = [
        None if i % 5 else
        f"Hej! Prata med {email(1 + (i // 50) % mentioned)} om offerten, jag är borta i veckan." if i % 50 == 0 else
        "Hej, vi vill veta mer om era tjänster. Order 2024-118833 gäller, pris 1 299 kr."
        for i in ids]
    submitted = datetime(2026, 11, 25, 12, tzinfo=timezone.utc)
    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "name": [f"Person {i}" for i in ids],
        "email": [email(i) for i in ids],
        "phone": [f"070-{i % 10_000_000:07d}" for i in ids],
        "company_name": [f"Bolag {i % 5000} AB" for i in ids],
        "message": pa.array(messages, pa.string()),
        "last_interaction_at": pa.array([TODAY - timedelta(days=i % 1000) for i in ids], pa.date32()),
        "submitted_at": pa.array([submitted - timedelta(days=i % 1000) for i in ids], pa.timestamp("us", tz="UTC")),
    }, schema=SCHEMA)


def append(uri: str, first: int, last: int, mentioned: int, file_rows: int) -> None:
    for start in range(first, last + 1, file_rows):
        write_deltalake(uri, batch(start, min(last, start + file_rows - 1), mentioned), mode="append")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--file-rows", type=int, default=100_000, help="records per append (data file) when building")
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
                        help="PostgreSQL: the tag store")
    parser.add_argument("--dir", default=None, help="where the temporary table folder goes (default: the system's)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="lc_delta_bench_", dir=args.dir))
    try:
        with scratch(args.url, "lc_dbench") as schema:
            run(args, folder, schema)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        print(f"removed {folder}")


def run(args: argparse.Namespace, folder: Path, schema: str) -> None:
    uri = str(folder / "contacts")
    n, mentioned = args.rows, max(args.requests, args.rows // 50 // 2)  # each mentioned person named twice
    policy = load_policy(ROOT / "config" / "policy.yaml")
    catalog_path = folder / "catalog.yaml"
    catalog_path.write_text(yaml.safe_dump({"version": 1, "defaults": {"connection": CONN},
                                            "sources": {SOURCE: {"lake_table": {"uri": uri}, **SPEC}}}))
    catalog = load_catalog(catalog_path, policy)
    source = catalog.source(SOURCE)
    tags = open_tag_store(args.url, schema=schema)
    lake = lake_backend(ConnectionInfo(CONN, "fs"))  # a local table: an empty Connection
    store = open_store(source, lake, tags)
    assert isinstance(store, Store)
    hasher = SubjectHasher(b"benchmark-secret-0123456789abcdef")

    print(f"building a Delta table of {n:,} rows at {uri}, {args.file_rows:,} rows per append "
          f"(tag store: schema {schema} on {server(tags)}) ...")
    started = time.perf_counter()
    append(uri, 1, n, mentioned, args.file_rows)
    files = len(DeltaTable(uri).file_uris())
    print(f"built in {time.perf_counter() - started:.1f} s ({files} data files); bare read ...")

    columns = [c for c in source.referenced_columns() if c in SCHEMA.names]  # what the scan reads

    def bare_read() -> int:
        rows = 0
        for b in pa.RecordBatchReader.from_stream(DeltaTable(uri).scan(columns=columns)):
            rows += b.num_rows
        return rows

    bare_s, bare_rows = timed(bare_read)
    assert bare_rows == n, bare_rows
    def python_read() -> int:  # the SQL benchmarks' bare read hands Python rows over: the same here
        rows = 0
        for b in pa.RecordBatchReader.from_stream(DeltaTable(uri).scan(columns=columns)):
            rows += len(b.to_pylist())
        return rows

    pyread_s, _ = timed(python_read)

    # Floor: the scan's own Python work on the same batches (rows to Python, tagging, keyed hashes,
    # detectors), nothing written: what any full scan needs whatever the tag store does.
    tagger = Tagger(source, policy, hasher, "floor", TODAY.year)

    def tag_only() -> int:
        rows = 0
        for b in pa.RecordBatchReader.from_stream(DeltaTable(uri).scan(columns=columns)):
            for row in b.to_pylist():
                tagger.tag(row, key=str(row["id"]))
            rows += b.num_rows
        return rows

    floor_s, _ = timed(tag_only)
    print(f"bare read {bare_s:.2f} s, floor {floor_s:.2f} s; full scan+tag ...")
    bar = tqdm(total=n, unit="rows", desc="full scan+tag", leave=False)

    def progress(done: int, total: int) -> None:
        bar.n = done
        bar.refresh()

    full_s, full = timed(lambda: store.scan(policy, hasher=hasher, run_id="bench-1", logical_date=TODAY,
                                            progress=progress))
    bar.close()
    assert full.mode == "full" and full.records == n, full
    added = max(1, n // 100)
    print(f"full scan+tag {full_s:.2f} s; appending {added:,} rows (1 %), incremental scan ...")
    append(uri, n + 1, n + added, mentioned, args.file_rows)
    inc_s, inc = timed(lambda: store.scan(policy, hasher=hasher, run_id="bench-2", logical_date=TODAY))
    assert inc.mode == "incremental" and inc.records == added, inc

    # Where an erasure's time goes: the purge after each write and the independent verification,
    # timed by wrapping them (nothing else changes).
    spent = {"write": 0.0, "purge": 0.0, "verify": 0.0}

    def timing(name: str, fn: Any) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[name] += time.perf_counter() - t0
        return wrapper

    Store._purge = timing("purge", Store._purge)  # type: ignore[method-assign]
    for write in ("erase", "anonymise", "change"):  # each a MERGE commit followed by its purge
        setattr(Store, write, timing("write", getattr(Store, write)))
    fulfil_module.verify_erasure = timing("verify", fulfil_module.verify_erasure)  # type: ignore[attr-defined]

    workspace = Workspace(policy, catalog, {CONN: lake}, tags, hasher)
    step = max(1, mentioned // args.requests)
    print(f"erasing {args.requests} people one by one ...")
    latencies, writes, purges, verifications, baselines, purged, planted, left = [], [], [], [], [], [], 0, 0
    for k in range(args.requests):
        person = email(1 + k * step)
        t0 = time.perf_counter()
        own = read_where(uri, f"email = '{person}'")  # the benchmark's own address: a plain literal
        baselines.append(time.perf_counter() - t0)
        assert own == 1, own
        planted += mentions(uri, person)
        spent.update(write=0.0, purge=0.0, verify=0.0)
        ids = SubjectIdentifiers.parse({"email": person}, TODAY.year)
        t0 = time.perf_counter()
        result = fulfil(SubjectRequest(f"DSR-B{k}", "erasure", ids, TODAY, dry_run=False), workspace,
                        report_dir=folder / "reports", extract_dir=folder / "extracts")
        latencies.append(time.perf_counter() - t0)
        writes.append(spent["write"])
        purges.append(spent["purge"])
        verifications.append(spent["verify"])
        assert result.verified, result.summary
        certificate = json.loads(result.documents.json.read_text())
        purged.append(certificate["objects"][SOURCE])
        left += mentions(uri, person)
        print(f"  {person}: {latencies[-1]:.2f} s, {result.summary['per_source'][SOURCE]}, "
              f"purged {certificate['objects'][SOURCE]}")

    print()
    print(f"table: {n:,} rows in {files} data files (local disk), then +{added:,}; tag store on {server(tags)}")
    print(f"{'measure':<52}{'seconds':>9}{'rows/s':>12}{'ratio':>9}")
    print(f"{'bare read (Arrow batches streamed by delta-rs)':<52}{bare_s:>9.2f}{n / bare_s:>12,.0f}{1:>9.2f}")
    print(f"{'bare read + rows to Python (to_pylist)':<52}{pyread_s:>9.2f}{n / pyread_s:>12,.0f}{bare_s / pyread_s:>9.3f}")
    print(f"{'floor: read + all tagging in Python, nothing written':<52}{floor_s:>9.2f}{n / floor_s:>12,.0f}"
          f"{bare_s / floor_s:>9.3f}")
    print(f"{'full scan+tag':<52}{full_s:>9.2f}{full.records / full_s:>12,.0f}{bare_s / full_s:>9.3f}   target >= 0.333;"
          f" {pyread_s / full_s:.3f} of the read to Python")
    print(f"{'incremental scan after appending 1 %':<52}{inc_s:>9.2f}{inc.records / inc_s:>12,.0f}{inc_s / full_s:>9.3f}"
          f"   of full; target < 0.05")
    print(f"{'  rows read by the incremental scan':<52}{inc.records:>9,}")
    print(f"{'  identifiers found in free text (full scan)':<52}{full.free_text_refs:>9,}")
    print()
    print(f"{'erasure of one person (' + str(args.requests) + ' requests)':<52}{'median s':>9}{'max s':>12}")
    print(f"{'bare: filtered read of the table for the e-mail':<52}{statistics.median(baselines):>9.3f}"
          f"{max(baselines):>12.3f}")
    print(f"{'fulfil: resolve, MERGE, purge, verify':<52}{statistics.median(latencies):>9.3f}{max(latencies):>12.3f}"
          f"   target median < 0.3 s")
    print(f"{'  of which writes: MERGE commits and their purge':<52}{statistics.median(writes):>9.3f}{max(writes):>12.3f}")
    print(f"{'    of those the purge (vacuum, checkpoint, log)':<52}{statistics.median(purges):>9.3f}{max(purges):>12.3f}")
    print(f"{'  of which independent verification':<52}{statistics.median(verifications):>9.3f}"
          f"{max(verifications):>12.3f}")
    print(f"{'  ratio to the bare filtered read (median)':<52}"
          f"{statistics.median(latencies) / statistics.median(baselines):>9.0f}")
    print(f"{'  planted free-text mentions redacted':<52}{planted - left:>9}/{planted}")
    for name in ("files_removed", "log_files_removed", "versions_removed"):
        values = [p.get(name, 0) for p in purged]
        print(f"{'  certificate ' + name + ' per request (min-max)':<52}{min(values):>9}-{max(values)}")


def mentions(uri: str, person: str) -> int:
    """Messages naming ``person`` in the table now."""
    return read_where(uri, f"message LIKE '%{person}%'", ["message"])


def read_where(uri: str, predicate: str, columns: list[str] | None = None) -> int:
    """Rows matching ``predicate``, read by delta-rs's engine (files pruned by their statistics,
    rows filtered as they are read), every column unless ``columns``; returns how many."""
    reader = pa.RecordBatchReader.from_stream(DeltaTable(uri).scan(columns=columns, predicate=predicate))
    return sum(b.num_rows for b in reader)


if __name__ == "__main__":
    main()
