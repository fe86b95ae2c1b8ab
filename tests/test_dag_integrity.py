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
        "load_catalog", "scan_partitions", "scan_partition", "finish_scan", "validate_before", "plan", "dependency_groups", "approvals_needed",
        "needs_a_person", "enforcement.approve_large_plan", "enforcement.enforce", "enforcement_parts", "enforce_part",
        "validate_after", "report",
        "records_of_processing", "aggregate_analytics", "validate_analytics"}
    # Raw visits are counted before the plan (and so enforcement) may anonymise them; a failed
    # analytics validation fails the run as a leaf, holding nothing back.
    assert dag.get_task("aggregate_analytics").upstream_task_ids == {"load_catalog"}
    assert dag.get_task("aggregate_analytics").downstream_task_ids == {"plan", "validate_analytics"}
    assert dag.get_task("validate_analytics").downstream_task_ids == set()
    assert [a.uri for a in dag.get_task("aggregate_analytics").outlets] == ["lifecycle://analytics/visits"]
    # Scans: decided and split once, the partitions mapped, finished per source once all succeeded.
    assert dag.get_task("scan_partition").upstream_task_ids == {"scan_partitions"}
    assert dag.get_task("finish_scan").upstream_task_ids == {"load_catalog", "scan_partition"}
    assert dag.get_task("validate_before").upstream_task_ids == {"finish_scan"}
    # Beside the report, not after it: a failed report still fails the run (it stays a leaf).
    assert dag.get_task("records_of_processing").upstream_task_ids == {"validate_after"}
    assert dag.get_task("plan").downstream_task_ids == {"approvals_needed", "report"}
    # Each group's enforcement waits for its own approval only (a mapped task group), Human-in-the-loop.
    assert dag.get_task("enforcement.enforce").upstream_task_ids == {"needs_a_person", "enforcement.approve_large_plan"}
    # The groups needing no person: mapped parts (a large table's batch ranges), beside the approvals.
    assert dag.get_task("enforce_part").upstream_task_ids == {"enforcement_parts"}
    assert dag.get_task("enforcement_parts").upstream_task_ids == {"approvals_needed"}
    assert dag.get_task("validate_after").upstream_task_ids == {"enforcement.enforce", "enforce_part"}
    assert dag.get_task("validate_after").trigger_rule == "none_failed"  # either path may be empty
    assert dag.get_task("enforcement.approve_large_plan").options == ["Approve", "Reject"]
    assert dag.get_task("enforcement.approve_large_plan").defaults == ["Reject"]  # taken at time-out
    params = dag.params
    assert params["dry_run"] is False and params["confirm_large_plan"] is False and params["sources"] == []
    assert params["full_rescan"] is False
    params.validate()
    for task in dag.tasks:
        assert task.doc_md is None or task.doc_md  # tasks documented through the DAG doc


def test_breach_scope_is_manual_with_a_checked_form(dagbag) -> None:  # type: ignore[no-untyped-def]
    from airflow.exceptions import ParamValidationError

    dag = dagbag.dags["lifecycle_breach_scope"]
    dag.check_cycle()
    dag.validate()
    assert type(dag.timetable).__name__ == "NullTimetable"  # schedule=None: triggered by a person
    assert set(dag.task_ids) == {"validate_scope", "scope_breach"}
    assert dag.get_task("validate_scope").downstream_task_ids == {"scope_breach"}
    params = dag.params
    assert params["sources"] == [] and params["object_prefix"] is None and params["discovered_at"] is None
    assert {params.get_param(k).schema["section"] for k in params} == {"Incident", "What was affected", "Time window"}
    assert params.get_param("window_from").schema["format"] == "date"
    assert params.get_param("discovered_at").schema["format"] == "date-time"
    for bad in ("INC 42; DROP", "x"):  # the form refuses a malformed reference at trigger time
        with pytest.raises(ParamValidationError):
            params.get_param("reference").resolve(bad)
    params.get_param("reference").resolve("INC-2026-0042")


def test_domain_package_never_imports_airflow() -> None:
    for path in (ROOT / "lifecycle").rglob("*.py"):
        text = path.read_text()
        assert "import airflow" not in text and "from airflow" not in text, path
