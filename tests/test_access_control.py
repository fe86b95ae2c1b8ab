"""Who may do what, through Airflow's own REST API (TestClient on the API server app) with
``LifecycleAuthManager``: the request DAG and approvals need the privacy role, the compliance
page the compliance role; everyone else is refused with 403."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lifecycle.errors import ConfigError

AUTH_MANAGER = "lifecycle_airflow.access.LifecycleAuthManager"
REQUEST = {"request_type": "access", "reference": "DSR-ACL-1", "email": "asker@example.se", "dry_run": True}


def _sync_dags() -> None:
    """The project's DAGs into the metadata database, as the DAG processor would put them."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.utils.session import create_session

    manager = DagBundlesManager()
    with create_session() as session:
        manager.sync_bundles_to_db(session=session)
    for bundle in manager.get_all_dag_bundles():
        if not bundle.is_initialized:
            bundle.initialize()
        sync_bag_to_db(BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name),
                       bundle.name, bundle.version)


@pytest.fixture(scope="module")
def dags_in_db(airflow_db) -> None:  # type: ignore[no-untyped-def]
    _sync_dags()


@pytest.fixture
def api(dags_in_db, tmp_path, monkeypatch) -> Iterator[object]:  # type: ignore[no-untyped-def]
    from airflow.api_fastapi.app import _AuthManagerState, create_app, purge_cached_app
    from fastapi.testclient import TestClient

    monkeypatch.setenv("AIRFLOW__CORE__AUTH_MANAGER", AUTH_MANAGER)
    monkeypatch.setenv("AIRFLOW_CONN_LIFECYCLE_TAGSTORE", f'{{"conn_type": "generic", "extra": {{"sqlalchemy_url": '
                                                          f'"sqlite:///{tmp_path / "tagstore.db"}"}}}}')
    monkeypatch.setenv("LIFECYCLE_REPORT_DIR", str(tmp_path / "reports"))
    monkeypatch.delenv("LIFECYCLE_PRIVACY_ROLE", raising=False)
    monkeypatch.delenv("LIFECYCLE_COMPLIANCE_ROLE", raising=False)
    purge_cached_app()
    yield TestClient(create_app(apps="core"))
    purge_cached_app()
    _AuthManagerState.instance = None  # the next test's app makes the auth manager it is configured with


def _as(role: str, name: str | None = None) -> dict[str, str]:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=name or f"{role}-person", role=role))
    return {"Authorization": f"Bearer {token}"}


def _trigger(api, headers: dict[str, str], dag_id: str = "lifecycle_subject_request"):  # type: ignore[no-untyped-def]
    return api.post(f"/api/v2/dags/{dag_id}/dagRuns", headers=headers, json={"logical_date": None, "conf": REQUEST})


def test_the_api_server_uses_the_lifecycle_auth_manager(api) -> None:  # type: ignore[no-untyped-def]
    from airflow.api_fastapi.app import get_auth_manager

    from lifecycle_airflow.access import LifecycleAuthManager

    assert isinstance(get_auth_manager(), LifecycleAuthManager)


def test_only_the_privacy_role_triggers_or_sees_the_request_dag(api) -> None:  # type: ignore[no-untyped-def]
    for role in ("viewer", "user"):
        refused = _trigger(api, _as(role))
        assert refused.status_code == 403, (role, refused.text)
        # Its runs carry the asker's identifiers: not even listed for them.
        assert api.get("/api/v2/dags/lifecycle_subject_request/dagRuns", headers=_as(role)).status_code == 403
        listed = api.get("/api/v2/dags", headers=_as(role)).json()["dags"]
        assert "lifecycle_subject_request" not in {d["dag_id"] for d in listed}
        assert "lifecycle_nightly" in {d["dag_id"] for d in listed}
    accepted = _trigger(api, _as("op", "dpo"))
    assert accepted.status_code == 200, accepted.text
    run_id = accepted.json()["dag_run_id"]
    seen = api.get(f"/api/v2/dags/lifecycle_subject_request/dagRuns/{run_id}", headers=_as("admin"))
    assert seen.status_code == 200 and seen.json()["triggering_user_name"] == "dpo"
    # The nightly DAG keeps Airflow's rule: a user may trigger it, a viewer may not.
    assert _trigger(api, _as("viewer"), "lifecycle_nightly").status_code == 403
    assert _trigger(api, _as("user"), "lifecycle_nightly").status_code != 403


def test_only_the_privacy_role_answers_approvals(api) -> None:  # type: ignore[no-untyped-def]
    path = "/api/v2/dags/lifecycle_nightly/dagRuns/no-such-run/taskInstances/confirm/-1/hitlDetails"
    answer = {"chosen_options": ["Approve"]}
    assert api.patch(path, headers=_as("user"), json=answer).status_code == 403
    # Past the access check, Airflow looks for the waiting task (and finds none here).
    assert api.patch(path, headers=_as("op"), json=answer).status_code == 404


def test_the_role_is_configurable_and_a_wrong_name_fails_plainly(api, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LIFECYCLE_PRIVACY_ROLE", "admin")
    assert _trigger(api, _as("op")).status_code == 403
    assert _trigger(api, _as("admin")).status_code == 200
    monkeypatch.setenv("LIFECYCLE_PRIVACY_ROLE", "dpo")
    from lifecycle_airflow.access import PRIVACY_ROLE_ENV, required_role

    with pytest.raises(ConfigError, match="'dpo' is not a role"):
        required_role(PRIVACY_ROLE_ENV)


def test_compliance_page_needs_the_compliance_role(api, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for role in ("viewer", "user"):
        for path in ("/lifecycle/", "/lifecycle/api/summary"):
            refused = api.get(path, headers=_as(role))
            assert refused.status_code == 403 and "compliance role" in refused.text, (role, path)
    assert api.get("/lifecycle/api/summary", headers=_as("op")).status_code == 200
    monkeypatch.setenv("LIFECYCLE_COMPLIANCE_ROLE", "user")
    assert api.get("/lifecycle/api/summary", headers=_as("user")).status_code == 200
    assert api.get("/lifecycle/api/summary", headers=_as("viewer")).status_code == 403


def test_the_page_stays_closed_to_viewers_under_the_plain_simple_auth_manager(api, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A deployment that forgot the auth manager setting: the page still checks the role."""
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    from lifecycle_airflow.access import may_see_compliance

    plain = SimpleAuthManager()
    assert not may_see_compliance(plain, SimpleAuthManagerUser(username="v", role="viewer"))
    assert may_see_compliance(plain, SimpleAuthManagerUser(username="o", role="op"))


# The same rules under FAB's auth manager (docker-compose's), in a process of its own: FAB needs
# its own tables and its own auth manager, which must not leak into the other tests' API server.
FAB_CHECK = r'''
import json, sys
from fastapi.testclient import TestClient
from airflow.api_fastapi.app import create_app, get_auth_manager
from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder
from airflow.providers.fab.auth_manager.models import User
from airflow.utils.session import create_session
from lifecycle_airflow.access import prepare_fab_roles
from tests.test_access_control import REQUEST, _sync_dags

_sync_dags()
prepare_fab_roles()
prepare_fab_roles()  # a second run adds nothing and breaks nothing
people = {"dpo": "Lifecycle privacy", "operator": "Lifecycle operator", "auditor": "Lifecycle viewer",
          "page_only": "Lifecycle compliance", "fab_user": "User"}
with get_application_builder() as appbuilder:
    for name, role in people.items():
        appbuilder.sm.add_user(name, name, name, f"{name}@example.invalid", appbuilder.sm.find_role(role),
                               password="not-used-" + name)
client = TestClient(create_app(apps="core"))
manager = get_auth_manager()
found = {"auth_manager": type(manager).__name__}
for name in people:
    with create_session() as session:
        headers = {"Authorization": "Bearer " + manager.generate_jwt(session.query(User).filter_by(username=name).one())}
    found[name] = {
        "trigger_request": client.post("/api/v2/dags/lifecycle_subject_request/dagRuns", headers=headers,
                                       json={"logical_date": None, "conf": REQUEST}).status_code,
        "request_runs": client.get("/api/v2/dags/lifecycle_subject_request/dagRuns", headers=headers).status_code,
        "trigger_nightly": client.post("/api/v2/dags/lifecycle_nightly/dagRuns", headers=headers,
                                       json={"logical_date": None, "conf": {}}).status_code,
        "approve": client.patch("/api/v2/dags/lifecycle_nightly/dagRuns/none/taskInstances/confirm/-1/hitlDetails",
                                headers=headers, json={"chosen_options": ["Approve"]}).status_code,
        "page": client.get("/lifecycle/api/summary", headers=headers).status_code,
    }
print("FAB-RESULT " + json.dumps(found))
'''


def test_fab_roles_keep_requests_approvals_and_the_page_to_their_roles(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    home = tmp_path / "airflow"
    home.mkdir()
    env = {**os.environ, "AIRFLOW_HOME": str(home), "LIFECYCLE_HOME": str(tmp_path / "lifecycle"),
           "AIRFLOW__CORE__AUTH_MANAGER": "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager",
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
           "AIRFLOW_CONN_LIFECYCLE_TAGSTORE": json.dumps({"conn_type": "generic", "extra": {
               "sqlalchemy_url": f"sqlite:///{tmp_path / 'tagstore.db'}"}}),
           "PYTHONPATH": str(ROOT)}
    migrated = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
    assert migrated.returncode == 0, migrated.stdout[-2000:] + migrated.stderr[-2000:]
    done = subprocess.run([sys.executable, "-c", FAB_CHECK], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    line = next((x for x in done.stdout.splitlines() if x.startswith("FAB-RESULT ")), None)
    assert done.returncode == 0 and line, done.stdout[-3000:] + done.stderr[-3000:]
    found = json.loads(line.removeprefix("FAB-RESULT "))
    assert found.pop("auth_manager") == "FabAuthManager"
    ok, refused, not_found = 200, 403, 404  # 404: past the access check, no task waits for an answer
    assert found == {
        "dpo": {"trigger_request": ok, "request_runs": ok, "trigger_nightly": ok, "approve": not_found, "page": ok},
        "operator": {"trigger_request": refused, "request_runs": refused, "trigger_nightly": ok, "approve": refused,
                     "page": refused},
        "auditor": {"trigger_request": refused, "request_runs": refused, "trigger_nightly": refused,
                    "approve": refused, "page": refused},
        "page_only": {"trigger_request": refused, "request_runs": refused, "trigger_nightly": refused,
                      "approve": refused, "page": ok},
        # FAB's own User role reaches every DAG: why people get the Lifecycle roles instead.
        "fab_user": {"trigger_request": ok, "request_runs": ok, "trigger_nightly": ok, "approve": not_found,
                     "page": refused},
    }
