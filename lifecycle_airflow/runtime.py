"""Resolve Airflow Connections and Variables into what the domain package needs."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pendulum
from sqlalchemy import Engine

from lifecycle.config import Catalog, Source, load_catalog
from lifecycle.tagstore import make_engine, open_tag_store
from lifecycle.discovery import SubjectHasher
from lifecycle.stores.s3 import Encryption, ObjectStore
from lifecycle.config import Policy, load_policy
from lifecycle.reporting import ArtifactSink
from lifecycle.stores import ConnectionInfo, RecordStore, backend_for, open_store
from lifecycle.stores import storage as storage_store
from lifecycle.stores import table as table_store
from lifecycle.config import HASH_SECRET_ENV, PROJECT_ROOT, Settings, hasher_from_secret
from lifecycle.errors import ConfigError

TAG_STORE_CONN_ID = "lifecycle_tagstore"
HASH_SECRET_VARIABLE = "lifecycle_hash_secret"
TIMEZONE = "Europe/Stockholm"
_VARIABLES = {
    "policy_path": "lifecycle_policy_path",
    "catalog_path": "lifecycle_catalog_path",
    "report_dir": "lifecycle_report_dir",
    "extract_dir": "lifecycle_extract_dir",
}


def _variable(key: str) -> str | None:
    from airflow.sdk import Variable

    try:
        return Variable.get(key, default=None)
    except Exception:  # noqa: BLE001 - no Variable backend reachable: fall back to the environment
        return None


def setting(variable: str) -> str | None:
    """An Airflow Variable, else the environment variable of the same name in upper case."""
    value = _variable(variable)
    return value if value is not None else os.environ.get(variable.upper())


def settings() -> Settings:
    """Environment defaults, overridden by the Airflow Variables named in _VARIABLES."""
    base = Settings.from_env()
    overrides = {field: Path(v) for field, var in _VARIABLES.items() if (v := _variable(var))}
    return replace(base, **overrides)


def load_config(s: Settings) -> tuple[Policy, Catalog]:
    policy = load_policy(s.policy_path)
    return policy, load_catalog(s.catalog_path, policy)


def connection_url(conn_id: str) -> tuple[str, str | None]:
    """SQLAlchemy URL and optional PostgreSQL schema of an Airflow Connection.

    Extras: ``sqlalchemy_url`` overrides everything; ``search_path`` names a PostgreSQL schema.
    """
    from airflow.sdk import Connection

    return url_of(Connection.get(conn_id), conn_id)


def url_of(conn: Any, conn_id: str) -> tuple[str, str | None]:
    """SQLAlchemy URL and schema of a Connection object (task SDK or metadata model alike)."""
    return table_store.url_of(connection_info(conn, conn_id))


def connection_info(conn: Any, conn_id: str) -> ConnectionInfo:
    """An Airflow Connection's fields for the domain package, which has no Airflow import."""
    return ConnectionInfo(conn_id, conn.conn_type or "", conn.host, conn.login, conn.password, conn.port, conn.schema,
                          dict(conn.extra_dejson or {}))


def source_engine(conn_id: str) -> Engine:
    url, schema = connection_url(conn_id)
    return make_engine(url, schema=schema)


def object_store(conn_id: str, encryption: Encryption = Encryption()) -> ObjectStore:
    """A boto3 S3 client from an Airflow AWS Connection (see lifecycle.stores.storage.backend)."""
    from airflow.sdk import Connection

    client = storage_store.backend(connection_info(Connection.get(conn_id), conn_id))
    client.encryption = encryption
    return client


def backend(source: Source) -> Any:
    """The client a source's kind of store needs (SQL engine, S3 client, ...), from its Connection."""
    from airflow.sdk import Connection

    return backend_for(source, connection_info(Connection.get(source.connection), source.connection))


def store(source: Source, tag_engine: Engine) -> RecordStore:
    return open_store(source, backend(source), tag_engine)


def source_engines(catalog: Catalog) -> dict[str, Any]:
    """One backend per Connection the catalog names."""
    by_conn = {s.connection: s for s in catalog.sources.values()}
    return {conn_id: backend(source) for conn_id, source in by_conn.items()}


def artifact_sink() -> ArtifactSink | None:
    """Copies of reports, certificates and extracts in a bucket, when Variable
    ``lifecycle_artifact_url`` (or env LIFECYCLE_ARTIFACT_URL) is an s3:// URL; through the AWS
    Connection ``lifecycle_artifact_conn`` (default lifecycle_s3), with server-side encryption
    from ``lifecycle_artifact_sse`` (AES256 | aws:kms) and ``lifecycle_artifact_kms_key``."""
    url = _variable("lifecycle_artifact_url") or os.environ.get("LIFECYCLE_ARTIFACT_URL")
    if not url:
        return None
    conn_id = _variable("lifecycle_artifact_conn") or os.environ.get("LIFECYCLE_ARTIFACT_CONN", "lifecycle_s3")
    encryption = Encryption(_variable("lifecycle_artifact_sse") or os.environ.get("LIFECYCLE_ARTIFACT_SSE") or None,
                            _variable("lifecycle_artifact_kms_key") or os.environ.get("LIFECYCLE_ARTIFACT_KMS_KEY") or None)
    return ArtifactSink.parse(url, object_store(conn_id, encryption))


def audit_lock_days() -> int:
    """Days of COMPLIANCE retention for the nightly audit-trail copy: Variable
    ``lifecycle_audit_lock_days`` (or env LIFECYCLE_AUDIT_LOCK_DAYS), default 365."""
    from lifecycle.reporting.audit_export import DEFAULT_LOCK_DAYS

    raw = setting("lifecycle_audit_lock_days")
    if not raw:
        return DEFAULT_LOCK_DAYS
    if not raw.strip().isdigit() or int(raw) < 1:
        raise ConfigError("Variable lifecycle_audit_lock_days / env LIFECYCLE_AUDIT_LOCK_DAYS", "value",
                          f"{raw!r} is not a whole number of days (at least 1)")
    return int(raw)


def tag_store_engine() -> Engine:
    """The tag store: Connection 'lifecycle_tagstore', else a SQLite file under LIFECYCLE_HOME."""
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        url, schema = connection_url(TAG_STORE_CONN_ID)
    except AirflowNotFoundException:  # not configured: the embedded default
        home = Path(os.environ.get("LIFECYCLE_HOME", PROJECT_ROOT / ".lifecycle"))
        home.mkdir(parents=True, exist_ok=True)
        url, schema = f"sqlite:///{home / 'tagstore.db'}", None
    return open_tag_store(url, schema=schema)


def hasher() -> SubjectHasher:
    secret = _variable(HASH_SECRET_VARIABLE) or os.environ.get(HASH_SECRET_ENV)
    if secret:
        from airflow.sdk.log import mask_secret

        mask_secret(secret)
    return hasher_from_secret(secret)


def logical_date(context: dict[str, Any]) -> date:
    """The night the run stands for, in Stockholm time: deadlines are compared with this."""
    dag_run = context["dag_run"]
    when = dag_run.logical_date or dag_run.run_after
    local = pendulum.instance(when).in_timezone(TIMEZONE)
    return date(local.year, local.month, local.day)  # a plain date: DB drivers reject pendulum.Date
