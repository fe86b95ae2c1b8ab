"""Four eyes on a data-subject request: what the request would do, shown to a second person
before anything changes, and the rule that the requester cannot approve their own request.

``preview`` plans the request as its fulfilment would (reading only) and counts what it would
do per source and action, which records are held and why, and which customers it is forwarded
to; ``review_text`` turns that into the approval's subject and Markdown body. Counts, sources,
record keys and the request reference only: never the person's identifiers.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from lifecycle.discovery import check_keys, locate
from lifecycle.enforcement import ApprovalConfigError
from lifecycle.errors import LifecycleError
from lifecycle.rights.amend import plan_objection, plan_withdrawal, rectify
from lifecycle.rights.dispatcher import SubjectRequest, Workspace
from lifecycle.rights.erasure import HELD_REASON, plan_erasure
from lifecycle.rights.requests import REQUEST_TYPES
from lifecycle.stores import open_stores

# Request types that change data: ``on`` means these; ``all`` adds the access extract (a disclosure).
CHANGING_TYPES = ("erasure", "rectification", "consent_withdrawal", "objection")
DEFAULT_FOUR_EYES = ("erasure",)
HELD_LISTED = 25  # held records listed one by one in the approval; the rest are counted


class SelfApprovalError(LifecycleError):
    """The person who triggered a request answered its four-eyes approval: refused, nothing changed."""


class ApprovalMissingError(LifecycleError):
    """A request under four eyes reached fulfilment without a recorded decision: nothing changed."""


def four_eyes_types(setting: str | None) -> frozenset[str]:
    """Request types that wait for a second person (Variable ``lifecycle_four_eyes``): unset means
    erasure; ``off`` none; ``on`` every type that changes data; ``all`` those and access; or a
    comma-separated list of request types."""
    text = (setting if setting is not None else ",".join(DEFAULT_FOUR_EYES)).strip().lower()
    if text in ("", "off", "false", "no", "none", "0"):
        return frozenset()
    if text in ("on", "true", "yes", "1"):
        return frozenset(CHANGING_TYPES)
    if text == "all":
        return frozenset(CHANGING_TYPES) | {"access"}
    wanted = {t.strip() for t in text.split(",") if t.strip()}
    if unknown := sorted(wanted - set(REQUEST_TYPES)):
        raise ApprovalConfigError(f"lifecycle_four_eyes: {', '.join(unknown)} is not a request type "
                                  f"(one of {', '.join(REQUEST_TYPES)}, or on, off, all)")
    return frozenset(wanted)


def needs_four_eyes(request_type: str, dry_run: bool, types: frozenset[str]) -> bool:
    """A dry run changes nothing and needs no second person; an access extract has no dry run."""
    return request_type in types and (request_type == "access" or not dry_run)


def check_not_requester(responder: dict[str, Any] | None, requester: str | None) -> None:
    """The responder (an Airflow user: id and name) is not who triggered the request."""
    if responder is None or not requester:
        return
    if requester in (str(responder.get("id") or ""), str(responder.get("name") or "")):
        raise SelfApprovalError(f"user {responder.get('id')!r} triggered this request and cannot approve it "
                                "(four eyes): nothing was changed; a second person must approve a new run")


@dataclass
class RequestPreview:
    reference: str
    request_type: str
    per_source: dict[str, dict[str, int]] = field(default_factory=dict)  # source -> action -> records
    held: list[dict[str, Any]] = field(default_factory=list)  # source, record_key, reason, lapses_on
    forwarded: dict[str, int] = field(default_factory=dict)  # customer (controller) -> records

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def preview(request: SubjectRequest, ws: Workspace) -> RequestPreview:
    """What fulfilling ``request`` would do now, without changing anything (the index and the
    stores are read; the keyed-hash secret is checked first, as fulfilment does)."""
    check_keys(ws.tag_engine, ws.hasher, ws.catalog.sources)
    year = request.received_on.year
    hashes = request.identifiers.hashes(ws.hasher, year)
    out = RequestPreview(request.reference, request.request_type)
    if request.request_type == "access":
        counts: dict[str, set[str]] = defaultdict(set)
        for loc in locate(ws.tag_engine, hashes):
            counts[loc.source].add(loc.record_key)
        out.per_source = {s: {"disclosed": len(keys)} for s, keys in sorted(counts.items())}
        return out
    if request.request_type == "rectification":
        result = rectify(catalog=ws.catalog, policy=ws.policy, source_engines=ws.backends, tag_engine=ws.tag_engine,
                         hasher=ws.hasher, identifiers=request.identifiers, kind=request.rectify_field or "",
                         new_value=request.new_value or "", reference=request.reference, today=request.received_on,
                         dry_run=True)
        out.per_source = {s: {"rectify": n} for s, n in sorted(result.per_source.items())}
        out.forwarded = dict(result.forwarded)
        return out
    stores = open_stores(ws.catalog, ws.backends, ws.tag_engine)
    if request.request_type == "erasure":
        actions = plan_erasure(ws.catalog, ws.policy, ws.tag_engine, hashes, request.received_on, stores=stores)
    else:
        planner = plan_withdrawal if request.request_type == "consent_withdrawal" else plan_objection
        actions = planner(ws.catalog, ws.policy, ws.tag_engine, hashes, stores)
    per: dict[str, Counter[str]] = defaultdict(Counter)
    for a in actions:
        per[a.source][a.action] += 1
        if a.action == "forward":
            out.forwarded[a.controller] = out.forwarded.get(a.controller, 0) + 1
        elif a.action == "hold":
            out.held.append({"source": a.source, "record_key": a.record_key, "reason": a.reason or HELD_REASON,
                             "lapses_on": str(a.lapses_on) if a.lapses_on else None})
    out.per_source = {s: dict(sorted(c.items())) for s, c in sorted(per.items())}
    return out


def review_text(p: RequestPreview, *, requested_by: str | None, timeout: timedelta) -> tuple[str, str]:
    """Subject and Markdown body of a request's four-eyes approval."""
    kind = p.request_type.replace("_", " ")
    subject = f"Lifecycle: second approval of {kind} request {p.reference}"
    lines = [f"Request **{p.reference}** ({kind}) was triggered by user `{requested_by or 'unknown'}`. "
             "Nothing has been changed yet; a second person decides.", "", "### Planned actions", ""]
    actions = sorted({a for counts in p.per_source.values() for a in counts})
    if actions:
        lines += ["| source | " + " | ".join(actions) + " |", "|---|" + "---:|" * len(actions)]
        lines += [f"| {s} | " + " | ".join(str(c.get(a, 0)) for a in actions) + " |" for s, c in p.per_source.items()]
    else:
        lines.append("The person was not found in any source: nothing would change.")
    if p.held:
        lines += ["", f"### Held ({len(p.held)} records)", "", "| source | record | why | erased after |", "|---|---|---|---|"]
        lines += [f"| {h['source']} | {h['record_key']} | {h['reason']} | {h['lapses_on'] or '-'} |"
                  for h in p.held[:HELD_LISTED]]
        if len(p.held) > HELD_LISTED:
            lines.append(f"| … | {len(p.held) - HELD_LISTED} more | | |")
    if p.forwarded:
        lines += ["", "### Forwarded to the customer (controller), who decides", ""]
        lines += [f"- {customer}: {n} records" for customer, n in sorted(p.forwarded.items())]
    hours = timeout.total_seconds() / 3600
    lines += ["", f"**Approve**: the request is carried out as planned and its certificate names you. **Reject**, or "
              f"no answer within {hours:g} h: nothing changes. The requester cannot approve their own request."]
    return subject, "\n".join(lines)
