"""Task bodies of the nightly lifecycle DAG: resolve Airflow context, call the domain package.

XCom carries only source names, counts, durations and paths, never personal data.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from lifecycle.enforcement import enforce_source
from lifecycle.discovery import ensure_installation_key
from lifecycle.errors import AuditChainBrokenError, KeyMismatchError, ValidationFailedError
from lifecycle.enforcement import build_plan, inherit_parent_clocks, reference_pairs, register_run, summarise_plan
from lifecycle.reporting import append as audit_append, build_report, rotate_key as audit_rotate_key, summary_lines
from lifecycle.reporting import verify as audit_verify, write_report
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
    policy, catalog = runtime.load_config(runtime.settings())
    source = catalog.source(source_name)
    store = runtime.store(source, runtime.tag_store_engine())
    stats = store.scan(policy, hasher=runtime.hasher(), run_id=context["run_id"], logical_date=runtime.logical_date(context),
                       full_rescan=bool(context["params"].get("full_rescan")),
                       rotate_key=bool(context["params"].get("rotate_key")),
                       progress=progress_logger(f"scan {source.name}"), catalog_file=str(runtime.settings().catalog_path))
    log.info("scanned %s (%s%s): %d records read, %d tags, %d violations, %d identifiers in free text, "
             "%d deleted records dropped, in %.2fs", source.name, stats.mode,
             f": {stats.full_reason}" if stats.full_reason else "", stats.records, stats.tags, stats.violations,
             stats.free_text_refs, stats.deleted, stats.seconds)
    for finding in stats.schema_findings:
        log.warning("schema drift in %s: %s %s", source.name, finding["finding"], finding["column"])
    if stats.objects_read or stats.objects_unchanged:
        log.info("%s: %d objects read, %d unchanged since the last scan", source.name, stats.objects_read,
                 stats.objects_unchanged)
    for finding in stats.object_findings:  # objects by keyed reference: their keys may name people
        log.warning("object %s in %s: %s: %s", finding["object_ref"], source.name, finding["finding"], finding["problem"])
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


def config_fingerprint(policy_path: Any, catalog_path: Any) -> dict[str, str]:
    """SHA-256 of the policy and catalog files' content, and of the two together."""
    policy, catalog = (hashlib.sha256(open(p, "rb").read()).hexdigest() for p in (policy_path, catalog_path))
    return {"policy_sha256": policy, "catalog_sha256": catalog,
            "fingerprint": hashlib.sha256(f"{policy}:{catalog}".encode()).hexdigest()}


def dependency_groups(sources: list[str]) -> list[list[str]]:
    """Sources that reference each other, children first; unrelated sources apart."""
    _, catalog = runtime.load_config(runtime.settings())
    return dependency_order(catalog, sources)


def enforce_group(sources: list[str], context: dict[str, Any]) -> list[dict[str, Any]]:
    """One group's sources in order, so a child record is gone before its parent is touched."""
    return [enforce(name, context) for name in sources]


def enforce(source_name: str, context: dict[str, Any]) -> dict[str, Any]:
    _, catalog = runtime.load_config(runtime.settings())
    source = catalog.source(source_name)
    engine = runtime.tag_store_engine()
    run_id = context["run_id"]
    params = context["params"]
    stats = enforce_source(
        source,
        summarise_plan(engine, source, run_id),
        source_engine=runtime.store(source, engine),
        tag_engine=engine,
        run_id=run_id,
        dry_run=bool(params.get("dry_run")),
        confirmed=bool(params.get("confirm_large_plan")),
        progress=progress_logger(f"enforce {source.name}"),
        hasher=runtime.hasher(),
        year=runtime.logical_date(context).year,
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
    return stats.to_dict()


def report(
    scans: list[dict[str, Any]],
    before: dict[str, Any],
    planned: dict[str, Any],
    enforced_groups: list[list[dict[str, Any]]],
    after: dict[str, Any] | None,
    context: dict[str, Any],
) -> str:
    enforcements = [stats for group in enforced_groups for stats in group]
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
    data = build_report(
        run_id=context["run_id"], logical_date=day, dry_run=bool(context["params"].get("dry_run")), policy=policy,
        scans=scans, validation_before=before, enforcements=enforcements, validation_after=after,
        tag_counts=counts, expiring_30_days={k: int(v) for k, v in expiring.items()}, durations=durations,
        open_requests=open_requests(engine, day),
        sub_processors=[f.to_dict() for f in check_register(policy, load_mechanisms(s.mechanisms_path), day)],
        audit=(audit := audit_verify(engine, runtime.hasher())).to_dict(),
    )
    paths = write_report(data, s.report_dir)
    for line in summary_lines(data, paths):
        log.info("%s", line)
    sink = runtime.artifact_sink()
    if sink is not None:
        for uri in sink.upload([paths.json, paths.html], "reports"):
            log.info("report copied to %s", uri)
    if not audit.intact:
        log.error("%s", audit.message)
        raise AuditChainBrokenError(f"{audit.message}; see {paths.html}", first_broken=audit.first_broken)
    if after is not None and not after["success"]:
        raise ValidationFailedError(f"post-enforcement validation failed; see {paths.html}")
    return str(paths.html)
