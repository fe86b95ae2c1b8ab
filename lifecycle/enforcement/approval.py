"""Approvals by a person: a large nightly plan (invariant 7) and, with four eyes, a data-subject
request, wait for someone to approve before anything changes.

Each approval asked for and each decision is a row of ``lc_approval`` (kind, run, item) and an
``approval`` entry of the audit trail, in one transaction. The enforcement of a source, or the
fulfilment of a request, reads the recorded decision: approved (or confirmed in advance) goes
on; rejected, timed out or refused changes nothing. What a person reads to decide (``subject``
and Markdown ``body``) holds counts, sources, categories and lawful bases only, never a person.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from sqlalchemy import Engine, select, update

from lifecycle.discovery import SubjectHasher
from lifecycle.enforcement.enforce import EnforceStats
from lifecycle.errors import LifecycleError
from lifecycle.reporting import append as audit_append
from lifecycle.tagstore import approval

ApprovalKind = Literal["nightly", "request"]
Decision = Literal["pending", "approved", "pre_approved", "rejected", "timed_out", "refused"]
# Decisions that let the change go ahead.
GOES_AHEAD: tuple[str, ...] = ("approved", "pre_approved")
DEFAULT_TIMEOUT_HOURS = 12.0


class ApprovalConfigError(LifecycleError):
    """An approval setting (time-out, approvers, four-eyes) is malformed; names the setting."""


@dataclass(frozen=True)
class ApprovalRecord:
    kind: str
    run_id: str
    item: str  # a source (nightly) or a request reference
    decision: str
    requested_by: str | None
    decided_by: str | None
    decided_at: datetime | None
    details: dict[str, Any]

    @property
    def goes_ahead(self) -> bool:
        return self.decision in GOES_AHEAD

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["decided_at"] = self.decided_at.isoformat(timespec="seconds") if self.decided_at else None
        return out

    def summary(self) -> dict[str, Any]:
        """The decision, who and when: what a report or certificate shows."""
        return {"decision": self.decision, "decided_by": self.decided_by, "decided_at": self.to_dict()["decided_at"]}


def approval_timeout(hours: str | float | None) -> timedelta:
    """The time a person has to answer (Variable ``lifecycle_approval_timeout_hours``); default 12 h."""
    if hours is None or str(hours).strip() == "":
        return timedelta(hours=DEFAULT_TIMEOUT_HOURS)
    try:
        value = float(hours)
    except ValueError as e:
        raise ApprovalConfigError("lifecycle_approval_timeout_hours: not a number of hours") from e
    if not 0 < value <= 24 * 14:
        raise ApprovalConfigError("lifecycle_approval_timeout_hours: must be more than 0 and at most 336 (14 days)")
    return timedelta(hours=value)


def approvers(listed: str | None) -> list[str]:
    """User ids allowed to answer (Variable ``lifecycle_approvers``, comma-separated); empty: anyone
    who may act on the DAG's approvals in Airflow."""
    ids = [u.strip() for u in (listed or "").split(",") if u.strip()]
    for u in ids:
        if len(u) > 250 or any(ch.isspace() or ord(ch) < 32 for ch in u):
            raise ApprovalConfigError("lifecycle_approvers: user ids are comma-separated, without spaces")
    return list(dict.fromkeys(ids))


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes (written as UTC)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _audit(conn: Any, hasher: SubjectHasher, kind: str, run_id: str, items: list[str], decision: str,
           by: str | None, details: dict[str, Any]) -> None:
    audit_append(conn, hasher, "approval", run_id[:250],
                 {"approval_kind": kind, "items": items, "decision": decision, "by": by, **details})


def request_approval(engine: Engine, hasher: SubjectHasher, kind: ApprovalKind, run_id: str, items: list[str], *,
                     requested_by: str | None, details: dict[str, Any], decision: Decision = "pending",
                     decided_by: str | None = None) -> list[ApprovalRecord]:
    """Record that ``items`` wait for a person (``decision`` pending), or were confirmed in advance
    (pre_approved, by the one who triggered the run). An item already recorded for the run keeps
    its decision: a re-run of the task asks nothing twice."""
    now = _now()
    with engine.begin() as conn:
        known = set(conn.execute(select(approval.c.item).where(
            approval.c.kind == kind, approval.c.run_id == run_id, approval.c.item.in_(items))).scalars())
        new = [i for i in items if i not in known]
        for item in new:
            conn.execute(approval.insert().values(
                kind=kind, run_id=run_id, item=item, decision=decision, requested_by=requested_by,
                requested_at=now, decided_by=decided_by, decided_at=None if decision == "pending" else now,
                details=json.dumps(details, sort_keys=True, default=str)))
        if new:
            _audit(conn, hasher, kind, run_id, new, "requested" if decision == "pending" else decision,
                   decided_by or requested_by, details)
    return [r for r in decisions(engine, kind, run_id).values() if r.item in items]


def record_decision(engine: Engine, hasher: SubjectHasher, kind: ApprovalKind, run_id: str, items: list[str],
                    decision: Decision, *, decided_by: str | None, details: dict[str, Any] | None = None) -> None:
    """A person's answer (or the time-out's) for every item, with the audit entry, in one
    transaction. ``decided_by``: the responder's user id (None for a time-out)."""
    if decision == "pending":
        raise ValueError("a decision is not 'pending'")
    now = _now()
    with engine.begin() as conn:
        for item in items:
            done = conn.execute(update(approval).where(
                approval.c.kind == kind, approval.c.run_id == run_id, approval.c.item == item).values(
                decision=decision, decided_by=decided_by, decided_at=now))
            if done.rowcount == 0:  # answered without a recorded request (a cleared task): record both
                conn.execute(approval.insert().values(
                    kind=kind, run_id=run_id, item=item, decision=decision, requested_by=None, requested_at=now,
                    decided_by=decided_by, decided_at=now, details=json.dumps(details or {}, sort_keys=True, default=str)))
        _audit(conn, hasher, kind, run_id, items, decision, decided_by, details or {})


def decisions(engine: Engine, kind: ApprovalKind, run_id: str) -> dict[str, ApprovalRecord]:
    """Every item of the run that was asked about, by item."""
    with engine.connect() as conn:
        rows = conn.execute(select(approval).where(approval.c.kind == kind, approval.c.run_id == run_id)).mappings().all()
    return {r["item"]: ApprovalRecord(r["kind"], r["run_id"], r["item"], r["decision"], r["requested_by"],
                                      r["decided_by"], _utc(r["decided_at"]), json.loads(r["details"] or "{}"))
            for r in rows}


# --- the nightly plan ---------------------------------------------------------------------------

def _share(value: float) -> str:
    return f"{100 * value:.1f} %"


def plan_approval_text(group: list[str], plans: dict[str, dict[str, Any]], max_shares: dict[str, float], *,
                       run_id: str, logical_date: str, report_path: str | None, timeout: timedelta) -> tuple[str, str]:
    """Subject and Markdown body of the approval of one enforcement group: for each source whose
    plan exceeds its share, the share against its limit and the plan's counts per scope, action,
    reason, category and lawful basis (``plans``: SourcePlan.to_dict() by source)."""
    over = [s for s in group if plans[s]["needs_confirmation"]]
    subject = (f"Lifecycle: approve a large plan for {', '.join(over)} "
               f"({', '.join(_share(plans[s]['destroy_share']) for s in over)}) on {logical_date}")
    lines = [f"The nightly run `{run_id}` (logical date {logical_date}) planned to erase or anonymise more of "
             f"{'this source' if len(over) == 1 else 'these sources'} than the catalog's `max_destroy_share` allows. "
             "Nothing of them has changed yet.", ""]
    for name in over:
        p = plans[name]
        destroyed = p["records_to_erase"] + p["records_to_anonymise"]
        lines += [f"### {name}", "",
                  f"- share: **{_share(p['destroy_share'])}** of {p['records_in_tag_store']} records "
                  f"(limit `max_destroy_share` {_share(max_shares[name])})",
                  f"- records: erase {p['records_to_erase']}, anonymise {p['records_to_anonymise']} "
                  f"({destroyed} in all), restrict {p['records_to_restrict']}",
                  f"- fields anonymised {p['fields_to_anonymise']}, mentions of erased people redacted "
                  f"{p.get('mentions_to_redact', 0)}, violations restricted {p['violations_to_restrict']}",
                  "", "| scope | action | reason | category | lawful basis | records | items |",
                  "|---|---|---|---|---|---:|---:|"]
        lines += [f"| {r['scope']} | {r['action']} | {r['reason']} | {r['category']} | {r['lawful_basis'] or '(none)'} "
                  f"| {r['records']} | {r['items']} |" for r in p["rows"]]
        lines.append("")
    others = [s for s in group if s not in over]
    if others:
        lines += [f"Enforced together with {', '.join(others)} (they reference each other; children before "
                  "parents), so the answer holds for the whole group.", ""]
    if report_path:
        lines += [f"Dry-run report of this run's plan: `{report_path}`", ""]
    hours = timeout.total_seconds() / 3600
    lines += [f"**Approve**: the plan is enforced in this run. **Reject**, or no answer within {hours:g} h: nothing "
              "of these sources changes tonight, the run's report says so, and the other sources are enforced "
              "as usual. To confirm in advance, trigger the run with `confirm_large_plan`."]
    return subject, "\n".join(lines)


def withheld_stats(source: str, plan: dict[str, Any], record: ApprovalRecord) -> dict[str, Any]:
    """What the report gets for a source whose large plan was not approved: the plan, nothing
    applied, and the decision (who, when)."""
    stats = EnforceStats(source=source, dry_run=False, planned=plan).to_dict()
    stats["approval"] = record.summary()
    return stats
