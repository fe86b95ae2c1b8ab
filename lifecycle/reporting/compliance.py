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
from lifecycle.reporting.processing_record import latest_processing_record
from lifecycle.rights import open_requests
from lifecycle.rights import pending as review_pending
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


def _records_of_processing(report_dir: Path) -> dict[str, Any] | None:
    """The latest record of processing activities (art. 30): its month, summary and change count."""
    paths = latest_processing_record(report_dir)
    if paths is None:
        return None
    data = json.loads(paths.json.read_text(encoding="utf-8"))
    return {"month": data.get("month"), "as_of": data.get("as_of"), "generated_at": data.get("generated_at"),
            "summary": data.get("summary"), "previous_month": (data.get("changes") or {}).get("previous_month")}


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


def analytics_by_period(tag_engine: Engine, periods: int = 12) -> list[dict[str, Any]]:
    """The published analytics (aggregates of at least k visitors, no identifiers) of each
    source's latest ``periods`` periods: summed over groups, and the largest for the chart's scale."""
    with tag_engine.connect() as conn:
        rows = conn.execute(statement(tag_engine, "analytics_by_period")).mappings().all()
    charts: dict[str, dict[str, Any]] = {}
    for r in rows:
        chart = charts.setdefault(r["source"], {"source": r["source"], "period": r["period"], "k": 0, "periods": []})
        start = r["period_start"] if isinstance(r["period_start"], date) else date.fromisoformat(str(r["period_start"])[:10])
        chart["periods"].append({"period_start": start.isoformat(), "period": r["period"], "visitors": int(r["visitors"]),
                                 "visits": int(r["visits"]), "groups": int(r["group_count"])})
        chart["period"], chart["k"] = r["period"], int(r["k"])  # the latest period's
    for chart in charts.values():
        chart["periods"] = chart["periods"][-periods:]
        chart["largest"] = max(p["visits"] for p in chart["periods"])
    return list(charts.values())


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
        "analytics": analytics_by_period(tag_engine),
        "open_requests": [{**r, "received_on": str(r["received_on"]), "due_on": str(r["due_on"])}
                          for r in open_requests(tag_engine, today)],
        "names_pending_review": review_pending(tag_engine),
        "certificates": _certificates(report_dir),
        "records_of_processing": _records_of_processing(report_dir),
        "object_problems": object_problems(tag_engine),
        "retention_rules": {k: {"period": r.period, "counting": r.counting, "law": r.law}
                            for k, r in policy.retention_rules.items()},
        "lawful_bases": {k: {"label_sv": b.label_sv, "retention": b.retention} for k, b in policy.lawful_bases.items()},
        "sub_processors": [f.to_dict() for f in check_register(policy, mechanisms, today)],
    }
