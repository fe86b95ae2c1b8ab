"""Task bodies of the data-subject request DAG.

The person's identifiers are read from the run's params inside each task and never returned:
XCom carries the reference, counts and paths only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lifecycle.errors import RequestNotVerifiedError
from lifecycle.rights import SubjectRequest, Workspace
from lifecycle.rights import fulfil as fulfil_request
from lifecycle.rights import SubjectIdentifiers, validate_reference, validate_request_type
from lifecycle_airflow import runtime

log = logging.getLogger("lifecycle")


# The request failed verification: the person was still found after acting.
ErasureNotVerifiedError = RequestNotVerifiedError


def _parse(params: dict[str, Any], year: int) -> tuple[str, str, SubjectIdentifiers]:
    return (validate_request_type(str(params.get("request_type") or "")),
            validate_reference(str(params.get("reference") or "")),
            SubjectIdentifiers.parse(params, year))


def validate(context: dict[str, Any]) -> dict[str, str]:
    """Fail fast on bad input, before anything is read or written."""
    runtime.hasher()  # a missing or weak keyed-hash secret fails here, before anything is read
    request_type, reference, _ = _parse(context["params"], runtime.logical_date(context).year)
    log.info("request %s (%s) is well-formed", reference, request_type)
    return {"reference": reference, "request_type": request_type}


def fulfil(context: dict[str, Any]) -> dict[str, Any]:
    """Resolve Connections and Variables, then the domain's one dispatcher does the request."""
    params = context["params"]
    today = runtime.logical_date(context)
    request_type, reference, ids = _parse(params, today.year)
    s = runtime.settings()
    policy, catalog = runtime.load_config(s)
    workspace = Workspace(policy, catalog, runtime.source_engines(catalog), runtime.tag_store_engine(), runtime.hasher())
    request = SubjectRequest(reference, request_type, ids, today, dry_run=bool(params.get("dry_run")),  # type: ignore[arg-type]
                             rectify_field=params.get("rectify_field") or None, new_value=params.get("new_value") or None)
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


def _copy_to_bucket(files: list[Path], folder: str) -> None:
    sink = runtime.artifact_sink()
    if sink is not None:
        for uri in sink.upload(files, folder):
            log.info("copied to %s", uri)
