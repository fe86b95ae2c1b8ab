"""Delta Lake tables as a store (lifecycle/stores/lake_table.py): scanning and tagging rows of a
Delta table, nightly expiry, an erasure request with redaction of a mention, and what older table
versions keep. Local tables with the tag store on SQLite and on PostgreSQL; one table on the real
S3-compatible server (SeaweedFS, versioned bucket)."""

from __future__ import annotations

import glob
import json
import os
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml
from deltalake import DeltaTable, write_deltalake
from sqlalchemy import func, select

from lifecycle.config.catalog import Catalog, load_catalog
from lifecycle.enforcement.enforce import enforce_source
from lifecycle.errors import CatalogError
from lifecycle.rights.dispatcher import SubjectRequest, Workspace, fulfil
from lifecycle.discovery.identifiers import SubjectHasher
from lifecycle.enforcement.plan import build_plan, register_run, summarise_plan
from lifecycle.config.policy import load_policy
from lifecycle.rights.requests import SubjectIdentifiers
from lifecycle.stores import backend_for, open_store
from lifecycle.stores.base import ConnectionInfo
from lifecycle.stores.lake_table import LakeBackend, Store
from lifecycle.stores.lake_table import backend as lake_backend_of
from lifecycle.discovery.subjects import locate
from lifecycle.tagstore.tables import record_tag, schema_finding, subject_ref, watermark
from lifecycle.rights.verify import Probe, record_holds
from tests.conftest import ROOT

POLICY = load_policy(ROOT / "config" / "policy.yaml")
TODAY = date(2026, 11, 25)
OLD, FRESH = date(2023, 6, 1), date(2026, 3, 1)  # past and inside two years of legitimate interest
CONN = "lifecycle_lake"
EMAIL, PHONE = "Test.Person@Exempel.se", "070-555 12 34"

SCHEMA = pa.schema([
    ("id", pa.int64()), ("name", pa.string()), ("email", pa.string()), ("phone", pa.string()),
    ("company_name", pa.string()), ("message", pa.string()), ("last_interaction_at", pa.date32()),
    ("submitted_at", pa.timestamp("us", tz="UTC")),
])


def row(i: int, name: str, email: str, clock: date, message: str | None = None, phone: str | None = None,
        company: str | None = "Exempel AB") -> dict[str, Any]:
    return {"id": i, "name": name, "email": email, "phone": phone, "company_name": company, "message": message,
            "last_interaction_at": clock, "submitted_at": datetime(2026, 1, 1, 12)}


PEOPLE = [
    row(1, "Anna Berg", "anna.berg@example.se", OLD, "Hej, ring mig!"),  # expired
    row(2, "Bo Ek", "bo@example.se", FRESH, "Prata med anna.berg@example.se om offerten."),
    row(3, "Test Person", "test.person@exempel.se", FRESH, "Jag vill ha en offert.", phone="+46 70 555 12 34"),
    row(4, "Annan Person", "annan@exempel.se", FRESH, f"Prata med min kollega {EMAIL.lower()} eller 0705551234."),
    row(5, "Cecilia Lind", "cecilia@example.se", date(2022, 1, 10)),  # expired
    row(6, "Dan Strand", "dan@example.se", FRESH, None, company=None),
]


def write_table(uri: str, rows: list[dict[str, Any]], mode: str = "error", **options: Any) -> None:
    write_deltalake(uri, pa.Table.from_pylist(rows, schema=SCHEMA), mode=mode, **options)


def catalog_file(tmp_path: Path, uri: str, **changes: Any) -> Path:
    """A catalog with one lake table of the contact form (config/policy.yaml's contact_form)."""
    spec = {
        "lake_table": {"uri": uri}, "primary_key": "id", "activity": "contact_form",
        "retention_clock": "last_interaction_at", "lawful_basis": "legitimate_interest",
        "subject": {"email": "email", "phone": "phone", "name": "name", "company": "company_name"},
        "on_expiry": "erase", "not_personal": ["submitted_at"],
        "columns": {"name": "contact_details", "email": "contact_details", "phone": "contact_details",
                    "company_name": "company_details",
                    "message": {"category": "case_details", "anonymise": "redact", "free_text": True}},
        **changes,
    }
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "defaults": {"connection": CONN}, "sources": {"lake_contacts": spec}}))
    return path


@pytest.fixture
def lake(tmp_path: Path) -> tuple[str, Catalog]:
    uri = str(tmp_path / "lake" / "contacts")
    write_table(uri, PEOPLE)
    return uri, load_catalog(catalog_file(tmp_path, uri), POLICY)


def local_backend() -> LakeBackend:
    """The backend of a Connection with nothing in it: a local table needs no storage options."""
    return lake_backend_of(ConnectionInfo(CONN, "fs"))


def scan(store: Any, run_id: str, **args: Any) -> Any:
    return store.scan(POLICY, hasher=SubjectHasher(b"test-secret-not-for-production-0123456789"), run_id=run_id,
                      logical_date=TODAY, **args)


def nightly(store: Any, tags: Any, run_id: str, day: date = TODAY) -> tuple[Any, Any]:
    source = store.source
    scanned = scan(store, run_id)
    register_run(tags, run_id, day, False)
    build_plan(tags, [source], run_id, day)
    enforced = enforce_source(source, summarise_plan(tags, source, run_id), source_engine=store, tag_engine=tags,
                              run_id=run_id, dry_run=False, confirmed=True)
    return scanned, enforced


def ids_in(uri: str, **options: Any) -> list[int]:
    return sorted(DeltaTable(uri, **options).to_pyarrow_table(columns=["id"]).column("id").to_pylist())


def tagged(tags: Any, source: str = "lake_contacts") -> set[str]:
    with tags.connect() as conn:
        return set(conn.execute(select(record_tag.c.record_key).where(record_tag.c.source == source)).scalars())


def local_files(uri: str) -> dict[str, str]:
    """Every file of a local table, log included, as text (Parquet bytes decoded loosely: values
    of string columns appear in them as they were written)."""
    out = {}
    for path in glob.glob(os.path.join(uri, "**", "*"), recursive=True):
        if os.path.isfile(path):
            out[os.path.relpath(path, uri)] = Path(path).read_bytes().decode("latin-1")
    return out


# -- catalog -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("changes", "key", "problem"), [
    ({"lake_table": {"uri": "lake/contacts"}}, "sources.lake_contacts.lake_table.uri", "absolute path"),
    ({"lake_table": {"uri": "/data/lake/../etc"}}, "sources.lake_contacts.lake_table.uri", "'..'"),
    ({"lake_table": {"uri": "s3://Bad_Bucket/t"}}, "sources.lake_contacts.lake_table.uri", "not a valid bucket name"),
    ({"lake_table": {"uri": "ftp://host/t"}}, "sources.lake_contacts.lake_table.uri", "give s3://bucket/path"),
    ({"lake_table": {"uri": "file://relative/t"}}, "sources.lake_contacts.lake_table.uri", "absolute path"),
    ({"lake_table": {"uri": "/"}}, "sources.lake_contacts.lake_table.uri", "below the root"),
    ({"lake_table": {}}, "sources.lake_contacts.lake_table.uri", "Field required"),
    ({"lake_table": {"uri": "/data/t", "format": "delta"}}, "sources.lake_contacts.lake_table.format", "Extra inputs"),
    ({"table": "contacts"}, "sources.lake_contacts", "exactly one of table"),
    ({"change_tracking": {"column": "submitted_at"}}, "sources.lake_contacts", "incrementally by Delta table version"),
])
def test_bad_lake_table_entries_name_file_key_and_problem(tmp_path: Path, changes: dict[str, Any], key: str,
                                                           problem: str) -> None:
    path = catalog_file(tmp_path, "/data/lake/contacts", **changes)
    with pytest.raises(CatalogError) as err:
        load_catalog(path, POLICY)
    assert err.value.key == key, str(err.value)
    assert problem in str(err.value) and str(path) in str(err.value)


def test_lake_table_uris_and_location(tmp_path: Path) -> None:
    for uri in ("/data/lake/contacts", "file:///data/lake/contacts/", "s3://lake-bucket/people/contacts"):
        catalog = load_catalog(catalog_file(tmp_path, uri), POLICY)
        source = catalog.source("lake_contacts")
        assert source.location == "lake_table" and source.lake_table is not None
        assert source.lake_table.uri == uri.rstrip("/")
    both = yaml.safe_load(catalog_file(tmp_path, "/data/t").read_text())
    both["sources"]["crm"] = {**both["sources"]["lake_contacts"], "table": "contacts"}
    del both["sources"]["crm"]["lake_table"]
    path = tmp_path / "mixed.yaml"
    path.write_text(yaml.safe_dump(both))
    with pytest.raises(CatalogError) as err:  # one Connection, one kind of client
        load_catalog(path, POLICY)
    assert err.value.key == "sources.lake_contacts.connection"  # the second of the two, in the file's order
    assert "also serves 'crm', a table source" in str(err.value) and "needs a Connection of its own" in str(err.value)


def test_backend_reads_an_aws_connection() -> None:
    conn = ConnectionInfo("lake", "aws", login="AKID", password="secret",
                          extra={"endpoint_url": "http://127.0.0.1:8333", "region_name": "eu-north-1",
                                 "delta_storage_options": {"timeout": "30s"}})
    options = lake_backend_of(conn).storage_options
    assert options == {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret",
                       "AWS_ENDPOINT_URL": "http://127.0.0.1:8333", "AWS_ALLOW_HTTP": "true",
                       "AWS_REGION": "eu-north-1", "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "false",
                       "aws_conditional_put": "etag", "timeout": "30s"}
    assert lake_backend_of(ConnectionInfo("local", "fs")).storage_options == {}  # a local table needs nothing


# -- scan --------------------------------------------------------------------------------------


def test_scan_tags_rows_and_indexes_identifiers_and_mentions(lake: Any, tag_db: Any, hasher: SubjectHasher) -> None:
    uri, catalog = lake
    tags = tag_db.tag_store()
    source = catalog.source("lake_contacts")
    store = open_store(source, backend_for(source, ConnectionInfo(CONN, "fs")), tags)
    assert isinstance(store, Store)

    stats = scan(store, "n1")

    assert (stats.mode, stats.full_reason, stats.records) == ("full", "first scan", 6)
    assert stats.tags == 6 * 3 and stats.schema_findings == []  # contact, company and case details per row
    assert tagged(tags) == {"1", "2", "3", "4", "5", "6"}
    with tags.connect() as conn:
        deadlines = dict(conn.execute(select(record_tag.c.record_key, record_tag.c.deadline).where(
            record_tag.c.category == "contact_details")).all())
    assert deadlines["1"] == date(2025, 6, 1) and deadlines["2"] == date(2028, 3, 1)
    anna = SubjectIdentifiers.parse({"email": "anna.berg@example.se"}, 2026).hashes(hasher, 2026)
    found = {(loc.record_key, loc.field, loc.free_text) for loc in locate(tags, anna)}
    assert found == {("1", "email", False), ("2", "message", True)}  # her own row, and Bo's message
    test_person = SubjectIdentifiers.parse({"phone": PHONE}, 2026).hashes(hasher, 2026)
    assert {(loc.record_key, loc.field) for loc in locate(tags, test_person)} == {("3", "phone"), ("4", "message")}

    # Nothing committed since: nothing read.
    again = scan(store, "n2")
    assert (again.mode, again.records) == ("incremental", 0)
    # Appends: only the new files are read.
    write_table(uri, [row(7, "Eva Holm", "eva@example.se", FRESH, "Ring 08-123 456 78")], mode="append")
    appended = scan(store, "n3")
    assert (appended.mode, appended.records, appended.deleted) == ("incremental", 1, 0)
    assert "7" in tagged(tags)
    # A producer's delete is not an append: the table is read in full and the row loses its tags.
    DeltaTable(uri).delete("id = 6")
    rescanned = scan(store, "n4")
    assert rescanned.mode == "full" and "DELETE at version" in rescanned.full_reason
    assert (rescanned.records, rescanned.deleted) == (6, 1)
    assert tagged(tags) == {"1", "2", "3", "4", "5", "7"}
    with tags.connect() as conn:
        assert conn.execute(select(func.count()).select_from(subject_ref).where(
            subject_ref.c.record_key == "6")).scalar() == 0
        mark = conn.execute(select(watermark.c.value).where(watermark.c.source == "lake_contacts")).scalar()
    assert mark == str(DeltaTable(uri).version())


def test_schema_drift_untaggable_rows_and_wrong_column_types(tmp_path: Path, tag_db: Any) -> None:
    tags = tag_db.tag_store()
    uri = str(tmp_path / "drift")
    rows = [{**r, "note": "x"} for r in PEOPLE[:2]] + [{**PEOPLE[2], "id": None, "note": None},
                                                       {**PEOPLE[3], "id": 2, "note": None}]
    write_deltalake(uri, pa.Table.from_pylist(rows, schema=SCHEMA.append(pa.field("note", pa.string()))))
    catalog = load_catalog(catalog_file(tmp_path, uri), POLICY)
    store = open_store(catalog.source("lake_contacts"), local_backend(), tags)
    stats = scan(store, "d1")
    assert stats.records == 2  # the row without a key and the one repeating key 2 are not tagged
    assert {(f["column"], f["finding"]) for f in stats.schema_findings} == {("note", "untagged_column"),
                                                                            ("id", "untagged_rows")}
    with tags.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema_finding)).scalar() == 2

    # A catalogued column gone: the source is blocked, its tags stay as they were.
    spec = yaml.safe_load(catalog_file(tmp_path, uri).read_text())
    spec["sources"]["lake_contacts"]["columns"]["ip_address"] = "contact_details"
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(spec))
    blocked = scan(open_store(load_catalog(tmp_path / "catalog.yaml", POLICY).source("lake_contacts"),
                              local_backend(), tags), "d2")
    assert blocked.mode == "blocked" and tagged(tags) == {"1", "2"}

    # The clock must be a date or timestamp column, the key an integer or string one.
    text_clock = str(tmp_path / "text_clock")
    write_deltalake(text_clock, pa.table({"id": [1], "name": ["A"], "email": ["a@x.se"], "phone": [None],
                                          "company_name": [None], "message": [None],
                                          "last_interaction_at": ["2026-01-01"], "submitted_at": [None]},
                                         schema=SCHEMA.set(6, pa.field("last_interaction_at", pa.string()))))
    path = catalog_file(tmp_path, text_clock)
    with pytest.raises(CatalogError) as err:
        scan(open_store(load_catalog(path, POLICY).source("lake_contacts"), local_backend(), tags), "d3")
    assert err.value.key == "sources.lake_contacts.retention_clock" and "not a date or timestamp" in str(err.value)
    with pytest.raises(CatalogError) as err:
        missing = load_catalog(catalog_file(tmp_path, str(tmp_path / "nothing-here")), POLICY).source("lake_contacts")
        scan(open_store(missing, local_backend(), tags), "d4")
    assert err.value.key == "sources.lake_contacts.lake_table.uri" and "no Delta table" in str(err.value)


# -- nightly expiry --------------------------------------------------------------------------------


def test_nightly_erases_exactly_the_expired_rows_and_no_older_version_keeps_them(lake: Any, tag_db: Any) -> None:
    uri, catalog = lake
    tags = tag_db.tag_store()
    store = open_store(catalog.source("lake_contacts"), local_backend(), tags)
    write_table(uri, [row(8, "Gustav Ek", "gustav@example.se", OLD)], mode="append")  # a second data file

    scanned, enforced = nightly(store, tags, "run-1")

    assert scanned.records == 7
    assert enforced.records_erased == 3 and enforced.rows_affected == 3
    assert ids_in(uri) == [2, 3, 4, 6]
    assert tagged(tags) == {"2", "3", "4", "6"}
    assert enforced.objects["files_removed"] == 2  # both files held expired rows; rewritten without them
    assert enforced.objects["log_files_removed"] >= 3 and enforced.objects["versions_removed"] == 0
    # Older versions are gone, data and log: time travel to them fails, and no file left holds them.
    with pytest.raises(Exception):
        DeltaTable(uri, version=0).to_pyarrow_table()
    leftovers = local_files(uri)
    # (Bo's kept message mentions Anna's address: her name and her own message are what must be gone.)
    for gone in ("Anna Berg", "Hej, ring mig!", "cecilia@example.se", "gustav@example.se", "Cecilia Lind"):
        assert not [name for name, text in leftovers.items() if gone in text], gone
    assert any("bo@example.se" in text for text in leftovers.values())  # what is kept is there
    history = DeltaTable(uri).history()
    assert all(h.get("lifecycle") for h in history)  # the log holds only the pipeline's purge
    assert DeltaTable(uri).metadata().configuration.get("delta.logRetentionDuration") == "interval 30 days"

    # The pipeline's own commits do not force a rescan: the tag store already knows them.
    after = scan(store, "run-2")
    assert (after.mode, after.records) == ("incremental", 0)
    # Enforcing the same plan again changes nothing and commits nothing.
    version = DeltaTable(uri).version()
    again = enforce_source(store.source, summarise_plan(tags, store.source, "run-1"), source_engine=store,
                           tag_engine=tags, run_id="run-1", dry_run=False, confirmed=True)
    assert again.batches == 0 and again.batches_skipped > 0 and DeltaTable(uri).version() == version
    assert store.erase(["1", "5"]).records == 0 and DeltaTable(uri).version() == version


def test_expired_rows_are_anonymised_in_place_where_the_catalog_says_so(tmp_path: Path, tag_db: Any) -> None:
    tags = tag_db.tag_store()
    uri = str(tmp_path / "anon")
    write_table(uri, PEOPLE)
    path = catalog_file(tmp_path, uri, on_expiry="anonymise", columns={
        "name": "contact_details", "phone": "contact_details",
        "email": {"category": "contact_details", "anonymise": "email_domain"},
        "company_name": {"category": "company_details", "anonymise": "keep"},
        "message": {"category": "case_details", "anonymise": "redact", "free_text": True}})
    store = open_store(load_catalog(path, POLICY).source("lake_contacts"), local_backend(), tags)

    _, enforced = nightly(store, tags, "run-anon")

    assert enforced.records_anonymised == 2
    rows = {r["id"]: r for r in DeltaTable(uri).to_pyarrow_table().to_pylist()}
    assert (rows[1]["name"], rows[1]["email"], rows[1]["message"], rows[1]["company_name"]) == \
        (None, "example.se", "[raderad]", "Exempel AB")
    assert (rows[5]["email"], rows[5]["message"]) == ("example.se", None)  # nothing to redact stays missing
    assert rows[2] == {**PEOPLE[1], "submitted_at": rows[2]["submitted_at"]}  # fresh rows untouched
    assert not [n for n, text in local_files(uri).items() if "Anna Berg" in text or "Hej, ring mig!" in text]
    with tags.connect() as conn:
        statuses = dict(conn.execute(select(record_tag.c.record_key, record_tag.c.status).where(
            record_tag.c.category == "contact_details")).all())
        indexed = set(conn.execute(select(subject_ref.c.record_key).where(subject_ref.c.field == "email")).scalars())
    assert statuses["1"] == statuses["5"] == "anonymised" and statuses["2"] == "active"
    assert "1" not in indexed and "2" in indexed


def test_string_keys_are_data_never_sql_text(tmp_path: Path, tag_db: Any) -> None:
    tags = tag_db.tag_store()
    uri = str(tmp_path / "strings")
    keys = ["o'hara", "x' OR '1'='1", 'q"uote', "a\\b", "plain"]
    write_deltalake(uri, pa.Table.from_pylist(
        [{**row(0, f"P {i}", f"p{i}@example.se", FRESH), "id": k} for i, k in enumerate(keys)],
        schema=SCHEMA.set(0, pa.field("id", pa.string()))))
    store = open_store(load_catalog(catalog_file(tmp_path, uri), POLICY).source("lake_contacts"), local_backend(), tags)
    assert store.erase(["x' OR '1'='1", "o'hara"]).records == 2
    assert sorted(DeltaTable(uri).to_pyarrow_table(columns=["id"]).column("id").to_pylist()) == ['a\\b', 'plain', 'q"uote']
    assert set(store.read(['q"uote', "nope"])) == {'q"uote'}
    assert store.anonymise(['a\\b'], ["email"]).records == 1
    assert store.read(['a\\b'])['a\\b']["email"] is None


# -- requests ----------------------------------------------------------------------------------------


def test_erasure_request_erases_the_person_redacts_the_mention_and_verifies(lake: Any, tag_db: Any,
                                                                          hasher: SubjectHasher, tmp_path: Path) -> None:
    uri, catalog = lake
    tags = tag_db.tag_store()
    lake_backend = local_backend()
    scan(open_store(catalog.source("lake_contacts"), lake_backend, tags), "n1")
    workspace = Workspace(POLICY, catalog, {CONN: lake_backend}, tags, hasher)
    ids = SubjectIdentifiers.parse({"email": EMAIL, "phone": PHONE}, TODAY.year)

    result = fulfil(SubjectRequest("DSR-L1", "erasure", ids, TODAY, dry_run=False), workspace,
                    report_dir=tmp_path / "reports", extract_dir=tmp_path / "x")

    assert result.verified
    assert result.summary["per_source"]["lake_contacts"] == {"erased": 1, "anonymised": 0, "held": 0, "redacted": 1,
                                                             "forwarded": 0}
    rows = {r["id"]: r for r in DeltaTable(uri).to_pyarrow_table().to_pylist()}
    assert 3 not in rows
    assert rows[4]["message"] == "Prata med min kollega [raderad] eller [raderad]."
    assert rows[4]["email"] == "annan@exempel.se"  # the other person stays
    for text in local_files(uri).values():
        assert "test.person@exempel.se" not in text and "0705551234" not in text and "555 12 34" not in text
    with pytest.raises(Exception):
        DeltaTable(uri, version=0).to_pyarrow_table()
    certificate = json.loads(result.documents.json.read_text())
    check = next(c for c in certificate["verification"]["sources"] if c["source"] == "lake_contacts")
    assert check["store"] == "lake_table" and check["status"] == "passed" and check["old_versions_left"] == 0
    assert check["identifier_columns"] == {"email": ["email"], "phone": ["phone"]}
    assert certificate["objects"]["lake_contacts"]["files_removed"] >= 2
    assert locate(tags, ids.hashes(hasher, TODAY.year)) == []


def test_verification_finds_what_old_versions_and_the_log_still_hold(lake: Any, tag_db: Any) -> None:
    """A producer deleted the person's row without vacuuming: the current rows are clean, but an
    older data file and the log's statistics still hold the person; verification says so."""
    uri, catalog = lake
    store = open_store(catalog.source("lake_contacts"), local_backend(), tag_db.tag_store())
    write_table(uri, [row(9, "Zelda Ö", "zelda@example.se", FRESH)], mode="append")  # a file of her own
    probe = Probe.of(SubjectIdentifiers.parse({"email": "zelda@example.se"}, 2026), 2026)
    assert store.find(probe, set()).records_found == 1
    DeltaTable(uri).delete("id = 9")
    check = store.find(probe, set())
    # Her file, no longer in the current version, and the statistics (min = max = her address)
    # of the commit that appended it.
    assert (check.records_found, check.old_versions_left) == (0, 2)
    assert store.erase(["9"]).records == 0  # nothing left to delete, but the purge runs
    assert store.find(probe, set()).old_versions_left == 0
    # Bo's message mentions Anna: a record that holds a person in free text is found too.
    anna = Probe.of(SubjectIdentifiers.parse({"email": "anna.berg@example.se"}, 2026), 2026)
    assert store.find(anna, {("lake_contacts", "1")}).records_found == 1


def test_verification_finds_every_writing_and_a_mention_left_only_in_an_older_file(lake: Any, tag_db: Any) -> None:
    """Arrow picks the rows and Python confirms them: every row record_holds accepts is found,
    whatever the case, separators or characters Arrow's kernels fold differently; and a data file
    only an older version has counts when the person is only in its free text."""
    uri, catalog = lake
    source = catalog.source("lake_contacts")
    store = open_store(source, local_backend(), tag_db.tag_store())
    write_table(uri, [
        row(20, "Ann Ek", " TEST.PERSON@exempel.SE ", FRESH),
        row(21, "Åsa Öst", "asa@exempel.se", FRESH, phone="+46 (0)70-555 12 34"),
        row(23, "Per Ny", "per@exempel.se", FRESH, "070-555 12 345 och xtest.person@exempel.se är andras."),
        row(24, "Strauß", "s@exempel.se", FRESH, "Mejla fılip@exempel.se (med ı)."),
        row(25, "Obi", "obi@exempel.se", FRESH, "Skriv till test.person (at) exempel (dot) se eller 070*555*12*34."),
        row(27, "Fia", "fia@exempel.se", FRESH, "Ring \uff10\uff17\uff10-\uff15\uff15\uff15 \uff11\uff12 \uff13\uff14."),
        row(28, "Gun", "gun@exempel.se", FRESH, "Mejla &#116;est.person&#64;exempel.se eller t\u0435st.p\u0435rson@exempel.se."),
    ], mode="append")
    write_table(uri, [row(22, "Eva Al", "eva@exempel.se", FRESH, "Ring 0046 70 555 12 34 eller Test.Person@EXEMPEL.se."),
                      row(26, "Ola Berg", "ola@exempel.se", FRESH, "Inget om någon.")], mode="append")
    her = Probe.of(SubjectIdentifiers.parse({"email": EMAIL, "phone": PHONE}, 2026), 2026)
    others = [Probe(email="filip@exempel.se"), Probe(name="strauss", company="exempel ab"),
              Probe(phone_national="705551234"), Probe(email="per@exempel.se", personnummer="198112189876")]
    rows = DeltaTable(uri).to_pyarrow_table().to_pylist()
    for probe in [her, *others]:  # the same hits as record_holds over every row
        assert store.find(probe, set()).records_found == sum(record_holds(r, source, probe) for r in rows), probe
    assert store.find(her, set()).records_found == 8  # 3, 4, 20, 21, 22 and the writings 25, 27, 28; not 23
    assert store.find(others[0], set()).records_found == 1 and store.find(others[1], set()).records_found == 1

    DeltaTable(uri).delete("id = 22")  # a producer's delete: her mention stays in the older file
    allowed = {("lake_contacts", "20")}  # a record allowed to keep her: the log is not searched
    check = store.find(her, allowed)
    assert (check.records_found, check.old_versions_left) == (6, 1)  # 3, 4, 21, 25, 27, 28 (20 may keep her)
    assert store.erase(["22"]).records == 0  # the purge vacuums the file
    assert store.find(her, allowed).old_versions_left == 0


def test_rectification_and_access_extract_reach_rows_of_a_lake_table(lake: Any, tag_db: Any, hasher: SubjectHasher,
                                                                     tmp_path: Path) -> None:
    uri, catalog = lake
    tags = tag_db.tag_store()
    scan(open_store(catalog.source("lake_contacts"), local_backend(), tags), "n1")
    workspace = Workspace(POLICY, catalog, {CONN: local_backend()}, tags, hasher)
    ids = SubjectIdentifiers.parse({"email": "bo@example.se"}, TODAY.year)
    access = fulfil(SubjectRequest("DSR-A", "access", ids, TODAY, dry_run=False), workspace,
                    report_dir=tmp_path / "reports", extract_dir=tmp_path / "x")
    assert access.summary["records"] == 1
    fix = fulfil(SubjectRequest("DSR-R", "rectification", ids, TODAY, dry_run=False, rectify_field="email",
                                new_value="bo.ek@example.se"), workspace, report_dir=tmp_path / "reports",
                 extract_dir=tmp_path / "x")
    assert fix.summary["per_source"] == {"lake_contacts": 1}
    assert Store(catalog.source("lake_contacts"), local_backend(), tags).read(["2"])["2"]["email"] == "bo.ek@example.se"
    assert not [n for n, text in local_files(uri).items() if "bo@example.se" in text]
    new = SubjectIdentifiers.parse({"email": "bo.ek@example.se"}, 2026).hashes(hasher, 2026)
    assert [loc.record_key for loc in locate(tags, new)] == ["2"]


# -- S3 ----------------------------------------------------------------------------------------------


def test_a_lake_table_on_s3_is_scanned_expired_and_erased_with_no_version_left(
        s3_server: Any, object_store: Any, bucket: str, prefix: str, tag_db: Any, hasher: SubjectHasher,
        tmp_path: Path) -> None:
    from tests.s3server import ACCESS_KEY, SECRET_KEY

    tags = tag_db.tag_store()
    uri = f"s3://{bucket}/{prefix}lake/contacts"
    lake_backend = lake_backend_of(ConnectionInfo(CONN, "aws", login=ACCESS_KEY, password=SECRET_KEY,
                                          extra={"endpoint_url": s3_server.endpoint_url}))
    write_table(uri, PEOPLE, storage_options=lake_backend.storage_options)
    write_table(uri, [row(8, "Gustav Ek", "gustav@example.se", OLD)], mode="append",
                storage_options=lake_backend.storage_options)
    catalog = load_catalog(catalog_file(tmp_path, uri), POLICY)
    store = open_store(catalog.source("lake_contacts"), lake_backend, tags)

    scanned, enforced = nightly(store, tags, "s3-1")

    assert scanned.records == 7 and enforced.records_erased == 3
    assert ids_in(uri, storage_options=lake_backend.storage_options) == [2, 3, 4, 6]
    assert enforced.objects["versions_removed"] > 0  # vacuumed files and log entries kept as noncurrent versions
    listing = object_store.client.list_object_versions(Bucket=bucket, Prefix=f"{prefix}lake/contacts/")
    assert [v["Key"] for v in listing.get("Versions", []) if not v["IsLatest"]] == []
    assert listing.get("DeleteMarkers", []) == []
    for obj in listing["Versions"]:  # what is left holds nothing of the expired people
        body = object_store.client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode("latin-1")
        assert "Anna Berg" not in body and "gustav@example.se" not in body, obj["Key"]

    workspace = Workspace(POLICY, catalog, {CONN: lake_backend}, tags, hasher)
    ids = SubjectIdentifiers.parse({"email": EMAIL, "phone": PHONE}, TODAY.year)
    result = fulfil(SubjectRequest("DSR-S3", "erasure", ids, TODAY, dry_run=False), workspace,
                    report_dir=tmp_path / "reports", extract_dir=tmp_path / "x")
    assert result.verified
    rows = {r["id"]: r for r in DeltaTable(uri, storage_options=lake_backend.storage_options).to_pyarrow_table().to_pylist()}
    assert sorted(rows) == [2, 4, 6] and rows[4]["message"] == "Prata med min kollega [raderad] eller [raderad]."
    listing = object_store.client.list_object_versions(Bucket=bucket, Prefix=f"{prefix}lake/contacts/")
    assert [v for v in listing.get("Versions", []) if not v["IsLatest"]] == [] and not listing.get("DeleteMarkers")


def test_change_data_feed_copies_of_erased_rows_are_removed_too(tmp_path: Path, tag_db: Any) -> None:
    """With the change data feed on, Delta keeps the rows a MERGE deleted, as they were, under
    _change_data/: the erasure's own commit would copy what it erases."""
    tags = tag_db.tag_store()
    uri = str(tmp_path / "cdf")
    write_table(uri, PEOPLE, configuration={"delta.enableChangeDataFeed": "true"})
    store = open_store(load_catalog(catalog_file(tmp_path, uri), POLICY).source("lake_contacts"), local_backend(), tags)
    _, enforced = nightly(store, tags, "run-cdf")
    assert enforced.records_erased == 2 and ids_in(uri) == [2, 3, 4, 6]
    leftovers = local_files(uri)
    assert not [name for name, text in leftovers.items() if "Cecilia Lind" in text or "Hej, ring mig!" in text]
    assert not [name for name in leftovers if name.startswith("_change_data")]
    assert DeltaTable(uri).metadata().configuration["delta.enableChangeDataFeed"] == "true"  # left as it was


def test_a_crash_between_the_merge_and_the_purge_is_finished_by_the_rerun(lake: Any, tag_db: Any,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    uri, catalog = lake
    tags = tag_db.tag_store()
    store = open_store(catalog.source("lake_contacts"), local_backend(), tags)
    scan(store, "crash")
    register_run(tags, "crash", TODAY, False)
    build_plan(tags, [store.source], "crash", TODAY)
    plan = summarise_plan(tags, store.source, "crash")

    def die(self: Any, dt: Any) -> int:
        raise RuntimeError("killed between the MERGE and the log clean-up")

    with monkeypatch.context() as patch:
        patch.setattr(Store, "_clean_log", die)
        with pytest.raises(RuntimeError, match="killed"):
            enforce_source(store.source, plan, source_engine=store, tag_engine=tags, run_id="crash", dry_run=False,
                           confirmed=True)
    assert ids_in(uri) == [2, 3, 4, 6]
    files = local_files(uri)
    # The old data files were vacuumed before the crash; the log still holds their statistics.
    assert not [n for n, text in files.items() if not n.startswith("_delta_log") and "Hej, ring mig!" in text]
    assert [n for n, text in files.items() if n.startswith("_delta_log") and "Anna Berg" in text]

    done = enforce_source(store.source, plan, source_engine=store, tag_engine=tags, run_id="crash", dry_run=False,
                          confirmed=True)
    assert done.records_erased == 2 and done.rows_affected == 0  # nothing left to delete: only the purge
    assert done.objects["log_files_removed"] >= 2
    assert not [name for name, text in local_files(uri).items() if "Anna Berg" in text or "Cecilia Lind" in text]
    assert tagged(tags) == {"2", "3", "4", "6"}
