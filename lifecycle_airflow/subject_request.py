"""Task bodies of the data-subject request DAG.

The person's identifiers are read from the run's params inside each task and never returned:
XCom carries the reference, counts and paths only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lifecycle.certificate import now_iso, write_certificate, write_extract
from lifecycle.erasure import RequestScope, apply_erasure, plan_erasure, verify_erasure
from lifecycle.errors import LifecycleError
from lifecycle.extract import build_extract
from lifecycle.rights import plan_objection, plan_withdrawal, rectify
from lifecycle.requests import (
    SubjectIdentifiers,
    complete_request,
    register_request,
    validate_reference,
    validate_request_type,
)
from lifecycle_airflow import runtime

log = logging.getLogger("lifecycle")


class ErasureNotVerifiedError(LifecycleError):
    """Occurrences of the person remain after erasure."""


def _parse(params: dict[str, Any], year: int) -> tuple[str, str, SubjectIdentifiers]:
    return (validate_request_type(str(params.get("request_type") or "")),
            validate_reference(str(params.get("reference") or "")),
            SubjectIdentifiers.parse(params, year))


def validate(context: dict[str, Any]) -> dict[str, str]:
    """Fail fast on bad input, before anything is read or written."""
    request_type, reference, _ = _parse(context["params"], runtime.logical_date(context).year)
    log.info("request %s (%s) is well-formed", reference, request_type)
    return {"reference": reference, "request_type": request_type}


def fulfil(context: dict[str, Any]) -> dict[str, Any]:
    params = context["params"]
    today = runtime.logical_date(context)
    request_type, reference, ids = _parse(params, today.year)
    s = runtime.settings()
    policy, catalog = runtime.load_config(s)
    tags = runtime.tag_store_engine()
    engines = runtime.source_engines(catalog)
    hashes = ids.hashes(runtime.hasher(), today.year)
    dry_run = bool(params.get("dry_run"))
    request = register_request(tags, reference, request_type, today)
    if request_type == "access":
        extract = build_extract(reference, catalog=catalog, policy=policy, source_engines=engines, tag_engine=tags,
                                hashes=hashes)
        paths = write_extract(extract, s.extract_dir)
        _copy_to_bucket([paths.json, paths.html], "extracts")
        outcome = {"activities": len(extract["groups"]), "records": sum(len(g["records"]) for g in extract["groups"]),
                   "mentions": sum(m["count"] for m in extract["mentions"])}
        complete_request(tags, reference, "completed", outcome)
        log.info("access extract %s: %d records in %d activities, written to the protected location",
                 reference, outcome["records"], outcome["activities"])
        return {"reference": reference, **outcome, "path": str(paths.html)}
    hasher = runtime.hasher()
    scope = RequestScope(catalog, engines, tags, hasher, ids, hashes)
    if request_type == "rectification":
        result = rectify(catalog=catalog, policy=policy, source_engines=engines, tag_engine=tags, hasher=hasher, identifiers=ids,
                         kind=str(params.get("rectify_field") or ""), new_value=str(params.get("new_value") or ""),
                         reference=reference, today=today, dry_run=dry_run)
        outcome = result.to_dict()
        complete_request(tags, reference, "dry_run" if dry_run else "completed", outcome)
        log.info("rectification %s of %s: %s", reference, result.kind, result.per_source)
        return {"reference": reference, "records": sum(result.per_source.values()), "dry_run": dry_run}
    if request_type == "erasure":
        actions = plan_erasure(catalog, policy, tags, hashes, today)
        result = apply_erasure(actions, scope, reference=reference, today=today, dry_run=dry_run)
        result = verify_erasure(result, actions, scope, year=today.year)
    else:
        planner = plan_withdrawal if request_type == "consent_withdrawal" else plan_objection
        actions = planner(catalog, policy, tags, hashes)
        reason = "consent_withdrawn" if request_type == "consent_withdrawal" else "objection"
        result = apply_erasure(actions, scope, reference=reference, today=today, dry_run=dry_run, suppress_as=reason)
        # Verified when planning again finds nothing left to do but what goes to customers.
        left = [a for a in planner(catalog, policy, tags, hashes) if a.action != "forward"]
        result.remaining = {a.source: 1 for a in left}
        result.verified = not left
    certificate = {**result.to_dict(), "controller": policy.controller.name, "request_type": request_type,
                   "received_on": str(request["received_on"]), "due_on": str(request["due_on"]), "completed_at": now_iso()}
    paths = write_certificate(certificate, s.report_dir / "certificates")
    _copy_to_bucket([paths.json, paths.html], "certificates")
    for source, n in result.per_source.items():
        log.info("%s %s in %s: %s", request_type, reference, source, ", ".join(f"{k} {v}" for k, v in n.items() if v))
    status = "dry_run" if dry_run else ("completed" if result.verified else "failed")
    complete_request(tags, reference, status, {k: certificate[k] for k in ("per_source", "forwarded", "remaining", "verified")})
    if not dry_run and not result.verified:
        raise ErasureNotVerifiedError(f"request {reference}: occurrences remain in {result.remaining}; see {paths.html}")
    log.info("certificate: %s", paths.html)
    return {"reference": reference, "verified": result.verified, "dry_run": dry_run, "certificate": str(paths.html)}


def _copy_to_bucket(files: list[Path], folder: str) -> None:
    sink = runtime.artifact_sink()
    if sink is not None:
        for uri in sink.upload(files, folder):
            log.info("copied to %s", uri)
