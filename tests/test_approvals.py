"""Approvals by a person: a nightly plan over a source's max_destroy_share and a data-subject
request under four eyes wait in Airflow's Human-in-the-loop state; approve, reject and time-out,
through the REST API of a real `airflow standalone` (tests/test_airflow_standalone.py's fixture,
with a second user), plus the decision store and the texts a person reads, on SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
import pytest
from sqlalchemy import create_engine, select, text

from lifecycle.enforcement import (ApprovalConfigError, approval_timeout, approvers, decisions, plan_approval_text,
                                   record_decision, request_approval)
from lifecycle.reporting import verify as audit_verify
from lifecycle.rights import SelfApprovalError, check_not_requester, four_eyes_types, needs_four_eyes
from lifecycle.rights.approval import RequestPreview, review_text
from lifecycle.tagstore.tables import approval, audit_log
from tests.conftest import PG_URL
from tests.test_airflow_standalone import REVIEWER, Standalone, _wait, standalone  # noqa: F401  (the fixture)

ROOT = Path(__file__).resolve().parents[1]


# --- the decision store and the texts -------------------------------------------------------------

def _audit_entries(engine) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return [json.loads(d) for (d,) in conn.execute(
            select(audit_log.c.details).where(audit_log.c.kind == "approval").order_by(audit_log.c.seq))]


def test_a_decision_is_recorded_once_with_its_audit_entry(tag_db, hasher) -> None:  # type: ignore[no-untyped-def]
    tags = tag_db.tag_store()
    asked = request_approval(tags, hasher, "nightly", "run-1", ["orders", "order_lines"], requested_by=None,
                             details={"shares": {"orders": 0.8}})
    assert {r.item: r.decision for r in asked} == {"orders": "pending", "order_lines": "pending"}
    assert not any(r.goes_ahead for r in asked)
    record_decision(tags, hasher, "nightly", "run-1", ["orders", "order_lines"], "rejected", decided_by="reviewer")
    # Asking again (a re-run of the task) keeps the decision.
    request_approval(tags, hasher, "nightly", "run-1", ["orders"], requested_by=None, details={})
    found = decisions(tags, "nightly", "run-1")
    assert {k: (r.decision, r.decided_by) for k, r in found.items()} == {
        "orders": ("rejected", "reviewer"), "order_lines": ("rejected", "reviewer")}
    assert found["orders"].decided_at is not None and found["orders"].decided_at.tzinfo is not None
    assert decisions(tags, "request", "run-1") == {}  # the kinds do not mix
    entries = _audit_entries(tags)
    assert [(e["decision"], e["by"], e["items"]) for e in entries] == [
        ("requested", None, ["orders", "order_lines"]), ("rejected", "reviewer", ["orders", "order_lines"])]
    assert audit_verify(tags, hasher).intact


def test_confirmed_in_advance_goes_ahead_and_pending_never_does(tag_db, hasher) -> None:  # type: ignore[no-untyped-def]
    tags = tag_db.tag_store()
    pre = request_approval(tags, hasher, "nightly", "run-2", ["invoices"], requested_by="admin", details={},
                           decision="pre_approved", decided_by="admin")
    assert [(r.decision, r.decided_by, r.goes_ahead) for r in pre] == [("pre_approved", "admin", True)]
    record_decision(tags, hasher, "request", "run-3", ["DSR-1"], "timed_out", decided_by=None)  # no request row first
    assert decisions(tags, "request", "run-3")["DSR-1"].goes_ahead is False
    with pytest.raises(ValueError):
        record_decision(tags, hasher, "request", "run-3", ["DSR-1"], "pending", decided_by=None)


def test_settings_parse_or_fail_naming_the_setting() -> None:
    assert approval_timeout(None) == timedelta(hours=12)
    assert approval_timeout("0.01") == timedelta(seconds=36)
    for bad in ("soon", "0", "-1", "1000"):
        with pytest.raises(ApprovalConfigError, match="lifecycle_approval_timeout_hours"):
            approval_timeout(bad)
    assert approvers(" reviewer, dpo ,reviewer") == ["reviewer", "dpo"]
    with pytest.raises(ApprovalConfigError, match="lifecycle_approvers"):
        approvers("two words")
    assert four_eyes_types(None) == {"erasure"}
    assert four_eyes_types("off") == frozenset()
    assert four_eyes_types("on") == {"erasure", "rectification", "consent_withdrawal", "objection"}
    assert "access" in four_eyes_types("all")
    assert four_eyes_types("erasure, objection") == {"erasure", "objection"}
    with pytest.raises(ApprovalConfigError, match="deletion"):
        four_eyes_types("deletion")
    assert needs_four_eyes("erasure", False, four_eyes_types(None))
    assert not needs_four_eyes("erasure", True, four_eyes_types(None))  # a dry run changes nothing
    assert needs_four_eyes("access", True, four_eyes_types("all"))  # an extract discloses, dry run or not


def test_the_requester_cannot_approve_their_own_request() -> None:
    with pytest.raises(SelfApprovalError, match="'admin' triggered this request"):
        check_not_requester({"id": "admin", "name": "admin"}, "admin")
    with pytest.raises(SelfApprovalError):
        check_not_requester({"id": "7", "name": "Ada"}, "Ada")  # an auth manager whose ids are numbers
    check_not_requester({"id": "reviewer", "name": "reviewer"}, "admin")
    check_not_requester(None, "admin")  # a time-out has no responder


def test_the_texts_hold_counts_and_references_only() -> None:
    rows = [{"scope": "record", "action": "erase", "reason": "retention_expired", "category": "contact_details",
             "lawful_basis": "consent", "items": 55, "records": 55}]
    plan = {"records_in_tag_store": 60, "records_to_erase": 55, "records_to_anonymise": 0, "records_to_restrict": 0,
            "fields_to_anonymise": 0, "violations_to_restrict": 0, "mentions_to_redact": 0, "destroy_share": 0.9167,
            "needs_confirmation": True, "rows": rows}
    subject, body = plan_approval_text(["newsletter_subscribers"], {"newsletter_subscribers": plan},
                                       {"newsletter_subscribers": 0.6}, run_id="manual__x", logical_date="2026-11-25",
                                       report_path="/r/plans/lifecycle-x.html", timeout=timedelta(hours=12))
    assert "newsletter_subscribers" in subject and "91.7 %" in subject
    assert "limit `max_destroy_share` 60.0 %" in body and "| record | erase | retention_expired | contact_details | consent | 55 | 55 |" in body
    assert "/r/plans/lifecycle-x.html" in body and "12 h" in body
    preview = RequestPreview("DSR-9", "erasure", per_source={"invoices": {"hold": 1}, "newsletter_subscribers": {"erase": 1}},
                             held=[{"source": "invoices", "record_key": "9001", "reason": "BFL", "lapses_on": "2032-12-31"}],
                             forwarded={"kund-fastighetsbyran": 2})
    subject, body = review_text(preview, requested_by="admin", timeout=timedelta(hours=1))
    assert "DSR-9" in subject and "| invoices | 0 | 1 |" in body and "| invoices | 9001 | BFL | 2032-12-31 |" in body
    assert "kund-fastighetsbyran: 2 records" in body and "`admin`" in body and "1 h" in body


def test_the_request_dag_asks_before_it_fulfils() -> None:
    from airflow.models import DagBag

    dag = DagBag(dag_folder=str(ROOT / "dags")).dags["lifecycle_subject_request"]
    assert dag.get_task("fulfil_request").upstream_task_ids == {"validate_request", "four_eyes"}
    assert dag.get_task("four_eyes").upstream_task_ids == {"four_eyes_plan"}
    assert dag.get_task("four_eyes").defaults == ["Reject"]


# --- under airflow standalone -------------------------------------------------------------------

NIGHTLY = "lifecycle_nightly"
REQUEST = "lifecycle_subject_request"
LARGE = "newsletter_subscribers"  # every record made expired: far over max_destroy_share 0.6
OTHER = "contact_form_submissions"  # within its share: enforced whatever the decision on LARGE
GATE = "enforcement.approve_large_plan"


def _source_engine(server: Standalone):  # type: ignore[no-untyped-def]
    return create_engine(PG_URL, connect_args={"options": f"-csearch_path={server.tag_schema}"})


def _count(server: Standalone, sql: str, **params: Any) -> int:
    engine = _source_engine(server)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql), params).scalar_one())
    finally:
        engine.dispose()


_TOKENS: dict[tuple[str, str], str] = {}


def _api(server: Standalone, method: str, path: str, payload: dict[str, Any] | None = None, *, user: str = "admin",
         attempts: int = 3) -> Any:
    """The REST API as ``user``, with a token kept per user and patience for a loaded machine:
    a request that timed out is tried again when ``attempts`` allows (reads and idempotent writes)."""
    for attempt in range(attempts):
        try:
            if (server.base_url, user) not in _TOKENS:
                _TOKENS[(server.base_url, user)] = server.token(user)
            request = urllib.request.Request(
                f"{server.base_url}/api/v2{path}", method=method,
                data=json.dumps(payload).encode() if payload is not None else None,
                headers={"Authorization": f"Bearer {_TOKENS[(server.base_url, user)]}",
                         "Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=120) as r:
                body = r.read()
            return json.loads(body) if body else None
        except urllib.error.HTTPError:
            raise
        except (urllib.error.URLError, TimeoutError, OSError):
            if attempt == attempts - 1:
                raise
            time.sleep(5)


def _metadata(server: Standalone, sql: str, **params: Any) -> list[Any]:
    """Airflow's metadata database, polled directly: the API server is slow on a loaded machine."""
    engine = create_engine(server.metadata_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())
    finally:
        engine.dispose()


def _set_variable(server: Standalone, key: str, value: str) -> None:
    try:
        _api(server, "PATCH", f"/variables/{key}", {"key": key, "value": value})
    except urllib.error.HTTPError as e:
        if e.code != 404:
            raise
        _api(server, "POST", "/variables", {"key": key, "value": value}, attempts=1)


def _trigger(server: Standalone, dag_id: str, conf: dict[str, Any]) -> str:
    _wait(lambda: bool(_metadata(server, "SELECT 1 FROM dag WHERE dag_id = :d AND NOT is_stale", d=dag_id)), 120,
          f"the dag processor did not parse {dag_id}", server)
    run = _api(server, "POST", f"/dags/{dag_id}/dagRuns",
               {"logical_date": pendulum.now("UTC").to_iso8601_string(), "conf": conf}, attempts=1)
    return str(run["dag_run_id"])


def _run_state(server: Standalone, dag_id: str, run_id: str) -> str:
    rows = _metadata(server, "SELECT state FROM dag_run WHERE dag_id = :d AND run_id = :r", d=dag_id, r=run_id)
    return str(rows[0][0]) if rows else ""


def _waiting(server: Standalone, dag_id: str, run_id: str, seconds: float = 420) -> dict[str, Any]:
    """The run's one Human-in-the-loop request (through the REST API), once its task waits for input."""
    found: list[Any] = []

    def asked() -> bool:
        found[:] = _metadata(server, "SELECT ti.task_id, ti.map_index FROM task_instance ti JOIN hitl_detail h "
                                     "ON h.ti_id = ti.id WHERE ti.dag_id = :d AND ti.run_id = :r "
                                     "AND ti.state = 'awaiting_input'", d=dag_id, r=run_id)
        if not found and _run_state(server, dag_id, run_id) in ("success", "failed"):
            pytest.fail(f"{dag_id} run {run_id} ended without asking for approval: "
                        f"{_task_states(server, dag_id, run_id)}", pytrace=False)
        return bool(found)

    _wait(asked, seconds, f"{dag_id} run {run_id} did not wait for approval", server)
    assert len(found) == 1, found
    task_id, map_index = found[0]
    # Airflow 3.3.2: an answer that lands before the scheduler has handled the executor's event for
    # the workload that parked the task makes it fail the resumed task ("finished with state success,
    # but the task instance's state attribute is running"). A person never answers within seconds of
    # the request; the test waits for the scheduler to log that event, as a person's pace would.
    parked = f"TaskInstance Finished: dag_id={dag_id}, task_id={task_id}, run_id={run_id}, map_index={map_index},"
    _wait(lambda: parked in server.log_path.read_text(errors="replace"), 120,
          f"the scheduler did not handle the end of the workload that parked {task_id}", server)
    return _api(server, "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/hitlDetails")


def _answer(server: Standalone, dag_id: str, run_id: str, detail: dict[str, Any], option: str, user: str) -> Any:
    ti = detail["task_instance"]
    return _api(server, "PATCH", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/{ti['map_index']}"
                                 "/hitlDetails", {"chosen_options": [option], "params_input": {}}, user=user, attempts=1)


def _finished(server: Standalone, dag_id: str, run_id: str, seconds: float = 420) -> str:
    _wait(lambda: _run_state(server, dag_id, run_id) in ("success", "failed"), seconds,
          f"{dag_id} run {run_id} did not finish", server)
    return _run_state(server, dag_id, run_id)


def _task_states(server: Standalone, dag_id: str, run_id: str) -> dict[str, str]:
    rows = _metadata(server, "SELECT task_id, map_index, state FROM task_instance WHERE dag_id = :d AND run_id = :r",
                     d=dag_id, r=run_id)
    return {f"{t}[{m}]" if m >= 0 else t: str(state) for t, m, state in rows}


def _decisions(server: Standalone, kind: str, run_id: str) -> dict[str, tuple[str, str | None]]:
    engine = _source_engine(server)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(approval.c.item, approval.c.decision, approval.c.decided_by)
                                .where(approval.c.kind == kind, approval.c.run_id == run_id)).all()
        return {item: (decision, by) for item, decision, by in rows}
    finally:
        engine.dispose()


def _report(server: Standalone, run_id: str, suffix: str = "json") -> Any:
    from lifecycle.reporting import safe_file_name

    found = next((server.home / "reports").glob(f"*{safe_file_name(run_id)}.{suffix}")).read_text()
    return json.loads(found) if suffix == "json" else found


def _approval_audit(server: Standalone) -> list[dict[str, Any]]:
    engine = _source_engine(server)
    try:
        return _audit_entries(engine)
    finally:
        engine.dispose()


PEOPLE = {scenario: f"four.eyes.{scenario}.{uuid.uuid4().hex[:6]}@exempel.se"
          for scenario in ("approved", "self", "rejected", "timeout")}


@pytest.fixture(scope="module")
def world(standalone: Standalone) -> Standalone:  # noqa: F811
    """Every newsletter subscriber's consent long lapsed (a plan far over the share), one contact
    form per four-eyes scenario, indexed by a dry run (which asks nobody)."""
    engine = _source_engine(standalone)
    with engine.begin() as conn:
        conn.execute(text("UPDATE newsletter_subscribers SET last_confirmed_at = DATE '2015-01-01'"))
        for i, email in enumerate(PEOPLE.values()):
            conn.execute(text(
                "INSERT INTO contact_form_submissions (id, submitted_at, last_interaction_at, name, email, ip_address, "
                "phone, company_name, company_url, message, message_basis, updated_at) VALUES (:id, now(), CURRENT_DATE, "
                "'Fyra Ögon', :email, NULL, NULL, NULL, NULL, 'Hej', 'legitimate_interest', now())"),
                {"id": 990_000 + i, "email": email})
    engine.dispose()
    run_id = _trigger(standalone, NIGHTLY, {"dry_run": True, "sources": [LARGE, OTHER]})
    assert _finished(standalone, NIGHTLY, run_id) == "success"
    assert _api(standalone, "GET", f"/dags/{NIGHTLY}/dagRuns/{run_id}/hitlDetails")["total_entries"] == 0
    planned = {s["source"]: s["planned"] for s in _report(standalone, run_id)["sources"]}
    assert planned[LARGE]["needs_confirmation"] is True and planned[OTHER]["needs_confirmation"] is False
    _set_variable(standalone, "lifecycle_four_eyes", "erasure")
    _set_variable(standalone, "lifecycle_approval_timeout_hours", "12")
    return standalone


def _subscribers(server: Standalone) -> int:
    return _count(server, "SELECT COUNT(*) FROM newsletter_subscribers")


def _nightly_waiting_for_approval(server: Standalone) -> tuple[str, dict[str, Any], int]:
    before = _subscribers(server)
    run_id = _trigger(server, NIGHTLY, {"sources": [LARGE, OTHER]})
    detail = _waiting(server, NIGHTLY, run_id)
    assert detail["task_instance"]["task_id"] == GATE and detail["options"] == ["Approve", "Reject"]
    assert LARGE in detail["subject"] and OTHER not in detail["subject"]
    body = detail["body"]
    assert "max_destroy_share` 60.0 %" in body and "| record | erase |" in body and "consent" in body
    assert "/plans/lifecycle-" in body and "@" not in body + detail["subject"]  # counts and references only
    assert _decisions(server, "nightly", run_id) == {LARGE: ("pending", None)}
    return run_id, detail, before


def test_nightly_large_plan_rejected_changes_nothing_of_it_and_enforces_the_rest(world: Standalone) -> None:
    run_id, detail, before = _nightly_waiting_for_approval(world)
    # The other source's group did not wait for the decision (it needs no person: an enforce_part).
    _wait(lambda: any(k.startswith("enforce_part") and v == "success"
                      for k, v in _task_states(world, NIGHTLY, run_id).items()), 300,
          "the source within its share was not enforced while the other waited", world)
    _answer(world, NIGHTLY, run_id, detail, "Reject", REVIEWER)
    assert _finished(world, NIGHTLY, run_id) == "success"
    assert _subscribers(world) == before
    assert _decisions(world, "nightly", run_id) == {LARGE: ("rejected", REVIEWER)}
    report = _report(world, run_id)
    sources = {s["source"]: s for s in report["sources"]}
    assert sources[LARGE]["approval"]["decision"] == "rejected" and sources[LARGE]["approval"]["decided_by"] == REVIEWER
    assert sources[LARGE]["applied"]["records_erased"] == 0 and sources[LARGE]["planned"]["records_to_erase"] == before
    other = sources[OTHER]  # enforced as usual, whatever the decision on the other group
    assert other["approval"] is None and other["applied"]["records_erased"] == other["planned"]["records_to_erase"]
    assert report["compliant"] is False and report["validation"]["after"]["success"] is True
    assert f"{LARGE}: not enforced tonight: its large plan was rejected by user {REVIEWER}" in _report(world, run_id, "html")


def test_nightly_large_plan_times_out_to_reject(world: Standalone) -> None:
    _set_variable(world, "lifecycle_approval_timeout_hours", "0.01")  # 36 s
    try:
        run_id, _, before = _nightly_waiting_for_approval(world)
    finally:
        _set_variable(world, "lifecycle_approval_timeout_hours", "12")
    assert _finished(world, NIGHTLY, run_id, 300) == "success"  # the scheduler's sweep took the default
    assert _subscribers(world) == before
    assert _decisions(world, "nightly", run_id) == {LARGE: ("timed_out", None)}
    assert {s["source"]: s.get("approval") for s in _report(world, run_id)["sources"]}[LARGE]["decision"] == "timed_out"


def _approval_screen(server: Standalone, run_id: str, detail: dict[str, Any], tmp_path: Path) -> str:
    """The approval screen as a person sees it in the Airflow UI (headless chromium): its text."""
    from urllib.parse import quote

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.test_airflow_standalone import _browser

    if not Path("/usr/bin/chromium").exists() or not Path("/usr/bin/chromedriver").exists():
        pytest.fail("Debian's chromium and chromium-driver are needed (.ci/run installs them)", pytrace=False)
    ti = detail["task_instance"]
    url = (f"{server.base_url}/dags/{NIGHTLY}/runs/{quote(run_id, safe='')}/tasks/{ti['task_id']}"
           f"/mapped/{ti['map_index']}/required_actions")
    shots = Path(os.environ.get("LIFECYCLE_SCREENSHOT_DIR", str(ROOT / "test-artifacts")))
    shots.mkdir(parents=True, exist_ok=True)
    driver = _browser(tmp_path)
    try:
        driver.get(server.base_url + "/")
        driver.add_cookie({"name": "_token", "value": server.token(REVIEWER), "path": "/"})
        driver.get(url)
        WebDriverWait(driver, 90).until(lambda d: LARGE in d.find_element(By.TAG_NAME, "body").text
                                        and "Approve" in d.find_element(By.TAG_NAME, "body").text)
        text = driver.find_element(By.TAG_NAME, "body").text
        driver.save_screenshot(str(shots / "approval-screen-in-airflow-ui.png"))
    finally:
        driver.quit()
    return text


def test_nightly_large_plan_approved_is_enforced(world: Standalone, tmp_path: Path) -> None:
    run_id, detail, before = _nightly_waiting_for_approval(world)
    assert before > 10
    # The screen a person approves on shows the source, its share and the plan's counts.
    screen = _approval_screen(world, run_id, detail, tmp_path)
    assert LARGE in screen and "60.0 %" in screen and str(before) in screen and "Reject" in screen
    _answer(world, NIGHTLY, run_id, detail, "Approve", REVIEWER)
    assert _finished(world, NIGHTLY, run_id) == "success"
    assert _subscribers(world) == 0
    assert _decisions(world, "nightly", run_id) == {LARGE: ("approved", REVIEWER)}
    report = _report(world, run_id)
    large = {s["source"]: s for s in report["sources"]}[LARGE]
    assert large["applied"]["records_erased"] == before and large["approval"]["decided_by"] == REVIEWER
    assert report["compliant"] is True
    entries = [e for e in _approval_audit(world) if e["approval_kind"] == "nightly"]
    assert {"decision": "approved", "by": REVIEWER, "items": [LARGE]}.items() <= entries[-1].items()


def _request(scenario: str) -> dict[str, Any]:
    return {"request_type": "erasure", "reference": f"DSR-4EYES-{scenario.upper()}-{uuid.uuid4().hex[:6]}",
            "email": PEOPLE[scenario], "dry_run": False}


def _person_left(server: Standalone, scenario: str) -> int:
    return _count(server, "SELECT COUNT(*) FROM contact_form_submissions WHERE email = :e", e=PEOPLE[scenario])


def _certificate(server: Standalone, reference: str) -> dict[str, Any]:
    return json.loads(next((server.home / "reports" / "certificates").glob(f"*{reference}.json")).read_text())


def test_four_eyes_a_second_person_approves_and_the_certificate_names_them(world: Standalone) -> None:
    _set_variable(world, "lifecycle_approvers", REVIEWER)
    try:
        conf = _request("approved")
        run_id = _trigger(world, REQUEST, conf)
        detail = _waiting(world, REQUEST, run_id)
        assert detail["task_instance"]["task_id"] == "four_eyes"
        assert detail["assigned_users"] == [{"id": REVIEWER, "name": REVIEWER}]
        assert conf["reference"] in detail["subject"] and "| contact_form_submissions | 1 |" in detail["body"]
        assert PEOPLE["approved"] not in detail["body"] and "Fyra" not in detail["body"]
        assert _person_left(world, "approved") == 1  # nothing changed while it waits
        with pytest.raises(urllib.error.HTTPError) as refused:  # not an assigned approver: the API refuses
            _answer(world, REQUEST, run_id, detail, "Approve", "admin")
        assert refused.value.code == 403
        _answer(world, REQUEST, run_id, detail, "Approve", REVIEWER)
    finally:
        _set_variable(world, "lifecycle_approvers", "")
    assert _finished(world, REQUEST, run_id) == "success"
    assert _person_left(world, "approved") == 0
    certificate = _certificate(world, conf["reference"])
    assert certificate["verified"] is True
    assert certificate["approval"]["approved_by"] == REVIEWER and certificate["approval"]["requested_by"] == "admin"
    entries = [e for e in _approval_audit(world) if e["items"] == [conf["reference"]]]
    assert [(e["decision"], e["by"]) for e in entries] == [("requested", "admin"), ("approved", REVIEWER)]


def test_four_eyes_the_requester_approving_their_own_request_is_refused(world: Standalone) -> None:
    conf = _request("self")
    run_id = _trigger(world, REQUEST, conf)
    detail = _waiting(world, REQUEST, run_id)
    _answer(world, REQUEST, run_id, detail, "Approve", "admin")  # anyone may answer; the task checks who
    assert _finished(world, REQUEST, run_id) == "failed"
    states = _task_states(world, REQUEST, run_id)
    assert states["four_eyes"] == "failed" and states["fulfil_request"] == "upstream_failed"
    assert _person_left(world, "self") == 1
    assert _decisions(world, "request", run_id) == {conf["reference"]: ("refused", "admin")}


def test_four_eyes_rejected_changes_nothing(world: Standalone) -> None:
    conf = _request("rejected")
    run_id = _trigger(world, REQUEST, conf)
    _answer(world, REQUEST, run_id, _waiting(world, REQUEST, run_id), "Reject", REVIEWER)
    assert _finished(world, REQUEST, run_id) == "success"
    assert _person_left(world, "rejected") == 1
    assert _decisions(world, "request", run_id) == {conf["reference"]: ("rejected", REVIEWER)}
    assert not list((world.home / "reports" / "certificates").glob(f"*{conf['reference']}*"))


def test_four_eyes_unanswered_times_out_and_changes_nothing(world: Standalone) -> None:
    conf = _request("timeout")
    _set_variable(world, "lifecycle_approval_timeout_hours", "0.01")
    try:
        run_id = _trigger(world, REQUEST, conf)
        _waiting(world, REQUEST, run_id)
    finally:
        _set_variable(world, "lifecycle_approval_timeout_hours", "12")
    assert _finished(world, REQUEST, run_id, 300) == "success"
    assert _person_left(world, "timeout") == 1
    assert _decisions(world, "request", run_id) == {conf["reference"]: ("timed_out", None)}
