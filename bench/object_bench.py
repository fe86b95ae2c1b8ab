"""Object-storage sources: scan, incremental scan and enforcement against a real S3 server.

    python bench/object_bench.py [--objects 200] [--records 1000] [--url postgresql+psycopg://postgres@127.0.0.1:5432/test]

Starts SeaweedFS (the test suite's server, tests/s3server.py) on free local ports, uploads
``--objects`` CSV objects of ``--records`` newsletter records each (a quarter past their two
years, spread over every object), and measures in the same run:
  bare:        list + GET + parse every object, nothing else;
  full scan:   tagging and indexing every record into a PostgreSQL tag store;
  incremental: after 1 % of the objects changed (only those are read);
  enforce:     every object rewritten without its expired records, old versions removed.
"""

from __future__ import annotations

import argparse
import io
import csv
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text  # noqa: E402
from tqdm import tqdm  # noqa: E402

from lifecycle.config.catalog import Source, check_against_policy  # noqa: E402
from lifecycle.tagstore.db import open_tag_store  # noqa: E402
from lifecycle.enforcement.enforce import enforce_source  # noqa: E402
from lifecycle.discovery.identifiers import SubjectHasher  # noqa: E402
from lifecycle.stores.storage_scan import scan_object_source  # noqa: E402
from lifecycle.stores.s3 import ObjectStore, decode_records  # noqa: E402
from lifecycle.enforcement.plan import build_plan, register_run, summarise_plan  # noqa: E402
from lifecycle.config.policy import load_policy  # noqa: E402
from tests.s3server import ACCESS_KEY, SECRET_KEY, start_s3_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TODAY = date(2026, 11, 25)
BUCKET = "lifecycle-bench"


def body(obj: int, records: int, version: int = 0) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "name", "email", "last_confirmed_at", "segment"])
    for i in range(records):
        n = obj * records + i
        clock = "2024-01-15" if n % 4 == 0 else "2026-05-01"  # a quarter expired
        writer.writerow([n, f"Person {n}", f"person{n}.v{version}@exempel.se", clock, "b2b"])
    return out.getvalue().encode()


def timed(fn):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    schema = f"lc_obench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    server = start_s3_server(Path(tempfile.mkdtemp(prefix="lifecycle-bench-s3-")))
    try:
        run(args, schema, server.endpoint_url)
    finally:
        server.stop()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def run(args: argparse.Namespace, schema: str, endpoint: str) -> None:
    policy = load_policy(ROOT / "config" / "policy.yaml")
    source = Source.model_validate({
        "name": "newsletter_exports", "connection": "lifecycle_s3",
        "storage": {"bucket": BUCKET, "prefix": "exports/", "format": "csv"}, "primary_key": "id",
        "activity": "newsletter", "retention_clock": "last_confirmed_at", "lawful_basis": "consent",
        "subject": {"email": "email", "name": "name"}, "on_expiry": "erase", "not_personal": ["segment"],
        "columns": {"name": "contact_details", "email": "contact_details"}, "max_destroy_share": 1.0})
    check_against_policy(source, policy, "bench")
    store = ObjectStore.connect(endpoint_url=endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY)
    store.client.create_bucket(Bucket=BUCKET)
    store.client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    keys = [f"exports/list-{i:05d}.csv" for i in range(args.objects)]
    for i, key in enumerate(tqdm(keys, desc="uploading", unit="objects", leave=False)):
        store.client.put_object(Bucket=BUCKET, Key=key, Body=body(i, args.records))
    total = args.objects * args.records
    tags = open_tag_store(args.url, schema=schema)
    hasher = SubjectHasher(b"benchmark-secret-0123456789abcdef")

    def bare() -> int:
        n = 0
        for info in store.list(BUCKET, "exports/"):
            got = store.get(BUCKET, info.key)
            n += len(decode_records("csv", info.key, got.body)[0]) if got else 0
        return n

    bare_s, bare_n = timed(bare)
    full_s, full = timed(lambda: scan_object_source(source, policy, store=store, tag_engine=tags, hasher=hasher,
                                                    run_id="bench-1", logical_date=TODAY))
    changed = max(1, args.objects // 100)
    for i in range(changed):
        store.client.put_object(Bucket=BUCKET, Key=keys[i], Body=body(i, args.records, version=1))
    inc_s, inc = timed(lambda: scan_object_source(source, policy, store=store, tag_engine=tags, hasher=hasher,
                                                  run_id="bench-2", logical_date=TODAY))
    register_run(tags, "bench-3", TODAY, False)
    build_plan(tags, [source], "bench-3", TODAY)
    enf_s, enforced = timed(lambda: enforce_source(source, summarise_plan(tags, source, "bench-3"), source_engine=store,
                                                   tag_engine=tags, run_id="bench-3", dry_run=False, confirmed=True))
    left = sum(len(store.versions(BUCKET, k)) for k in keys[:20])

    print()
    print(f"{'measure':<52}{'seconds':>9}{'records/s':>12}{'ratio':>9}")
    print(f"{'bare: list + GET + parse every object':<52}{bare_s:>9.2f}{bare_n / bare_s:>12,.0f}{1:>9.2f}")
    print(f"{'full scan (tag + index every record)':<52}{full_s:>9.2f}{full.records / full_s:>12,.0f}{bare_s / full_s:>9.3f}")
    print(f"{f'incremental scan after {changed} of {args.objects} objects changed':<52}{inc_s:>9.2f}"
          f"{inc.records / inc_s:>12,.0f}{inc_s / full_s:>9.3f}   of full")
    print(f"{'  objects read / unchanged':<52}{inc.objects_read:>9} / {inc.objects_unchanged}")
    o = enforced.objects
    print(f"{'enforce: rewrite every object without expired records':<52}{enf_s:>9.2f}"
          f"{enforced.records_erased / enf_s:>12,.0f}")
    print(f"{'  records erased / of':<52}{enforced.records_erased:>9,} / {total:,}")
    print(f"{'  objects rewritten / versions removed':<52}{o['objects_rewritten']:>9} / {o['versions_removed']}")
    print(f"{'  versions left on 20 sampled objects (want 20)':<52}{left:>9}")


if __name__ == "__main__":
    main()
