"""Task bodies of the breach-scoping DAG (GDPR Art. 33-34).

The form's values are checked before anything is read; the scoping runs on the tag store only.
Logs and XCom carry the reference, counts and paths: the list of persons to contact goes to the
protected folder (``lifecycle_extract_dir``), nowhere else.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from lifecycle.reporting import BreachScope, parse_scope, scope_breach
from lifecycle_airflow import runtime

log = logging.getLogger("lifecycle")


def _scope(context: dict[str, Any]) -> tuple[BreachScope, Any, Any, Any]:
    s = runtime.settings()
    policy, catalog = runtime.load_config(s)
    return parse_scope(context["params"], catalog, now=datetime.now(timezone.utc)), s, policy, catalog


def validate(context: dict[str, Any]) -> dict[str, Any]:
    """Fail fast on bad input (unknown source, inverted window, bad reference), before anything is read."""
    scope, *_ = _scope(context)
    log.info("breach %s: %d source(s) in scope, notify the authority by %s", scope.reference,
             len(scope.all_sources), scope.notify_by.isoformat(timespec="minutes"))
    return {"reference": scope.reference, "sources": list(scope.all_sources)}


def scope(context: dict[str, Any]) -> dict[str, Any]:
    """Count what the breach touches; report (counts) to the report folder, contact list to the protected one."""
    breach, s, policy, catalog = _scope(context)
    result = scope_breach(breach, catalog=catalog, policy=policy, tag_engine=runtime.tag_store_engine(),
                          report_dir=s.report_dir / "breaches", protected_dir=s.extract_dir)
    summary = result.summary()
    log.info("breach %s: %d records, %d persons, %d processor customer(s) to inform; notify by %s",
             breach.reference, summary["records"], summary["persons"], summary["processor_customers"],
             summary["notify_by"])
    log.info("report: %s; contact list written to the protected folder", summary["report"])
    sink = runtime.artifact_sink()
    if sink is not None:  # the report only: the contact list stays in the protected folder
        for uri in sink.upload([result.paths.json, result.paths.html], "breaches"):
            log.info("copied to %s", uri)
    return summary
