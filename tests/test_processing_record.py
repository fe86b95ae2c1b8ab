"""The record of processing activities (art. 30): measured facts against an oracle computed from
the source tables, no identifier in any output, the change list against the previous month, the
compliance page's routes, and the nightly DAG writing it; on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import MetaData, Table, select

from demo.company import generate
from lifecycle.config.catalog import Catalog, load_catalog
from lifecycle.config.policy import Policy, load_policy
from lifecycle.config.register import load_mechanisms
from lifecycle.discovery.identifiers import normalise_email, normalise_personnummer, normalise_phone, normalise_text
from lifecycle.discovery.scan import scan_source
from lifecycle.enforcement.plan import inherit_parent_clocks
from lifecycle.reporting.processing_record import (
    CSV_COLUMNS, ChangeThresholds, compare_records, latest_processing_record, publish_processing_record,
)

ROOT = Path(__file__).resolve().parents[1]
TODAY = date(2026, 11, 25)
NOW = datetime(2026, 11, 1, 12)
# People seeded on top of the demo company: every output is searched for them.
SEEDED = {
    "newsletter_subscribers": dict(id=9001, subscribed_at=date(2026, 1, 1), last_confirmed_at=date(2026, 6, 1),
                                   name="Greta Seedqvist", email="greta.seedqvist@exempel.se", updated_at=NOW),
    "job_applications": dict(id=9001, applied_at=date(2026, 10, 1), position="Utvecklare", applicant_name="Harald Provsson",
                             email="harald.provsson@exempel.se", phone="070-555 12 34", personnummer="19850412-2386",
                             cover_letter="Hej, jag heter Harald Provsson, ring 070-555 12 34."),
    "ad_audiences": dict(id=9001, customer_id="kund-okand", uploaded_at=date(2026, 10, 1), name="Olle Okandsson",
                         email="olle.okandsson@exempel.se", phone="+46 70 555 98 76", segment="retargeting", updated_at=NOW),
}


def _table(engine, name: str) -> Table:  # type: ignore[no-untyped-def]
    return Table(name, MetaData(), autoload_with=engine)


def _rows(engine, name: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(_table(engine, name))).mappings()]


def _scan_all(policy: Policy, catalog: Catalog, engine, tags, hasher, run_id: str) -> None:  # type: ignore[no-untyped-def]
    for source in catalog.sources.values():
        scan_source(source, policy, source_engine=engine, tag_engine=tags, hasher=hasher, run_id=run_id,
                    logical_date=TODAY)
    inherit_parent_clocks(tags, catalog, list(catalog.sources))


@pytest.fixture
def world(db, tag_db, hasher, policy_path: Path, catalog_path: Path):  # type: ignore[no-untyped-def]
    generate(db.url, rows=40, seed=12, as_of=TODAY, schema=db.schema)
    engine, tags = db.engine(), tag_db.tag_store()
    for name, row in SEEDED.items():
        with engine.begin() as conn:
            conn.execute(_table(engine, name).insert().values(**row))
    policy = load_policy(policy_path)
    catalog = load_catalog(catalog_path, policy)
    _scan_all(policy, catalog, engine, tags, hasher, "n1")
    return policy, catalog, engine, tags


def _publish(world, report_dir: Path, as_of: date = TODAY, policy: Policy | None = None, **kw):  # type: ignore[no-untyped-def]
    base_policy, catalog, _, tags = world
    return publish_processing_record(tag_engine=tags, policy=policy or base_policy, catalog=catalog,
                                     mechanisms=load_mechanisms(ROOT / "config" / "transfer_mechanisms.yaml"),
                                     as_of=as_of, report_dir=report_dir, run_id="n1", **kw)


def _category(record: dict, activity: str, category: str, customer: str | None = None) -> dict:
    activities = (record["activities"] if customer is None
                  else next(c for c in record["processor"] if c["customer"] == customer)["activities"])
    a = next(a for a in activities if a["activity"] == activity)
    return next(c for c in a["categories"] if c["category"] == category)


# -- the oracle: distinct identifiers per kind, from the source rows, as the definition says ----


def _identifiers(catalog: Catalog, source: str, row: dict) -> dict[str, str]:
    """kind -> normalised identifier of one source row (the subject columns the catalog names)."""
    cols = catalog.source(source).subject.columns()
    out = {}
    for kind, col in cols.items():
        value = row.get(col)
        if kind == "company" or value in (None, ""):
            continue
        if kind == "name" and "company" in cols:
            kind, norm = "name_company", normalise_text(f"{value}|{row.get(cols['company']) or ''}")
        elif kind == "email":
            norm = normalise_email(str(value))
        elif kind == "phone":
            norm = normalise_phone(str(value))
        elif kind == "personnummer":
            norm = normalise_personnummer(str(value), TODAY.year)
        else:
            norm = normalise_text(str(value))
        if norm:
            out[kind] = norm
    return out


def _subjects(catalog: Catalog, owners: list[tuple[str, dict]]) -> int:
    per_kind: dict[str, set[str]] = {}
    for source, row in owners:
        for kind, norm in _identifiers(catalog, source, row).items():
            per_kind.setdefault(kind, set()).add(norm)
    return max((len(v) for v in per_kind.values()), default=0)


def test_measured_facts_match_the_source_tables(world, tmp_path) -> None:  # type: ignore[no-untyped-def]
    policy, catalog, engine, _ = world
    paths = _publish(world, tmp_path)
    record = json.loads(paths.json.read_text())
    assert paths.json.name == "2026-11.json" and paths.json.parent.name == "records-of-processing"

    news = _rows(engine, "newsletter_subscribers")
    got = _category(record, "newsletter", "contact_details")["measured"]
    assert got["records"] == len(news) and got["sources"] == {"newsletter_subscribers": len(news)}
    assert got["data_subjects"] == _subjects(catalog, [("newsletter_subscribers", r) for r in news])
    assert got["oldest_clock"] == min(r["last_confirmed_at"] for r in news if r["last_confirmed_at"]).isoformat()[:10]
    assert got["legal_obligation"] == 0

    # Bookkeeping: orders and order lines hold no identifier; their subjects are their customers'.
    invoices, orders, lines = (_rows(engine, n) for n in ("invoices", "orders", "order_lines"))
    customers = {r["id"]: r for r in _rows(engine, "customers")}
    books = _category(record, "bookkeeping", "accounting_records")["measured"]
    assert books["sources"] == {"invoices": len(invoices), "orders": len(orders), "order_lines": len(lines)}
    assert books["records"] == books["legal_obligation"] == len(invoices) + len(orders) + len(lines)
    owners = [("invoices", r) for r in invoices] + [("customers", customers[o["customer_id"]]) for o in orders]
    assert books["data_subjects"] == _subjects(catalog, owners) > 0
    assert books["oldest_clock"] == min(str(r["invoice_date"])[:10] for r in invoices + [
        {"invoice_date": o["order_date"]} for o in orders])
    assert _category(record, "bookkeeping", "contact_details")["measured"]["legal_obligation"] == 0

    # Free text: the seeded cover letter's phone number is an identifier found there.
    jobs = _category(record, "job_applications", "applicant_details")["measured"]
    assert jobs["free_text_identifiers"] >= 1 and jobs["records"] == len(_rows(engine, "job_applications"))

    # As processor: per customer, the unlisted one included and flagged.
    audiences = _rows(engine, "ad_audiences")
    by_customer = {c["customer"]: c for c in record["processor"]}
    assert set(by_customer) == {"kund-nordisk-handel", "kund-fastighetsbyran", "kund-okand"}
    assert by_customer["kund-okand"]["listed"] is False and by_customer["kund-okand"]["problem"]
    assert by_customer["kund-nordisk-handel"]["retention"] == "P90D"
    for customer in by_customer:
        mine = [r for r in audiences if r["customer_id"] == customer]
        m = _category(record, "advertising_audiences", "audience_data", customer)["measured"]
        assert m["records"] == len(mine) and m["data_subjects"] == _subjects(catalog, [("ad_audiences", r) for r in mine])
    assert "advertising_audiences" not in {a["activity"] for a in record["activities"]}  # not as controller

    # Declared: bases, retention, recipients with transfer and the register's finding.
    books_declared = _category(record, "bookkeeping", "accounting_records")
    assert [b["basis"] for b in books_declared["lawful_bases"]] == ["legal_obligation"]
    assert "Bokföringslagen" in books_declared["retention"][0]["text"]
    cust = next(a for a in record["activities"] if a["activity"] == "customers")
    g_suite = next(r for r in cust["recipients"] if r["sub_processor"] == "g_suite")
    assert g_suite["third_country"] is True and g_suite["valid"] is False and "Schrems II" in g_suite["problem"]
    web = next(a for a in record["activities"] if a["activity"] == "website_visits")
    assert [(r["sub_processor"], r["third_country"], r["valid"]) for r in web["recipients"]] == [("albacross", False, True)]
    assert record["summary"]["third_country_transfers"] == 1 and record["summary"]["register_findings"] == 1
    assert record["changes"] == {"previous_month": None, "items": []}
    news_activity = next(a for a in record["activities"] if a["activity"] == "newsletter")
    assert news_activity["data_subjects"] == "Prenumeranter på nyhetsbrev och andra utskick"  # the policy's own words

    # CSV: the art. 30 template's columns, one row per activity and category (and per customer as processor).
    rows = list(csv.DictReader(io.StringIO(paths.csv.read_text())))
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    controller_rows = [r for r in rows if r["section"] == "art30_1_controller"]
    assert len(controller_rows) == sum(len(a.categories) for a in policy.activities.values() if a.role == "controller")
    assert len(rows) - len(controller_rows) == 3  # three customers, one processor activity with one category
    g_row = next(r for r in controller_rows if r["activity"] == "customers" and r["category"] == "contact_details")
    assert g_row["controller_name"] == "Millstone Group AB" and "USA" in g_row["third_country_transfers"]
    assert "Privacy Shield" in g_row["transfer_safeguards"] and "Schrems II" in g_row["register_findings"]
    news_row = next(r for r in controller_rows if r["activity"] == "newsletter")
    assert int(news_row["records"]) == len(news) and news_row["lawful_basis"].startswith("Samtycke")
    okand = next(r for r in rows if r["section"] == "art30_2_processor" and "kund-okand" in r["controller_name"])
    assert okand["processor_name"] == "Millstone Group AB"
    assert int(okand["records"]) == sum(1 for r in audiences if r["customer_id"] == "kund-okand") >= 1


def _seeded_and_source_identifiers(catalog: Catalog, engine) -> set[str]:  # type: ignore[no-untyped-def]
    """Every e-mail, phone, personnummer and name in the source tables, as written there."""
    values = set()
    for source in catalog.sources.values():
        cols = {k: c for k, c in source.subject.columns().items() if k in ("email", "phone", "personnummer", "name")}
        if not cols:
            continue
        for row in _rows(engine, source.table):
            values |= {str(row[c]) for c in cols.values() if row.get(c) and len(str(row[c])) > 4}
    for row in SEEDED.values():
        values |= {v for k, v in row.items() if k in ("name", "applicant_name", "email", "phone", "personnummer")}
    values.add("inköp.kontakt@exempel.se")
    return values


def test_no_identifier_in_any_output(world, tmp_path, hasher) -> None:  # type: ignore[no-untyped-def]
    policy, catalog, engine, tags = world
    # A customer column holding an e-mail address instead of a customer code: not copied out.
    with engine.begin() as conn:
        conn.execute(_table(engine, "ad_audiences").insert().values(
            id=9002, customer_id="inköp.kontakt@exempel.se", uploaded_at=date(2026, 10, 1), name="Petra Fältsson",
            email="petra.faltsson@exempel.se", phone=None, segment="retargeting", updated_at=datetime(2026, 11, 25, 23)))
    _scan_all(policy, catalog, engine, tags, hasher, "n2")
    paths = _publish(world, tmp_path)
    record = json.loads(paths.json.read_text())
    assert "(customer reference not shown)" in {c["customer"] for c in record["processor"]}
    identifiers = _seeded_and_source_identifiers(catalog, engine)
    assert len(identifiers) > 100 and "19850412-2386" in identifiers
    for path in (paths.json, paths.html, paths.csv):
        text = path.read_text()
        assert "kund-okand" in text  # the files were written, the unlisted customer named by its code
        leaked = sorted(v for v in identifiers if v in text)
        assert leaked == [], f"{path.name} holds identifiers"


def _changed_policy(tmp_path: Path) -> Policy:
    """The policy a month later: a new activity, consent kept one year, a new sub-processor for the
    newsletter, G Suite moved to the Data Privacy Framework, a narrower basis, a new instruction."""
    data = yaml.safe_load((ROOT / "config" / "policy.yaml").read_text())
    data["activities"]["events"] = {"label_sv": "Evenemang", "role": "controller", "retention_clock": "collected",
                                    "categories": {"contact_details": ["consent"]}}
    data["retention_rules"]["one_year"] = {"period": "P1Y"}
    data["lawful_bases"]["consent"]["retention"] = "one_year"
    data["sub_processors"]["mailer"] = {"name": "Mailer", "purpose_sv": "Utskick", "location": "USA",
                                        "transfer_mechanism": "standard_contractual_clauses"}
    data["activities"]["newsletter"]["sub_processors"] = ["mailer"]
    data["sub_processors"]["g_suite"]["transfer_mechanism"] = "eu_us_data_privacy_framework"
    data["activities"]["contact_form"]["categories"]["case_details"] = ["contract", "legitimate_interest"]
    data["processor_customers"]["kund-fastighetsbyran"]["retention"] = "P6M"
    path = tmp_path / "policy-next.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return load_policy(path)


def test_change_list_against_the_previous_month(world, tmp_path, hasher) -> None:  # type: ignore[no-untyped-def]
    policy, catalog, engine, tags = world
    reports = tmp_path / "reports"
    october = _publish(world, reports, as_of=date(2026, 10, 25))
    october_text = october.json.read_text()
    # A month of new subscribers.
    with engine.begin() as conn:
        conn.execute(_table(engine, "newsletter_subscribers").insert(), [
            dict(id=9100 + i, subscribed_at=date(2026, 11, 1), last_confirmed_at=date(2026, 11, 1),
                 name=f"Ny Prenumerant {i}", email=f"ny{i}@exempel.se", updated_at=datetime(2026, 11, 25, 23))
            for i in range(60)])
    _scan_all(policy, catalog, engine, tags, hasher, "n2")
    november = _publish(world, reports, policy=_changed_policy(tmp_path))
    assert october.json.read_text() == october_text  # the previous month's record is kept as written
    record = json.loads(november.json.read_text())
    assert record["changes"]["previous_month"] == "2026-10"
    changes = {(c["kind"], c["where"]) for c in record["changes"]["items"]}
    assert ("activity_added", "events") in changes
    assert ("recipient_added", "newsletter") in changes
    assert ("retention_changed", "newsletter / contact_details") in changes
    assert ("lawful_basis_changed", "contact_form / case_details") in changes
    assert ("records_changed", "newsletter / contact_details") in changes
    assert ("data_subjects_changed", "newsletter / contact_details") in changes
    assert ("transfer_mechanism_changed", "g_suite") in changes and ("transfer_valid_changed", "g_suite") in changes
    assert ("instruction_changed", "kund-fastighetsbyran") in changes
    assert ("retention_changed", "kund-fastighetsbyran/advertising_audiences / audience_data") in changes
    # Nothing else moved: contact forms kept their records, the nordisk-handel instruction stands.
    assert {w for k, w in changes if k in ("records_changed", "data_subjects_changed")} == {"newsletter / contact_details"}
    assert ("instruction_changed", "kund-nordisk-handel") not in changes
    assert record["summary"]["changes"] == len(record["changes"]["items"])

    # The other way round: what was added is removed.
    back = {(c["kind"], c["where"]) for c in compare_records(record, json.loads(october_text))}
    assert ("activity_removed", "events") in back and ("recipient_removed", "newsletter") in back

    # The HTML lists the changes; a backfill of an earlier month leaves every record as it was.
    assert "activity added" in november.html.read_text()
    before = {p.name: p.read_text() for p in november.json.parent.iterdir()}
    assert _publish(world, reports, as_of=date(2026, 9, 30)) is None
    assert {p.name: p.read_text() for p in november.json.parent.iterdir()} == before
    assert latest_processing_record(reports) == november


def test_small_count_moves_are_not_changes() -> None:
    t = ChangeThresholds(min_records=10, min_share=0.25)
    assert not t.significant(1000, 1100)   # 10 %: noise
    assert not t.significant(2, 9)         # big share, few records
    assert t.significant(40, 100) and t.significant(0, 10) and t.significant(100, 60)


@pytest.fixture
def web(airflow_db, tmp_path, monkeypatch, hasher, policy_path, catalog_path):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from airflow.api_fastapi.app import create_app, purge_cached_app

    from lifecycle.tagstore.db import make_engine, open_tag_store

    url = f"sqlite:///{tmp_path / 'world.db'}"
    generate(url, rows=20, seed=2, as_of=TODAY)
    monkeypatch.setenv("AIRFLOW_CONN_LIFECYCLE_TAGSTORE", json.dumps({"conn_type": "generic", "extra": {"sqlalchemy_url": url}}))
    monkeypatch.setenv("LIFECYCLE_REPORT_DIR", str(tmp_path / "reports"))
    policy = load_policy(policy_path)
    catalog = load_catalog(catalog_path, policy)
    world = (policy, catalog, make_engine(url), open_tag_store(url))
    _scan_all(policy, catalog, world[2], world[3], hasher, "n1")
    purge_cached_app()
    yield world, TestClient(create_app(apps="core"))
    purge_cached_app()


def _token() -> str:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))


def test_compliance_page_links_and_serves_the_latest_record(web, tmp_path) -> None:  # type: ignore[no-untyped-def]
    world, api = web
    headers = {"Authorization": f"Bearer {_token()}"}
    for path in ("/lifecycle/records-of-processing/", "/lifecycle/records-of-processing.json",
                 "/lifecycle/records-of-processing.csv", "/lifecycle/records-of-processing/2026-11.json"):
        assert api.get(path).status_code in (401, 403), path  # behind Airflow's login
    assert api.get("/lifecycle/records-of-processing.json", headers=headers).status_code == 404  # none written yet
    assert "No record of processing written yet" in api.get("/lifecycle/", headers=headers).text

    _publish(world, tmp_path / "reports", as_of=date(2026, 10, 31))
    _publish(world, tmp_path / "reports")
    page = api.get("/lifecycle/", headers=headers).text
    assert 'href="records-of-processing/">Record for 2026-11</a>' in page and "changes since 2026-10" in page
    summary = api.get("/lifecycle/api/summary", headers=headers).json()["records_of_processing"]
    assert summary["month"] == "2026-11" and summary["previous_month"] == "2026-10"

    html = api.get("/lifecycle/records-of-processing/", headers=headers)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "Record of processing activities" in html.text and 'href="2026-11.json"' in html.text
    data = api.get("/lifecycle/records-of-processing.json", headers=headers).json()
    assert data["month"] == "2026-11" and data["controller"]["name"] == "Millstone Group AB"
    got_csv = api.get("/lifecycle/records-of-processing.csv", headers=headers)
    assert got_csv.headers["content-type"].startswith("text/csv") and got_csv.text.startswith("section,controller_name,")
    # Each month's files by name (the HTML's own links), nothing else from the folder.
    october = api.get("/lifecycle/records-of-processing/2026-10.json", headers=headers)
    assert october.status_code == 200 and october.json()["month"] == "2026-10"
    assert api.get("/lifecycle/records-of-processing/2026-09.json", headers=headers).status_code == 404
    assert api.get("/lifecycle/records-of-processing/..%2F..%2Fetc%2Fpasswd", headers=headers).status_code == 404
    redirect = api.get("/lifecycle/records-of-processing", headers=headers, follow_redirects=False)
    assert redirect.status_code in (302, 307) and redirect.headers["location"].endswith("records-of-processing/")


def test_the_nightly_dag_writes_the_record(airflow_db, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import pendulum
    from airflow.models import DagBag

    url = f"sqlite:///{tmp_path / 'source.db'}"
    generate(url, rows=20, seed=2, as_of=TODAY)
    conn = json.dumps({"conn_type": "generic", "extra": {"sqlalchemy_url": url}})
    tag_conn = json.dumps({"conn_type": "generic", "extra": {"sqlalchemy_url": f"sqlite:///{tmp_path / 'tags.db'}"}})
    monkeypatch.setenv("AIRFLOW_CONN_LIFECYCLE_DEMO", conn)
    monkeypatch.setenv("AIRFLOW_CONN_LIFECYCLE_TAGSTORE", tag_conn)
    monkeypatch.setenv("LIFECYCLE_REPORT_DIR", str(tmp_path / "reports"))
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    dag = bag.dags["lifecycle_nightly"]
    # A night of its own (not the other DAG tests' 25th): runs in a shared Airflow database do not collide.
    dr = dag.test(logical_date=pendulum.datetime(2026, 11, 27, 2, tz="Europe/Stockholm"), run_conf={"dry_run": True})
    assert str(dr.state) == "success"
    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    assert states["records_of_processing"] == "success"
    paths = latest_processing_record(tmp_path / "reports")
    assert paths is not None and all(p.is_file() for p in (paths.json, paths.html, paths.csv))
    record = json.loads(paths.json.read_text())
    assert record["month"] == "2026-11" and record["run_id"] == dr.run_id
    assert record["summary"]["records"] > 0
