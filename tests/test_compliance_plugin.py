"""The compliance page: a registered Airflow plugin, behind Airflow's login, with figures that
match the tag store."""

from __future__ import annotations

import importlib
import sys
from datetime import date
from pathlib import Path

import pytest

from lifecycle.tagstore.tables import object_state, record_tag

ROOT = Path(__file__).resolve().parents[1]


def test_plugin_registers_an_app_and_a_menu_entry() -> None:
    sys.path.insert(0, str(ROOT / "plugins"))
    module = importlib.import_module("lifecycle_compliance")
    plugin = module.LifecycleCompliancePlugin
    assert plugin.fastapi_apps[0]["url_prefix"] == "/lifecycle"
    assert plugin.external_views[0]["destination"] == "nav" and plugin.external_views[0]["href"] == "/lifecycle/"


@pytest.fixture
def api(airflow_db, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    tags_url = f"sqlite:///{tmp_path / 'tagstore.db'}"
    monkeypatch.setenv("AIRFLOW_CONN_LIFECYCLE_TAGSTORE", f'{{"conn_type": "generic", "extra": {{"sqlalchemy_url": "{tags_url}"}}}}')
    monkeypatch.setenv("LIFECYCLE_REPORT_DIR", str(tmp_path / "reports"))
    from lifecycle.tagstore.db import open_tag_store

    engine = open_tag_store(tags_url)
    base = dict(activity="newsletter", role="controller", controller="self", clock_value=date(2025, 1, 1),
                on_expiry="erase", run_id="r", violation=None, category="contact_details")
    # The page's today is Stockholm's (lifecycle_airflow.web), not the machine's: they differ for an hour a night.
    import pendulum

    from lifecycle_airflow.runtime import TIMEZONE

    now = pendulum.now(TIMEZONE)
    today = date(now.year, now.month, now.day)
    with engine.begin() as conn:
        conn.execute(record_tag.insert(), [
            {**base, "source": "newsletter_subscribers", "record_key": "1", "lawful_basis": "consent", "status": "active",
             "deadline": today.replace(year=today.year + 1)},
            {**base, "source": "newsletter_subscribers", "record_key": "2", "lawful_basis": "consent", "status": "active",
             "deadline": today},
            {**base, "source": "customers", "activity": "customers", "record_key": "3", "lawful_basis": "contract",
             "status": "active", "deadline": None},
        ])
        conn.execute(object_state.insert(), [
            {"source": "audience_uploads", "object_ref": "0123456789abcdef", "object_key": "audiences/anna@x.se.csv",
             "records": 0, "status": "malformed", "problem": "not valid CSV (row 3 has 2 fields, the header 4)",
             "run_id": "r"},
            {"source": "audience_uploads", "object_ref": "fedcba9876543210", "object_key": "audiences/ok.csv",
             "records": 5, "status": "ok", "problem": None, "run_id": "r"},
        ])
    from airflow.api_fastapi.app import create_app, purge_cached_app

    purge_cached_app()
    app = create_app(apps="core")
    yield TestClient(app)
    purge_cached_app()


def _token() -> str:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))


def test_anonymous_is_refused_and_a_user_sees_the_tag_store(api) -> None:  # type: ignore[no-untyped-def]
    assert api.get("/lifecycle/api/summary").status_code in (401, 403)
    assert api.get("/lifecycle/").status_code in (401, 403)
    headers = {"Authorization": f"Bearer {_token()}"}
    summary = api.get("/lifecycle/api/summary", headers=headers)
    assert summary.status_code == 200
    data = summary.json()
    sources = {s["source"]: s for s in data["sources"]}
    assert sources["newsletter_subscribers"]["by_basis"] == {"consent": 2}
    assert sources["newsletter_subscribers"]["expiring_next_30_days"] == 1
    assert sources["customers"]["by_basis"] == {"contract": 1}
    register = {f["sub_processor"]: f["valid"] for f in data["sub_processors"]}
    assert register == {"albacross": True, "g_suite": False}
    assert data["object_problems"] == [{"source": "audience_uploads", "object_ref": "0123456789abcdef",
                                        "status": "malformed", "problem": "not valid CSV (row 3 has 2 fields, the header 4)"}]
    page = api.get("/lifecycle/", headers=headers)
    assert page.status_code == 200 and "Lifecycle compliance" in page.text and "Privacy Shield" in page.text
    assert "0123456789abcdef" in page.text and "anna@x.se" not in page.text


def test_page_resolves_settings_as_the_dags_do(api, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Airflow Variables override the environment on the page exactly as in the DAGs
    (lifecycle_airflow.runtime.settings): here lifecycle_report_dir and lifecycle_policy_path."""
    import json

    import yaml

    from lifecycle_airflow import runtime

    headers = {"Authorization": f"Bearer {_token()}"}
    assert api.get("/lifecycle/api/summary", headers=headers).json()["last_run"] is None  # env folder: no report
    elsewhere = tmp_path / "variable-reports"
    elsewhere.mkdir()
    (elsewhere / "lifecycle-2026-03-14-night.json").write_text(json.dumps(
        {"run_id": "night-from-the-variable", "logical_date": "2026-03-14", "dry_run": False, "compliant": True,
         "totals": {}, "generated_at": "2026-03-14T03:00:00+00:00"}))
    policy = yaml.safe_load((ROOT / "config" / "policy.yaml").read_text())
    rule = next(iter(policy["retention_rules"]))
    policy["retention_rules"][rule]["law"] = "Lag (2026:1) om variabelprov"
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy, allow_unicode=True))
    monkeypatch.setenv("AIRFLOW_VAR_LIFECYCLE_REPORT_DIR", str(elsewhere))
    monkeypatch.setenv("AIRFLOW_VAR_LIFECYCLE_POLICY_PATH", str(tmp_path / "policy.yaml"))

    assert runtime.settings().report_dir == elsewhere  # what the DAGs' tasks would use
    data = api.get("/lifecycle/api/summary", headers=headers).json()
    assert data["last_run"]["run_id"] == "night-from-the-variable"
    assert data["retention_rules"][rule]["law"] == "Lag (2026:1) om variabelprov"
    assert "night-from-the-variable" in api.get("/lifecycle/", headers=headers).text
