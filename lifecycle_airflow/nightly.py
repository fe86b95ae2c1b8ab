"""Task bodies of the nightly lifecycle DAG: resolve Airflow context, call the domain package.

XCom carries only source names, counts, durations and paths, never personal data.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Engine

from lifecycle.enforcement import batch_ranges, enforce_source, merge_stats, partitionable, plan_batches
from lifecycle.discovery import ensure_installation_key
from lifecycle.discovery import Partition, ScanStats, finish_partitions, plan_partitions, run_partition
from lifecycle.errors import AuditChainBrokenError, KeyMismatchError, SinkError, ValidationFailedError
from lifecycle.enforcement import build_plan, inherit_parent_clocks, reference_pairs, register_run, summarise_plan
from lifecycle.enforcement import decisions as approval_decisions, withheld_stats
from lifecycle.reporting import append as audit_append, build_report, rotate_key as audit_rotate_key, summary_lines
from lifecycle.reporting import verify as audit_verify, write_report
from lifecycle.reporting import ArtifactSink, export_audit_trail
from lifecycle.reporting import publish_processing_record
from lifecycle.config import check_register, dependency_order, load_mechanisms
from lifecycle.rights import open_requests
from lifecycle.stores import check_foreign_keys
from lifecycle.tagstore import statement
from lifecycle_airflow import runtime

log = logging.getLogger("lifecycle")


def progress_logger(label: str, every_share: float = 0.1) -> Callable[[int, int], None]:
    """Periodic progress lines in the task log (every 10 % by default)."""
    state = {"next": every_share, "t0": time.monotonic()}

    def report(done: int, total: int) -> None:
        share = done / total if total else 1.0
        if share >= state["next"] or done == total:
            rate = done / max(time.monotonic() - state["t0"], 1e-9)
            log.info("%s: %d/%d (%.0f%%), %.0f/s", label, done, total, 100 * share, rate)
            state["next"] = share + every_share

    return report


def selected_sources(params: dict[str, Any]) -> list[str]:
    """Validate the keyed-hash secret, policy and catalog (clear errors, nothing written) and pick
    the sources to run: an unknown name in ``sources`` fails here, naming it."""
    runtime.hasher()  # a missing or weak secret fails the first task, not a scan halfway
    _, catalog = runtime.load_config(runtime.settings())
    wanted = params.get("sources") or list(catalog.sources)
    if params.get("rotate_key") and params.get("sources"):
        raise KeyMismatchError("rotate_key re-indexes every source under the new secret: leave sources empty")
    return list(dict.fromkeys(catalog.source(name).name for name in wanted))  # each once, in the order given


def scan(source_name: str, context: dict[str, Any]) -> dict[str, Any]:
    """One source scanned whole by its store (objects, lake tables): one task, as it always was."""
    policy, catalog = runtime.load_config(runtime.settings())
    source = catalog.source(source_name)
    store = runtime.store(source, runtime.tag_store_engine())
    stats = store.scan(policy, hasher=runtime.hasher(), run_id=context["run_id"], logical_date=runtime.logical_date(context),
                       full_rescan=bool(context["params"].get("full_rescan")),
                       rotate_key=bool(context["params"].get("rotate_key")),
                       progress=progress_logger(f"scan {source.name}"), catalog_file=str(runtime.settings().catalog_path))
    log_scan(stats)
    return stats.to_dict()


def log_scan(stats: ScanStats) -> None:
    log.info("scanned %s (%s%s): %d records read, %d tags, %d violations, %d identifiers in free text, "
             "%d deleted records dropped, in %.2fs", stats.source, stats.mode,
             f": {stats.full_reason}" if stats.full_reason else "", stats.records, stats.tags, stats.violations,
             stats.free_text_refs, stats.deleted, stats.seconds)
    for finding in stats.schema_findings:
        log.warning("schema drift in %s: %s %s", stats.source, finding["finding"], finding["column"])
    if stats.objects_read or stats.objects_unchanged:
        log.info("%s: %d objects read, %d unchanged since the last scan", stats.source, stats.objects_read,
                 stats.objects_unchanged)
    for finding in stats.object_findings:  # objects by keyed reference: their keys may name people
        log.warning("object %s in %s: %s: %s", finding["object_ref"], stats.source, finding["finding"], finding["problem"])


def scan_partitions(sources: list[str], context: dict[str, Any]) -> list[dict[str, Any]]:
    """Each source's scan decided once and split (lifecycle.discovery.partitions): a full scan of
    a large SQL table into key ranges of about the catalog's partition_rows, anything else into
    one; a source that is not a SQL table is scanned whole by its store (``plan`` None)."""
    policy, catalog = runtime.load_config(runtime.settings())
    engine = runtime.tag_store_engine()
    out: list[dict[str, Any]] = []
    for source in [catalog.source(n) for n in sources]:
        if source.table is None:
            out.append({"source": source.name, "index": 0, "count": 1, "lo": None, "hi": None, "plan": None})
            continue
        parts = plan_partitions(source, policy, source_engine=runtime.backend(source), tag_engine=engine,
                                hasher=runtime.hasher(), run_id=context["run_id"],
                                full_rescan=bool(context["params"].get("full_rescan")),
                                rotate_key=bool(context["params"].get("rotate_key")),
                                catalog_file=str(runtime.settings().catalog_path))
        plan = parts[0].plan
        log.info("scan of %s: %s%s, %d partition(s)", source.name, plan["mode"],
                 f" ({plan['full_reason']})" if plan["full_reason"] else "", len(parts))
        out.extend(p.to_dict() for p in parts)
    return out


def scan_partition(partition: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """One partition; a retry (try 2 or later, or a cleared task) upserts what its failed
    attempt wrote instead of copying it in again."""
    if partition["plan"] is None:
        return {"partition": partition, "stats": scan(partition["source"], context)}
    policy, catalog = runtime.load_config(runtime.settings())
    source = catalog.source(partition["source"])
    part = Partition.from_dict(partition)
    label = f"scan {source.name} [{part.index + 1}/{part.count}]"
    result = run_partition(part, source, policy, source_engine=runtime.backend(source),
                           tag_engine=runtime.tag_store_engine(), hasher=runtime.hasher(),
                           logical_date=runtime.logical_date(context), retry=context["ti"].try_number > 1,
                           progress=progress_logger(label))
    stats = result["range"]["stats"]
    log.info("%s, keys [%s, %s): %d records, %d tags, in %.2fs", label, part.lo, part.hi, stats["records"],
             stats["tags"], stats["seconds"])
    return result


def finish_scan(source_name: str, partitions: list[dict[str, Any]], context: dict[str, Any]) -> dict[str, Any]:
    """Once every partition of the source succeeded: deleted records, index swap, watermark."""
    _, catalog = runtime.load_config(runtime.settings())
    source = catalog.source(source_name)
    mine = [r for r in partitions if r["partition"]["source"] == source.name]
    if len(mine) == 1 and mine[0]["partition"]["plan"] is None:
        return dict(mine[0]["stats"])
    stats = finish_partitions(source, mine, source_engine=runtime.backend(source),
                              tag_engine=runtime.tag_store_engine(), hasher=runtime.hasher())
    log_scan(stats)
    return stats.to_dict()


def validate(stage: str, context: dict[str, Any]) -> dict[str, Any] | None:
    if stage == "after" and context["params"].get("dry_run"):
        log.info("dry run: nothing was enforced, so there is nothing to validate afterwards")
        return None
    from lifecycle.enforcement import validate_tag_store  # Great Expectations: heavy, not at DAG parse time

    s = runtime.settings()
    policy, catalog = runtime.load_config(s)
    # A run limited to some sources validates those sources only: another source's untouched
    # problems are that source's run's business. Names were checked by the first task.
    sources = [catalog.source(name).name for name in context["params"].get("sources") or []] or None
    # A source whose large plan a person rejected (or let time out) was not enforced: checking it
    # "after enforcement" would fail the night for a decision; the report says it is withheld instead.
    withheld = {item for item, r in approval_decisions(runtime.tag_store_engine(), "nightly", context["run_id"]).items()
                if not r.goes_ahead} if stage == "after" else set()
    if withheld:
        sources = [n for n in sources or list(catalog.sources) if n not in withheld]
        log.warning("validation after: %s left out, not enforced by decision", ", ".join(sorted(withheld)))
        if not sources:
            return {"stage": stage, "success": True, "evaluated_records": 0, "sources": [], "outcomes": [],
                    "scope": "no source (every one withheld by decision)", "seconds": 0.0}
    started = time.monotonic()
    if stage == "before":  # every scan is done: records without a clock of their own take their parent's
        inherit_parent_clocks(runtime.tag_store_engine(), catalog, sources or list(catalog.sources))
    result = validate_tag_store(
        runtime.tag_store_engine(),
        stage=stage,
        logical_date=runtime.logical_date(context),
        allowed_purposes=policy.allowed_purposes(),
        suite_dir=s.suite_dir,
        sources=sources,
    )
    out = result.to_dict()
    out["seconds"] = round(time.monotonic() - started, 3)
    log.info("validation %s over %s", stage, "sources " + ", ".join(sources) if sources else "every source")
    for o in out["outcomes"]:
        log.info("validation %s: %s: %s (%d of %d unexpected)", stage, o["description"],
                 "met" if o["success"] else "NOT met", o["unexpected_count"], o["element_count"])
    return out


def plan(sources: list[str], context: dict[str, Any]) -> dict[str, Any]:
    s = runtime.settings()
    policy, catalog = runtime.load_config(s)
    engine = runtime.tag_store_engine()
    started = time.monotonic()
    run_id, day = context["run_id"], runtime.logical_date(context)
    # Every scan passed the key check; the suppression list must be under the same secret too.
    ensure_installation_key(engine, runtime.hasher(), rotate=bool(context["params"].get("rotate_key")))
    if context["params"].get("rotate_key"):  # the audit trail goes on under the new secret
        audit_rotate_key(engine, runtime.hasher())
    # The configuration this run plans under, in the audit trail: the files' content by hash.
    audit_append(engine, runtime.hasher(), "config_fingerprint", run_id, config_fingerprint(s.policy_path, s.catalog_path)
                 | {"logical_date": day.isoformat(), "dry_run": bool(context["params"].get("dry_run")), "sources": sources})
    existed = register_run(engine, run_id, day, bool(context["params"].get("dry_run")))
    marketing = tuple(n for n, a in policy.activities.items() if a.direct_marketing and a.role == "controller")
    # A delete the database would refuse or cascade into undescribed tables stops the night here.
    check_foreign_keys(catalog, {n: runtime.store(catalog.source(n), engine) for n in sources}, sources)
    build_plan(engine, [catalog.source(n) for n in sources], run_id, day, marketing, reference_pairs(catalog, sources))
    summaries = {n: summarise_plan(engine, catalog.source(n), run_id).to_dict() for n in sources}
    for name, p in summaries.items():
        log.info("plan %s: erase %d, anonymise %d records + %d fields, restrict %d (%.1f%% of source)%s",
                 name, p["records_to_erase"], p["records_to_anonymise"], p["fields_to_anonymise"],
                 p["records_to_restrict"] + p["violations_to_restrict"], 100 * p["destroy_share"],
                 " NEEDS CONFIRMATION" if p["needs_confirmation"] else "")
    return {"reused_existing_plan": existed, "seconds": round(time.monotonic() - started, 3)}


def audit_export(engine: Engine, sink: ArtifactSink | None, day: date) -> tuple[dict[str, Any], Exception | None]:
    """Copy the audit trail to the artifact bucket; a failure is reported, then raised once the
    local report is written (the report is the record of the night, the copy a witness to it)."""
    if sink is None:
        return {"status": "not_exported", "locked": False,
                "message": "audit trail not exported: no artifact bucket configured (lifecycle_artifact_url)"}, None
    try:
        exported = export_audit_trail(engine, sink, day, runtime.audit_lock_days())
    except Exception as exc:  # noqa: BLE001 - raised again after the report is written
        return {"status": "failed", "locked": False,
                "message": f"audit trail export to s3://{sink.bucket} failed: {type(exc).__name__}: {exc}"}, exc
    log.info("%s", exported.message)
    return exported.to_dict(), None


def config_fingerprint(policy_path: Any, catalog_path: Any) -> dict[str, str]:
    """SHA-256 of the policy and catalog files' content, and of the two together."""
    policy, catalog = (hashlib.sha256(open(p, "rb").read()).hexdigest() for p in (policy_path, catalog_path))
    return {"policy_sha256": policy, "catalog_sha256": catalog,
            "fingerprint": hashlib.sha256(f"{policy}:{catalog}".encode()).hexdigest()}


def dependency_groups(sources: list[str]) -> list[list[str]]:
    """Sources that reference each other, children first; unrelated sources apart."""
    _, catalog = runtime.load_config(runtime.settings())
    return dependency_order(catalog, sources)


def enforce_group(sources: list[str], context: dict[str, Any],
                  batch_range: tuple[int, int] | None = None) -> list[dict[str, Any]]:
    """One group's sources in order, so a child record is gone before its parent is touched;
    with ``batch_range``, one partition of a group of one source."""
    return [enforce(name, context, batch_range) for name in sources]


def needs_a_person(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The groups whose large plan waits for an approval: enforced by the approval's task group."""
    return [r for r in requests if r["needed"]]


def enforcement_parts(requests: list[dict[str, Any]], context: dict[str, Any]) -> list[dict[str, Any]]:
    """The work of the groups that need no person, as mapped enforcement tasks: a group of one
    SQL-table source with more than a partition's worth of batches (partition_rows / batch_size)
    is cut into batch ranges, enforced side by side by whichever workers are free; a group of
    related sources stays one task, children before parents."""
    _, catalog = runtime.load_config(runtime.settings())
    engine, run_id = runtime.tag_store_engine(), context["run_id"]
    parts: list[dict[str, Any]] = []
    for request in requests:
        if request["needed"]:
            continue
        group = request["items"]
        source = catalog.source(group[0])
        if len(group) == 1 and partitionable(source):
            batches = len(plan_batches(engine, source, run_id))
            ranges = batch_ranges(batches, max(source.partition_rows // source.batch_size, 1))
            if len(ranges) > 1:
                parts += [{"items": group, "batch_range": list(r), "label": f"{source.name} {i + 1}/{len(ranges)}"}
                          for i, r in enumerate(ranges)]
                log.info("%s: %d batches enforced in %d partitions", source.name, batches, len(ranges))
                continue
        parts.append({"items": group, "batch_range": None, "label": " > ".join(group)})
    return parts


def enforce_part(part: dict[str, Any], context: dict[str, Any]) -> list[dict[str, Any]]:
    batch_range = tuple(part["batch_range"]) if part.get("batch_range") else None
    return enforce_group(part["items"], context, batch_range)  # type: ignore[arg-type]


def enforce(source_name: str, context: dict[str, Any], batch_range: tuple[int, int] | None = None) -> dict[str, Any]:
    _, catalog = runtime.load_config(runtime.settings())
    source = catalog.source(source_name)
    engine = runtime.tag_store_engine()
    run_id = context["run_id"]
    params = context["params"]
    plan = summarise_plan(engine, source, run_id)
    # A large plan that waited for a person (lifecycle_airflow.approvals): only an approval lets it go ahead.
    approval = approval_decisions(engine, "nightly", run_id).get(source.name)
    if approval is not None and not approval.goes_ahead and not params.get("dry_run"):
        log.warning("%s not enforced: its large plan was %s%s; nothing of it changed", source.name,
                    approval.decision.replace("_", " "), f" by user {approval.decided_by}" if approval.decided_by else "")
        return withheld_stats(source.name, plan.to_dict(), approval)
    stats = enforce_source(
        source,
        plan,
        source_engine=runtime.store(source, engine),
        tag_engine=engine,
        run_id=run_id,
        dry_run=bool(params.get("dry_run")),
        confirmed=bool(params.get("confirm_large_plan")) or (approval is not None and approval.goes_ahead),
        progress=progress_logger(f"enforce {source.name}"),
        hasher=runtime.hasher(),
        year=runtime.logical_date(context).year,
        batch_range=batch_range,
    )
    log.info("enforced %s%s: erased %d, anonymised %d records + %d fields, restricted %d, "
             "mentions of erased people redacted in %d; %d batches (%d already done)",
             source.name, " (dry run)" if stats.dry_run else "", stats.records_erased, stats.records_anonymised,
             stats.fields_anonymised, stats.records_restricted + stats.violations_restricted, stats.mentions_redacted,
             stats.batches, stats.batches_skipped)
    if stats.objects:
        log.info("objects of %s: %d rewritten, %d deleted, %d versions and %d delete markers removed, %d retries",
                 source.name, stats.objects["objects_rewritten"], stats.objects["objects_deleted"],
                 stats.objects["versions_removed"], stats.objects["delete_markers_removed"], stats.objects["delete_retries"])
    out = stats.to_dict()
    if approval is not None:  # the report names who approved the large plan
        out["approval"] = approval.summary()
    return out


def _stats_of(outputs: Any) -> Any:
    """The EnforceStats dicts in the enforcement tasks' outputs, however Airflow nests them (a list
    per mapped task, a list of those per path)."""
    if isinstance(outputs, dict):
        yield outputs
        return
    if isinstance(outputs, (str, bytes)):
        raise TypeError(f"an enforcement task returned {type(outputs).__name__}, not its statistics")
    for item in outputs or ():
        yield from _stats_of(item)


def report(
    scans: list[dict[str, Any]],
    before: dict[str, Any],
    planned: dict[str, Any],
    enforced_groups: Any,  # the outputs of both enforcement paths, nested as Airflow hands them over
    after: dict[str, Any] | None,
    context: dict[str, Any],
) -> str:
    # A partitioned source's partitions report apart: one line per source in the report.
    enforcements = merge_stats(list(_stats_of(enforced_groups)))
    s = runtime.settings()
    policy, _ = runtime.load_config(s)
    engine = runtime.tag_store_engine()
    day = runtime.logical_date(context)
    with engine.connect() as conn:
        counts = [dict(r) for r in conn.execute(statement(engine, "tag_counts")).mappings()]
        expiring = dict(conn.execute(
            statement(engine, "expiring_soon"), {"from_date": day, "until_date": day + timedelta(days=30)}
        ).all())
    durations = {
        "scan": round(sum(x["seconds"] for x in scans), 3),
        "validate_before": before["seconds"],
        "plan": planned["seconds"],
        "enforce": round(sum(x["seconds"] for x in enforcements), 3),
        "validate_after": after["seconds"] if after else 0.0,
    }
    sink = runtime.artifact_sink()
    # The chain's nightly copy (write-once where the bucket has Object Lock), named in the report.
    exported, export_error = audit_export(engine, sink, day)
    data = build_report(
        run_id=context["run_id"], logical_date=day, dry_run=bool(context["params"].get("dry_run")), policy=policy,
        scans=scans, validation_before=before, enforcements=enforcements, validation_after=after,
        tag_counts=counts, expiring_30_days={k: int(v) for k, v in expiring.items()}, durations=durations,
        open_requests=open_requests(engine, day),
        sub_processors=[f.to_dict() for f in check_register(policy, load_mechanisms(s.mechanisms_path), day)],
        audit={**(audit := audit_verify(engine, runtime.hasher())).to_dict(), "export": exported},
    )
    paths = write_report(data, s.report_dir)
    for line in summary_lines(data, paths):
        log.info("%s", line)
    if sink is not None:
        for uri in sink.upload([paths.json, paths.html], "reports"):
            log.info("report copied to %s", uri)
    if export_error is not None:
        raise SinkError(f"{exported['message']}; see {paths.html}") from export_error
    if not audit.intact:
        log.error("%s", audit.message)
        raise AuditChainBrokenError(f"{audit.message}; see {paths.html}", first_broken=audit.first_broken)
    if after is not None and not after["success"]:
        raise ValidationFailedError(f"post-enforcement validation failed; see {paths.html}")
    return str(paths.html)


def records_of_processing(context: dict[str, Any]) -> str | None:
    """The record of processing activities (art. 30) for the run's month, against the previous
    month's; written whether or not the night was compliant, since it describes what is held."""
    s = runtime.settings()
    policy, catalog = runtime.load_config(s)
    paths = publish_processing_record(
        tag_engine=runtime.tag_store_engine(), policy=policy, catalog=catalog,
        mechanisms=load_mechanisms(s.mechanisms_path), as_of=runtime.logical_date(context),
        report_dir=s.report_dir, run_id=context["run_id"])
    if paths is None:
        log.info("record of processing: a later month's record exists, this run's month is left as it was")
        return None
    log.info("record of processing written: %s (and .json, .csv)", paths.html)
    sink = runtime.artifact_sink()
    if sink is not None:
        for uri in sink.upload([paths.json, paths.html, paths.csv], "records-of-processing"):
            log.info("record of processing copied to %s", uri)
    return str(paths.html)


def aggregate_analytics(sources: list[str], context: dict[str, Any]) -> list[dict[str, Any]]:
    """Count the complete periods of the selected analytics sources (website visits) not yet
    aggregated, before the plan may anonymise their raw data; a dry run stores nothing."""
    from lifecycle.enforcement import aggregate_source

    _, catalog = runtime.load_config(runtime.settings())
    engine = runtime.tag_store_engine()
    out = []
    for source in [catalog.source(n) for n in sources if catalog.source(n).analytics is not None]:
        stats = aggregate_source(source, runtime.backend(source), engine, run_id=context["run_id"],
                                 logical_date=runtime.logical_date(context),
                                 dry_run=bool(context["params"].get("dry_run")))
        log.info("analytics %s%s: %d periods up to %s, %d groups published (%d small groups merged into other), "
                 "%d small groups with %d visits left out, in %.2fs", source.name, " (dry run)" if stats.dry_run else "",
                 stats.periods, stats.aggregated_until or "(nothing complete)", stats.groups_published,
                 stats.groups_merged, stats.groups_suppressed, stats.visits_suppressed, stats.seconds)
        if stats.groups_withdrawn:
            log.warning("analytics %s: %d published groups under k = %d withdrawn", source.name,
                        stats.groups_withdrawn, stats.k)
        out.append(stats.to_dict())
    return out


def validate_analytics(context: dict[str, Any]) -> dict[str, Any]:
    """Great Expectations over the published aggregates: no group under its source's k. A failure
    fails the run without holding back enforcement, which does not depend on it."""
    from lifecycle.enforcement import validate_aggregates  # Great Expectations: heavy

    s = runtime.settings()
    _, catalog = runtime.load_config(s)
    result = validate_aggregates(runtime.tag_store_engine(), catalog, s.suite_dir).to_dict()
    for o in result["outcomes"]:
        log.info("analytics validation: %s: %s (%d of %d unexpected)", o["description"],
                 "met" if o["success"] else "NOT met", o["unexpected_count"], o["element_count"])
    if not result["success"]:
        raise ValidationFailedError("published analytics fail analytics_aggregates.json (a group under its minimum "
                                    "group size k, or a column beyond counts); see this task's log")
    return result
