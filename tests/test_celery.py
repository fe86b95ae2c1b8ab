"""The CeleryExecutor for real, as processes on this machine (no Docker): the scheduler, the
dag-processor, the api-server and two `airflow celery worker`s, the broker on the machine's
Redis, Celery's result backend and Airflow's metadata on PostgreSQL. The nightly DAG runs on
sources big enough to be scanned in partitions; the task instances show that both workers ran
partitions, and the final source tables and tag store equal those of a LocalExecutor run (the
same processes minus the workers) on a copy of the same data.

Every process is started in a session of its own and stopped by its process group when the
test ends, whatever happened. Takes a few minutes: marked e2e (scripts/test.sh runs it).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pendulum
import pytest
from sqlalchemy import create_engine, text

from demo.company import generate
from tests.conftest import PG_URL, ROOT, _pg_available
from tests.test_airflow_standalone import PASSWORD, Standalone, _free_port, _healthy, _wait

pytestmark = pytest.mark.e2e

REDIS = ("127.0.0.1", 6379)
ROWS = 300  # contact forms and newsletter subscribers each: six partitions of 50 rows
SOURCES = ["contact_form_submissions", "newsletter_subscribers"]
TAG_TABLES = {"lc_record_tag": "source, record_key, category", "lc_subject_ref": "source, record_key, field, subject_hash"}


def _redis_up() -> bool:
    try:
        return subprocess.run(["redis-cli", "-h", REDIS[0], "-p", str(REDIS[1]), "ping"], capture_output=True,
                              text=True, timeout=10).stdout.strip() == "PONG"
    except (OSError, subprocess.TimeoutExpired):
        return False


def _ensure_redis() -> None:
    """The machine's Redis; started (no persistence) when it is down."""
    if _redis_up():
        return
    subprocess.run(["redis-server", "--bind", REDIS[0], "--port", str(REDIS[1]), "--daemonize", "yes",
                    "--save", "", "--appendonly", "no"], check=False, timeout=30)
    _wait(_redis_up, 60, f"redis-server did not answer on {REDIS[0]}:{REDIS[1]}")


class Cluster:
    """Airflow processes started each in a session (process group) of its own, stopped by group."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home, self.env = home, env
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        airflow = str(Path(sys.executable).with_name("airflow"))
        with open(self.home / f"{name}.log", "ab") as log:
            process = subprocess.Popen([airflow, *args], env={**self.env, **(env or {})}, stdout=log,
                                       stderr=subprocess.STDOUT, cwd=self.home, start_new_session=True)
        self.processes.append((name, process))

    def dead(self) -> list[str]:
        return [f"{name} exited with {p.returncode}" for name, p in self.processes if p.poll() is not None]

    def stop(self) -> None:
        for _, process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for _, process in self.processes:
            try:
                process.wait(timeout=45)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=15)
        self.processes.clear()

    def log_tails(self) -> str:
        return "\n".join(f"--- {path.name}:\n" + path.read_bytes()[-2500:].decode(errors="replace")
                         for path in sorted(self.home.glob("*.log")))


@contextmanager
def airflow_cluster(home: Path, env: dict[str, str], workers: int) -> Iterator[tuple[Standalone, Cluster]]:
    """api-server, scheduler, dag-processor and ``workers`` Celery workers (none: LocalExecutor)."""
    port = int(env["AIRFLOW__API__PORT"])
    base_url = f"http://127.0.0.1:{port}"
    cluster = Cluster(home, env)
    server = Standalone(base_url, home, PG_URL, env["LIFECYCLE_TEST_SCHEMA"], home / "scheduler.log")
    try:
        cluster.start("api-server", "api-server", "--port", str(port), "--host", "127.0.0.1")
        cluster.start("scheduler", "scheduler")
        cluster.start("dag-processor", "dag-processor")
        for n in range(1, workers + 1):
            # Each worker names itself in the task instances it runs (tests/worker_name.py).
            cluster.start(f"worker-{n}", "celery", "worker", "--concurrency", "1", "--skip-serve-logs",
                          "--celery-hostname", f"lifecycle-worker-{n}@%h", "--without-gossip", "--without-mingle",
                          env={"LIFECYCLE_WORKER_NAME": f"lifecycle-worker-{n}"})
        _wait(lambda: bool(cluster.dead()) or _healthy(base_url), 180, "the api-server did not answer")
        if cluster.dead():
            pytest.fail(f"{cluster.dead()}:\n{cluster.log_tails()}", pytrace=False)
        yield server, cluster
    finally:
        cluster.stop()


def _trigger_and_wait(server: Standalone, cluster: Cluster, logical_date: pendulum.DateTime) -> str:
    def parsed() -> bool:
        try:
            return server.api("GET", "/dags/lifecycle_nightly")["dag_id"] == "lifecycle_nightly"
        except Exception:  # noqa: BLE001 - not parsed yet (404) or the server still starting
            return False

    _wait(parsed, 180, "the dag processor did not parse lifecycle_nightly", server)
    run = server.api("POST", "/dags/lifecycle_nightly/dagRuns",
                     {"logical_date": logical_date.to_iso8601_string(), "conf": {"sources": SOURCES}})
    run_id = run["dag_run_id"]
    state: dict[str, Any] = {}

    def finished() -> bool:
        if cluster.dead():
            return True
        state.update(server.api("GET", f"/dags/lifecycle_nightly/dagRuns/{run_id}"))
        return state["state"] in ("success", "failed")

    _wait(finished, 600, "the nightly run did not finish", server)
    if state.get("state") != "success":
        tasks = server.api("GET", f"/dags/lifecycle_nightly/dagRuns/{run_id}/taskInstances?limit=200")["task_instances"]
        failed = [(t["task_id"], t["map_index"], t["state"]) for t in tasks if t["state"] != "success"]
        pytest.fail(f"nightly run {run_id} ended {state.get('state')} {cluster.dead()}: {failed}\n"
                    f"{cluster.log_tails()}", pytrace=False)
    return run_id


def _contents(schema: str) -> dict[str, list[tuple[Any, ...]]]:
    """The selected sources' tables and the tag store's tags and index, in key order; the run
    that wrote a tag left out (each run has its own id)."""
    engine = create_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    out: dict[str, list[tuple[Any, ...]]] = {}
    try:
        with engine.connect() as conn:
            for table in SOURCES:
                out[table] = [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY id"))]
            for table, order in TAG_TABLES.items():
                rows = conn.execute(text(f"SELECT * FROM {table} ORDER BY {order}")).mappings()
                out[table] = [tuple(v for k, v in r.items() if k != "run_id") for r in rows]
    finally:
        engine.dispose()
    return out


def test_nightly_on_two_celery_workers_equals_a_local_executor_run(tmp_path: Path) -> None:
    _pg_available()
    _ensure_redis()
    suffix = uuid.uuid4().hex[:8]
    metadata_db = f"lc_celery_{suffix}"
    schemas = {"celery": f"lc_celery_{suffix}", "local": f"lc_local_{suffix}"}
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    redis_db = str(1 + int(suffix, 16) % 15)  # a Redis database of its own, emptied at the end
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{metadata_db}"'))
            for schema in schemas.values():
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        today = pendulum.now("Europe/Stockholm").date()
        for schema in schemas.values():  # the same data twice
            generate(PG_URL, rows=ROWS, seed=14, as_of=today, schema=schema)
        # The product's catalog, with partitions of 50 rows (scans: six per source) and batches of
        # 10 records (enforcement: about 60 expired records per source, two partitions each).
        catalog = tmp_path / "catalog.yaml"
        catalog.write_text((ROOT / "config" / "catalog.yaml").read_text().replace(
            "  partition_rows: 250000", "  partition_rows: 50").replace("  batch_size: 1000", "  batch_size: 10"))
        assert "partition_rows: 50\n" in catalog.read_text() and "batch_size: 10\n" in catalog.read_text()
        metadata_url = PG_URL.rsplit("/", 1)[0] + f"/{metadata_db}"
        (tmp_path / "passwords.json").write_text(json.dumps({"admin": PASSWORD}))
        base = {
            **os.environ,
            "AIRFLOW_HOME": str(tmp_path / "airflow"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": metadata_url,
            "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS[0]}:{REDIS[1]}/{redis_db}",
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata_url,
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.worker_name.hostname",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(tmp_path / "passwords.json"),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
            "LIFECYCLE_CATALOG": str(catalog),
            "PYTHONPATH": str(ROOT),
        }
        subprocess.run([str(Path(sys.executable).with_name("airflow")), "db", "migrate"], env=base, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, timeout=300)
        day = pendulum.now("Europe/Stockholm").subtract(days=1).replace(hour=10, minute=0, second=0, microsecond=0)

        runs = {}
        for n, (kind, workers) in enumerate((("celery", 2), ("local", 0))):
            port = _free_port()
            pg_conn = json.dumps({"conn_type": "generic",
                                  "extra": {"sqlalchemy_url": PG_URL, "search_path": schemas[kind]}})
            env = {**base, "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor" if workers else "LocalExecutor",
                   "AIRFLOW__API__PORT": str(port), "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
                   "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
                   "AIRFLOW_CONN_LIFECYCLE_DEMO": pg_conn, "AIRFLOW_CONN_LIFECYCLE_TAGSTORE": pg_conn,
                   "LIFECYCLE_HOME": str(tmp_path / kind), "LIFECYCLE_REPORT_DIR": str(tmp_path / kind / "reports"),
                   "LIFECYCLE_TEST_SCHEMA": schemas[kind]}
            home = tmp_path / f"{kind}-logs"
            home.mkdir()
            # Same night (seconds apart, one metadata database): the same deadlines and decisions.
            with airflow_cluster(home, env, workers) as (server, cluster):
                run_id = _trigger_and_wait(server, cluster, day.add(seconds=n))
                runs[kind] = server.api("GET", f"/dags/lifecycle_nightly/dagRuns/{run_id}/taskInstances?limit=200")[
                    "task_instances"]

        partitions = [t for t in runs["celery"] if t["task_id"] == "scan_partition"]
        by_source: dict[str, set[str]] = {}
        for t in partitions:
            by_source.setdefault(t["rendered_map_index"].split()[0], set()).add(t["hostname"])
        # Both sources were scanned in six partitions each, and both workers ran some.
        assert sorted(t["rendered_map_index"] for t in partitions) == sorted(
            f"{s} {i}/6" for s in SOURCES for i in range(1, 7)), [t["rendered_map_index"] for t in partitions]
        assert {t["state"] for t in partitions} == {"success"}
        assert {t["hostname"] for t in partitions} == {"lifecycle-worker-1", "lifecycle-worker-2"}, partitions
        assert {t["hostname"] for t in runs["local"]} - {"lifecycle-worker-1", "lifecycle-worker-2"}
        assert len([t for t in runs["local"] if t["task_id"] == "scan_partition"]) == 12
        # Their enforcement too: each source's batches cut into ranges, run by the workers.
        parts = [t for t in runs["celery"] if t["task_id"] == "enforce_part"]
        split = [t for t in parts if t["rendered_map_index"].split()[0] in SOURCES and "/" in t["rendered_map_index"]]
        assert {t["rendered_map_index"].split()[0] for t in split} == set(SOURCES), [t["rendered_map_index"] for t in parts]
        assert {t["state"] for t in parts} == {"success"}
        assert {t["hostname"] for t in parts} == {"lifecycle-worker-1", "lifecycle-worker-2"}, parts

        celery, local = _contents(schemas["celery"]), _contents(schemas["local"])
        assert len(celery["lc_record_tag"]) > 2 * ROWS and len(celery["lc_subject_ref"]) > ROWS
        assert {r[0] for r in celery["lc_record_tag"]} == set(SOURCES)
        for table in [*SOURCES, *TAG_TABLES]:
            assert celery[table] == local[table], table
        for kind in schemas:
            reports = list((tmp_path / kind / "reports").glob("*.json"))
            assert len(reports) == 1 and json.loads(reports[0].read_text())["compliant"] is True, kind
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{metadata_db}" WITH (FORCE)'))
            for schema in schemas.values():
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
        subprocess.run(["redis-cli", "-h", REDIS[0], "-p", str(REDIS[1]), "-n", redis_db, "flushdb"],
                       capture_output=True, timeout=30, check=False)
