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
        "load_catalog", "scan_and_tag", "validate_before", "plan", "dependency_groups", "enforce", "validate_after", "report"}
    assert dag.get_task("plan").downstream_task_ids == {"enforce", "report"}
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
