"""Airflow 3 plugin: when a run of ``lifecycle_subject_request`` ends, successful or failed, the
person's identifiers are replaced by keyed references in Airflow's own records of the run (its
conf, the trigger's audit-log entry, rendered fields, XComs, notes). See lifecycle_airflow.scrub.

Dag-run listeners are called where a run's state is decided -- the scheduler, the API server
when someone marks a run, dag.test() -- inside the session that records the new state, so the
rewrite is committed with it.
"""

from __future__ import annotations

from typing import Any

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin


class SubjectRequestScrubListener:
    @hookimpl
    def on_dag_run_success(self, dag_run: Any, msg: str) -> None:
        from lifecycle_airflow.scrub import on_run_ended

        on_run_ended(dag_run)

    @hookimpl
    def on_dag_run_failed(self, dag_run: Any, msg: str) -> None:
        from lifecycle_airflow.scrub import on_run_ended

        on_run_ended(dag_run)


class LifecycleScrubPlugin(AirflowPlugin):
    name = "lifecycle_scrub"
    listeners = [SubjectRequestScrubListener()]
