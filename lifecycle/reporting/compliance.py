"""The compliance view's figures: what the tag store, the reports and the policy say tonight.

The same data the reports read; counts, sources, categories and references only.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from lifecycle.config import Policy
from lifecycle.config import MechanismTable, check_register
from lifecycle.rights import open_requests
from lifecycle.tagstore import statement
from lifecycle.tagstore import object_state, record_tag


def _latest_report(report_dir: Path) -> dict[str, Any] | None:
    reports = sorted(report_dir.glob("lifecycle-*.json"), key=lambda p: p.stat().st_mtime)
    if not reports:
        return None
    data = json.loads(reports[-1].read_text(encoding="utf-8"))
    return {k: data.get(k) for k in ("run_id", "logical_date", "dry_run", "compliant", "totals", "generated_at")}


def _certificates(report_dir: Path, limit: int = 5) -> list[dict[str, Any]]:
    files = sorted((report_dir / "certificates").glob("*-certificate-*.json"), key=lambda p: p.stat().st_mtime)
    out = []
    for path in reversed(files[-limit:]):
        data = json.loads(path.read_text(encoding="utf-8"))
        out.append({"reference": data.get("reference"), "request_type": data.get("request_type", "erasure"),
                    "verified": data.get("verified"), "completed_at": data.get("completed_at"), "file": path.name})
    return out


def object_problems(tag_engine: Engine) -> list[dict[str, Any]]:
    """Objects in buckets the last scan could not read: by keyed reference, never by key."""
    with tag_engine.connect() as conn:
        rows = conn.execute(select(object_state.c.source, object_state.c.object_ref, object_state.c.status,
                                   object_state.c.problem).where(object_state.c.status != "ok")
                            .order_by(object_state.c.source, object_state.c.object_ref)).mappings().all()
    return [dict(r) for r in rows]


def expiries_by_month(tag_engine: Engine, today: date, months: int = 12) -> list[dict[str, Any]]:
    """Active categories whose deadline falls in each of the coming months."""
    until = today + timedelta(days=31 * months)
    with tag_engine.connect() as conn:
        rows = conn.execute(
            select(record_tag.c.deadline, func.count()).where(
                record_tag.c.status.in_(["active", "held"]), record_tag.c.deadline >= today,
                record_tag.c.deadline < until).group_by(record_tag.c.deadline)).all()
    buckets: dict[str, int] = defaultdict(int)
    for deadline, n in rows:
        day = deadline if isinstance(deadline, date) else date.fromisoformat(str(deadline)[:10])
        buckets[f"{day:%Y-%m}"] += int(n)
    labels = []
    cursor = today.replace(day=1)
    for _ in range(months):
        labels.append(f"{cursor:%Y-%m}")
        cursor = (cursor + timedelta(days=32)).replace(day=1)
    return [{"month": m, "tags": buckets.get(m, 0)} for m in labels]


def compliance_summary(
    *, tag_engine: Engine, report_dir: Path, policy: Policy, mechanisms: MechanismTable, today: date
) -> dict[str, Any]:
    with tag_engine.connect() as conn:
        counts = [dict(r) for r in conn.execute(statement(tag_engine, "tag_counts")).mappings()]
        expiring = dict(conn.execute(statement(tag_engine, "expiring_soon"),
                                     {"from_date": today, "until_date": today + timedelta(days=30)}).all())
    by_source: dict[str, dict[str, Any]] = {}
    by_basis: dict[str, int] = defaultdict(int)
    for row in counts:
        s = by_source.setdefault(row["source"], {"source": row["source"], "activity": row["activity"],
                                                 "by_basis": defaultdict(int), "by_status": defaultdict(int)})
        s["by_basis"][row["lawful_basis"]] += int(row["tags"])
        s["by_status"][row["status"]] += int(row["tags"])
        if row["status"] in ("active", "violation", "held"):
            by_basis[f"{row['category']} · {row['lawful_basis']}"] += int(row["tags"])
    sources = [{**s, "by_basis": dict(s["by_basis"]), "by_status": dict(s["by_status"]),
                "expiring_next_30_days": int(expiring.get(name, 0))} for name, s in sorted(by_source.items())]
    return {
        "today": today.isoformat(),
        "last_run": _latest_report(report_dir),
        "sources": sources,
        "records_by_category_and_basis": dict(sorted(by_basis.items(), key=lambda kv: -kv[1])),
        "expiries_by_month": expiries_by_month(tag_engine, today),
        "open_requests": [{**r, "received_on": str(r["received_on"]), "due_on": str(r["due_on"])}
                          for r in open_requests(tag_engine, today)],
        "certificates": _certificates(report_dir),
        "object_problems": object_problems(tag_engine),
        "retention_rules": {k: {"period": r.period, "counting": r.counting, "law": r.law}
                            for k, r in policy.retention_rules.items()},
        "lawful_bases": {k: {"label_sv": b.label_sv, "retention": b.retention} for k, b in policy.lawful_bases.items()},
        "sub_processors": [f.to_dict() for f in check_register(policy, mechanisms, today)],
    }
