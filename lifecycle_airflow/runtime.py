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

from lifecycle.catalog import Catalog, load_catalog
from lifecycle.db import make_engine, open_tag_store
from lifecycle.identifiers import SubjectHasher
from lifecycle.policy import Policy, load_policy
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


def source_engines(catalog: Catalog) -> dict[str, Engine]:
    """One engine per Connection the catalog names."""
    return {conn_id: source_engine(conn_id) for conn_id in {s.connection for s in catalog.sources.values()}}


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
