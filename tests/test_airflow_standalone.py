"""The product as an operator runs it: `airflow standalone` with its metadata database on
PostgreSQL and the LocalExecutor (the configuration of the docker-compose deployment, minus
Celery), the nightly DAG triggered through the REST API and run by the scheduler, then the
compliance page opened inside the Airflow UI in a real headless browser (Debian's chromium),
its figures compared with the tag store, and a screenshot kept.

The screenshot goes to $LIFECYCLE_SCREENSHOT_DIR (default: test-artifacts/ in the checkout).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pendulum
import pytest
from sqlalchemy import create_engine, text

from lifecycle.tagstore.db import open_tag_store
from demo.company import generate
from tests.conftest import PG_URL, ROOT, _pg_available

PASSWORD = "standalone-test-password"
# A second user, for what one person may not do alone (tests/test_approvals.py: four eyes).
REVIEWER = "reviewer"
BASES = ["consent", "contract", "legitimate_interest", "legal_obligation", "controller_instruction", "(none)", "unknown"]


def _fold_unknown(by_basis: dict[str, int]) -> dict[str, int]:
    folded: dict[str, int] = defaultdict(int)
    for basis, n in by_basis.items():
        folded[basis if basis in BASES else "unknown"] += n
    return dict(folded)


@dataclass
class Standalone:
    base_url: str
    home: Path
    tag_url: str
    tag_schema: str
    log_path: Path
    metadata_url: str = ""

    def token(self, user: str = "admin") -> str:
        body = json.dumps({"username": user, "password": PASSWORD}).encode()
        request = urllib.request.Request(f"{self.base_url}/auth/token", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as r:
            return str(json.load(r)["access_token"])

    def api(self, method: str, path: str, payload: dict[str, Any] | None = None, *, user: str = "admin") -> Any:
        request = urllib.request.Request(
            f"{self.base_url}/api/v2{path}", method=method,
            data=json.dumps(payload).encode() if payload is not None else None,
            headers={"Authorization": f"Bearer {self.token(user)}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as r:
            return json.load(r)

    def log_tail(self) -> str:
        return self.log_path.read_bytes()[-4000:].decode(errors="replace")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(predicate: Any, seconds: float, what: str, server: Standalone | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1)
    pytest.fail(f"{what} within {seconds:.0f}s" + (f"; standalone log tail:\n{server.log_tail()}" if server else ""),
                pytrace=False)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=3) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    _pg_available()
    home = tmp_path_factory.mktemp("standalone")
    suffix = uuid.uuid4().hex[:8]
    metadata_db, schema = f"lc_airflow_{suffix}", f"lc_standalone_{suffix}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{metadata_db}"'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    # Sources and tag store in one PostgreSQL schema; Airflow's metadata in a database of its own.
    today = pendulum.now("Europe/Stockholm").date()
    generate(PG_URL, rows=60, seed=5, as_of=today, schema=schema)
    pg_conn = json.dumps({"conn_type": "generic", "extra": {"sqlalchemy_url": PG_URL, "search_path": schema}})
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    (home / "passwords.json").write_text(json.dumps({"admin": PASSWORD, REVIEWER: PASSWORD}))
    metadata_url = PG_URL.rsplit("/", 1)[0] + f"/{metadata_db}"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home / "airflow"),
        "LIFECYCLE_HOME": str(home / "lifecycle"),
        "LIFECYCLE_REPORT_DIR": str(home / "reports"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        # psycopg 3 is async too: no asyncpg needed beside it.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": metadata_url,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        # Only the run the test triggers: no scheduled night may run beside it.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        # A task's calls to the API server wait this long (default 5 s): on a loaded machine the first
        # one can take half a minute, and its retry then finds the task already started (400).
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "120",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"admin:admin,{REVIEWER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
        "AIRFLOW_CONN_LIFECYCLE_DEMO": pg_conn,
        "AIRFLOW_CONN_LIFECYCLE_TAGSTORE": pg_conn,
        "PYTHONPATH": str(ROOT),
    }
    log_path = home / "standalone.log"
    airflow = str(Path(sys.executable).with_name("airflow"))
    with open(log_path, "wb") as log:
        process = subprocess.Popen([airflow, "standalone"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                   cwd=home, start_new_session=True)
    server = Standalone(base_url, home, PG_URL, schema, log_path, metadata_url)
    try:
        _wait(lambda: process.poll() is not None or _healthy(base_url), 240, "airflow standalone did not answer", server)
        if process.poll() is not None:
            pytest.fail(f"airflow standalone exited with {process.returncode}:\n{server.log_tail()}", pytrace=False)
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{metadata_db}" WITH (FORCE)'))
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def _run_nightly(server: Standalone) -> dict[str, Any]:
    def parsed() -> bool:
        try:
            return server.api("GET", "/dags/lifecycle_nightly")["dag_id"] == "lifecycle_nightly"
        except urllib.error.HTTPError:
            return False

    _wait(parsed, 120, "the dag processor did not parse lifecycle_nightly", server)
    run = server.api("POST", "/dags/lifecycle_nightly/dagRuns",
                     {"logical_date": pendulum.now("UTC").to_iso8601_string(), "conf": {}})
    run_id = run["dag_run_id"]
    state: dict[str, Any] = {}

    def finished() -> bool:
        state.update(server.api("GET", f"/dags/lifecycle_nightly/dagRuns/{run_id}"))
        return state["state"] in ("success", "failed")

    _wait(finished, 420, "the nightly run did not finish", server)
    if state["state"] != "success":
        tasks = server.api("GET", f"/dags/lifecycle_nightly/dagRuns/{run_id}/taskInstances")["task_instances"]
        failed = [(t["task_id"], t["map_index"], t["state"]) for t in tasks if t["state"] != "success"]
        logs = []
        for t in tasks:
            if t["state"] == "failed":
                log = server.api("GET", f"/dags/lifecycle_nightly/dagRuns/{run_id}/taskInstances/{t['task_id']}/logs/"
                                        f"{max(t['try_number'], 1)}?map_index={t['map_index']}&full_content=true")
                logs.append(json.dumps(log.get("content"))[-3000:])
        pytest.fail(f"nightly run {run_id} ended {state['state']}: {failed}\n" + "\n".join(logs), pytrace=False)
    return state


def _browser(download_dir: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1400,1800", f"--user-data-dir={download_dir / 'profile'}"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def test_nightly_runs_under_standalone_on_postgresql_and_the_page_shows_the_tag_store(
        standalone: Standalone, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    _run_nightly(standalone)
    reports = list((standalone.home / "reports").glob("*.json"))
    assert len(reports) == 1 and json.loads(reports[0].read_text())["compliant"] is True

    # What the page must show, straight from the tag store.
    tags = open_tag_store(standalone.tag_url, schema=standalone.tag_schema)
    expected: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    with tags.connect() as conn:
        for source, basis, n in conn.execute(text(
                "SELECT source, COALESCE(lawful_basis, '(none)'), COUNT(*) FROM lc_record_tag GROUP BY 1, 2")):
            expected[source][basis] += int(n)
    assert len(expected) >= 9

    if not Path("/usr/bin/chromium").exists() or not Path("/usr/bin/chromedriver").exists():
        pytest.fail("Debian's chromium and chromium-driver are needed (apt-get install chromium chromium-driver; "
                    ".ci/run installs them)", pytrace=False)
    shots = Path(os.environ.get("LIFECYCLE_SCREENSHOT_DIR", str(ROOT / "test-artifacts")))
    shots.mkdir(parents=True, exist_ok=True)
    driver = _browser(tmp_path)
    try:
        # Anonymous: the page itself refuses.
        driver.get(f"{standalone.base_url}/lifecycle/api/summary")
        assert "Not authenticated" in driver.page_source and "records_by_category_and_basis" not in driver.page_source
        # Log in as Airflow's UI does: the JWT in the `_token` cookie.
        driver.add_cookie({"name": "_token", "value": standalone.token(), "path": "/"})
        driver.get(f"{standalone.base_url}/plugin/lifecycle")
        wait = WebDriverWait(driver, 60)
        frame = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "iframe[src*='/lifecycle']")))
        nav = driver.find_elements(By.XPATH, "//*[normalize-space(text())='Compliance']")
        assert nav, "the Compliance entry is in Airflow's navigation"
        driver.switch_to.frame(frame)
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#sources tr[data-source]")))
        shown: dict[str, dict[str, int]] = {}
        for row in driver.find_elements(By.CSS_SELECTOR, "#sources tr[data-source]"):
            cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
            shown[row.get_attribute("data-source") or ""] = {b: int(v) for b, v in zip(BASES, cells[2:9]) if int(v)}
        assert driver.find_element(By.ID, "last-run-outcome").text == "compliant"
        page = driver.page_source
        driver.switch_to.default_content()
        driver.save_screenshot(str(shots / "compliance-page-in-airflow-ui.png"))
    finally:
        driver.quit()
    # Bases the policy does not know (violations) are summed in a column of their own.
    assert shown == {s: _fold_unknown(b) for s, b in expected.items()}
    assert (shots / "compliance-page-in-airflow-ui.png").stat().st_size > 10_000
    print(f"screenshot: {shots / 'compliance-page-in-airflow-ui.png'}")
    assert "@" not in page.replace("@media", "")  # no e-mail address on the page


def _written_forms(params: dict[str, Any], year: int) -> set[str]:
    """Every way the identifiers of a request could have been written down: as typed,
    lower-cased, normalised, and JSON-escaped (non-ASCII)."""
    from lifecycle.discovery.identifiers import normalise_personnummer, normalise_phone

    forms: set[str] = set()
    for param in ("email", "phone", "personnummer", "name", "company", "new_value"):
        value = params.get(param)
        if not value:
            continue
        found = {value, value.lower()}
        if param == "phone" and (e164 := normalise_phone(value)):
            found |= {e164, "0" + e164[3:]}
        if param == "personnummer" and (n := normalise_personnummer(value, year)):
            found |= {n, n[2:], f"{n[2:8]}-{n[8:]}"}
        forms |= found | {json.dumps(f)[1:-1] for f in found}
    return forms


def _tables_holding(dump: str, forms: set[str]) -> dict[str, list[str]]:
    """Tables of a `pg_dump --data-only --inserts` whose rows hold any of the forms."""
    hits: dict[str, list[str]] = defaultdict(list)
    table = "?"
    for line in dump.splitlines():
        if line.startswith("INSERT INTO "):
            table = line.split()[2].split("(")[0]
        for form in forms:
            if form in line:
                hits[table].append(form)
    return dict(hits)


def test_a_subject_request_leaves_no_identifiers_in_airflows_records(standalone: Standalone) -> None:
    """Requests through the REST API -- one that succeeds (erasure dry run), one that fails
    validation (a personnummer with a wrong check digit), one the API refuses (malformed e-mail)
    -- and, once the runs have ended, not one of the identifiers is left anywhere in Airflow's
    metadata database (a full pg_dump) or its logs: the runs' conf holds keyed references, the
    audit log's trigger entries too."""
    from lifecycle.discovery.identifiers import SubjectHasher, luhn_check_digit
    from lifecycle_airflow.scrub import IDENTIFIER_PARAMS, scrub_conf

    def parsed() -> bool:
        try:
            return server.api("GET", "/dags/lifecycle_subject_request")["dag_id"] == "lifecycle_subject_request"
        except (urllib.error.URLError, OSError):  # not parsed yet (404), or the server is busy
            return False

    def personnummer(probe: int) -> str:
        body = f"{probe % 30 + 50:02d}{probe % 12 + 1:02d}{probe % 28 + 1:02d}{probe % 1000:03d}"
        return f"19{body[:6]}-{body[6:]}{luhn_check_digit(body)}"

    server = standalone
    _wait(parsed, 120, "the dag processor did not parse lifecycle_subject_request", server)
    hasher = SubjectHasher(os.environ["LIFECYCLE_HASH_SECRET"].encode())
    # A trigger the API refuses (the e-mail fails the param's pattern): no run, but the audit log
    # has recorded the request body before validating it.
    tag = uuid.uuid4().hex[:10]
    rejected = {"request_type": "erasure", "reference": f"DSR-SCRUB-REJECTED-{tag}", "dry_run": True,
                "email": f"Scrub.Rejected.{tag}@Exempel", "phone": "070-555 98 76"}
    with pytest.raises(urllib.error.HTTPError) as refused:
        server.api("POST", "/dags/lifecycle_subject_request/dagRuns",
                   {"logical_date": pendulum.now("UTC").to_iso8601_string(), "conf": rejected})
    assert refused.value.code in (400, 422)
    requests: dict[str, dict[str, Any]] = {}
    for outcome in ("success", "failed"):
        tag, probe = uuid.uuid4().hex[:10], int(uuid.uuid4().int % 10**7)
        letters = tag.translate(str.maketrans("0123456789", "ghijklmnop")).capitalize()  # names hold letters only
        valid = personnummer(probe)
        params = {
            "request_type": "erasure", "reference": f"DSR-SCRUB-{tag}", "dry_run": True,
            "email": f"Scrub.Probe.{tag}@Exempel.se",
            "phone": f"070-{probe % 1000:03d} {probe // 1000 % 100:02d} {probe // 100000 % 100:02d}",
            # Invalid input fails the first task: a check digit off by one.
            "personnummer": valid if outcome == "success" else valid[:-1] + str((int(valid[-1]) + 1) % 10),
            "name": f"Åsa Sondberg-{letters}", "company": f"Sondbolaget {letters} AB",
        }
        when = pendulum.now("UTC")
        run = server.api("POST", "/dags/lifecycle_subject_request/dagRuns",
                         {"logical_date": when.to_iso8601_string(), "conf": params})
        requests[run["dag_run_id"]] = {"params": params, "expected": outcome,
                                       "year": when.in_timezone("Europe/Stockholm").year}
    # Polled in the metadata database: the API server is slow on a loaded machine.
    metadata = create_engine(server.metadata_url)
    try:
        def runs() -> dict[str, tuple[str, dict[str, Any]]]:
            with metadata.connect() as conn:
                rows = conn.execute(text("SELECT run_id, state, conf FROM dag_run WHERE run_id = ANY(:ids)"),
                                    {"ids": list(requests)}).all()
            return {r: (str(s), dict(c or {})) for r, s, c in rows}

        _wait(lambda: len(runs()) == 2 and all(s in ("success", "failed") for s, _ in runs().values()), 300,
              "the subject-request runs did not end", server)
        states = {r: s for r, (s, _) in runs().items()}
        assert all(states[r] == q["expected"] for r, q in requests.items()), (states, requests)
        # The listener runs in the scheduler as the run ends, in the same transaction: allow a moment.
        _wait(lambda: all(str(c.get("email", "")).startswith("keyed:") for _, c in runs().values()), 60,
              "the run's conf still holds raw identifiers after the run ended", server)
        stored = {r: c for r, (_, c) in runs().items()}
        with metadata.connect() as conn:
            triggers = [e for (e,) in conn.execute(text(
                "SELECT extra FROM log WHERE event = 'trigger_dag_run' AND dag_id = 'lifecycle_subject_request'"))]
    finally:
        metadata.dispose()
    # The refused trigger's entry went at the end of the next request run.
    year = pendulum.now("Europe/Stockholm").year
    forms = _written_forms(rejected, year)
    refused_entries = [json.loads(e) for e in triggers if rejected["reference"] in e]
    assert len(refused_entries) == 1 and refused_entries[0]["conf"] == scrub_conf(rejected, hasher, year)
    for run_id, request in requests.items():
        params = request["params"]
        forms |= _written_forms(params, request["year"])
        expected = scrub_conf(params, hasher, request["year"])
        assert expected is not None and all(str(expected[p]).startswith("keyed:") for p in IDENTIFIER_PARAMS if params.get(p))
        # The same keyed references the ledger and certificates use; everything else kept.
        assert {k: v for k, v in stored[run_id].items() if k in params} == expected, run_id
        assert stored[run_id]["reference"] == params["reference"] and stored[run_id]["dry_run"] is True
        # The trigger's audit-log entry held the form's values: now the keyed references.
        mine = [json.loads(e) for e in triggers if params["reference"] in e]
        assert len(mine) == 1 and mine[0]["conf"]["email"] == expected["email"], mine

    dump = subprocess.run(["pg_dump", "--data-only", "--inserts", "--no-owner",
                           "--dbname", server.metadata_url.replace("postgresql+psycopg://", "postgresql://")],
                          capture_output=True, text=True, timeout=120)
    assert dump.returncode == 0, dump.stderr
    assert "lifecycle_subject_request" in dump.stdout and "keyed:" in dump.stdout
    assert _tables_holding(dump.stdout, forms) == {}

    # Airflow's own task logs and the standalone processes' output: the tasks never log them.
    logs = [p for p in (server.home / "airflow" / "logs").rglob("*") if p.is_file()] + [server.log_path]
    task_logs = [p for p in logs if "lifecycle_subject_request" in str(p)]
    assert len(task_logs) >= 3, task_logs  # validate twice, fulfil once
    leaks = {str(p): sorted(f for f in forms if f in p.read_text(errors="replace")) for p in logs}
    assert {p: f for p, f in leaks.items() if f} == {}
