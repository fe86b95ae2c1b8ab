"""
### Lifecycle nightly

Every night (02:00 Europe/Stockholm) the pipeline enforces the privacy policy on every source
in the catalog:

1. **scan and tag** each source: category, activity, lawful basis, role, retention clock and
   deadline of every record, and the keyed hashes of every identifier in it (free text
   included), into the tag store; incremental where the catalog gives a change signal, in full
   when the catalog, policy or detectors changed or on request. `scan_partitions` decides each
   source's scan and splits the full scan of a large SQL table into primary-key ranges of about
   the catalog's `partition_rows`; `scan_partition` (mapped) reads one range, side by side on as
   many workers as there are; `finish_scan` (mapped per source) runs once all of a source's
   partitions succeeded: deleted records dropped, the rebuilt index swapped in, the watermark
   advanced. A failed partition is retried alone (clear it and its downstream);
2. **validate** the tag store with Great Expectations (after records without a clock of their
   own took their parent's deadline): every record has an allowed lawful basis, no record is past
   its deadline;
3. **plan** what to erase, anonymise or restrict, stored before anything is touched (a parent
   whose child record stays is anonymised and kept rather than erased);
4. **enforce** the plan in journaled batches (safe to re-run after a crash), one mapped task per
   group of sources that reference each other, children before parents, so no foreign key
   breaks; unrelated sources run side by side (`enforce_part`). A large SQL table on its own is
   cut into ranges of batches (`enforcement_parts`: about `partition_rows` records each), enforced
   side by side by as many workers as there are. A group holding a source whose plan exceeds its
   `max_destroy_share` first waits for a person (`enforcement.approve_large_plan`, Required
   actions in the UI; the plan's counts and a dry-run report of it are on the screen): Approve
   enforces it, Reject or no answer within `lifecycle_approval_timeout_hours` (default 12)
   leaves it untouched and the report says so; the other groups do not wait.
   `confirm_large_plan` approves in advance;
5. **validate again**: must pass (sources withheld by a decision are left out);
6. **report** as JSON and HTML (counts only, no personal data);
7. **records of processing**: the GDPR art. 30 record (as controller and, per customer, as
   processor) as JSON, HTML and CSV for the run's month, with the changes since the previous
   month's; beside the report, so it is written even on a night that is not compliant.

Beside the scans, **aggregate analytics**: the analytics sources (website visits, used on an
aggregated level only) are counted per company and complete week not yet counted, groups of fewer
than k visitors merged into "other" or left out, into the tag store (Asset
`lifecycle://analytics/visits`); the plan waits for it, so no visit is anonymised before it is
counted. **validate analytics** (Great Expectations: no published group under k) fails the run
without holding back enforcement.

Deadlines are computed against the run's logical date, so re-running a night decides the same.
Trigger with `dry_run` to see the plan without changing any source.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, Param, TriggerRule, dag, get_current_context, task, task_group
from airflow.timetables.trigger import CronTriggerTimetable

from lifecycle_airflow import nightly
from lifecycle_airflow.approvals import LifecycleApproval, nightly_requests

NIGHTLY_REPORT = Asset("lifecycle://reports/nightly")
VISIT_AGGREGATES = Asset("lifecycle://analytics/visits")


@dag(
    schedule=CronTriggerTimetable("0 2 * * *", timezone="Europe/Stockholm"),
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Stockholm"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["gdpr", "lifecycle"],
    params={
        "dry_run": Param(
            False, type="boolean", title="Dry run",
            description="Compute and report the plan without changing any source.",
        ),
        "confirm_large_plan": Param(
            False, type="boolean", title="Confirm a large plan",
            description="Allow enforcement when a plan would erase or anonymise more than the source's "
                        "max_destroy_share. Review the dry-run report first.",
        ),
        "full_rescan": Param(
            False, type="boolean", title="Full rescan",
            description="Scan every record, not only what changed since the last night.",
        ),
        "rotate_key": Param(
            False, type="boolean", title="Rotate the keyed-hash secret",
            description="After changing lifecycle_hash_secret on purpose: rescan every source in full under the new "
                        "secret and record its key identity. Without it, a run under another secret stops.",
        ),
        "sources": Param(
            [], type="array", items={"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,99}$"},
            title="Sources", description="Only these catalog sources (empty: all).",
        ),
    },
)
def lifecycle_nightly():
    @task
    def load_catalog() -> list[str]:
        return nightly.selected_sources(get_current_context()["params"])

    @task
    def scan_partitions(sources: list[str]) -> list[dict]:
        return nightly.scan_partitions(sources, get_current_context())

    @task(max_active_tis_per_dagrun=4, map_index_template="{{ partition_label }}")
    def scan_partition(partition: dict) -> dict:
        context = get_current_context()
        context["partition_label"] = f"{partition['source']} {partition['index'] + 1}/{partition['count']}"
        return nightly.scan_partition(partition, context)

    @task(map_index_template="{{ source_label }}")
    def finish_scan(source: str, partitions: list[dict]) -> dict:
        context = get_current_context()
        context["source_label"] = source
        return nightly.finish_scan(source, partitions, context)

    @task(outlets=[VISIT_AGGREGATES])
    def aggregate_analytics(sources: list[str]) -> list[dict]:
        return nightly.aggregate_analytics(sources, get_current_context())

    @task
    def validate_analytics(_aggregated: list[dict]) -> dict:
        return nightly.validate_analytics(get_current_context())

    @task
    def validate_before(scans: list[dict]) -> dict:
        return nightly.validate("before", get_current_context())

    @task
    def plan(sources: list[str], _before: dict) -> dict:
        return nightly.plan(sources, get_current_context())

    @task
    def dependency_groups(sources: list[str]) -> list[list[str]]:
        return nightly.dependency_groups(sources)

    @task
    def approvals_needed(groups: list[list[str]], _planned: dict, before: dict) -> list[dict]:
        return nightly_requests(groups, before, get_current_context())

    @task
    def needs_a_person(requests: list[dict]) -> list[dict]:
        return nightly.needs_a_person(requests)

    @task(max_active_tis_per_dagrun=2)
    def enforce(request: dict, _approval: dict) -> list[dict]:
        return nightly.enforce_group(request["items"], get_current_context())

    @task_group
    def enforcement(request: dict):  # per group: a person approves a large plan first, the others go on
        return enforce(request, LifecycleApproval(task_id="approve_large_plan", request=request).output)

    @task
    def enforcement_parts(requests: list[dict]) -> list[dict]:
        return nightly.enforcement_parts(requests, get_current_context())

    @task(max_active_tis_per_dagrun=4, map_index_template="{{ part_label }}")
    def enforce_part(part: dict) -> list[dict]:
        context = get_current_context()
        context["part_label"] = part["label"]
        return nightly.enforce_part(part, context)

    # Either path may have nothing to do (mapped over an empty list: skipped); none may have failed.
    @task(trigger_rule=TriggerRule.NONE_FAILED)
    def validate_after(_approved: list[list[dict]], _parts: list[list[dict]]) -> dict | None:
        return nightly.validate("after", get_current_context())

    @task(outlets=[NIGHTLY_REPORT], trigger_rule=TriggerRule.NONE_FAILED)
    def report(scans: list[dict], before: dict, planned: dict, approved: list[list[dict]] | None,
               parts: list[list[dict]] | None, after: dict | None) -> str:
        return nightly.report(scans, before, planned, [approved, parts], after, get_current_context())

    @task
    def records_of_processing(_after: dict | None) -> str | None:
        return nightly.records_of_processing(get_current_context())

    sources = load_catalog()
    scanned = scan_partition.expand(partition=scan_partitions(sources))
    scans = finish_scan.partial(partitions=scanned).expand(source=sources)
    before = validate_before(scans)
    planned = plan(sources, before)
    aggregated = aggregate_analytics(sources)
    aggregated >> planned  # raw visits are counted before anything may anonymise them
    validate_analytics(aggregated)
    requests = approvals_needed(dependency_groups(sources), planned, before)
    approved = enforcement.expand(request=needs_a_person(requests))
    parts = enforce_part.expand(part=enforcement_parts(requests))
    after = validate_after(approved, parts)
    report(scans, before, planned, approved, parts, after)
    records_of_processing(after)


lifecycle_nightly()
