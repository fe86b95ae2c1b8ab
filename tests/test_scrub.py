"""The person's identifiers leave Airflow's records of a data-subject request when the run ends:
the pure scrubbing of a run's conf and of free text, then the database layer on a real Airflow
metadata database (SQLite), and the listener as dag.test() fires it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pendulum
import pytest

from lifecycle.discovery.identifiers import SubjectHasher, luhn_check_digit
from lifecycle_airflow import scrub
from lifecycle_airflow.scrub import IDENTIFIER_PARAMS, hunted_forms, scrub_conf, scrub_log_extra, scrub_text
from tests.conftest import TEST_SECRET

ROOT = Path(__file__).resolve().parents[1]
YEAR = 2026


def _personnummer(birth: str = "19850312", serial: str = "123") -> str:
    body = birth[2:] + serial
    return f"{birth}-{serial}{luhn_check_digit(body)}"


PNR = _personnummer()
CONF = {
    "request_type": "rectification", "reference": "DSR-2026-0042", "dry_run": False, "rectify_field": "email",
    "email": "Greta.Probe@Exempel.se", "phone": "070-555 98 76", "personnummer": PNR,
    "name": "Åsa Öberg-Probe", "company": "Sondbolaget AB", "new_value": "greta.ny@exempel.se",
}


def _raw_forms(conf: dict) -> list[str]:
    values = [str(conf[p]) for p in IDENTIFIER_PARAMS if conf.get(p)]
    return values + [v.lower() for v in values]


def test_identifiers_become_keyed_references_and_the_rest_is_kept(hasher: SubjectHasher) -> None:
    out = scrub_conf(CONF, hasher, YEAR)
    assert out is not None and set(out) == set(CONF)
    for param in ("request_type", "reference", "dry_run", "rectify_field"):
        assert out[param] == CONF[param]
    for param in IDENTIFIER_PARAMS:
        assert out[param].startswith("keyed:") and len(out[param]) == len("keyed:") + 32, param
    # The same keyed hashes the request ledger, certificates and subject index use.
    assert out["email"] == "keyed:" + hasher.reference("email", "greta.probe@exempel.se", YEAR)
    assert out["phone"] == "keyed:" + hasher.reference("phone", "+46705559876", YEAR)
    assert out["personnummer"] == "keyed:" + hasher.reference("personnummer", PNR.replace("-", ""), YEAR)
    assert out["name"] == "keyed:" + hasher.hash("name", "åsa öberg-probe")
    assert out["company"] == "keyed:" + hasher.hash("company", "sondbolaget ab")
    assert out["new_value"] == "keyed:" + hasher.reference("email", "greta.ny@exempel.se", YEAR)  # as the field it corrects
    text = json.dumps(out, ensure_ascii=False)
    assert not [v for v in _raw_forms(CONF) if v in text]
    assert CONF["email"] == "Greta.Probe@Exempel.se"  # the input is not mutated
    # Keyed: another secret gives other references.
    assert scrub_conf(CONF, SubjectHasher(b"another-secret-0123456789"), YEAR)["email"] != out["email"]


def test_scrubbing_is_idempotent_and_keeps_what_holds_nothing(hasher: SubjectHasher) -> None:
    once = scrub_conf(CONF, hasher, YEAR)
    assert scrub_conf(once, hasher, YEAR) == once
    assert hunted_forms(once, hasher, YEAR) == {}  # nothing raw left to hunt for elsewhere
    empty = {"request_type": "erasure", "reference": "DSR-1", "dry_run": True,
             "email": None, "phone": "", "personnummer": "  ", "name": None, "company": None, "new_value": None}
    assert scrub_conf(empty, hasher, YEAR) == empty
    assert scrub_conf({}, hasher, YEAR) == {}
    assert scrub_conf(None, hasher, YEAR) is None
    assert scrub.changed_fields(CONF, once) == 6 and scrub.changed_fields(once, once) == 0


def test_values_that_do_not_normalise_are_still_never_kept(hasher: SubjectHasher) -> None:
    bad = {"email": "greta.probe.exempel.se", "phone": "12345", "personnummer": "19851312-0000", "name": "  Greta  ",
           "company": ["Sondbolaget"], "new_value": 46701234567, "rectify_field": None}
    out = scrub_conf(bad, hasher, YEAR)
    assert all(out[p].startswith("keyed:") for p in IDENTIFIER_PARAMS)
    assert out["email"] == "keyed:" + hasher.hash("text", "greta.probe.exempel.se")
    assert out["phone"] == "keyed:" + hasher.hash("text", "12345")
    assert out["new_value"] == "keyed:" + hasher.hash("new_value", "46701234567")
    # A value that only looks like a reference is not one.
    assert scrub_conf({"email": "keyed:greta@exempel.se"}, hasher, YEAR)["email"] != "keyed:greta@exempel.se"


def test_without_a_secret_the_values_are_removed() -> None:
    out = scrub_conf(CONF, None, YEAR)
    assert all(out[p] == "removed" for p in IDENTIFIER_PARAMS) and out["reference"] == CONF["reference"]
    assert scrub_conf(out, None, YEAR) == out


def test_free_text_and_the_audit_log_entry_of_the_trigger(hasher: SubjectHasher) -> None:
    forms = hunted_forms(CONF, hasher, YEAR)
    ref = scrub_conf(CONF, hasher, YEAR)
    message = (f"request for GRETA.PROBE@EXEMPEL.SE, +46705559876 / 0705559876, {PNR[2:]} ({PNR.replace('-', '')}); "
               "channel Ann stays, 07055598761 is another number")
    out = scrub_text(message, forms)
    assert out.count(ref["email"]) == 1 and out.count(ref["phone"]) == 2 and out.count(ref["personnummer"]) == 2
    assert "channel Ann stays, 07055598761 is another number" in out
    # The API's audit-log entry: the request body as JSON (non-ASCII escaped), conf inside.
    extra = json.dumps({"logical_date": "2026-11-25T03:00:00Z", "conf": CONF, "method": "POST",
                        "note": "ring Åsa Öberg-Probe på 070-555 98 76"})
    new = json.loads(scrub_log_extra(extra, forms, hasher, YEAR))
    assert new["conf"] == ref and new["method"] == "POST" and new["logical_date"] == "2026-11-25T03:00:00Z"
    assert new["note"] == f"ring {ref['name']} på {ref['phone']}"
    for text in (json.dumps(new), json.dumps(new, ensure_ascii=False)):
        assert not [v for v in _raw_forms(CONF) if v in text]
    assert scrub_log_extra(json.dumps(new), hunted_forms(new["conf"], hasher, YEAR), hasher, YEAR) == json.dumps(new)
    assert scrub_log_extra("plain text 070-555 98 76", forms, hasher, YEAR) == f"plain text {ref['phone']}"


def test_reference_year_is_the_night_in_stockholm() -> None:
    assert scrub.reference_year(pendulum.datetime(2025, 12, 31, 23, 30, tz="UTC"), None) == 2026
    assert scrub.reference_year(None, pendulum.datetime(2025, 6, 1, tz="UTC")) == 2025


def test_a_finished_run_is_rewritten_in_the_metadata_database(airflow_db: None) -> None:
    """The database layer on Airflow's own models, as the scheduler calls it: inside the session
    that ends the run, under the scheduler's guard against commits (a listener that commits, or
    closes the thread's scoped session, breaks the scheduler loop). The run's conf, the trigger's
    audit-log entry (which has no run_id) and a note are rewritten, and so is the audit-log entry
    of a trigger the API rejected (no run); another request still running keeps its conf. The
    secret is the Variable's (read through that session), as in the tasks."""
    from sqlalchemy import delete, select

    from airflow.models.dagrun import DagRun
    from airflow.models.log import Log
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from airflow.utils.sqlalchemy import prohibit_commit
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunType

    probe = uuid.uuid4().hex[:10]
    variable_secret = f"variable-secret-{probe}-0123456789"
    hasher = SubjectHasher(variable_secret.encode())
    conf = {**CONF, "email": f"Scrub.Probe.{probe}@Exempel.se", "reference": f"DSR-{probe}"}
    other_conf = {"request_type": "access", "reference": f"DSR-other-{probe}", "email": f"other.{probe}@exempel.se",
                  "phone": None, "personnummer": None, "name": None, "company": None, "new_value": None}
    rejected_conf = {**other_conf, "reference": f"DSR-rejected-{probe}", "email": f"rejected.{probe}@exempel"}
    when = pendulum.now("UTC")
    ids: list[int] = []
    try:
        with create_session() as session:
            session.add(Variable(key="lifecycle_hash_secret", val=variable_secret))
            runs = []
            for i, c in enumerate((conf, other_conf)):
                run = DagRun(dag_id=scrub.DAG_ID, run_id=f"scrub_{probe}_{i}", run_type=DagRunType.MANUAL, conf=c,
                             logical_date=when.add(seconds=i), run_after=when, state=DagRunState.RUNNING)
                session.add(run)
                runs.append(run)
            for c in (conf, other_conf, rejected_conf):
                session.add(Log(event="trigger_dag_run", dag_id=scrub.DAG_ID,
                                extra=json.dumps({"logical_date": str(when), "conf": c, "method": "POST"})))
            session.flush()
            runs[0].note = (f"called back on {conf['phone']}", None)
            session.commit()
            ids = [r.id for r in runs]
            with prohibit_commit(session) as guard:
                runs[0].state = DagRunState.FAILED
                counts = scrub.on_run_ended(runs[0])
                guard.commit()
            assert counts == {"fields": 6, "log": 3, "rendered": 0, "xcom": 0, "notes": 1}
        with create_session() as session:
            stored = {r.id: r for r in session.scalars(select(DagRun).where(DagRun.id.in_(ids)))}
            mine = stored[ids[0]]
            assert mine.state == DagRunState.FAILED and mine.conf == scrub_conf(conf, hasher, when.year)
            assert mine.note == f"called back on {mine.conf['phone']}"
            assert stored[ids[1]].conf == other_conf  # another request's run, still running: its conf untouched
            extras = {json.loads(e)["conf"]["reference"]: json.loads(e)["conf"] for e in
                      session.scalars(select(Log.extra).where(Log.dag_id == scrub.DAG_ID)) if probe in (e or "")}
            assert extras == {f"DSR-{probe}": mine.conf, f"DSR-other-{probe}": scrub_conf(other_conf, hasher, when.year),
                              f"DSR-rejected-{probe}": scrub_conf(rejected_conf, hasher, when.year)}
            assert extras[f"DSR-rejected-{probe}"]["email"] == "keyed:" + hasher.hash("email", f"rejected.{probe}@exempel")
            # Once scrubbed there is nothing left to hunt: ending again changes nothing.
            assert scrub.on_run_ended(mine) == {"fields": 0, "log": 0, "rendered": 0, "xcom": 0, "notes": 0}
    finally:
        with create_session() as session:
            session.execute(delete(Variable).where(Variable.key == "lifecycle_hash_secret"))
            for run in session.scalars(select(DagRun).where(DagRun.id.in_(ids))):
                session.delete(run)


def test_dag_test_fires_the_listener_on_a_failed_request(airflow_db: None, hasher: SubjectHasher) -> None:
    """A request that fails validation (a personnummer with a wrong check digit) under
    dag.test(): the run's conf as stored afterwards holds keyed references only."""
    from airflow.models import DagBag
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    dag = bag.dags[scrub.DAG_ID]
    probe = uuid.uuid4().hex[:10]
    good = _personnummer("19790101", f"{int(probe[:4], 16) % 1000:03d}")
    wrong = good[:-1] + str((int(good[-1]) + 1) % 10)
    conf = {"request_type": "erasure", "reference": f"DSR-{probe}", "dry_run": True,
            "email": f"scrub.probe.{probe}@exempel.se", "phone": None, "personnummer": wrong, "name": None,
            "company": None, "rectify_field": None, "new_value": None}
    when = pendulum.datetime(2026, 11, 25, 4, int(probe[:2], 16) % 60, tz="Europe/Stockholm")
    dr = dag.test(logical_date=when, run_conf=conf)
    assert dr.state == "failed"
    with create_session() as session:
        stored = session.get(DagRun, dr.id)
        assert stored.conf == scrub_conf(conf, hasher, 2026)
        assert stored.conf["personnummer"] == "keyed:" + hasher.reference("personnummer", wrong, 2026)
        assert stored.conf["reference"] == conf["reference"]
