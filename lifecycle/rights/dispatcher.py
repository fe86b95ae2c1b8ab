"""One data-subject request, from validated input to certificate: the one dispatcher of request
types. The Airflow layer only resolves Connections and Variables and calls ``fulfil``.

Before anything is read, the keyed-hash secret must be the one that built every source's
index (lifecycle.discovery.keys); the request then holds every source's guard (lifecycle.tagstore.locks), so no
scan rebuilds an index while the request resolves, acts and verifies.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from lifecycle.rights import journal as journal
from lifecycle.faults import crashpoint
from lifecycle.config import Catalog
from lifecycle.rights.certificate import now_iso, write_certificate, write_extract
from lifecycle.rights.erasure import RecordAction, RequestScope, apply_erasure, own_names, plan_erasure, verify_erasure
from lifecycle.errors import RequestNotVerifiedError
from lifecycle.rights.extract import build_extract
from lifecycle.discovery import SubjectHasher
from lifecycle.discovery import check_keys, ensure_installation_key
from lifecycle.tagstore import source_guard
from lifecycle.config import Policy
from lifecycle.reporting import ReportPaths
from lifecycle.reporting import append as audit_append
from lifecycle.rights.requests import RequestType, SubjectIdentifiers, complete_request, register_request
from lifecycle.rights.amend import plan_objection, plan_withdrawal, rectify
from lifecycle.rights.review import ReviewDecision, apply_review
from lifecycle.stores import open_stores

log = logging.getLogger(__name__)

AIRFLOW_METADATA_NOTE = ("the identifiers given in the request form are replaced by keyed references in Airflow's "
                         "records of the run (its configuration, rendered fields and audit log) when the run ends")


@dataclass(frozen=True)
class SubjectRequest:
    reference: str
    request_type: RequestType
    identifiers: SubjectIdentifiers
    received_on: date
    dry_run: bool = True
    rectify_field: str | None = None
    new_value: str | None = None
    # Four eyes (lifecycle.rights.approval): who approved, by Airflow user id, and when; on the certificate.
    approval: dict[str, Any] | None = None


@dataclass(frozen=True)
class Workspace:
    """What a request acts on: the policy and catalog, each Connection's backend (SQL engine
    or object store), the tag store and the keyed hasher."""

    policy: Policy
    catalog: Catalog
    backends: dict[str, Any]
    tag_engine: Engine
    hasher: SubjectHasher


@dataclass
class RequestResult:
    reference: str
    request_type: str
    dry_run: bool
    verified: bool | None  # None: nothing to verify (access, rectification)
    summary: dict[str, Any]
    documents: ReportPaths | None = None
    protected: bool = False  # the documents hold personal data (access extract)


def fulfil(request: SubjectRequest, ws: Workspace, *, report_dir: Path, extract_dir: Path) -> RequestResult:
    """Carry out one request; raises RequestNotVerifiedError (after writing the certificate)
    when the person is still found after acting."""
    check_keys(ws.tag_engine, ws.hasher, ws.catalog.sources)
    ensure_installation_key(ws.tag_engine, ws.hasher)
    with source_guard(ws.tag_engine, ws.catalog.sources, holder=f"request {request.reference}"):
        return _fulfil(request, ws, report_dir=report_dir, extract_dir=extract_dir)


def _fulfil(request: SubjectRequest, ws: Workspace, *, report_dir: Path, extract_dir: Path) -> RequestResult:
    year = request.received_on.year
    hashes = request.identifiers.hashes(ws.hasher, year)
    ledger = register_request(ws.tag_engine, request.reference, request.request_type, request.received_on)
    if request.request_type == "access":
        extract = build_extract(request.reference, catalog=ws.catalog, policy=ws.policy, source_engines=ws.backends,
                                tag_engine=ws.tag_engine, hashes=hashes, hasher=ws.hasher, year=year,
                                identifiers=request.identifiers)
        paths = write_extract(extract, extract_dir)
        summary = {"activities": len(extract["groups"]), "records": sum(len(g["records"]) for g in extract["groups"]),
                   "mentions": sum(m["count"] for m in extract["mentions"])}
        complete_request(ws.tag_engine, request.reference, "completed", summary)
        _audit(ws, request, "completed", None, summary)
        return RequestResult(request.reference, "access", False, None, summary, paths, protected=True)
    if request.request_type == "rectification":
        result = rectify(catalog=ws.catalog, policy=ws.policy, source_engines=ws.backends, tag_engine=ws.tag_engine,
                         hasher=ws.hasher, identifiers=request.identifiers, kind=request.rectify_field or "",
                         new_value=request.new_value or "", reference=request.reference, today=request.received_on,
                         dry_run=request.dry_run)
        complete_request(ws.tag_engine, request.reference, "dry_run" if request.dry_run else "completed", result.to_dict())
        _audit(ws, request, "dry_run" if request.dry_run else "completed", None, {"per_source": result.per_source})
        return RequestResult(request.reference, "rectification", request.dry_run, None,
                             {"records": sum(result.per_source.values()), "per_source": result.per_source})
    scope = RequestScope(ws.catalog, ws.backends, ws.tag_engine, ws.hasher, request.identifiers, hashes)
    actions = _actions(request, ws, hashes, retry=ledger.get("status") == "failed")
    if request.request_type == "erasure":
        names = [] if request.dry_run else own_names(scope, actions)  # read before the records go
        outcome = apply_erasure(actions, scope, reference=request.reference, today=request.received_on,
                                dry_run=request.dry_run)
        if not request.dry_run:
            outcome = verify_erasure(outcome, journal.stored_actions(ws.tag_engine, request.reference) or [], scope,
                                     year=year, names=names, today=request.received_on)
    else:
        planner = plan_withdrawal if request.request_type == "consent_withdrawal" else plan_objection
        reason = "consent_withdrawn" if request.request_type == "consent_withdrawal" else "objection"
        outcome = apply_erasure(actions, scope, reference=request.reference, today=request.received_on,
                                dry_run=request.dry_run, suppress_as=reason)
        # Verified when planning again finds nothing left to do but what goes to customers.
        left = [a for a in planner(ws.catalog, ws.policy, ws.tag_engine, hashes, scope.stores()) if a.action != "forward"]
        outcome.remaining = {a.source: 1 for a in left}
        outcome.verified = not left
    crashpoint("request:verified")
    previous = ledger.get("completed_at") if ledger.get("status") == "completed" else None
    certificate = {**outcome.to_dict(), "controller": ws.policy.controller.name, "request_type": request.request_type,
                   "received_on": str(ledger["received_on"]), "due_on": str(ledger["due_on"]),
                   "completed_at": _utc(previous).isoformat(timespec="seconds") if previous else now_iso(),
                   "airflow_metadata": AIRFLOW_METADATA_NOTE, **({"approval": request.approval} if request.approval else {})}
    paths = write_certificate(certificate, report_dir / "certificates")
    crashpoint("request:certified")
    verified = bool(outcome.verified)
    status = "dry_run" if request.dry_run else ("completed" if verified else "failed")
    complete_request(ws.tag_engine, request.reference, status,
                     {k: certificate[k] for k in ("per_source", "forwarded", "remaining", "verified")})
    _audit(ws, request, status, verified, {"per_source": outcome.per_source, "forwarded": outcome.forwarded,
                                           "remaining": outcome.remaining, "held": len(outcome.held),
                                           "certificate_sha256": _sha256(paths.json)})
    result = RequestResult(request.reference, request.request_type, request.dry_run, verified,
                           {"per_source": outcome.per_source, "remaining": outcome.remaining}, paths)
    if not request.dry_run and not verified:
        raise RequestNotVerifiedError(
            f"request {request.reference}: the person was still found in {outcome.remaining or 'sources that could not be read'}"
            f"{' (incomplete: ' + ', '.join(outcome.verification.get('incomplete', [])) + ')' if outcome.verification.get('incomplete') else ''}; "
            f"see {paths.html}", documents=paths)
    return result


def fulfil_review(decision: ReviewDecision, ws: Workspace, *, report_dir: Path, year: int) -> RequestResult:
    """Apply a reviewer's decision on the names an erasure listed (lifecycle.rights.review) and
    write its certificate; raises RequestNotVerifiedError when a redacted record still names
    the person."""
    check_keys(ws.tag_engine, ws.hasher, ws.catalog.sources)
    with source_guard(ws.tag_engine, ws.catalog.sources, holder=f"review {decision.reference}"):
        outcome = apply_review(decision, open_stores(ws.catalog, ws.backends, ws.tag_engine), ws.tag_engine,
                               ws.hasher, year)
    certificate = {**outcome.to_dict(), "controller": ws.policy.controller.name, "completed_at": now_iso()}
    paths = write_certificate(certificate, report_dir / "certificates")
    audit_append(ws.tag_engine, ws.hasher, "name_review", decision.reference,
                 {"decision": decision.decision, "reviewer": decision.reviewer, "per_source": outcome.per_source,
                  "already_decided": outcome.already_decided, "verified": outcome.verified,
                  "certificate_sha256": _sha256(paths.json)})
    result = RequestResult(decision.reference, "name_review", False, outcome.verified,
                           {"per_source": outcome.per_source, "pending_after": outcome.pending_after}, paths)
    if not outcome.verified:
        raise RequestNotVerifiedError(f"review {decision.reference}: the name is still written in "
                                      f"{outcome.still_named}; see {paths.html}", documents=paths)
    return result


def _audit(ws: Workspace, request: SubjectRequest, status: str, verified: bool | None, counts: dict[str, Any]) -> None:
    """The request's outcome in the audit trail: its reference, type and counts, never the person."""
    audit_append(ws.tag_engine, ws.hasher, "request_outcome", request.reference,
                 {"request_type": request.request_type, "dry_run": request.dry_run, "status": status,
                  "verified": verified, **counts})


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; the ledger writes UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _actions(request: SubjectRequest, ws: Workspace, hashes: list[str], *, retry: bool) -> list[RecordAction]:
    """The journaled plan when this request already has one (a re-run resumes it), else a new
    one. ``retry``: the last attempt finished but failed verification (data the index did not
    know, say, since scanned): what a fresh plan finds beyond the journaled records is added."""
    stored = None if request.dry_run else journal.stored_actions(ws.tag_engine, request.reference)
    if stored is not None and not retry:
        return stored
    if request.request_type == "erasure":
        fresh = plan_erasure(ws.catalog, ws.policy, ws.tag_engine, hashes, request.received_on,
                             stores=open_stores(ws.catalog, ws.backends, ws.tag_engine))
    else:
        planner = plan_withdrawal if request.request_type == "consent_withdrawal" else plan_objection
        fresh = planner(ws.catalog, ws.policy, ws.tag_engine, hashes, open_stores(ws.catalog, ws.backends, ws.tag_engine))
    if stored is None:
        return fresh
    known = {(a.source, a.record_key, a.action) for a in stored}
    extra = [a for a in fresh if (a.source, a.record_key, a.action) not in known]
    if not extra:
        return stored
    reason = {"erasure": "erasure", "consent_withdrawal": "consent_withdrawn"}.get(request.request_type, "objection")
    return journal.store_plan(ws.tag_engine, request.reference, extra, reason)
