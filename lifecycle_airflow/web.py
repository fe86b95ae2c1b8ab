"""The compliance view served by the Airflow API server (see plugins/lifecycle_compliance.py).

Every route requires an authenticated Airflow user: FastAPI apps mounted by a plugin are not
behind Airflow's login by default, so the app depends on the API server's own ``get_user``.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

import pendulum
from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine

from lifecycle.reporting import compliance_summary
from lifecycle.tagstore import open_tag_store
from lifecycle.config import load_policy
from lifecycle.config import load_mechanisms
from lifecycle.config import PROJECT_ROOT, Settings
from lifecycle_airflow.runtime import TAG_STORE_CONN_ID, TIMEZONE, url_of

TEMPLATES = PROJECT_ROOT / "lifecycle" / "templates"


def _tag_store() -> Engine:
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection

    try:
        url, schema = url_of(Connection.get_connection_from_secrets(TAG_STORE_CONN_ID), TAG_STORE_CONN_ID)
    except AirflowNotFoundException:
        home = Path(os.environ.get("LIFECYCLE_HOME", PROJECT_ROOT / ".lifecycle"))
        url, schema = f"sqlite:///{home / 'tagstore.db'}", None
    return open_tag_store(url, schema=schema)


def summary() -> dict[str, Any]:
    settings = Settings.from_env()
    now = pendulum.now(TIMEZONE)
    return compliance_summary(
        tag_engine=_tag_store(), report_dir=settings.report_dir, policy=load_policy(settings.policy_path),
        mechanisms=load_mechanisms(settings.mechanisms_path), today=date(now.year, now.month, now.day),
    )


def create_app() -> FastAPI:
    from airflow.api_fastapi.core_api.security import get_user

    app = FastAPI(title="Lifecycle compliance", dependencies=[Depends(get_user)])
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))

    @app.get("/api/summary")
    def api_summary() -> dict[str, Any]:
        return summary()

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        data = summary()
        biggest = max(data["records_by_category_and_basis"].values(), default=1) or 1
        month_max = max((m["tags"] for m in data["expiries_by_month"]), default=1) or 1
        return env.get_template("compliance.html.j2").render(s=data, biggest=biggest, month_max=month_max)

    return app
