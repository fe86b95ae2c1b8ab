"""Sources on MariaDB (MySQL): scan and tag, nightly enforcement, erasure requests, the access
extract and independent verification against the real server, compared record for record with
the same demo company on SQLite. The tag store stays on SQLite or PostgreSQL.

Needs MariaDB at 127.0.0.1:3306 (user root, database `test`; .ci/run starts it): each test gets
a fresh database of its own and fails, never skips, when the server does not answer.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, MetaData, Table, bindparam, event, inspect, make_url, select, text

from lifecycle.tagstore import db as lifecycle_db
from lifecycle.config.catalog import Catalog, dependency_order, load_catalog
from lifecycle.tagstore.db import lock_source, make_engine, open_tag_store
from demo.company import generate
from lifecycle.enforcement.enforce import enforce_source
from lifecycle.errors import CatalogError, RequestNotVerifiedError
from lifecycle.rights.dispatcher import SubjectRequest, Workspace, fulfil
from lifecycle.discovery.identifiers import SubjectHasher
from lifecycle.enforcement.plan import build_plan, inherit_parent_clocks, reference_pairs, register_run, summarise_plan
from lifecycle.config.policy import load_policy
from lifecycle.rights.requests import SubjectIdentifiers
from lifecycle.discovery.scan import scan_source
from lifecycle.tagstore.sqlfiles import load_sql, statement
from lifecycle.tagstore.tables import record_tag, subject_ref
from tests.conftest import PG_URL, ROOT, TEST_SECRET
from tests.request_world import EMAIL, PHONE, TODAY, World, erase, insert, prepare, scan_all

ROWS, SEED = 120, 11


def _hasher() -> SubjectHasher:
    return SubjectHasher(TEST_SECRET.encode())


def _mariadb_dialect_url(url: str) -> str:
    """The same database through SQLAlchemy's ``mariadb`` dialect name (mariadb+pymysql://)."""
    return make_url(url).set(drivername="mariadb+pymysql").render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def tag_url(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    """The tag store of the MariaDB sources: a SQLite file, or a schema of PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tags-mariadb.db'}", None
    return PG_URL, request.getfixturevalue("pg_schema")


class Twin:
    """The demo company once on MariaDB and once on SQLite, each with a tag store of its own."""

    def __init__(self, mariadb: str, tag_url: tuple[str, str | None], tmp_path: Path) -> None:
        # tool_users anonymised on expiry rather than erased, so that every anonymisation
        # strategy runs as SQL: null, the e-mail's domain (include/sql/mysql/email_domain.sql).
        data = yaml.safe_load((ROOT / "config" / "catalog.yaml").read_text())
        data["sources"]["tool_users"]["on_expiry"] = "anonymise"
        (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
        self.policy = load_policy(ROOT / "config" / "policy.yaml")
        self.catalog = load_catalog(tmp_path / "catalog.yaml", self.policy)
        self.sides: dict[str, tuple[Engine, Engine]] = {}
        for name, url, tags in (("mariadb", mariadb, tag_url),
                                ("sqlite", f"sqlite:///{tmp_path / 'source.db'}", (f"sqlite:///{tmp_path / 'tags.db'}", None))):
            generate(url, rows=ROWS, seed=SEED, as_of=TODAY)
            self.sides[name] = (make_engine(url), open_tag_store(tags[0], schema=tags[1]))

    def scan(self, run_id: str) -> dict[str, dict[str, dict[str, Any]]]:
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for name, (engine, tags) in self.sides.items():
            out[name] = {s.name: scan_source(s, self.policy, source_engine=engine, tag_engine=tags, hasher=_hasher(),
                                             run_id=run_id, logical_date=TODAY).to_dict()
                         for s in self.catalog.sources.values()}
        return out

    def tags(self, name: str) -> set[tuple[Any, ...]]:
        _, tags = self.sides[name]
        c = record_tag.c
        with tags.connect() as conn:
            return {tuple(r) for r in conn.execute(select(c.source, c.record_key, c.category, c.lawful_basis, c.deadline,
                                                          c.status))}

    def refs(self, name: str) -> set[tuple[Any, ...]]:
        _, tags = self.sides[name]
        c = subject_ref.c
        with tags.connect() as conn:
            return {tuple(r) for r in conn.execute(select(c.subject_hash, c.source, c.record_key, c.field, c.kind,
                                                          c.category, c.free_text))}

    def rows(self, name: str) -> dict[str, list[tuple[Any, ...]]]:
        engine, _ = self.sides[name]
        return _table_rows(engine, self.catalog)


def _table_rows(engine: Engine, catalog: Catalog) -> dict[str, list[tuple[Any, ...]]]:
    """Every catalogued table row by row, values as text (None stays None)."""
    out = {}
    with engine.connect() as conn:
        for source in catalog.sources.values():
            t = Table(source.table, MetaData(), autoload_with=engine)
            out[source.table] = [tuple(None if v is None else str(v) for v in r)
                                 for r in conn.execute(select(t).order_by(t.c[source.primary_key]))]
    return out


@pytest.fixture
def twin(mariadb: str, tag_url: tuple[str, str | None], tmp_path: Path) -> Twin:
    return Twin(mariadb, tag_url, tmp_path)


def _comparable(stats: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in stats.items() if k != "seconds"}


# -- 1. scan and tag ------------------------------------------------------------------------------


def test_scan_tags_every_record_as_on_sqlite(twin: Twin) -> None:
    stats = twin.scan("n1")
    assert {n: _comparable(s) for n, s in stats["mariadb"].items()} == \
        {n: _comparable(s) for n, s in stats["sqlite"].items()}
    tags = twin.tags("mariadb")
    assert tags == twin.tags("sqlite")
    assert len(tags) > 1000 and {t[5] for t in tags} >= {"active", "violation"}
    assert twin.refs("mariadb") == twin.refs("sqlite")  # the same identifiers, free text included

    # The next night: one row changed, one deleted, on both sides; the scan reads from the
    # watermark (a DATETIME on MariaDB) and finds the deletion.
    for engine, _ in twin.sides.values():
        with engine.begin() as conn:
            conn.execute(text("UPDATE newsletter_subscribers SET email = 'ny.adress@exempel.se', "
                              "updated_at = :t WHERE id = 3"), {"t": datetime(2026, 11, 24, 12)})
            conn.execute(text("DELETE FROM newsletter_subscribers WHERE id = 5"))
    policy, catalog = twin.policy, twin.catalog
    again = {name: scan_source(catalog.source("newsletter_subscribers"), policy, source_engine=engine, tag_engine=tags,
                               hasher=_hasher(), run_id="n2", logical_date=TODAY).to_dict()
             for name, (engine, tags) in twin.sides.items()}
    assert again["mariadb"]["mode"] == "incremental" and again["mariadb"]["records"] == 1
    assert again["mariadb"]["deleted"] == 1
    assert _comparable(again["mariadb"]) == _comparable(again["sqlite"])
    assert twin.tags("mariadb") == twin.tags("sqlite") and twin.refs("mariadb") == twin.refs("sqlite")


# -- 2. the nightly plan and enforcement -----------------------------------------------------------


def _night(twin: Twin, name: str, run_id: str) -> dict[str, dict[str, Any]]:
    engine, tags = twin.sides[name]
    names = [n for group in dependency_order(twin.catalog) for n in group]  # children first, as the DAG runs them
    sources = [twin.catalog.source(n) for n in names]
    register_run(tags, run_id, TODAY, False)
    marketing = tuple(n for n, a in twin.policy.activities.items() if a.direct_marketing and a.role == "controller")
    inherit_parent_clocks(tags, twin.catalog, names)
    build_plan(tags, sources, run_id, TODAY, marketing, reference_pairs(twin.catalog, names))
    return {s.name: _comparable(enforce_source(s, summarise_plan(tags, s, run_id), source_engine=engine, tag_engine=tags,
                                               run_id=run_id, dry_run=False, confirmed=True, hasher=_hasher(),
                                               year=TODAY.year).to_dict())
            for s in sources}


def test_nightly_enforcement_erases_and_anonymises_the_same_records_as_on_sqlite(twin: Twin) -> None:
    twin.scan("n1")
    before = twin.rows("mariadb")
    assert before == twin.rows("sqlite")  # the same company on both
    stats = {name: _night(twin, name, "night-1") for name in twin.sides}
    assert stats["mariadb"] == stats["sqlite"]
    total = lambda key: sum(s[key] for s in stats["mariadb"].values())  # noqa: E731
    assert total("records_erased") > 50 and total("fields_anonymised") > 10 and total("violations_restricted") > 0
    after = twin.rows("mariadb")
    assert after == twin.rows("sqlite")  # row by row, MariaDB as SQLite
    assert sum(map(len, after.values())) < sum(map(len, before.values()))
    assert twin.tags("mariadb") == twin.tags("sqlite") and twin.refs("mariadb") == twin.refs("sqlite")

    # The anonymisation strategies ran as MySQL SQL: null and the e-mail's domain.
    columns = [c["name"] for c in inspect(twin.sides["mariadb"][0]).get_columns("tool_users")]
    old = {r[0]: dict(zip(columns, r)) for r in before["tool_users"]}
    new = {r[0]: dict(zip(columns, r)) for r in after["tool_users"]}
    domains = [k for k in new if new[k]["user_email"] != old[k]["user_email"]]
    assert domains and all(new[k]["user_email"] == old[k]["user_email"].split("@", 1)[1] for k in domains)
    assert all(new[k]["user_name"] is None for k in domains)

    # A re-run of the same night finds every batch done and changes nothing.
    again = _night(twin, "mariadb", "night-1")
    assert all(s["batches"] == 0 for s in again.values()) and twin.rows("mariadb") == after


# -- 3. requests: erasure, access extract, independent verification --------------------------------


@pytest.fixture
def world(mariadb: str, tag_url: tuple[str, str | None], tmp_path: Path) -> World:
    """The request world of tests/request_world.py with its sources on MariaDB, through the
    ``mariadb`` dialect name (mariadb+pymysql://): every statement falls back to include/sql/mysql."""
    w = World(_mariadb_dialect_url(mariadb), None, tag_url[0], tag_url[1], str(tmp_path / "reports"))
    prepare(w)
    return w


def _row(world: World, table: str, key: int) -> dict[str, Any] | None:
    engine, _ = world.engines()
    t = Table(table, MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        row = conn.execute(select(t).where(t.c.id == key)).mappings().first()
    return dict(row) if row is not None else None


def _request(world: World, reference: str, request_type: str, **identifiers: str) -> Any:
    engine, tags = world.engines()
    policy, catalog = world.config()
    ids = SubjectIdentifiers.parse(identifiers or {"email": EMAIL, "phone": PHONE}, TODAY.year)
    workspace = Workspace(policy, catalog, {"lifecycle_demo": engine}, tags, world.hasher())
    return fulfil(SubjectRequest(reference, request_type, ids, TODAY, dry_run=False), workspace,  # type: ignore[arg-type]
                  report_dir=Path(world.report_dir), extract_dir=Path(world.report_dir) / "extracts")


def test_erasure_request_on_mariadb_is_verified(world: World) -> None:
    engine, tags = world.engines()
    assert engine.dialect.name == "mariadb"

    access = _request(world, "DSR-A", "access")
    extract = json.loads(access.documents.json.read_text())
    assert {g["activity"] for g in extract["groups"]} == {"newsletter", "customers", "bookkeeping", "advertising_audiences"}
    assert [{k: m[k] for k in ("activity", "category", "count")} for m in extract["mentions"]] == [
        {"activity": "contact_form", "category": "case_details", "count": 2}]
    assert "test.person@exempel.se" in access.documents.json.read_text()

    result = erase(world)
    assert result.verified is True
    assert _row(world, "newsletter_subscribers", 9001) is None and _row(world, "customers", 9001) is None
    invoice = _row(world, "invoices", 9001)  # BFL: the books kept, the contact anonymised, the record held
    assert invoice is not None and invoice["buyer_org_number"] == "556898-9718" and str(invoice["amount_sek"]) == "1000.00"
    assert invoice["contact_name"] is None and invoice["contact_email"] is None and invoice["contact_phone"] is None
    mention = _row(world, "contact_form_submissions", 9001)
    assert mention is not None and mention["email"] == "annan@exempel.se"
    assert mention["message"] == "Hej! Prata med min kollega [raderad] eller [raderad] om offerten."
    assert _row(world, "ad_audiences", 9001)["email"] == "test.person@exempel.se"  # type: ignore[index]  # forwarded
    with tags.connect() as conn:
        statuses = dict(conn.execute(select(record_tag.c.category, record_tag.c.status).where(
            record_tag.c.source == "invoices", record_tag.c.record_key == "9001")).all())
    assert statuses == {"accounting_records": "held", "contact_details": "anonymised"}
    certificate = json.loads(result.documents.json.read_text())
    assert certificate["verified"] is True and certificate["held"][0]["lapses_on"] == "2031-12-31"
    checks = {c["source"]: c for c in certificate["verification"]["sources"]}
    assert checks["contact_form_submissions"]["free_text_kinds"] == ["email", "phone"]
    assert all(c["status"] == "passed" for c in checks.values())

    # The person comes back in someone else's message: the nightly run redacts the mention.
    insert(engine, "contact_form_submissions", dict(
        id=9003, submitted_at=datetime(2026, 11, 24, 9), last_interaction_at=date(2026, 11, 24), name="Fjärde Person",
        email="fjarde@exempel.se", message=f"Skriv till {EMAIL} om fakturan.", message_basis="consent",
        updated_at=datetime(2026, 11, 24, 9)))
    scan_all(world, run_id="n2")
    policy, catalog = world.config()
    source = catalog.source("contact_form_submissions")
    register_run(tags, "night-2", TODAY, False)
    build_plan(tags, [source], "night-2", TODAY)
    stats = enforce_source(source, summarise_plan(tags, source, "night-2"), source_engine=engine, tag_engine=tags,
                           run_id="night-2", dry_run=False, confirmed=True, hasher=world.hasher(), year=TODAY.year)
    assert stats.mentions_redacted == 1
    assert _row(world, "contact_form_submissions", 9003)["message"] == "Skriv till [raderad] om fakturan."  # type: ignore[index]


def test_verification_asks_mariadb_itself(world: World) -> None:
    """Rows the index has never seen: an e-mail in another case and with spaces, a phone written
    with dots, and with a no-break space and an en dash, in free text (found by the text without
    its separators: include/sql/mysql/digits.sql)."""
    engine, _ = world.engines()
    insert(engine, "newsletter_subscribers", dict(id=9002, subscribed_at=date(2026, 11, 20), last_confirmed_at=None,
                                                  name="Test Person", email=" Test.Person@exempel.SE ",
                                                  updated_at=datetime(2026, 11, 20)))
    insert(engine, "contact_form_submissions", dict(
        id=9002, submitted_at=datetime(2026, 11, 20), last_interaction_at=date(2026, 11, 20), name="Tredje Person",
        email="tredje@exempel.se", message="Ring honom på 070.555.12.34 i morgon.", message_basis="consent",
        updated_at=datetime(2026, 11, 20)))
    insert(engine, "contact_form_submissions", dict(  # a no-break space and an en dash inside the number
        id=9004, submitted_at=datetime(2026, 11, 20), last_interaction_at=date(2026, 11, 20), name="Femte Person",
        email="femte@exempel.se", message="Hans nummer: 070\u00a0555\u201312 34.", message_basis="consent",
        updated_at=datetime(2026, 11, 20)))
    with pytest.raises(RequestNotVerifiedError) as failed:
        erase(world)
    certificate = json.loads(failed.value.documents.json.read_text())  # type: ignore[attr-defined]
    checks = {c["source"]: c for c in certificate["verification"]["sources"]}
    assert checks["newsletter_subscribers"]["status"] == "failed" and checks["newsletter_subscribers"]["records_found"] == 1
    assert checks["contact_form_submissions"]["status"] == "failed"
    assert checks["contact_form_submissions"]["records_found"] == 2
    assert checks["customers"]["status"] == "passed" and certificate["verification"]["index"]["passed"] is True


# -- 4. identifiers ---------------------------------------------------------------------------------


def test_sql_in_a_catalog_identifier_is_refused_before_mariadb_is_touched(mariadb: str, tmp_path: Path) -> None:
    generate(mariadb, rows=20, seed=3, as_of=TODAY)
    engine = make_engine(mariadb)
    executed: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: executed.append(args[2]))
    data = yaml.safe_load((ROOT / "config" / "catalog.yaml").read_text())
    for mutate in (lambda s: s["tool_users"].update(table="tool_users; DROP TABLE customers"),
                   lambda s: s["tool_users"].update(table="tool_users`; DROP TABLE customers; -- "),
                   lambda s: s["customers"].update(primary_key="id` OR 1=1 -- "),
                   lambda s: s["tool_users"]["columns"].update({"user_name`=NULL, `plan": "contact_details"})):
        mutated = yaml.safe_load(yaml.safe_dump(data))
        mutate(mutated["sources"])
        path = tmp_path / "catalog.yaml"
        path.write_text(yaml.safe_dump(mutated, allow_unicode=True))
        with pytest.raises(CatalogError, match="not a plain SQL identifier"):
            load_catalog(path, load_policy(ROOT / "config" / "policy.yaml"))
    assert executed == []  # nothing reached the server
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM customers")).scalar() == 5
    # What the catalog does let through is quoted by MySQL's own preparer: reserved words work.
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE `order` (`key` INTEGER PRIMARY KEY, `select` VARCHAR(20))"))
        conn.execute(text("INSERT INTO `order` VALUES (1, 'a'), (2, 'b')"))
    stmt = statement(engine, "erase_records", table="order", primary_key="key")
    assert str(stmt).startswith("DELETE FROM `order` WHERE `key` IN")
    with engine.begin() as conn:
        assert conn.execute(stmt.bindparams(bindparam("keys", expanding=True)), {"keys": [1]}).rowcount == 1


# -- connections, dialect names and the writer lock ---------------------------------------------------


def test_a_mysql_connection_becomes_a_pymysql_engine(mariadb: str) -> None:
    from lifecycle_airflow.runtime import url_of

    database = make_url(mariadb).database
    conn = SimpleNamespace(conn_type="mysql", host="127.0.0.1", port=None, login="root", password=None,
                           schema=database, extra_dejson={})
    url, schema = url_of(conn, "crm")
    assert (url, schema) == (f"mysql+pymysql://root@127.0.0.1:3306/{database}?charset=utf8mb4", None)
    engine = make_engine(url)
    with engine.connect() as conn_:
        row = conn_.execute(text("SELECT DATABASE(), @@character_set_connection, @@session.net_write_timeout")).one()
    assert tuple(row) == (database, "utf8mb4", lifecycle_db.MYSQL_NET_WRITE_TIMEOUT)
    secret = SimpleNamespace(**{**conn.__dict__, "password": "p@ss:w/rd?"})
    assert make_url(url_of(secret, "crm")[0]).password == "p@ss:w/rd?"
    with pytest.raises(ValueError, match="names its database in schema"):
        url_of(SimpleNamespace(**{**conn.__dict__, "schema": None}), "crm")
    # A schema, on MySQL, is a database: the demo lands in this test's database through the
    # server's default one, as an Airflow Connection's search_path would point a source there.
    server_default = make_url(mariadb).set(database="test").render_as_string(hide_password=False)
    assert generate(server_default, rows=8, seed=1, as_of=TODAY, schema=database)["customers"] == 4
    with engine.connect() as conn_:
        assert conn_.execute(text("SELECT COUNT(*) FROM customers")).scalar() == 4
    with pytest.raises(ValueError, match="not a plain SQL identifier"):
        make_engine(server_default, schema="test`; DROP DATABASE test; --")
    # Both dialect names SQLAlchemy gives the server read the MySQL statements.
    assert load_sql("digits", "mariadb") == load_sql("digits", "mysql")
    assert make_engine(_mariadb_dialect_url(mariadb)).dialect.name == "mariadb"


def test_writers_of_one_source_are_serialised(mariadb: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """GET_LOCK per source, held from inside the transaction until the connection goes back to
    the pool; a second writer waits, and gives up with an error naming the source."""
    engine = make_engine(mariadb)
    monkeypatch.setattr(lifecycle_db, "MYSQL_LOCK_TIMEOUT", 1)
    first = engine.connect()
    first.begin()
    lock_source(first, "invoices")
    with pytest.raises(TimeoutError, match="'invoices'"):
        with engine.begin() as second:
            lock_source(second, "invoices")
    with engine.begin() as other:
        lock_source(other, "customers")  # another source is not held up
    got: list[float] = []

    def writer() -> None:
        monkeypatch.setattr(lifecycle_db, "MYSQL_LOCK_TIMEOUT", 30)
        started = time.monotonic()
        with engine.begin() as conn:
            lock_source(conn, "invoices")
        got.append(time.monotonic() - started)

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(0.5)
    assert not got  # still waiting
    first.commit()
    first.close()  # back to the pool: the lock goes
    thread.join(10)
    assert got and got[0] >= 0.4
