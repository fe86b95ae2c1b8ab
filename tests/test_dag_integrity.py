"""Every DAG imports, has no cycles, a valid schedule and valid params."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dagbag():  # type: ignore[no-untyped-def]
    from airflow.models import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_no_import_errors(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert dagbag.import_errors == {}
    assert "lifecycle_nightly" in dagbag.dag_ids


def test_nightly_shape_schedule_and_params(dagbag) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags["lifecycle_nightly"]
    dag.check_cycle()  # raises on a cycle
    dag.validate()
    assert dag.timetable.summary == "0 2 * * *"
    assert str(dag.timetable._timezone.name) == "Europe/Stockholm"
    assert dag.catchup is False
    assert set(dag.task_ids) == {
        "load_catalog", "scan_and_tag", "validate_before", "plan", "dependency_groups", "approvals_needed",
        "enforcement.approve_large_plan", "enforcement.enforce", "validate_after", "report",
        "records_of_processing", "aggregate_analytics", "validate_analytics"}
    # Raw visits are counted before the plan (and so enforcement) may anonymise them; a failed
    # analytics validation fails the run as a leaf, holding nothing back.
    assert dag.get_task("aggregate_analytics").upstream_task_ids == {"load_catalog"}
    assert dag.get_task("aggregate_analytics").downstream_task_ids == {"plan", "validate_analytics"}
    assert dag.get_task("validate_analytics").downstream_task_ids == set()
    assert [a.uri for a in dag.get_task("aggregate_analytics").outlets] == ["lifecycle://analytics/visits"]
    # Beside the report, not after it: a failed report still fails the run (it stays a leaf).
    assert dag.get_task("records_of_processing").upstream_task_ids == {"validate_after"}
    assert dag.get_task("plan").downstream_task_ids == {"approvals_needed", "report"}
    # Each group's enforcement waits for its own approval only (a mapped task group), Human-in-the-loop.
    assert dag.get_task("enforcement.enforce").upstream_task_ids == {"approvals_needed", "enforcement.approve_large_plan"}
    assert dag.get_task("enforcement.approve_large_plan").options == ["Approve", "Reject"]
    assert dag.get_task("enforcement.approve_large_plan").defaults == ["Reject"]  # taken at time-out
    params = dag.params
    assert params["dry_run"] is False and params["confirm_large_plan"] is False and params["sources"] == []
    assert params["full_rescan"] is False
    params.validate()
    for task in dag.tasks:
        assert task.doc_md is None or task.doc_md  # tasks documented through the DAG doc


def test_domain_package_never_imports_airflow() -> None:
    for path in (ROOT / "lifecycle").rglob("*.py"):
        text = path.read_text()
        assert "import airflow" not in text and "from airflow" not in text, path
