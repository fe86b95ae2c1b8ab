"""The run report: JSON for machines, HTML with charts for people. Never personal data:
counts, sources, categories, bases and keyed hashes only."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from lifecycle.config import Policy

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


@dataclass(frozen=True)
class ReportPaths:
    json: Path
    html: Path


def build_report(
    *,
    run_id: str,
    logical_date: date,
    dry_run: bool,
    policy: Policy,
    scans: list[dict[str, Any]],
    validation_before: dict[str, Any],
    enforcements: list[dict[str, Any]],
    validation_after: dict[str, Any] | None,
    tag_counts: list[dict[str, Any]],
    expiring_30_days: dict[str, int],
    durations: dict[str, float],
    open_requests: list[dict[str, Any]] | None = None,
    sub_processors: list[dict[str, Any]] | None = None,
    audit: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``audit``: the audit trail's check (lifecycle.reporting.audit.AuditCheck.to_dict())."""
    scans_by_source = {s["source"]: s for s in scans}
    sources = []
    for e in sorted(enforcements, key=lambda e: e["source"]):
        scan = scans_by_source.get(e["source"], {})
        plan = e["planned"]
        sources.append(
            {
                "source": e["source"],
                "records_scanned": scan.get("records", 0),
                "scan_mode": scan.get("mode", "full"),
                "full_scan_reason": scan.get("full_reason", ""),
                "deleted_since_last_scan": scan.get("deleted", 0),
                "identifiers_in_free_text": scan.get("free_text_refs", 0),
                "free_text_by_writing": scan.get("free_text_by_writing") or {},
                "schema_findings": scan.get("schema_findings", []),
                # Object-storage sources: objects by keyed reference, never by key.
                "object_findings": scan.get("object_findings", []),
                "objects_read": scan.get("objects_read", 0),
                "objects_unchanged": scan.get("objects_unchanged", 0),
                "objects": e.get("objects") or {},
                "tags": scan.get("tags", 0),
                "violations_found": scan.get("violations", 0),
                "planned": {k: plan[k] for k in (
                    "records_to_erase", "records_to_anonymise", "records_to_restrict",
                    "fields_to_anonymise", "violations_to_restrict", "destroy_share", "needs_confirmation")}
                | {k: plan.get(k, 0) for k in ("mentions_to_redact", "consent_withdrawn", "parents_kept_for_children")},
                "applied": {k: e[k] for k in (
                    "records_erased", "records_anonymised", "records_restricted",
                    "fields_anonymised", "violations_restricted", "rows_affected", "batches", "batches_skipped")}
                | {"mentions_redacted": e.get("mentions_redacted", 0)},
                "plan_detail": plan["rows"],
                "expiring_next_30_days": expiring_30_days.get(e["source"], 0),
                "scan_seconds": scan.get("seconds", 0.0),
                "enforce_seconds": e["seconds"],
                # A large plan that waited for a person: the decision (who, when); not enforced unless approved.
                "approval": e.get("approval"),
            }
        )
    totals = {
        key: sum(s[group][key] if group else s[key] for s in sources)
        for key, group in (
            ("records_scanned", None), ("violations_found", None),
            ("records_erased", "applied"), ("records_anonymised", "applied"), ("records_restricted", "applied"),
            ("fields_anonymised", "applied"), ("violations_restricted", "applied"), ("mentions_redacted", "applied"),
        )
    }
    totals["expired_records_planned"] = sum(
        s["planned"]["records_to_erase"] + s["planned"]["records_to_anonymise"] + s["planned"]["records_to_restrict"]
        for s in sources
    )
    return {
        "report": "lifecycle nightly run",
        "controller": policy.controller.name,
        "run_id": run_id,
        "logical_date": logical_date.isoformat(),
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dry_run": dry_run,
        # Not while a source's large plan was withheld by a person's decision: its expired records remain.
        "compliant": bool(validation_after and validation_after["success"])
        and not any(s["approval"] and s["approval"]["decision"] not in ("approved", "pre_approved") for s in sources),
        "totals": totals,
        "sources": sources,
        "validation": {"before": validation_before, "after": validation_after},
        "tag_store": tag_counts,
        # Bilaga 2 checked against the transfer-mechanism table: invalid entries are findings.
        "sub_processors": sub_processors or [],
        # Data-subject requests not yet completed, with days left to the one-month deadline.
        "open_requests": [{**r, "received_on": str(r["received_on"]), "due_on": str(r["due_on"])}
                          for r in (open_requests or [])],
        "durations_seconds": durations,
        # The audit trail's hash chain, checked: entries, head (compare with the next night's), intact, first broken.
        # ... and its nightly copy in the artifact bucket: key, and whether the bucket confirmed the lock.
        "audit": {**{k: audit[k] for k in ("entries", "head", "intact", "first_broken", "message")},
                  "export": audit.get("export")} if audit else None,
    }


def write_report(report: dict[str, Any], report_dir: Path) -> ReportPaths:
    report_dir.mkdir(parents=True, exist_ok=True)
    stem = f"lifecycle-{report['logical_date']}-{safe_file_name(report['run_id'])}"
    paths = ReportPaths(report_dir / f"{stem}.json", report_dir / f"{stem}.html")
    paths.json.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    paths.html.write_text(render_html(report), encoding="utf-8")
    return paths


def safe_file_name(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)[:80]


def render_html(report: dict[str, Any]) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    return env.get_template("report.html.j2").render(r=report, charts=_charts(report))


def _charts(report: dict[str, Any]) -> dict[str, Any]:
    """Bar data for the HTML report's inline SVG charts."""
    by_basis: dict[str, int] = {}
    for row in report["tag_store"]:
        if row["status"] in ("active", "violation"):
            key = f"{row['category']} · {row['lawful_basis']}"
            by_basis[key] = by_basis.get(key, 0) + int(row["tags"])
    actions = [
        {
            "label": s["source"],
            "erased": s["applied"]["records_erased"] or s["planned"]["records_to_erase"],
            "anonymised": s["applied"]["records_anonymised"] + s["applied"]["fields_anonymised"]
            or s["planned"]["records_to_anonymise"] + s["planned"]["fields_to_anonymise"],
            "restricted": s["applied"]["records_restricted"] + s["applied"]["violations_restricted"]
            or s["planned"]["records_to_restrict"] + s["planned"]["violations_to_restrict"],
        }
        for s in report["sources"]
    ]
    basis_bars = sorted(by_basis.items(), key=lambda kv: -kv[1])
    return {
        "basis": basis_bars,
        "basis_max": max((v for _, v in basis_bars), default=1) or 1,
        "actions": actions,
        "actions_max": max((a["erased"] + a["anonymised"] + a["restricted"] for a in actions), default=1) or 1,
    }


def summary_lines(report: dict[str, Any], paths: ReportPaths) -> list[str]:
    t = report["totals"]
    before = report["validation"]["before"]
    after = report["validation"]["after"]
    lines = [
        f"Lifecycle run {report['run_id']} for {report['logical_date']}{' (dry run)' if report['dry_run'] else ''}",
        f"{'source':<28}{'scanned':>9}{'violations':>11}{'erased':>8}{'anonymised':>11}{'fields':>8}{'restricted':>11}",
    ]
    for s in report["sources"]:
        a = s["applied"]
        lines.append(
            f"{s['source']:<28}{s['records_scanned']:>9}{s['violations_found']:>11}{a['records_erased']:>8}"
            f"{a['records_anonymised']:>11}{a['fields_anonymised']:>8}{a['records_restricted'] + a['violations_restricted']:>11}"
        )
    lines.append(
        f"validation before: {'passed' if before['success'] else 'failed'} "
        f"({_failures(before)}); after: "
        + ("not run (dry run)" if after is None else f"{'passed' if after['success'] else 'FAILED'} ({_failures(after)})")
    )
    if report.get("audit"):
        a = report["audit"]
        lines.append(f"audit trail: {'intact' if a['intact'] else 'BROKEN at entry ' + str(a['first_broken'])}, "
                     f"{a['entries']} entries, head {a['head'] or '-'}")
        if a.get("export"):
            lines.append(a["export"]["message"])
    for finding in report.get("sub_processors", []):
        if not finding["valid"]:
            lines.append(f"sub-processor finding: {finding['name']}: {finding['problem']}")
    lines.append(f"report: {paths.html}")
    lines.append(f"        {paths.json}")
    return lines


def _failures(result: dict[str, Any]) -> str:
    failed = [o for o in result["outcomes"] if not o["success"]]
    if not failed:
        return "all expectations met"
    return "; ".join(f"{o['description']}: {o['unexpected_count']} unexpected" for o in failed)


def latest_report(report_dir: Path) -> tuple[dict[str, Any], ReportPaths]:
    newest = max(report_dir.glob("lifecycle-*.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(newest.read_text(encoding="utf-8")), ReportPaths(newest, newest.with_suffix(".html"))


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Print the summary of the newest lifecycle report.")
    parser.add_argument("--latest", type=Path, required=True, help="the report directory")
    args = parser.parse_args(argv)
    try:
        data, paths = latest_report(args.latest)
    except ValueError:
        print(f"no report in {args.latest}")
        return 1
    print("\n".join(summary_lines(data, paths)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
