"""Approvals in the Airflow UI: Human-in-the-loop tasks (Airflow 3.3's awaiting-input state).

``LifecycleApproval`` asks a person to Approve or Reject what an upstream task described (a
large nightly plan, a data-subject request under four eyes) and records the answer in the tag
store and the audit trail (lifecycle.enforcement.approval); the task that changes data reads
it there. When the upstream task found nothing to ask, the task ends at once without asking.
No answer within ``lifecycle_approval_timeout_hours`` (Variable or env, default 12) takes Reject.

Variables (each also read from the environment variable of the same name in upper case):
- ``lifecycle_approval_timeout_hours``: hours a person has to answer;
- ``lifecycle_approvers``: comma-separated Airflow user ids who may answer (empty: anyone who
  may act on the DAG's approvals); the requester of a subject request is left out;
- ``lifecycle_four_eyes``: request types that wait for a second person (default erasure).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator

from lifecycle.enforcement import ApprovalConfigError, approval_timeout, approvers, plan_approval_text
from lifecycle.enforcement import enforce_source, record_decision, request_approval, summarise_plan
from lifecycle.reporting import build_report, write_report
from lifecycle.rights import SelfApprovalError, check_not_requester
from lifecycle.tagstore import statement
from lifecycle_airflow import runtime

log = logging.getLogger("lifecycle")

APPROVE, REJECT = "Approve", "Reject"
TIMEOUT_VARIABLE = "lifecycle_approval_timeout_hours"
APPROVERS_VARIABLE = "lifecycle_approvers"
FOUR_EYES_VARIABLE = "lifecycle_four_eyes"


def timeout() -> timedelta:
    return approval_timeout(runtime.setting(TIMEOUT_VARIABLE))


def requester(context: dict[str, Any]) -> str | None:
    """Who triggered the run (the REST API or UI user; None for a scheduled run)."""
    return getattr(context["dag_run"], "triggering_user_name", None) or None


class LifecycleApproval(HITLOperator):
    """Approve or Reject, Reject taken at time-out. ``request`` (templated: an upstream task's
    output) says whether to ask at all and what: kind (nightly | request), items (sources or the
    request reference), subject, body (Markdown) and requested_by."""

    template_fields = (*HITLOperator.template_fields, "request")

    def __init__(self, *, request: Any, **kwargs: Any) -> None:
        super().__init__(subject="Lifecycle approval", options=[APPROVE, REJECT], defaults=[REJECT], multiple=False,
                         **kwargs)
        self.request = request

    def execute(self, context: Any) -> Any:
        request = dict(self.request or {})
        if not request.get("needed"):  # nothing over its limit, confirmed in advance, a dry run, four eyes off
            log.info("no approval needed: %s", request.get("decision", "not_needed"))
            return {"needed": False, "decision": request.get("decision", "not_needed")}
        self.subject, self.body = request["subject"], request["body"]
        self.response_timeout = timeout()
        listed = approvers(runtime.setting(APPROVERS_VARIABLE))
        # Four eyes: whoever triggered a subject request is not among those who may answer it.
        allowed = [u for u in listed if request["kind"] != "request" or u != request.get("requested_by")]
        if listed and not allowed:
            raise ApprovalConfigError(f"{APPROVERS_VARIABLE}: no approver other than the requester "
                                      f"{request.get('requested_by')!r}")
        self.assigned_users = [{"id": u, "name": u} for u in allowed] or None
        log.info("waiting up to %s for a person to approve %s %s", self.response_timeout, request["kind"],
                 ", ".join(request["items"]))
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        if event.get("error_type") == "timeout":  # resolved without the default: a time-out all the same
            return self._decide(context, "timed_out", None, None)
        result = super().execute_complete(context, event)
        user = result.get("responded_by_user")
        if event.get("timedout") or not user:
            decision = "timed_out"
        else:
            decision = "approved" if list(result["chosen_options"]) == [APPROVE] else "rejected"
        return self._decide(context, decision, user, result.get("responded_at"))

    def _decide(self, context: Any, decision: str, user: dict[str, Any] | None, at: Any) -> dict[str, Any]:
        request = dict(self.request)
        engine, hasher = runtime.tag_store_engine(), runtime.hasher()
        by = str(user["id"]) if user else None
        details = {"responded_at": at.isoformat() if hasattr(at, "isoformat") else at}
        if decision == "approved" and request["kind"] == "request":
            try:
                check_not_requester(user, request.get("requested_by"))
            except SelfApprovalError:
                record_decision(engine, hasher, "request", context["run_id"], request["items"], "refused",
                                decided_by=by, details={**details, "why": "the requester cannot approve their own request"})
                raise
        record_decision(engine, hasher, request["kind"], context["run_id"], request["items"], decision,  # type: ignore[arg-type]
                        decided_by=by, details=details)
        log.info("%s %s: %s%s", request["kind"], ", ".join(request["items"]), decision, f" by user {by}" if by else "")
        return {"needed": True, "decision": decision, "decided_by": by, **details}


def nightly_requests(groups: list[list[str]], before: dict[str, Any], context: dict[str, Any]) -> list[dict[str, Any]]:
    """One approval request per enforcement group, in the order of ``groups``: needed when a
    source of the group planned more than its max_destroy_share (and the run is no dry run).
    ``confirm_large_plan`` approves in advance, in the name of whoever triggered the run."""
    s = runtime.settings()
    _, catalog = runtime.load_config(s)
    engine, hasher = runtime.tag_store_engine(), runtime.hasher()
    run_id, params, day = context["run_id"], context["params"], runtime.logical_date(context)
    names = [n for g in groups for n in g]
    plans = {n: summarise_plan(engine, catalog.source(n), run_id).to_dict() for n in names}
    gated = [] if params.get("dry_run") else [g for g in groups if any(plans[n]["needs_confirmation"] for n in g)]
    report = str(write_plan_preview(names, before, context).html) if gated else None
    who = requester(context)
    out: list[dict[str, Any]] = []
    for group in groups:
        request: dict[str, Any] = {"kind": "nightly", "items": group, "needed": False, "decision": "not_needed"}
        if group in gated:
            over = [n for n in group if plans[n]["needs_confirmation"]]
            details = {"shares": {n: plans[n]["destroy_share"] for n in over},
                       "limits": {n: catalog.source(n).max_destroy_share for n in over}, "report": report}
            if params.get("confirm_large_plan"):
                request_approval(engine, hasher, "nightly", run_id, group, requested_by=who, details=details,
                                 decision="pre_approved", decided_by=who)
                request["decision"] = "pre_approved"
            else:
                subject, body = plan_approval_text(
                    group, plans, {n: catalog.source(n).max_destroy_share for n in group}, run_id=run_id,
                    logical_date=day.isoformat(), report_path=report, timeout=timeout())
                request_approval(engine, hasher, "nightly", run_id, group, requested_by=who, details=details)
                request.update(needed=True, decision="pending", subject=subject, body=body, requested_by=who)
            log.warning("%s: the plan exceeds max_destroy_share (%s): %s", ", ".join(over),
                        ", ".join(f"{n} {100 * plans[n]['destroy_share']:.1f}%" for n in over),
                        "confirmed in advance" if request["decision"] == "pre_approved" else "waiting for approval")
        out.append(request)
    return out


def write_plan_preview(names: list[str], before: dict[str, Any], context: dict[str, Any]) -> Any:
    """This run's plan as a dry-run report (reports/plans/), for the person who decides."""
    s = runtime.settings()
    policy, catalog = runtime.load_config(s)
    engine = runtime.tag_store_engine()
    run_id = context["run_id"]
    enforcements = []
    for n in names:
        source = catalog.source(n)
        stats = enforce_source(source, summarise_plan(engine, source, run_id), source_engine=None, tag_engine=engine,
                               run_id=run_id, dry_run=True).to_dict()
        enforcements.append(stats)
    with engine.connect() as conn:
        counts = [dict(r) for r in conn.execute(statement(engine, "tag_counts")).mappings()]
    data = build_report(run_id=run_id, logical_date=runtime.logical_date(context), dry_run=True, policy=policy,
                        scans=[], validation_before=before, enforcements=enforcements, validation_after=None,
                        tag_counts=counts, expiring_30_days={}, durations={})
    return write_report(data, s.report_dir / "plans")
