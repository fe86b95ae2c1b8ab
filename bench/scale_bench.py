"""Scale-out of the full scan: one large source scanned in key-range partitions by 1 and by 2
worker processes, against the bare read of the same rows, measured in the same run.

    python bench/scale_bench.py [--rows 1000000] [--partitions 8] [--whole]
                                [--url postgresql+psycopg://postgres@127.0.0.1:5432/test]

Builds the contact-form source of ``--rows`` records (bench/scan_bench.py's, 20 % with free
text) in a scratch schema on PostgreSQL, vacuumed before anything is timed. Each run scans it
into a tag store of its own (a scratch schema each) with the product's partitioning
(lifecycle.discovery.partitions): the plan splits the table into ``--partitions`` key ranges, a
process pool of N workers scans the ranges (what N Celery workers do with the DAG's mapped
``scan_partition`` tasks), and the finish step runs once. Prints wall time (and the finish's
part of it), rows/s, the speedup of 2 workers over 1 and each run's ratio to the bare read, the
CPU the pipeline processes and the database server spent, and the speedups this machine and the
finish step allow; checks that both tag stores hold the same tags and index, and projects the
first night of a 100 M-row source for 1, 4 and 16 workers from the measured key-range rate and
the finish, which does not spread over workers.
``--whole`` also times today's one-task scan (scan_source) for the partitions' overhead.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine, make_url, text  # noqa: E402

from bench.scan_bench import COLUMNS, build_source  # noqa: E402
from bench.scratch import scratch, server  # noqa: E402
from lifecycle.config.catalog import load_catalog  # noqa: E402
from lifecycle.config.policy import load_policy  # noqa: E402
from lifecycle.discovery.identifiers import SubjectHasher  # noqa: E402
from lifecycle.discovery.partitions import Partition, finish_partitions, plan_partitions, run_partition  # noqa: E402
from lifecycle.discovery.scan import scan_source  # noqa: E402
from lifecycle.tagstore.db import make_engine, open_tag_store  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TODAY = date(2026, 11, 25)
SECRET = b"benchmark-secret-0123456789abcdef"
SOURCE = "contact_form_submissions"
PROJECTED_ROWS = 100_000_000


def _world() -> tuple[Any, Any]:
    policy = load_policy(ROOT / "config" / "policy.yaml")
    return policy, load_catalog(ROOT / "config" / "catalog.yaml", policy).source(SOURCE)


def settle(engine: Engine) -> None:
    """Vacuum and analyze the new source table, and checkpoint: otherwise autovacuum's pass over it
    and the build's checkpoint land in the first timed run (the 1-worker scan), on the server's CPU."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"VACUUM (ANALYZE) {SOURCE}"))
        try:
            conn.execute(text("CHECKPOINT"))
        except Exception:  # noqa: BLE001 - a role without pg_checkpoint: the server checkpoints on its own
            pass


def scan_one(url: str, source_schema: str, tag_schema: str, partition: dict[str, Any]) -> dict[str, Any]:
    """One partition in a worker process: its own engines, as a Celery worker's task has."""
    policy, source = _world()
    return run_partition(Partition.from_dict(partition), source, policy,
                         source_engine=make_engine(url, schema=source_schema),
                         tag_engine=open_tag_store(url, schema=tag_schema), hasher=SubjectHasher(SECRET),
                         logical_date=TODAY)


def _process_cpu(pid: int, children: bool = False) -> float:
    """CPU seconds (user + system) of one process, from /proc; with ``children``, also of its
    exited children (PostgreSQL's postmaster: the backends that have ended)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_cpu(url: str) -> float | None:
    """CPU seconds of every PostgreSQL process of this machine so far; None when the server is
    elsewhere (or /proc cannot be read)."""
    if make_url(url).host not in ("127.0.0.1", "localhost", None) or not os.path.isdir("/proc"):
        return None
    total = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm", encoding="utf-8") as f:
                if not f.read().startswith("postgres"):
                    continue
        except OSError:
            continue
        total += _process_cpu(int(pid), children=True)
    return total


@dataclass
class Run:
    seconds: float
    partitions: int
    finish_seconds: float  # of ``seconds``: the finish step, which runs once whatever the workers
    worker_cpu: float  # CPU seconds of the worker processes and of the planning and finishing here
    postgres_cpu: float | None  # of the database server, when it runs on this machine

    def busy_cores(self) -> float | None:
        return None if self.postgres_cpu is None else (self.worker_cpu + self.postgres_cpu) / self.seconds


def scan_with_workers(url: str, source_schema: str, tag_schema: str, rows: int, partitions: int,
                      workers: int) -> Run:
    """Plan, the partitions on ``workers`` processes, finish: wall time, partitions and the CPU
    the workers and the database server spent."""
    policy, source = _world()
    engine, tags = make_engine(url, schema=source_schema), open_tag_store(url, schema=tag_schema)
    hasher = SubjectHasher(SECRET)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        list(pool.map(int, range(workers)))  # start the processes (interpreter + imports) before the clock
        pids = list(pool._processes)  # noqa: SLF001 - the pool's worker processes, to read their CPU
        cpu_before, server_before = sum(map(_process_cpu, pids)) + time.process_time(), postgres_cpu(url)
        started = time.perf_counter()
        planned = plan_partitions(source, policy, source_engine=engine, tag_engine=tags, hasher=hasher,
                                  run_id=f"scale-{workers}", partition_rows=max(rows // partitions, 1))
        futures = [pool.submit(scan_one, url, source_schema, tag_schema, p.to_dict()) for p in planned]
        results = [f.result() for f in futures]
        scanned = time.perf_counter()
        stats = finish_partitions(source, results, source_engine=engine, tag_engine=tags, hasher=hasher)
        finished = time.perf_counter()
        seconds = finished - started
        worker_cpu = sum(map(_process_cpu, pids)) + time.process_time() - cpu_before
        server_after = postgres_cpu(url)
    finally:
        pool.shutdown()
    assert stats.records == rows, f"{stats.records} records scanned of {rows}"
    server = None if server_before is None or server_after is None else server_after - server_before
    return Run(seconds, len(planned), finished - scanned, worker_cpu, server)


def tag_store_digest(tags: Engine) -> tuple[int, int, str]:
    """Tags, index entries and an order-independent digest of both (the run id left out)."""
    with tags.connect() as conn:
        return tuple(conn.execute(text(  # type: ignore[return-value]
            "SELECT (SELECT count(*) FROM lc_record_tag), (SELECT count(*) FROM lc_subject_ref), "
            "md5((SELECT string_agg(md5(concat_ws('|', source, record_key, category, lawful_basis, deadline, status, "
            "violation, parent_key)), '' ORDER BY record_key, category) FROM lc_record_tag) || "
            "(SELECT string_agg(md5(concat_ws('|', subject_hash, record_key, field, person)), '' "
            "ORDER BY subject_hash, record_key, field) FROM lc_subject_ref))")).one())


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=8, help="key ranges the source is split into")
    parser.add_argument("--whole", action="store_true", help="also time the one-task scan (scan_source)")
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with scratch(args.url, "lc_scale") as source_schema, scratch(args.url, "lc_scale_w1") as one_schema, \
            scratch(args.url, "lc_scale_w2") as two_schema:
        engine = make_engine(args.url, schema=source_schema)
        print(f"building {args.rows:,} source rows in schema {source_schema} on {server(engine)} ...")
        started = time.perf_counter()
        build_source(engine, args.rows)
        settle(engine)
        print(f"built and vacuumed in {time.perf_counter() - started:.1f} s")

        # The better of two reads. (Unvacuumed, the first read of a new table also wrote its hint
        # bits, which no scan after it pays: measured 5.4 s against 2.8 s for the same rows.)
        reads = []
        for _ in range(2):
            started = time.perf_counter()
            with engine.connect() as conn:
                result = conn.execution_options(stream_results=True, yield_per=5000).execute(
                    text(f"SELECT {COLUMNS} FROM {SOURCE}"))
                read = sum(len(chunk) for chunk in result.partitions(5000))
            reads.append(time.perf_counter() - started)
            assert read == args.rows
        bare = min(reads)
        print(f"bare reads: {', '.join(f'{r:.2f}' for r in reads)} s")

        runs: dict[int, Run] = {}
        for workers, schema in ((1, one_schema), (2, two_schema)):
            print(f"scanning with {workers} worker process(es) ...")
            runs[workers] = scan_with_workers(args.url, source_schema, schema, args.rows, args.partitions, workers)
        same = tag_store_digest(open_tag_store(args.url, schema=one_schema)) == \
            tag_store_digest(open_tag_store(args.url, schema=two_schema))
        whole = None
        if args.whole:
            with scratch(args.url, "lc_scale_whole") as whole_schema:
                policy, source = _world()
                print("scanning in one task (scan_source) ...")
                started = time.perf_counter()
                scan_source(source, policy, source_engine=engine, tag_engine=open_tag_store(args.url, schema=whole_schema),
                            hasher=SubjectHasher(SECRET), run_id="scale-whole", logical_date=TODAY)
                whole = time.perf_counter() - started

    one, two = runs[1].seconds, runs[2].seconds
    print()
    print(f"source: {args.rows:,} rows, {runs[1].partitions} partitions; machine: {multiprocessing.cpu_count()} cores, "
          f"load average {os.getloadavg()[1]:.1f} over the last 5 minutes (other work skews the speedup)")
    print(f"{'run':<28}{'wall s':>9}{'rows/s':>11}{'vs bare read':>14}{'of it: finish s':>17}")
    print(f"{'bare read (baseline)':<28}{bare:>9.2f}{args.rows / bare:>11,.0f}{1.0:>13.1f}x")
    if whole is not None:
        print(f"{'one task (scan_source)':<28}{whole:>9.2f}{args.rows / whole:>11,.0f}{whole / bare:>13.1f}x")
    for workers, run in runs.items():
        label = f"partitioned, {workers} worker{'s' if workers > 1 else ''}"
        print(f"{label:<28}{run.seconds:>9.2f}{args.rows / run.seconds:>11,.0f}{run.seconds / bare:>13.1f}x"
              f"{run.finish_seconds:>17.2f}")
    speedup = one / two
    print(f"speedup 2 workers / 1: {speedup:.2f}x (target >= 1.7x); same tag store and index: {'yes' if same else 'NO'}")

    # What bounds the speedup: the CPU one worker's scan needs (the worker and the database
    # server), against the cores there are.
    print()
    print(f"{'CPU seconds':<28}{'pipeline':>9}{'server':>9}{'busy cores':>12}")
    for workers, run in runs.items():
        server_cpu = "n/a" if run.postgres_cpu is None else f"{run.postgres_cpu:.1f}"
        busy = run.busy_cores()
        print(f"{f'{workers} worker(s)':<28}{run.worker_cpu:>9.1f}{server_cpu:>9}{'n/a' if busy is None else f'{busy:.2f}':>12}")
    busy_one = runs[1].busy_cores()
    if busy_one:
        cores = multiprocessing.cpu_count()
        print(f"one worker keeps {busy_one:.2f} of {cores} cores busy (itself and the database server): "
              f"on this machine the speedup cannot exceed {cores / busy_one:.2f}x")
    # Amdahl: the finish runs once, so even key ranges that scale perfectly leave it whole.
    ranges_one, finish_one = runs[1].seconds - runs[1].finish_seconds, runs[1].finish_seconds
    ranges_two = runs[2].seconds - runs[2].finish_seconds
    print(f"the key ranges took {ranges_one:.2f} s on 1 worker and {ranges_two:.2f} s on 2 ({ranges_one / ranges_two:.2f}x); "
          f"with the finish's {finish_one:.2f} s once, a perfect 2x on the ranges would give "
          f"{runs[1].seconds / (ranges_one / 2 + finish_one):.2f}x")

    # Projection: the key ranges at the one-worker rate, spread over the workers with the
    # ranges' scaling efficiency measured with two; the finish once, on the database server,
    # whatever the workers (its index builds grow a little faster than the rows: a lower bound).
    # The tag store is assumed to keep up with the workers' writes: see the README.
    scale = PROJECTED_ROWS / args.rows
    efficiency = ranges_one / ranges_two / 2
    print()
    print(f"first night of a {PROJECTED_ROWS // 1_000_000} M-row source: key ranges at {args.rows / ranges_one:,.0f} "
          f"rows/s per worker with {efficiency:.0%} scaling efficiency measured with 2, then the finish "
          f"({_duration(finish_one * scale)}, once):")
    print(f"{'workers':>8}{'projected':>12}")
    for workers in (1, 4, 16):
        seconds = ranges_one * scale / (1 if workers == 1 else workers * efficiency) + finish_one * scale
        print(f"{workers:>8}{_duration(seconds):>12}")


if __name__ == "__main__":
    main()
