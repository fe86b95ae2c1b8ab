"""Resolve Airflow Connections and Variables into what the domain package needs."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pendulum
from sqlalchemy import Engine

from lifecycle.catalog import Catalog, Source, load_catalog
from lifecycle.db import make_engine, open_tag_store
from lifecycle.identifiers import SubjectHasher
from lifecycle.objects import Encryption, ObjectStore
from lifecycle.policy import Policy, load_policy
from lifecycle.sinks import ArtifactSink
from lifecycle.settings import HASH_SECRET_ENV, PROJECT_ROOT, Settings, hasher_from_secret

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
    extra: dict[str, Any] = conn.extra_dejson or {}
    schema = extra.get("search_path")
    if extra.get("sqlalchemy_url"):
        return str(extra["sqlalchemy_url"]), schema
    if conn.conn_type == "sqlite":
        return f"sqlite:///{conn.host}", None
    if conn.conn_type in ("postgres", "postgresql"):
        auth = quote(conn.login or "", safe="")
        if conn.password:
            auth += ":" + quote(conn.password, safe="")
        host = f"{conn.host or 'localhost'}:{conn.port or 5432}"
        return f"postgresql+psycopg://{auth + '@' if auth else ''}{host}/{conn.schema or ''}", schema
    raise ValueError(f"connection {conn_id!r}: type {conn.conn_type!r} is not supported (sqlite, postgres)")


def source_engine(conn_id: str) -> Engine:
    url, schema = connection_url(conn_id)
    return make_engine(url, schema=schema)


def object_store(conn_id: str, encryption: Encryption = Encryption()) -> ObjectStore:
    """A boto3 S3 client from an Airflow AWS Connection, read the way the Amazon provider's
    AwsBaseHook reads one: login = access key id, password = secret access key, extras
    ``endpoint_url`` (any S3-compatible store) and ``region_name``. Without login the client
    falls back to boto3's own chain (instance role, environment)."""
    from airflow.sdk import Connection

    conn = Connection.get(conn_id)
    extra: dict[str, Any] = conn.extra_dejson or {}
    return ObjectStore.connect(endpoint_url=extra.get("endpoint_url") or extra.get("host"),
                               access_key=conn.login or None, secret_key=conn.password or None,
                               region=extra.get("region_name"), encryption=encryption)


def backend(source: Source) -> Engine | ObjectStore:
    """Where a source's records live: a SQL engine, or the object store of a bucket source."""
    return object_store(source.connection) if source.is_object_source else source_engine(source.connection)


def source_engines(catalog: Catalog) -> dict[str, Engine | ObjectStore]:
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
