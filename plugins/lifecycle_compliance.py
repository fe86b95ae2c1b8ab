"""Airflow 3 plugin: the Lifecycle compliance page inside the Airflow UI (menu entry
"Compliance"), served by the API server under /lifecycle and open to logged-in users only."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from lifecycle_airflow.web import create_app


class LifecycleCompliancePlugin(AirflowPlugin):
    name = "lifecycle_compliance"
    fastapi_apps = [{"app": create_app(), "url_prefix": "/lifecycle", "name": "Lifecycle compliance"}]
    external_views = [{"name": "Compliance", "href": "/lifecycle/", "destination": "nav", "url_route": "lifecycle"}]
