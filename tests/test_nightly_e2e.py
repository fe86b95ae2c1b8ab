"""The nightly DAG end to end through Airflow (dag.test) on generated data, on SQLite and
PostgreSQL. The expected outcome is computed here by an oracle written from the policy text,
independently of the pipeline's code: exactly the expired records are gone or anonymised,
BFL invoices inside 7 years survive, violations are restricted, nothing else changed."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pendulum
import pytest
from dateutil.relativedelta import relativedelta
from sqlalchemy import MetaData, select

from demo.company import generate

TODAY = date(2026, 11, 25)
VALID_BASES = {"consent", "contract", "legitimate_interest"}
PROCESSOR_RETENTION = {"kund-nordisk-handel": relativedelta(days=90), "kund-fastighetsbyran": relativedelta(years=1)}
REDACTED = "[raderad]"

pytestmark = pytest.mark.e2e


def _d(value: Any) -> date | None:
    if value is None:
        return None
    return value.date() if isinstance(value, datetime) else (value if isinstance(value, date) else date.fromisoformat(str(value)[:10]))


def two_years_over(clock: Any) -> bool:
    """Policy: kept up to two years (consent, contract, legitimate interest)."""
    day = _d(clock)
    return day is not None and day + relativedelta(years=2) < TODAY


def bfl_over(invoice_date: Any) -> bool:
    """BFL 7 kap. 2 §: until the end of the seventh year after the (calendar) fiscal year."""
    return date(_d(invoice_date).year + 7, 12, 31) < TODAY


def _null(row: dict, *cols: str) -> dict:
    return {**row, **{c: None for c in cols}}


def expected_row(table: str, row: dict, before: dict[str, dict[Any, dict]] | None = None) -> dict | None:
    """What the row must look like after the night; None = erased. ``before``: every table as
    it was, for records that live with their parent or keep it."""
    if table in ("contact_form_submissions", "email_threads", "phone_calls"):
        clock_over = two_years_over(row["last_interaction_at"])
        basis_col, text_col = {"contact_form_submissions": ("message_basis", "message"),
                               "email_threads": ("body_basis", "body"), "phone_calls": ("notes_basis", "call_notes")}[table]
        personal = {"contact_form_submissions": ["name", "email", "ip_address", "phone", "company_name", "company_url"],
                    "email_threads": ["sender_name", "sender_email", "sender_ip", "phone", "company_name", "company_url", "org_number"],
                    "phone_calls": ["phone_number", "company_name", "org_number"]}[table]
        if not clock_over:
            return row
        if row[basis_col] not in VALID_BASES:
            return _null(row, *personal)  # free text restricted for review; expired fields anonymised
        if table == "phone_calls":
            return {**_null(row, *personal), text_col: REDACTED}  # anonymised; source and medium kept
        return None
    if table == "newsletter_subscribers":
        return None if two_years_over(row["last_confirmed_at"]) else row
    if table == "website_visits":
        return _null(row, "ip_address") if two_years_over(row["visit_date"]) else row
    if table == "tool_users":
        return None if two_years_over(row["last_login_at"]) else row
    if table == "job_applications":
        return None if two_years_over(row["applied_at"]) else row
    if table == "customers":
        if not two_years_over(row["contract_end"]):
            return row
        # Its orders (BFL) or tickets still kept: it stays for them, with nothing of the person left.
        children = [("orders", o) for o in (before or {}).get("orders", {}).values() if o["customer_id"] == row["id"]]
        children += [("support_tickets", s) for s in (before or {}).get("support_tickets", {}).values()
                     if s["customer_id"] == row["id"]]
        if any(expected_row(name, child, before) is not None for name, child in children):
            return _null(row, "company_name", "org_number", "contact_name", "contact_email", "contact_phone")
        return None
    if table == "orders":
        return None if bfl_over(row["order_date"]) else row
    if table == "order_lines":  # no date of its own: it goes with its order
        return row if expected_row("orders", before["orders"][row["order_id"]], before) is not None else None
    if table == "support_tickets":
        return None if two_years_over(row["closed_at"] or row["opened_at"]) else row
    if table == "ticket_messages":
        return row if expected_row("support_tickets", before["support_tickets"][row["ticket_id"]], before) is not None else None
    if table == "invoices":
        if bfl_over(row["invoice_date"]):
            return None
        if two_years_over(row["invoice_date"]):
            return _null(row, "contact_name", "contact_email", "contact_phone")
        return row
    if table == "ad_audiences":
        retention = PROCESSOR_RETENTION.get(row["customer_id"])
        if retention is None:
            return row  # no instruction from that customer: restricted, not touched
        return None if _d(row["uploaded_at"]) + retention < TODAY else row
    raise AssertionError(f"no oracle for {table}")


def snapshot(engine) -> dict[str, dict[Any, dict]]:  # type: ignore[no-untyped-def]
    md = MetaData()
    md.reflect(engine, only=lambda name, _md: not name.startswith("lc_"))  # the tag store may share the schema
    with engine.connect() as conn:
        return {name: {r["id"]: dict(r) for r in conn.execute(select(t)).mappings()} for name, t in md.tables.items()}


def _normalise(row: dict) -> dict:
    return {k: (_d(v) if isinstance(v, datetime) else v) for k, v in row.items()}


@pytest.fixture
def nightly_dag():  # type: ignore[no-untyped-def]
    from airflow.models import DagBag

    bag = DagBag(dag_folder=str(Path(__file__).resolve().parents[1] / "dags"))
    assert bag.import_errors == {}
    return bag.dags["lifecycle_nightly"]


def run_nightly(dag, db, tag_db, reports: Path, monkeypatch, conf: dict | None = None):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AIRFLOW_CONN_LIFECYCLE_DEMO", db.airflow_conn())
    monkeypatch.setenv("AIRFLOW_CONN_LIFECYCLE_TAGSTORE", tag_db.airflow_conn())
    monkeypatch.setenv("LIFECYCLE_REPORT_DIR", str(reports))
    logical = pendulum.datetime(TODAY.year, TODAY.month, TODAY.day, 2, tz="Europe/Stockholm")
    return dag.test(logical_date=logical, run_conf=conf or {})


def test_nightly_dag_enforces_exactly_the_policy(db, tag_db, airflow_db, nightly_dag, tmp_path, monkeypatch, capfd, caplog) -> None:  # type: ignore[no-untyped-def]
    generate(db.url, rows=80, seed=11, as_of=TODAY, schema=db.schema)
    engine = db.engine()
    before = snapshot(engine)
    dr = run_nightly(nightly_dag, db, tag_db, tmp_path / "reports", monkeypatch)
    assert str(dr.state) == "success"
    after = snapshot(engine)

    erased = anonymised = 0
    for table, rows in before.items():
        for key, row in rows.items():
            want = expected_row(table, row, before)
            got = after[table].get(key)
            if want is None:
                assert got is None, f"{table} {key} should have been erased"
                erased += 1
            else:
                assert got is not None, f"{table} {key} should have been kept"
                assert _normalise(got) == _normalise(want), f"{table} {key}"
                anonymised += want != row
    assert erased > 50 and anonymised > 20  # the generated data does exercise both paths
    kept_bfl = [r for r in after["invoices"].values() if two_years_over(r["invoice_date"])]
    assert kept_bfl, "invoices older than 2 years but inside BFL's 7 years must survive"

    report_json = sorted((tmp_path / "reports").glob("*.json"))
    assert len(report_json) == 1
    report = json.loads(report_json[0].read_text())
    assert report["compliant"] is True
    assert report["validation"]["before"]["success"] is False
    assert report["validation"]["after"]["success"] is True
    per_source = {s["source"]: s for s in report["sources"]}
    assert per_source["newsletter_subscribers"]["applied"]["records_erased"] == sum(
        1 for r in before["newsletter_subscribers"].values() if expected_row("newsletter_subscribers", r) is None)
    # The normalised part: lines went with their orders, and customers kept for kept orders or tickets.
    assert per_source["customers"]["planned"]["parents_kept_for_children"] > 0
    assert per_source["order_lines"]["applied"]["records_erased"] > 0
    assert sum(s["records_scanned"] for s in report["sources"]) == sum(len(r) for r in before.values())
    assert report["totals"]["records_erased"] == erased
    register = {f["sub_processor"]: f for f in report["sub_processors"]}
    assert register["albacross"]["valid"] is True and register["g_suite"]["valid"] is False  # Privacy Shield
    # No personal data in the reports: no e-mail, phone number or name from the data.
    html = report_json[0].with_suffix(".html").read_text()
    text = report_json[0].read_text() + html
    for row in before["newsletter_subscribers"].values():
        assert row["email"] not in text and row["name"] not in text
    for row in before["customers"].values():
        assert row["contact_email"] not in text and row["contact_phone"] not in text

    # Nor in the task logs.
    captured = capfd.readouterr()
    logs = captured.out + captured.err + caplog.text
    assert "scanned newsletter_subscribers" in logs  # the task logs were captured
    for row in before["newsletter_subscribers"].values():
        assert row["email"] not in logs and row["name"] not in logs

    # A re-run of the same night changes nothing more and still passes.
    dr2 = run_nightly(nightly_dag, db, tag_db, tmp_path / "reports2", monkeypatch)
    assert str(dr2.state) == "success"
    assert snapshot(engine) == after


def test_dry_run_plans_without_writing(db, tag_db, airflow_db, nightly_dag, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    generate(db.url, rows=40, seed=5, as_of=TODAY, schema=db.schema)
    engine = db.engine()
    before = snapshot(engine)
    dr = run_nightly(nightly_dag, db, tag_db, tmp_path / "reports", monkeypatch, {"dry_run": True})
    assert str(dr.state) == "success"
    assert snapshot(engine) == before
    report = json.loads(next((tmp_path / "reports").glob("*.json")).read_text())
    assert report["dry_run"] is True and report["validation"]["after"] is None
    planned = sum(s["planned"]["records_to_erase"] for s in report["sources"])
    assert planned == sum(1 for t, rows in before.items() for r in rows.values() if expected_row(t, r, before) is None)


def test_malformed_catalog_fails_before_anything_is_touched(db, tag_db, airflow_db, nightly_dag, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import yaml

    catalog = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "catalog.yaml").read_text())
    catalog["sources"]["newsletter_subscribers"]["lawful_basis"] = "legitimate_interest"  # the policy says consent only
    broken = tmp_path / "catalog.yaml"
    broken.write_text(yaml.safe_dump(catalog))
    monkeypatch.setenv("LIFECYCLE_CATALOG", str(broken))
    generate(db.url, rows=20, seed=2, as_of=TODAY, schema=db.schema)
    engine = db.engine()
    before = snapshot(engine)
    dr = run_nightly(nightly_dag, db, tag_db, tmp_path / "reports", monkeypatch)
    assert str(dr.state) == "failed"
    tis = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    assert tis["load_catalog"] == "failed" and tis.get("scan_and_tag") in ("upstream_failed", "None", None)
    assert snapshot(engine) == before
    from sqlalchemy import func

    from lifecycle.tagstore.tables import record_tag

    tags = tag_db.tag_store()
    with tags.connect() as conn:
        assert conn.execute(select(func.count()).select_from(record_tag)).scalar_one() == 0
