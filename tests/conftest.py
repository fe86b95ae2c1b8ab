"""Shared fixtures: every SQL path runs on SQLite and on the real PostgreSQL server (and, for
sources, on the real MariaDB server: tests/test_mariadb.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from lifecycle.tagstore.db import make_engine, open_tag_store
from lifecycle.discovery.identifiers import SubjectHasher

ROOT = Path(__file__).resolve().parents[1]
TEST_SECRET = "test-secret-not-for-production-0123456789"

# Airflow reads its configuration on first import: give the tests a home of their own unless
# scripts/test.sh already did.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="lifecycle-airflow-"))
os.environ.setdefault("LIFECYCLE_HOME", tempfile.mkdtemp(prefix="lifecycle-home-"))
os.environ.setdefault("LIFECYCLE_HASH_SECRET", TEST_SECRET)
# dag.test() cannot answer a four-eyes approval (it waits for one): off unless a test turns it on.
os.environ.setdefault("LIFECYCLE_FOUR_EYES", "off")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")

PG_URL = os.environ.get("LIFECYCLE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MARIADB_URL = os.environ.get("LIFECYCLE_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4")

@dataclass(frozen=True)
class Database:
    """One database under test: a SQLite file, or a fresh schema in PostgreSQL."""

    kind: str
    url: str
    schema: str | None

    def engine(self) -> Engine:
        return make_engine(self.url, schema=self.schema)

    def tag_store(self) -> Engine:
        return open_tag_store(self.url, schema=self.schema)

    def airflow_conn(self) -> str:
        """The JSON form of an Airflow Connection for AIRFLOW_CONN_<ID>."""
        import json

        extra = {"sqlalchemy_url": self.url}
        if self.schema:
            extra["search_path"] = self.schema
        return json.dumps({"conn_type": "generic", "extra": extra})


def _pg_available() -> None:
    try:
        with create_engine(PG_URL).connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"PostgreSQL is required at {PG_URL} and did not answer: {e}. Start it (see .ci/run).", pytrace=False)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    _pg_available()
    schema = f"lc_test_{uuid.uuid4().hex[:10]}"
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield schema
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def _mariadb_available() -> None:
    engine = create_engine(MARIADB_URL)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"MariaDB is required at {MARIADB_URL} and did not answer: {e}. Start it (see .ci/run).",
                    pytrace=False)
    finally:
        engine.dispose()


@pytest.fixture
def mariadb() -> Iterator[str]:
    """The URL of a fresh database on the MariaDB server (``lc_test_<id>``), dropped afterwards."""
    from sqlalchemy import make_url

    from lifecycle.tagstore import db as lifecycle_db
    _mariadb_available()
    name = f"lc_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(MARIADB_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    url = make_url(MARIADB_URL).set(database=name)
    yield url.render_as_string(hide_password=False)
    for key, engine in list(lifecycle_db._ENGINES.items()):  # pools of the dropped database
        if make_url(key[1]).database == name or key[2] == name:
            engine.dispose()
            del lifecycle_db._ENGINES[key]
    with admin.begin() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    admin.dispose()


def _database(kind: str, tmp_path: Path, request: pytest.FixtureRequest, name: str) -> Database:
    if kind == "sqlite":
        return Database("sqlite", f"sqlite:///{tmp_path / (name + '.db')}", None)
    return Database("postgresql", PG_URL, request.getfixturevalue("pg_schema"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """The source database (and, on PostgreSQL, the same schema also holds the tag store)."""
    return _database(request.param, tmp_path, request, "source")


@pytest.fixture
def tag_db(db: Database, tmp_path: Path) -> Database:
    """The tag store: its own SQLite file, or on PostgreSQL the test's schema."""
    if db.kind == "sqlite":
        return Database("sqlite", f"sqlite:///{tmp_path / 'tagstore.db'}", None)
    return db


@pytest.fixture
def hasher() -> SubjectHasher:
    return SubjectHasher(TEST_SECRET.encode())


@pytest.fixture
def policy_path() -> Path:
    return ROOT / "config" / "policy.yaml"


@pytest.fixture
def catalog_path() -> Path:
    return ROOT / "config" / "catalog.yaml"


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Airflow's metadata database (SQLite in the test AIRFLOW_HOME), migrated once."""
    done = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A real S3-compatible server (SeaweedFS) on 127.0.0.1 for the whole session. If it cannot
    start, the tests that need it fail with the reason: they are never skipped."""
    from tests.s3server import start_s3_server

    try:
        server = start_s3_server(tmp_path_factory.mktemp("seaweedfs"))
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def object_store(s3_server: object) -> object:
    from tests.s3server import ACCESS_KEY, SECRET_KEY

    from lifecycle.stores.s3 import ObjectStore

    return ObjectStore.connect(endpoint_url=s3_server.endpoint_url, access_key=ACCESS_KEY,  # type: ignore[attr-defined]
                               secret_key=SECRET_KEY)


@pytest.fixture(scope="session")
def bucket(s3_server: object) -> str:
    """One versioned bucket for the session (each bucket costs the server several volumes);
    tests keep apart by ``prefix``."""
    from tests.s3server import ACCESS_KEY, SECRET_KEY

    from lifecycle.stores.s3 import ObjectStore

    client = ObjectStore.connect(endpoint_url=s3_server.endpoint_url, access_key=ACCESS_KEY,  # type: ignore[attr-defined]
                                 secret_key=SECRET_KEY).client
    name = "lifecycle-test"
    client.create_bucket(Bucket=name)
    client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}/"
