"""Task bodies of the data-subject request DAG.

The person's identifiers are read from the run's params inside each task and never returned:
XCom carries the reference, counts and paths only.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from lifecycle.errors import RequestNotVerifiedError
from lifecycle.rights import SubjectRequest, Workspace
from lifecycle.rights import fulfil as fulfil_request
from lifecycle.rights import ReviewDecision, fulfil_review
from lifecycle.rights import SubjectIdentifiers, validate_reference, validate_request_type
from lifecycle.enforcement import ApprovalRecord, decisions as approval_decisions, request_approval
from lifecycle.rights import ApprovalMissingError, four_eyes_types, needs_four_eyes, preview, review_text
from lifecycle_airflow import approvals, runtime

log = logging.getLogger("lifecycle")


# The request failed verification: the person was still found after acting.
ErasureNotVerifiedError = RequestNotVerifiedError


def _parse(params: dict[str, Any], year: int) -> tuple[str, str, SubjectIdentifiers]:
    return (validate_request_type(str(params.get("request_type") or "")),
            validate_reference(str(params.get("reference") or "")),
            SubjectIdentifiers.parse(params, year))


def _reviewer(context: dict[str, Any]) -> str:
    """The Airflow user who triggered the run: the reviewer a name review records."""
    run = context.get("dag_run")
    return str(getattr(run, "triggering_user_name", None) or "unknown")


def validate(context: dict[str, Any]) -> dict[str, str]:
    """Fail fast on bad input, before anything is read or written."""
    runtime.hasher()  # a missing or weak keyed-hash secret fails here, before anything is read
    if context["params"].get("request_type") == "name_review":
        decision = ReviewDecision.parse(context["params"], _reviewer(context))
        log.info("name review of %s (%s) is well-formed", decision.reference, decision.decision)
        return {"reference": decision.reference, "request_type": "name_review"}
    request_type, reference, _ = _parse(context["params"], runtime.logical_date(context).year)
    log.info("request %s (%s) is well-formed", reference, request_type)
    return {"reference": reference, "request_type": request_type}


def _four_eyes_applies(params: dict[str, Any]) -> bool:
    request_type = str(params.get("request_type") or "")
    types = four_eyes_types(runtime.setting(approvals.FOUR_EYES_VARIABLE))
    return request_type != "name_review" and needs_four_eyes(request_type, bool(params.get("dry_run")), types)


def four_eyes(context: dict[str, Any]) -> dict[str, Any]:
    """What the request would do, for a second person to approve (lifecycle_airflow.approvals),
    when Variable lifecycle_four_eyes names its type; nothing is changed here."""
    params = context["params"]
    reference = str(params.get("reference") or "")
    if not _four_eyes_applies(params):
        return {"kind": "request", "items": [reference], "needed": False, "decision": "not_needed"}
    today = runtime.logical_date(context)
    request_type, reference, ids = _parse(params, today.year)
    policy, catalog = runtime.load_config(runtime.settings())
    engine, hasher = runtime.tag_store_engine(), runtime.hasher()
    workspace = Workspace(policy, catalog, runtime.source_engines(catalog), engine, hasher)
    request = SubjectRequest(reference, request_type, ids, today, dry_run=bool(params.get("dry_run")),  # type: ignore[arg-type]
                             rectify_field=params.get("rectify_field") or None, new_value=params.get("new_value") or None)
    planned = preview(request, workspace)
    who = approvals.requester(context)
    subject, body = review_text(planned, requested_by=who, timeout=approvals.timeout())
    request_approval(engine, hasher, "request", context["run_id"], [reference], requested_by=who,
                     details={"request_type": request_type, "per_source": planned.per_source,
                              "held": len(planned.held), "forwarded": planned.forwarded})
    log.info("request %s (%s) waits for a second person's approval", reference, request_type)
    return {"kind": "request", "items": [reference], "needed": True, "decision": "pending", "subject": subject,
            "body": body, "requested_by": who}


def _decision(context: dict[str, Any], reference: str) -> ApprovalRecord | None:
    """The four-eyes decision on this run's request, whenever one was recorded (a Variable turned
    off since does not undo a rejection); None when four eyes did not apply."""
    record = approval_decisions(runtime.tag_store_engine(), "request", context["run_id"]).get(reference)
    if record is None and _four_eyes_applies(context["params"]):
        raise ApprovalMissingError(f"request {reference}: four eyes apply (lifecycle_four_eyes) but no decision "
                                   "was recorded for this run; nothing was changed")
    return record


def fulfil(context: dict[str, Any]) -> dict[str, Any]:
    """Resolve Connections and Variables, then the domain's one dispatcher does the request."""
    params = context["params"]
    today = runtime.logical_date(context)
    s = runtime.settings()
    policy, catalog = runtime.load_config(s)
    workspace = Workspace(policy, catalog, runtime.source_engines(catalog), runtime.tag_store_engine(), runtime.hasher())
    if params.get("request_type") == "name_review":
        return _review(ReviewDecision.parse(params, _reviewer(context)), workspace, s.report_dir, today.year)
    request_type, reference, ids = _parse(params, today.year)
    request = SubjectRequest(reference, request_type, ids, today, dry_run=bool(params.get("dry_run")),  # type: ignore[arg-type]
                             rectify_field=params.get("rectify_field") or None, new_value=params.get("new_value") or None)
    approval = _decision(context, reference)
    if approval is not None and not approval.goes_ahead:
        log.warning("request %s not carried out: %s%s; nothing was changed", reference,
                    approval.decision.replace("_", " "), f" by user {approval.decided_by}" if approval.decided_by else "")
        return {"reference": reference, "dry_run": request.dry_run, "approval": approval.decision, "changed": False}
    if approval is not None:  # the certificate names the approver
        request = replace(request, approval={"approved_by": approval.decided_by, "requested_by": approval.requested_by,
                                             "approved_at": approval.summary()["decided_at"]})
    try:
        result = fulfil_request(request, workspace, report_dir=s.report_dir, extract_dir=s.extract_dir)
    except RequestNotVerifiedError as failed:
        if failed.documents is not None:  # the certificate says where the person was still found
            _copy_to_bucket([failed.documents.json, failed.documents.html], "certificates")
        raise
    if result.documents is not None:
        _copy_to_bucket([result.documents.json, result.documents.html], "extracts" if result.protected else "certificates")
    if result.protected:  # the extract holds personal data: say where, never what
        log.info("access extract %s: %d records in %d activities, written to the protected location",
                 reference, result.summary["records"], result.summary["activities"])
        return {"reference": reference, **result.summary, "path": str(result.documents.html if result.documents else "")}
    for source, n in (result.summary.get("per_source") or {}).items():
        counts = n.items() if isinstance(n, dict) else [("records", n)]
        log.info("%s %s in %s: %s", request_type, reference, source, ", ".join(f"{k} {v}" for k, v in counts if v))
    out: dict[str, Any] = {"reference": reference, "dry_run": request.dry_run}
    if result.verified is not None:
        out["verified"] = result.verified
    if result.documents is not None:
        log.info("certificate: %s", result.documents.html)
        out["certificate"] = str(result.documents.html)
    if request_type == "rectification":
        out["records"] = result.summary["records"]
    return out


def _review(decision: ReviewDecision, workspace: Workspace, report_dir: Path, year: int) -> dict[str, Any]:
    try:
        result = fulfil_review(decision, workspace, report_dir=report_dir, year=year)
    except RequestNotVerifiedError as failed:
        if failed.documents is not None:
            _copy_to_bucket([failed.documents.json, failed.documents.html], "certificates")
        raise
    assert result.documents is not None
    _copy_to_bucket([result.documents.json, result.documents.html], "certificates")
    for source, counts in result.summary["per_source"].items():
        log.info("name review %s in %s: %s", decision.reference, source, ", ".join(f"{k} {v}" for k, v in counts.items() if v))
    return {"reference": decision.reference, "decision": decision.decision, "verified": result.verified,
            "pending_after": result.summary["pending_after"], "certificate": str(result.documents.html)}


def _copy_to_bucket(files: list[Path], folder: str) -> None:
    sink = runtime.artifact_sink()
    if sink is not None:
        for uri in sink.upload(files, folder):
            log.info("copied to %s", uri)
