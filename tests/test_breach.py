"""Breach scoping (Art. 33-34) on SQLite and PostgreSQL: counts from the scanned demo company
checked against the source tables themselves, exact person grouping on a hand-built index,
bad input refused before anything is read, and no raw identifier outside the protected folder."""

from __future__ import annotations

import csv
import json
import logging
import stat
from datetime import date, datetime, timezone
from pathlib import Path

import pendulum
import pytest
from sqlalchemy import MetaData, Table, insert, select

from lifecycle.config import load_catalog, load_policy
from lifecycle.discovery import label_persons
from lifecycle.discovery.identifiers import normalise_email
from lifecycle.errors import InvalidRequestError
from lifecycle.reporting import parse_scope, scope_breach
from lifecycle.tagstore.tables import object_state, record_tag, subject_ref
from tests.request_world import EMAIL, PERSONNUMMER, PHONE, World, insert as put, prepare

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 25, 12, tzinfo=timezone.utc)


@pytest.fixture
def world(db, tag_db, tmp_path):  # type: ignore[no-untyped-def]
    """The demo company and one person in five sources, scanned; plus a job application with a personnummer."""
    w = World(db.url, db.schema, tag_db.url, tag_db.schema, str(tmp_path / "reports"))
    prepare(w)
    engine, tags = w.engines()
    put(engine, "job_applications", dict(id=9001, applied_at=date(2026, 10, 1), applicant_name="Test Person",
                                         email="test.person@exempel.se", phone=PHONE, personnummer=PERSONNUMMER,
                                         position="utvecklare", cover_letter="Jag söker tjänsten."))
    from tests.request_world import scan_all

    scan_all(w, run_id="n2", only="job_applications")
    policy, catalog = w.config()
    return engine, tags, catalog, policy


def _rows(engine, name):  # type: ignore[no-untyped-def]
    t = Table(name, MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(t)).mappings()]


def _scope(catalog, tags, policy, tmp_path, **params):  # type: ignore[no-untyped-def]
    form = {"reference": "INC-2026-0042", "discovered_at": "2026-11-25T09:30"} | params
    scope = parse_scope(form, catalog, now=NOW)
    return scope_breach(scope, catalog=catalog, policy=policy, tag_engine=tags, report_dir=tmp_path / "reports",
                        protected_dir=tmp_path / "protected", now=NOW)


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _contacts(result) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    """The protected contact list: person, subject_hash, kind, source, record_key, field, place, exposure."""
    return _csv(result.contacts.path)


def _person_at(result, source: str, key: str) -> set[str]:  # type: ignore[no-untyped-def]
    """The person(s) the structured identifiers of one record belong to."""
    return {r["person"] for r in _contacts(result) if (r["source"], r["record_key"]) == (source, key)
            and r["place"] == "structured"}


def test_scope_counts_match_the_sources_and_the_list_stays_protected(world, hasher, tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    engine, tags, catalog, policy = world
    caplog.set_level(logging.DEBUG)
    result = _scope(catalog, tags, policy, tmp_path, sources=["customers", "ad_audiences", "job_applications"])
    customers, audiences = _rows(engine, "customers"), _rows(engine, "ad_audiences")
    applications = _rows(engine, "job_applications")
    report = result.report

    # Records: every row of the three tables, as the sources themselves count them.
    assert {s["source"]: s["records"] for s in report["sources"]} == {
        "customers": len(customers), "ad_audiences": len(audiences), "job_applications": len(applications)}
    # Persons with records of their own: every row here carries an e-mail, and no two addresses are
    # tied by a shared phone or name. The others are only named in cover letters.
    emails = {normalise_email(r[c]) for rows, c in ((customers, "contact_email"), (audiences, "email"),
                                                    (applications, "email")) for r in rows if r[c]}
    assert report["persons"]["with_own_records"] == len(emails)
    assert report["persons"]["total"] == len(emails) + report["persons"]["only_mentioned_in_free_text"]
    # Processor customers: the customer ids of the audiences, with their record counts.
    by_customer: dict[str, int] = {}
    for r in audiences:
        by_customer[r["customer_id"]] = by_customer.get(r["customer_id"], 0) + 1
    assert {p["customer"]: p["records"] for p in report["processor_customers"]} == by_customer
    assert report["assessment"]["processor_customers_to_inform"] == sorted(by_customer)
    assert {"personnummer", "email", "phone"} <= set(report["assessment"]["identifier_kinds_exposed"])
    assert any("personnummer" in note for note in report["assessment"]["risk_indicators"])
    assert report["assessment"]["notify_authority_by"] == "2026-11-28T08:30+00:00"  # 09:30 Stockholm + 72 h
    assert report["assessment"]["likely_consequences"] == "" and report["assessment"]["measures_taken"] == ""

    # The person: one person on the list, known by their e-mail, in three records.
    contacts = _contacts(result)
    mine = {hasher.reference(k, v) for k, v in (("email", EMAIL), ("phone", PHONE), ("personnummer", PERSONNUMMER))}
    person = "email:" + hasher.reference("email", EMAIL)
    assert {r["person"] for r in contacts if r["subject_hash"] in mine} == {person}
    places = {(r["source"], r["record_key"]) for r in contacts if r["person"] == person}
    assert places == {("customers", "9001"), ("ad_audiences", "9001"), ("job_applications", "9001")}
    assert {r["kind"] for r in contacts if r["person"] == person} >= {"email", "phone", "personnummer"}
    assert len({r["person"] for r in contacts if r["place"] == "structured"}) == len(emails)

    # Owner-only folder and files; nothing identifying anywhere else.
    assert stat.S_IMODE(result.contacts.folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(result.contacts.path.stat().st_mode) == 0o600
    outside = (result.paths.json.read_text() + result.paths.html.read_text() + json.dumps(result.summary())
               + caplog.text).lower()
    raw = [EMAIL.lower(), "555 12 34", "5551234", PERSONNUMMER, PERSONNUMMER[2:], "test person"]
    raw += [e for e in emails] + [r["contact_phone"] for r in customers if r["contact_phone"]]
    assert [value for value in raw if value.lower() in outside] == []
    assert not any(r["subject_hash"] in outside for r in contacts)  # not even the keyed hashes: counts only


def test_time_window_counts_only_records_dated_inside(world, hasher, tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine, tags, catalog, policy = world
    result = _scope(catalog, tags, policy, tmp_path, sources=["newsletter_subscribers"],
                    window_from="2026-07-01", window_to="2026-12-31")
    rows = _rows(engine, "newsletter_subscribers")
    inside = [r for r in rows if r["last_confirmed_at"] is None
              or date(2026, 7, 1) <= _day(r["last_confirmed_at"]) <= date(2026, 12, 31)]
    assert 0 < len(inside) < len(rows)
    assert result.report["totals"]["records"] == len(inside)
    assert result.report["totals"]["undated_records"] == sum(1 for r in rows if r["last_confirmed_at"] is None)
    # The person confirmed on 2026-06-01: outside the window, not on the list.
    assert hasher.reference("email", EMAIL) not in {r["subject_hash"] for r in _contacts(result)}
    keys = {r["record_key"] for r in _contacts(result)}
    assert keys == {str(r["id"]) for r in inside if r["email"]}


def _day(value) -> date:  # type: ignore[no-untyped-def]
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def test_orders_breach_reaches_their_customers(world, tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine, tags, catalog, policy = world
    result = _scope(catalog, tags, policy, tmp_path, sources=["orders"])
    orders = _rows(engine, "orders")
    owners = {str(o["customer_id"]) for o in orders}
    assert result.report["totals"]["records"] == len(orders)
    assert result.report["identifier_kinds"] == []  # orders hold no identifier of their own ...
    linked = _contacts(result)
    assert {r["exposure"] for r in linked} == {"linked"}
    assert {(r["source"], r["record_key"]) for r in linked} == {("customers", k) for k in owners}  # ... their owners do
    assert result.report["persons"]["only_linked_through_references"] == len(owners)


# -- exact grouping on a hand-built index ---------------------------------------------------


def _tag(source: str, key: str, category: str, clock: date | None, role: str = "controller",
         controller: str = "self") -> dict:
    return {"source": source, "record_key": key, "category": category, "activity": "contact_form",
            "lawful_basis": "legitimate_interest", "role": role, "controller": controller, "clock_value": clock,
            "deadline": None, "on_expiry": "erase", "status": "active", "run_id": "r1"}


def _ref(h: str, source: str, key: str, field: str, kind: str, category: str, free: bool = False) -> dict:
    return {"subject_hash": h, "source": source, "record_key": key, "field": field, "kind": kind,
            "category": category, "free_text": free}


@pytest.fixture
def built(tag_db):  # type: ignore[no-untyped-def]
    """A: e1+p1; B: p1 alone; C: e2, its message naming e1 and p9; D and E: the same name alone
    (two people, maybe); F: a customer's audience (processor role) with e3."""
    tags = tag_db.tag_store()
    cf, aud = "contact_form_submissions", "ad_audiences"
    day = date(2026, 3, 1)
    tag_rows = [_tag(cf, k, c, day) for k in "ABDE" for c in ("contact_details", "case_details")]
    tag_rows += [_tag(cf, "C", c, date(2025, 3, 1)) for c in ("contact_details", "case_details")]
    tag_rows += [_tag(aud, "F", "audience_data", day, "processor", "kund-nordisk-handel")]
    refs = [_ref("e1" * 16, cf, "A", "email", "email", "contact_details"),
            _ref("p1" * 16, cf, "A", "phone", "phone", "contact_details"),
            _ref("p1" * 16, cf, "B", "phone", "phone", "contact_details"),
            _ref("e2" * 16, cf, "C", "email", "email", "contact_details"),
            _ref("e1" * 16, cf, "C", "message", "email", "case_details", True),
            _ref("f9" * 16, cf, "C", "message", "phone", "case_details", True),
            _ref("0a" * 16, cf, "D", "name", "name", "contact_details"),
            _ref("0a" * 16, cf, "E", "name", "name", "contact_details"),
            _ref("e3" * 16, aud, "F", "email", "email", "audience_data")]
    for source, key in {(r["source"], r["record_key"]) for r in refs}:  # labelled as the scan labels them
        label_persons([r for r in refs if (r["source"], r["record_key"]) == (source, key)], source, key)
    with tags.begin() as conn:
        conn.execute(insert(record_tag), tag_rows)
        conn.execute(insert(subject_ref), refs)
    return tags


def test_persons_are_counted_once_per_primary_identifier(built, tmp_path, policy_path, catalog_path) -> None:  # type: ignore[no-untyped-def]
    cf = "contact_form_submissions"
    policy = load_policy(policy_path)
    catalog = load_catalog(catalog_path, policy)
    result = _scope(catalog, built, policy, tmp_path, sources=["contact_form_submissions", "ad_audiences"])
    # Once per primary identifier: e1 (A, and named in C), p1 (B: its only identifier; counted
    # apart from A, erring high), e2, p9 (named only), D, E (a name alone: a person per record), e3.
    assert result.report["persons"] == {"total": 7, "with_own_records": 6, "only_mentioned_in_free_text": 1,
                                        "only_linked_through_references": 0}
    e1, p1 = "email:" + "e1" * 16, "phone:" + "p1" * 16
    assert _person_at(result, cf, "A") == {e1} and _person_at(result, cf, "B") == {p1}
    assert {r["person"] for r in _contacts(result) if r["place"] == "free_text"} == {e1, "phone:" + "f9" * 16}
    assert _person_at(result, cf, "D") == {f"record:{cf}/D"} != _person_at(result, cf, "E")
    assert [p["persons"] for p in result.report["processor_customers"]] == [1]
    kinds = {(k["kind"], k["where"]): k["identifiers"] for k in result.report["identifier_kinds"]}
    assert kinds == {("email", "structured"): 3, ("email", "free_text"): 1, ("phone", "structured"): 1,
                     ("phone", "free_text"): 1, ("name", "structured"): 1}

    # C is dated 2025: a 2026 window leaves e2 and p9 out; e1 stays (A).
    windowed = _scope(catalog, built, policy, tmp_path, sources=["contact_form_submissions"], reference="INC-2",
                      window_from="2026-01-01")
    assert windowed.report["totals"]["records"] == 4 and windowed.report["persons"]["total"] == 4
    assert {r["subject_hash"] for r in _contacts(windowed)} == {"e1" * 16, "p1" * 16, "0a" * 16}


def test_the_scan_marks_one_first_row_per_record(world) -> None:  # type: ignore[no-untyped-def]
    """Counting records counts first_of_record rows: every scanned record has exactly one."""
    engine, tags, _, _ = world
    with tags.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(record_tag.c.source, record_tag.c.record_key,
                                                     record_tag.c.first_of_record)).mappings()]
    firsts: dict[tuple[str, str], int] = {}
    for r in rows:
        assert r["first_of_record"] is not None
        key = (r["source"], r["record_key"])
        firsts[key] = firsts.get(key, 0) + bool(r["first_of_record"])
    assert firsts and set(firsts.values()) == {1}
    assert sum(1 for k in firsts if k[0] == "customers") == len(_rows(engine, "customers"))


def test_records_count_the_same_with_first_rows_marked_legacy_or_mixed(built, tmp_path, policy_path,  # type: ignore[no-untyped-def]
                                                                       catalog_path) -> None:
    """A store scanned partly before first_of_record existed: marked records counted by their
    first row, unmarked ones by key, a record with both once."""
    policy = load_policy(policy_path)
    catalog = load_catalog(catalog_path, policy)
    sources = {"sources": ["contact_form_submissions", "ad_audiences"]}
    legacy = _scope(catalog, built, policy, tmp_path, **sources).report  # nothing marked yet
    first, rest = record_tag.c.category.in_(["contact_details", "audience_data"]), record_tag.c.category == "case_details"
    with built.begin() as conn:
        conn.execute(record_tag.update().where(record_tag.c.record_key.in_(["A", "B", "F"]), first)
                     .values(first_of_record=True))
        conn.execute(record_tag.update().where(record_tag.c.record_key.in_(["A", "B"]), rest)
                     .values(first_of_record=False))
        conn.execute(record_tag.update().where(record_tag.c.record_key == "C", first).values(first_of_record=True))
        # C's case_details row stays NULL, like a row kept from before; D and E are wholly unmarked.
    mixed = _scope(catalog, built, policy, tmp_path, reference="INC-3", **sources).report
    expected = [{"source": "ad_audiences", "records": 1, "undated": 0},
                {"source": "contact_form_submissions", "records": 5, "undated": 0}]
    assert legacy["sources"] == mixed["sources"] == expected
    assert mixed["totals"]["records"] == 6
    assert [(c["category"], c["records"]) for c in mixed["categories"]] == [
        ("audience_data", 1), ("case_details", 5), ("contact_details", 5)]
    assert [(p["customer"], p["records"], p["persons"]) for p in mixed["processor_customers"]] == [
        ("kund-nordisk-handel", 1, 1)]
    windowed = _scope(catalog, built, policy, tmp_path, reference="INC-4", window_from="2026-01-01", **sources)
    assert windowed.report["totals"]["records"] == 5  # C is dated 2025


def test_entries_indexed_before_person_labels_count_a_person_per_record(built, tmp_path, policy_path,  # type: ignore[no-untyped-def]
                                                                       catalog_path) -> None:
    policy = load_policy(policy_path)
    catalog = load_catalog(catalog_path, policy)
    with built.begin() as conn:  # as an index written by an earlier version holds them
        conn.execute(subject_ref.update().values(person=None))
    result = _scope(catalog, built, policy, tmp_path, sources=["contact_form_submissions", "ad_audiences"])
    # Each record with structured entries is a person (A..F), mentions the persons they name (e1, f9):
    # more than the 7 of the labelled index, never fewer.
    assert result.report["persons"] == {"total": 8, "with_own_records": 6, "only_mentioned_in_free_text": 2,
                                        "only_linked_through_references": 0}


def test_bucket_prefix_narrows_to_the_objects_under_it(tag_db, tmp_path, policy_path) -> None:  # type: ignore[no-untyped-def]
    policy = load_policy(policy_path)
    catalog = load_catalog(ROOT / "config" / "catalog.objects.yaml", policy)
    tags = tag_db.tag_store()
    src = "audience_uploads"
    objects = {"aaaaaaaaaaaaaaaa": "audiences/2026/march.jsonl", "bbbbbbbbbbbbbbbb": "audiences/2025/may.jsonl"}
    with tags.begin() as conn:
        conn.execute(insert(object_state), [{"source": src, "object_ref": ref, "object_key": key, "records": 2,
                                             "status": "ok", "run_id": "r1"} for ref, key in objects.items()])
        for ref in objects:
            for pk in ("1", "2"):
                conn.execute(insert(record_tag), _tag(src, f"{ref}/{pk}", "audience_data", date(2026, 3, 1),
                                                      "processor", "kund-nordisk-handel"))
                conn.execute(insert(subject_ref), _ref(f"{ref[:2]}{pk}" * 16, src, f"{ref}/{pk}", "email", "email",
                                                       "audience_data"))
    result = _scope(catalog, tags, policy, tmp_path, object_prefix="s3://lifecycle-data/audiences/2026/")
    assert result.report["scope"]["object_sources"] == [src]
    assert result.report["totals"]["records"] == 2 and result.report["persons"]["total"] == 2
    assert {r["record_key"] for r in _contacts(result)} == {"aaaaaaaaaaaaaaaa/1", "aaaaaaaaaaaaaaaa/2"}
    whole = _scope(catalog, tags, policy, tmp_path, reference="INC-3", sources=[src],
                   object_prefix="s3://lifecycle-data/audiences/2026/")  # the whole source wins
    assert whole.report["totals"]["records"] == 4


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "field", "rule"), [
    ({"sources": ["customers", "custmers"]}, "sources[1]", "known_source"),
    ({"window_from": "2026-05-01", "window_to": "2026-04-01"}, "window_to", "not_before_window_from"),
    ({"window_from": "1 maj"}, "window_from", "iso_date"),
    ({"reference": "INC 42; DROP"}, "reference", "pattern"),
    ({"reference": ""}, "reference", "required"),
    ({"discovered_at": None}, "discovered_at", "required"),
    ({"discovered_at": "2027-01-01T00:00"}, "discovered_at", "not_in_future"),
    ({"sources": []}, "sources", "required"),
    ({"object_prefix": "s3://lifecycle-data/audiences/"}, "object_prefix", "matches_object_source"),
    ({"object_prefix": "s3://Bad_Bucket/x"}, "object_prefix", "s3_uri"),
])
def test_bad_input_names_the_field_and_the_rule(change, field, rule, policy_path, catalog_path) -> None:  # type: ignore[no-untyped-def]
    catalog = load_catalog(catalog_path, load_policy(policy_path))
    form = {"reference": "INC-2026-0042", "sources": ["customers"], "discovered_at": "2026-11-25T09:30"} | change
    with pytest.raises(InvalidRequestError) as refused:
        parse_scope(form, catalog, now=NOW)
    assert (refused.value.field, refused.value.rule) == (field, rule)
    assert field in str(refused.value) and rule in str(refused.value) and "DROP" not in str(refused.value)


def test_prefix_with_an_identifier_is_refused(policy_path) -> None:  # type: ignore[no-untyped-def]
    catalog = load_catalog(ROOT / "config" / "catalog.objects.yaml", load_policy(policy_path))
    form = {"reference": "INC-1", "discovered_at": "2026-11-25T09:30",
            "object_prefix": "s3://lifecycle-data/audiences/anna.berg@exempel.se/"}
    with pytest.raises(InvalidRequestError, match="object_prefix.*no_identifier") as refused:
        parse_scope(form, catalog, now=NOW)
    assert "anna" not in str(refused.value)


# -- through Airflow ----------------------------------------------------------------------


@pytest.mark.e2e
def test_breach_dag_end_to_end(db, tag_db, airflow_db, tmp_path, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    from airflow.models import DagBag
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    w = World(db.url, db.schema, tag_db.url, tag_db.schema, str(tmp_path / "reports"))
    prepare(w)
    monkeypatch.setenv("AIRFLOW_CONN_LIFECYCLE_TAGSTORE", tag_db.airflow_conn())
    monkeypatch.setenv("LIFECYCLE_REPORT_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("LIFECYCLE_EXTRACT_DIR", str(tmp_path / "protected"))
    caplog.set_level(logging.INFO)
    dag = DagBag(dag_folder=str(ROOT / "dags")).dags["lifecycle_breach_scope"]
    base = {"object_prefix": None, "window_from": None, "window_to": None, "discovered_at": "2026-11-25T09:30"}

    bad = base | {"reference": "INC-BAD", "sources": ["customers"], "window_from": "2026-05-01", "window_to": "2026-04-01"}
    run = dag.test(logical_date=pendulum.datetime(2026, 11, 25, 10, 1, tz="Europe/Stockholm"), run_conf=bad)
    assert str(run.state) == "failed"
    assert not (tmp_path / "protected").exists() and not (tmp_path / "reports").exists()  # nothing read or written

    good = base | {"reference": "INC-7", "sources": ["customers", "ad_audiences", "contact_form_submissions"]}
    run = dag.test(logical_date=pendulum.datetime(2026, 11, 25, 10, 2, tz="Europe/Stockholm"), run_conf=good)
    assert str(run.state) == "success"
    with create_session() as session:
        values = [XComModel.deserialize_value(x) for x in session.scalars(select(XComModel).where(
            XComModel.dag_id == dag.dag_id, XComModel.run_id == run.run_id))]
    summary = next(v for v in values if isinstance(v, dict) and "persons" in v)
    assert summary["reference"] == "INC-7" and summary["persons"] > 0
    report = json.loads((tmp_path / "reports" / "breaches" / "breach-INC-7.json").read_text())
    assert report["persons"]["total"] == summary["persons"]
    persons = _csv(tmp_path / "protected" / "breach-INC-7" / "contacts.csv")
    assert len({p["person"] for p in persons if p["person"]}) == summary["persons"]
    outside = (json.dumps(values) + caplog.text + json.dumps(report)).lower()
    assert "test.person" not in outside and "5551234" not in outside and "555 12 34" not in outside
    assert not any(p["subject_hash"] in outside for p in persons)


def test_person_labels_follow_the_records_first_identifier() -> None:
    cf = "contact_form_submissions"
    refs = [_ref("p1" * 16, cf, "A", "phone", "phone", "contact_details"),
            _ref("e9" * 16, cf, "A", "email2", "email", "contact_details"),
            _ref("e1" * 16, cf, "A", "email", "email", "contact_details"),
            _ref("n1" * 16, cf, "A", "message", "name", "case_details", True),
            _ref("f9" * 16, cf, "A", "message", "phone", "case_details", True)]
    labelled = {r["field"] + "/" + r["subject_hash"][:2]: r["person"] for r in label_persons(refs, cf, "A")}
    # E-mail before phone; of two e-mails the smaller hash; mentions are whom they name, a name mention nobody.
    assert labelled == {"phone/p1": "email:" + "e1" * 16, "email2/e9": "email:" + "e1" * 16,
                        "email/e1": "email:" + "e1" * 16, "message/n1": "", "message/f9": "phone:" + "f9" * 16}
    alone = label_persons([_ref("0a" * 16, cf, "D", "name", "name", "contact_details")], cf, "D")
    assert alone[0]["person"] == f"record:{cf}/D"
    assert label_persons([_ref("1p" * 16, cf, "X", "ip", "ip", "contact_details")], cf, "X")[0]["person"] == ""
