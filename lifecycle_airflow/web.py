"""The compliance view served by the Airflow API server (see plugins/lifecycle_compliance.py).

Every route requires an authenticated Airflow user: FastAPI apps mounted by a plugin are not
behind Airflow's login by default, so the app depends on the API server's own ``get_user``, and
then on the compliance role (lifecycle_airflow.access): 403 for anyone without it.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pendulum
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from lifecycle.reporting import compliance_summary, latest_processing_record
from lifecycle.config import load_policy
from lifecycle.config import load_mechanisms
from lifecycle.config import PROJECT_ROOT
from lifecycle_airflow import runtime
from lifecycle_airflow.runtime import TIMEZONE

TEMPLATES = PROJECT_ROOT / "lifecycle" / "templates"


def summary() -> dict[str, Any]:
    # Settings and tag store resolved exactly as the DAGs resolve them (Airflow Variables over the
    # environment, Connection lifecycle_tagstore): in the API server the Task SDK reads both from
    # the metadata database and the environment.
    settings = runtime.settings()
    now = pendulum.now(TIMEZONE)
    return compliance_summary(
        tag_engine=runtime.tag_store_engine(), report_dir=settings.report_dir, policy=load_policy(settings.policy_path),
        mechanisms=load_mechanisms(settings.mechanisms_path), today=date(now.year, now.month, now.day),
    )


def create_app() -> FastAPI:
    from airflow.api_fastapi.core_api.security import get_user

    def compliance_role(user: Any = Depends(get_user)) -> Any:
        """Logged in is not enough: the auth manager must let this user see the page."""
        from airflow.api_fastapi.app import get_auth_manager

        from lifecycle_airflow.access import COMPLIANCE_ROLE_ENV, may_see_compliance

        if not may_see_compliance(get_auth_manager(), user):
            raise HTTPException(403, f"the compliance page is for the compliance role ({COMPLIANCE_ROLE_ENV})")
        return user

    app = FastAPI(title="Lifecycle compliance", dependencies=[Depends(compliance_role)])
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

    # The record of processing activities (art. 30): the latest month's, and any month's file by
    # name (the HTML links its JSON and CSV beside it). Files the nightly run wrote; no personal data.
    @app.get("/records-of-processing")
    def records_of_processing_redirect() -> RedirectResponse:
        return RedirectResponse("records-of-processing/")

    @app.get("/records-of-processing/", response_class=HTMLResponse)
    def records_of_processing_page() -> FileResponse:
        return _record_file("html")

    @app.get("/records-of-processing.json")
    def records_of_processing_json() -> FileResponse:
        return _record_file("json")

    @app.get("/records-of-processing.csv")
    def records_of_processing_csv() -> FileResponse:
        return _record_file("csv")

    @app.get("/records-of-processing/{name}")
    def records_of_processing_month(name: str) -> FileResponse:
        match = RECORD_FILE.match(name)
        if not match:
            raise HTTPException(404, "a record is named YYYY-MM.html, .json or .csv")
        latest = latest_processing_record(runtime.settings().report_dir)
        path = latest.json.parent / name if latest else None
        if path is None or not path.is_file():
            raise HTTPException(404, f"no record of processing for {match.group(1)}")
        return FileResponse(path, media_type=MEDIA_TYPES[match.group(2)])

    return app


RECORD_FILE = re.compile(r"^(\d{4}-\d{2})\.(html|json|csv)$")
MEDIA_TYPES = {"html": "text/html; charset=utf-8", "json": "application/json", "csv": "text/csv; charset=utf-8"}


def _record_file(kind: str) -> FileResponse:
    latest = latest_processing_record(runtime.settings().report_dir)
    if latest is None:
        raise HTTPException(404, "no record of processing has been written yet: the nightly run writes one")
    path = getattr(latest, kind)
    return FileResponse(path, media_type=MEDIA_TYPES[kind],
                        filename=path.name if kind == "csv" else None)
