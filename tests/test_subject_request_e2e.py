"""Data-subject requests end to end through the DAGs, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pendulum
import pytest
from sqlalchemy import MetaData, Table, func, select

from demo.company import generate
from lifecycle.tagstore.tables import plan_item, subject_request

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[1]
TODAY = date(2026, 11, 25)


def _dags():  # type: ignore[no-untyped-def]
    from airflow.models import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag.dags["lifecycle_nightly"], bag.dags["lifecycle_subject_request"]


def _table(engine, name):  # type: ignore[no-untyped-def]
    return Table(name, MetaData(), autoload_with=engine)


def _get(engine, name, key):  # type: ignore[no-untyped-def]
    t = _table(engine, name)
    with engine.connect() as conn:
        return conn.execute(select(t).where(t.c.id == key)).mappings().first()


def _put(engine, name, row):  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        conn.execute(_table(engine, name).insert().values(**row))


_RUNS = iter(range(1000))


def _run(dag, day: date, conf: dict):  # type: ignore[no-untyped-def]
    # A logical date of its own per run: dag.test reuses an existing run (and its conf) otherwise.
    minute = next(_RUNS)
    if dag.dag_id == "lifecycle_subject_request":  # in-process runs share param objects: set every field
        conf = {"email": None, "phone": None, "personnummer": None, "name": None, "company": None, **conf}
    return dag.test(logical_date=pendulum.datetime(day.year, day.month, day.day, 3, minute, tz="Europe/Stockholm"),
                    run_conf=conf)


def test_erasure_and_access_through_the_dags(db, tag_db, airflow_db, tmp_path, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AIRFLOW_CONN_LIFECYCLE_DEMO", db.airflow_conn())
    monkeypatch.setenv("AIRFLOW_CONN_LIFECYCLE_TAGSTORE", tag_db.airflow_conn())
    monkeypatch.setenv("LIFECYCLE_REPORT_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("LIFECYCLE_EXTRACT_DIR", str(tmp_path / "protected"))
    generate(db.url, rows=40, seed=6, as_of=TODAY, schema=db.schema)
    engine = db.engine()
    now = datetime(2026, 11, 1, 12)
    email = "greta.garbo@exempel.se"
    subscriber = dict(id=9001, subscribed_at=date(2026, 1, 1), last_confirmed_at=date(2026, 6, 1), name="Greta Garbo",
                      email=email, updated_at=now)
    _put(engine, "newsletter_subscribers", subscriber)
    _put(engine, "invoices", dict(id=9001, invoice_number="F2025-9", customer_id=1, invoice_date=date(2025, 6, 1),
                                  amount_sek=1000, vat_sek=250, buyer_company="Garbo AB", buyer_org_number="556898-9718",
                                  buyer_address="Filmgatan 1", contact_name="Greta Garbo", contact_email=email,
                                  contact_phone="070-555 12 34", updated_at=now))
    _put(engine, "email_threads", dict(id=9001, received_at=now, last_interaction_at=date(2026, 11, 1),
                                       sender_name="Annan", sender_email="annan@exempel.se",
                                       body=f"Hej, Greta nås på {email}.", body_basis="contract", updated_at=now))
    _put(engine, "ad_audiences", dict(id=9001, customer_id="kund-fastighetsbyran", uploaded_at=date(2026, 11, 1),
                                      name="Greta Garbo", email=email, segment="lookalike", updated_at=now))
    nightly, request = _dags()
    assert str(_run(nightly, TODAY, {}).state) == "success"  # scans: the index knows where Greta is

    # Invalid input: refused before anything is read or written.
    bad = {"request_type": "erasure", "reference": "DSR-BAD", "email": "greta.garbo(at)exempel.se", "dry_run": False}
    try:
        state = str(_run(request, TODAY, bad).state)
    except Exception as e:  # noqa: BLE001 - the form's own validation may refuse the trigger
        state = f"refused: {type(e).__name__}"
    assert state != "success"
    bad_pnr = {"request_type": "erasure", "reference": "DSR-BAD2", "personnummer": "811218-9875", "dry_run": False}
    assert str(_run(request, TODAY, bad_pnr).state) == "failed"
    tags = tag_db.tag_store()
    with tags.connect() as conn:
        assert conn.execute(select(func.count()).select_from(subject_request)).scalar_one() == 0

    # Access extract: everything held, to the protected location only.
    access = {"request_type": "access", "reference": "DSR-7", "email": email}
    assert str(_run(request, TODAY, access).state) == "success"
    extract = json.loads(next((tmp_path / "protected").glob("*DSR-7*.json")).read_text())
    assert {g["activity"] for g in extract["groups"]} == {"newsletter", "bookkeeping", "advertising_audiences"}
    assert extract["mentions"] == [{"activity": "email", "category": "case_details", "count": 1,
                                    "excerpts": [{"text": "Hej, Greta nås på greta.garbo@exempel.se.",
                                                  "found_by": "canonical"}]}]

    # Erasure, for real.
    erasure = {"request_type": "erasure", "reference": "DSR-8", "email": email, "dry_run": False}
    assert str(_run(request, TODAY, erasure).state) == "success"
    assert _get(engine, "newsletter_subscribers", 9001) is None
    invoice = _get(engine, "invoices", 9001)
    assert invoice["buyer_company"] == "Garbo AB" and invoice["contact_email"] is None
    assert _get(engine, "email_threads", 9001)["body"] == "Hej, Greta nås på [raderad]."
    assert _get(engine, "ad_audiences", 9001)["email"] == email
    certificate = json.loads(next((tmp_path / "reports" / "certificates").glob("*DSR-8*.json")).read_text())
    assert certificate["verified"] is True and certificate["forwarded"] == {"kund-fastighetsbyran": 1}
    assert certificate["held"][0]["lapses_on"] == "2032-12-31"
    assert "greta" not in json.dumps(certificate).lower()
    with tags.connect() as conn:
        ledger = dict(conn.execute(select(subject_request.c.reference, subject_request.c.status)).all())
    assert ledger == {"DSR-7": "completed", "DSR-8": "completed"}

    # A restored backup brings her back: the next nightly run erases her again.
    _put(engine, "newsletter_subscribers", {**subscriber, "updated_at": datetime(2026, 11, 25, 20)})
    assert str(_run(nightly, date(2026, 11, 26), {}).state) == "success"
    assert _get(engine, "newsletter_subscribers", 9001) is None
    with tags.connect() as conn:
        reasons = set(conn.execute(select(plan_item.c.reason).where(plan_item.c.record_key == "9001")).scalars())
    assert "erased_subject_returned" in reasons

    # The task logs never held her identifiers.
    assert "greta.garbo" not in caplog.text.lower() and "555 12 34" not in caplog.text


def test_rectification_withdrawal_and_objection_through_the_dag(db, tag_db, airflow_db, tmp_path, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    from lifecycle.tagstore.tables import suppression

    monkeypatch.setenv("AIRFLOW_CONN_LIFECYCLE_DEMO", db.airflow_conn())
    monkeypatch.setenv("AIRFLOW_CONN_LIFECYCLE_TAGSTORE", tag_db.airflow_conn())
    monkeypatch.setenv("LIFECYCLE_REPORT_DIR", str(tmp_path / "reports"))
    generate(db.url, rows=30, seed=8, as_of=TODAY, schema=db.schema)
    engine = db.engine()
    now = datetime(2026, 11, 1, 12)
    people = {9101: "karl.kula@exempel.se", 9102: "sara.sol@exempel.se", 9103: "olle.ost@exempel.se"}
    for key, email in people.items():
        _put(engine, "newsletter_subscribers", dict(id=key, subscribed_at=date(2026, 1, 1), last_confirmed_at=date(2026, 6, 1),
                                                    name=f"Person {key}", email=email, updated_at=now))
    nightly, request = _dags()
    assert str(_run(nightly, TODAY, {}).state) == "success"

    rectify = {"request_type": "rectification", "reference": "DSR-R1", "email": people[9101], "rectify_field": "email",
               "new_value": "karl.kula@nytt.se", "dry_run": False}
    assert str(_run(request, TODAY, rectify).state) == "success"
    assert _get(engine, "newsletter_subscribers", 9101)["email"] == "karl.kula@nytt.se"

    withdraw = {"request_type": "consent_withdrawal", "reference": "DSR-W1", "email": people[9102], "dry_run": False}
    assert str(_run(request, TODAY, withdraw).state) == "success"
    assert _get(engine, "newsletter_subscribers", 9102) is None  # the newsletter rests on consent alone

    objection = {"request_type": "objection", "reference": "DSR-O1", "email": people[9103], "dry_run": False}
    assert str(_run(request, TODAY, objection).state) == "success"
    assert _get(engine, "newsletter_subscribers", 9103) is None
    tags = tag_db.tag_store()
    with tags.connect() as conn:
        reasons = sorted(conn.execute(select(suppression.c.reason)).scalars())
        ledger = dict(conn.execute(select(subject_request.c.reference, subject_request.c.status)).all())
    assert "objection" in reasons and "consent_withdrawn" in reasons
    assert ledger == {"DSR-R1": "completed", "DSR-W1": "completed", "DSR-O1": "completed"}
    assert _get(engine, "newsletter_subscribers", 9101) is not None  # the others are untouched
    for email in people.values():
        assert email not in caplog.text
