"""The record of processing activities (GDPR art. 30(1) as controller, 30(2) as processor),
written every night as JSON, HTML and CSV, with the changes since the previous month's record.

What is declared comes from the policy (activities, categories, lawful bases, retention, the
Bilaga 2 sub-processors checked against the transfer-mechanism table) and the catalog (which
sources hold what). What is measured comes from the tag store by set-based SQL
(include/sql/processing_record_*.sql): records, data subjects, the oldest retention clock and
records held under a legal obligation, per activity and category. Counts, names of sources,
activities and categories only: never an identifier.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine

from lifecycle.config import Catalog, MechanismTable, Policy, check_register
from lifecycle.enforcement import reference_pairs
from lifecycle.tagstore import statement

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
RECORD_FOLDER = "records-of-processing"
_MONTH_FILE = re.compile(r"^\d{4}-\d{2}$")
# A processor customer's reference (a column value) is shown only when it looks like a customer
# code: a value that might be anything else is not copied into a report.
_CUSTOMER_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$")
_NO_TRANSFER = "eu_eea"  # the mechanism table's entry for processing inside the EU/EEA

CSV_COLUMNS = (
    "section", "controller_name", "controller_contact", "processor_name", "processor_contact", "activity",
    "activity_label", "purpose", "categories_of_data_subjects", "category", "category_label",
    "categories_of_personal_data", "lawful_basis", "recipients", "third_country_transfers", "transfer_safeguards",
    "retention_period", "register_findings", "sources", "records", "data_subjects", "free_text_identifiers",
    "oldest_record_clock", "records_legal_obligation", "violations",
)


@dataclass(frozen=True)
class ProcessingRecordPaths:
    json: Path
    html: Path
    csv: Path


@dataclass(frozen=True)
class ChangeThresholds:
    """A count change is significant when it moves by at least ``min_records`` and by at least
    ``min_share`` of the larger of the two counts."""

    min_records: int = 10
    min_share: float = 0.25

    def significant(self, before: int, after: int) -> bool:
        moved = abs(after - before)
        return moved >= self.min_records and moved >= self.min_share * max(before, after, 1)


Key = tuple[str, str, str, str]  # (role, controller, activity, category)


# -- measured facts ---------------------------------------------------------------------------


def _empty_measure() -> dict[str, Any]:
    return {"sources": {}, "records": 0, "data_subjects": 0, "free_text_identifiers": 0, "oldest_clock": None,
            "legal_obligation": 0, "violations": 0, "restricted": 0, "anonymised": 0, "records_by_basis": {}}


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, date) else str(value)[:10]


def _via_sql(pairs: list[tuple[str, str]]) -> tuple[str, dict[str, str]]:
    """The (child, parent) source pairs as a row source of bind parameters: only placeholder
    names are templated, the source names are bound."""
    if not pairs:
        return "SELECT CAST(NULL AS VARCHAR(100)) AS child, CAST(NULL AS VARCHAR(100)) AS parent WHERE 1 = 0", {}
    rows = [f"SELECT CAST(:child{i} AS VARCHAR(100)) AS child, CAST(:parent{i} AS VARCHAR(100)) AS parent"
            for i in range(len(pairs))]
    params = {k: v for i, (c, p) in enumerate(pairs) for k, v in ((f"child{i}", c), (f"parent{i}", p))}
    return " UNION ALL ".join(rows), params


def measure(tag_engine: Engine, catalog: Catalog) -> dict[Key, dict[str, Any]]:
    """Per (role, controller, activity, category): what the tag store holds tonight."""
    via, via_params = _via_sql(reference_pairs(catalog, list(catalog.sources)))
    out: dict[Key, dict[str, Any]] = defaultdict(_empty_measure)
    with tag_engine.connect() as conn:
        for row in conn.execute(statement(tag_engine, "processing_record_holdings")).mappings():
            m = out[(row["role"], row["controller"], row["activity"], row["category"])]
            records = int(row["records"] or 0)
            if records:
                m["sources"][row["source"]] = m["sources"].get(row["source"], 0) + records
                m["records_by_basis"][row["lawful_basis"]] = m["records_by_basis"].get(row["lawful_basis"], 0) + records
            m["records"] += records
            for k in ("anonymised", "violations", "restricted", "legal_obligation"):
                m[k] += int(row[k] or 0)
            oldest = _iso(row["oldest_clock"])
            if oldest and (m["oldest_clock"] is None or oldest < m["oldest_clock"]):
                m["oldest_clock"] = oldest
        subjects = conn.execute(statement(tag_engine, "processing_record_subjects", via_sql=via),
                                {"no": False, **via_params}).mappings().all()
        mentions = conn.execute(statement(tag_engine, "processing_record_free_text"), {"yes": True}).mappings().all()
    for row in subjects:
        out[(row["role"], row["controller"], row["activity"], row["category"])]["data_subjects"] = int(row["data_subjects"])
    for row in mentions:
        out[(row["role"], row["controller"], row["activity"], row["category"])]["free_text_identifiers"] = int(row["identifiers"])
    return dict(out)


# -- the record --------------------------------------------------------------------------------


def _retention(policy: Policy, basis: str, clock: str, customer_retention: str | None) -> dict[str, Any]:
    """How long data under ``basis`` is kept, in words, from the policy's rules."""
    definition = policy.lawful_bases[basis]
    start = policy.retention_clocks[clock].description  # type: ignore[index]
    if definition.retention not in policy.retention_rules:  # the customer's instruction
        period = customer_retention or "none given"
        return {"basis": basis, "rule": definition.retention, "period": customer_retention, "law": "",
                "text": f"the customer's instruction: {period} from {start}"}
    rule = policy.retention_rules[definition.retention]
    counted = (f"{rule.period} counted to the end of the calendar year after the fiscal year ends"
               if rule.counting == "end_of_calendar_year_after_fiscal_year_end" else f"{rule.period} from {start}")
    return {"basis": basis, "rule": definition.retention, "period": rule.period, "law": rule.law,
            "text": counted + (f" ({rule.law})" if rule.law else "")}


def _recipients(policy: Policy, mechanisms: MechanismTable, names: tuple[str, ...], as_of: date) -> list[dict[str, Any]]:
    findings = {f.sub_processor: f for f in check_register(policy, mechanisms, as_of)}
    out = []
    for name in names:
        f = findings[name]
        m = mechanisms.mechanisms.get(f.mechanism)
        out.append({**f.to_dict(), "valid_alternatives": list(f.valid_alternatives),
                    "mechanism_label": m.label if m else f.mechanism, "article": m.article if m else "",
                    "third_country": f.mechanism != _NO_TRANSFER})
    return out


def _declared_sources(catalog: Catalog, activity: str, category: str) -> list[str]:
    def activities(source: Any) -> set[str]:
        mapped = set(source.activity_column.values.values()) if source.activity_column else set()
        return {source.activity} | mapped

    return sorted(s.name for s in catalog.sources.values() if activity in activities(s) and category in s.categories)


def _activity(policy: Policy, catalog: Catalog, mechanisms: MechanismTable, name: str, as_of: date,
              measured: dict[Key, dict[str, Any]], controller: str, customer_retention: str | None = None,
              subjects_of: str = "") -> dict[str, Any]:
    a = policy.activities[name]
    categories = []
    for category, bases in a.categories.items():
        c = policy.categories[category]
        categories.append({
            "category": category, "label_sv": c.label_sv, "fields": list(c.fields), "free_text": c.free_text,
            "lawful_bases": [{"basis": b, "label_sv": policy.lawful_bases[b].label_sv,
                              "article": policy.lawful_bases[b].article} for b in bases],
            "retention": [_retention(policy, b, a.retention_clock, customer_retention) for b in bases],
            "declared_sources": _declared_sources(catalog, name, category),
            "measured": measured.get((a.role, controller, name, category), _empty_measure()),
        })
    free_text = any(c["free_text"] for c in categories)
    return {
        "activity": name, "label_sv": a.label_sv, "purpose": a.label_sv, "policy_ref": a.policy_ref, "role": a.role,
        "direct_marketing": a.direct_marketing, "aggregate_only": a.aggregate_only,
        "retention_clock": {"kind": a.retention_clock, "description": policy.retention_clocks[a.retention_clock].description},  # type: ignore[index]
        # The policy's categories of data subjects (data_subjects_sv), else the people of the
        # activity; in free text, anyone they chose to mention.
        "data_subjects": (subjects_of or a.data_subjects_sv or f"persons whose data is processed in: {a.label_sv}")
                         + ("; persons mentioned in free text" if free_text else ""),
        "recipients": _recipients(policy, mechanisms, a.sub_processors, as_of),
        "categories": categories,
    }


def _customer_label(customer: str) -> str:
    return customer if _CUSTOMER_CODE.match(customer) else "(customer reference not shown)"


def build_processing_record(
    *, tag_engine: Engine, policy: Policy, catalog: Catalog, mechanisms: MechanismTable, as_of: date,
    run_id: str = "", previous: dict[str, Any] | None = None, thresholds: ChangeThresholds = ChangeThresholds(),
) -> dict[str, Any]:
    """The record as of ``as_of`` (the run's logical date); ``previous``: the previous month's
    record (its JSON), to list what changed."""
    measured = measure(tag_engine, catalog)
    ctl = policy.controller
    controller_activities = [n for n, a in policy.activities.items() if a.role == "controller"]
    processor_activities = [n for n, a in policy.activities.items() if a.role == "processor"]
    measured_customers = {k[1] for k in measured if k[0] == "processor"}
    customers = []
    for customer in sorted(set(policy.processor_customers) | measured_customers):
        listed = policy.processor_customers.get(customer)
        name = listed.name if listed else "unlisted customer"
        customers.append({
            "customer": _customer_label(customer), "name": name, "listed": listed is not None,
            "instruction_ref": listed.instruction_ref if listed else "",
            "retention": listed.retention if listed else None,
            "problem": "" if listed else "no instruction in the policy: its data is restricted, not processed",
            "activities": [_activity(policy, catalog, mechanisms, n, as_of, measured, customer,
                                     listed.retention if listed else None,
                                     f"persons whose data {name} shares for: {policy.activities[n].label_sv}")
                           for n in processor_activities],
        })
    declared = {(a.role, n, c) for n, a in policy.activities.items() for c in a.categories}
    undeclared = [{"role": k[0], "activity": k[2], "category": k[3], "records": m["records"], "sources": m["sources"]}
                  for k, m in sorted(measured.items()) if (k[0], k[2], k[3]) not in declared and m["records"]]
    record: dict[str, Any] = {
        "record": "record of processing activities (GDPR art. 30)",
        "month": f"{as_of:%Y-%m}",
        "as_of": as_of.isoformat(),
        "run_id": run_id,
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "controller": {"name": ctl.name, "org_number": ctl.org_number, "address": ctl.address,
                       "contact": ctl.requests_to},
        "activities": [_activity(policy, catalog, mechanisms, n, as_of, measured, "self") for n in controller_activities],
        "processor": customers,
        "sub_processors": _recipients(policy, mechanisms, tuple(sorted(policy.sub_processors)), as_of),
        "undeclared": undeclared,
    }
    changes = compare_records(previous, record, thresholds) if previous else []
    record["changes"] = {"previous_month": previous.get("month") if previous else None, "items": changes}
    record["summary"] = _summary(record)
    return record


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    cats = [c for a in record["activities"] for c in a["categories"]]
    proc = [c for cu in record["processor"] for a in cu["activities"] for c in a["categories"]]
    return {
        "activities": len(record["activities"]),
        "activity_categories": len(cats),
        "records": sum(c["measured"]["records"] for c in cats),
        "processor_customers": len(record["processor"]),
        "processor_records": sum(c["measured"]["records"] for c in proc),
        "violations": sum(c["measured"]["violations"] for c in cats + proc),
        "third_country_transfers": sum(1 for s in record["sub_processors"] if s["third_country"]),
        "register_findings": sum(1 for s in record["sub_processors"] if not s["valid"]),
        "undeclared": len(record["undeclared"]),
        "changes": len(record["changes"]["items"]),
    }


# -- the change list ---------------------------------------------------------------------------


def _facts(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What the change list compares, by a readable place: activity, customer/activity, category."""
    def entry(a: dict[str, Any]) -> dict[str, Any]:
        return {"recipients": {r["sub_processor"]: r for r in a["recipients"]},
                "categories": {c["category"]: {"bases": [b["basis"] for b in c["lawful_bases"]],
                                               "retention": [r["text"] for r in c["retention"]],
                                               "records": c["measured"]["records"],
                                               "data_subjects": c["measured"]["data_subjects"]}
                               for c in a["categories"]}}

    places = {a["activity"]: entry(a) for a in record.get("activities", [])}
    places |= {f"{cu['customer']}/{a['activity']}": entry(a) for cu in record.get("processor", [])
               for a in cu["activities"]}
    return places


def compare_records(previous: dict[str, Any], current: dict[str, Any],
                    thresholds: ChangeThresholds = ChangeThresholds()) -> list[dict[str, Any]]:
    """What changed between two records: activities, categories and recipients added or removed,
    bases or retention changed, transfers changed, significant changes in counts."""
    changes: list[dict[str, Any]] = []

    def add(kind: str, where: str, before: Any = None, after: Any = None) -> None:
        changes.append({"kind": kind, "where": where, "before": before, "after": after})

    old, new = _facts(previous), _facts(current)
    for place in sorted(old.keys() - new.keys()):
        add("activity_removed", place)
    for place in sorted(new.keys() - old.keys()):
        add("activity_added", place)
    for place in sorted(old.keys() & new.keys()):
        o, n = old[place], new[place]
        for sub in sorted(o["recipients"].keys() - n["recipients"].keys()):
            add("recipient_removed", place, sub)
        for sub in sorted(n["recipients"].keys() - o["recipients"].keys()):
            add("recipient_added", place, None, sub)
        for cat in sorted(o["categories"].keys() - n["categories"].keys()):
            add("category_removed", f"{place} / {cat}")
        for cat in sorted(n["categories"].keys() - o["categories"].keys()):
            add("category_added", f"{place} / {cat}")
        for cat in sorted(o["categories"].keys() & n["categories"].keys()):
            oc, nc, where = o["categories"][cat], n["categories"][cat], f"{place} / {cat}"
            if oc["bases"] != nc["bases"]:
                add("lawful_basis_changed", where, oc["bases"], nc["bases"])
            if oc["retention"] != nc["retention"]:
                add("retention_changed", where, oc["retention"], nc["retention"])
            for count in ("records", "data_subjects"):
                if thresholds.significant(int(oc[count]), int(nc[count])):
                    add(f"{count}_changed", where, oc[count], nc[count])
    old_subs = {s["sub_processor"]: s for s in previous.get("sub_processors", [])}
    for s in current.get("sub_processors", []):
        before = old_subs.get(s["sub_processor"])
        if before is None:
            continue
        for field in ("location", "mechanism", "valid"):
            if before.get(field) != s[field]:
                add(f"transfer_{field}_changed", s["sub_processor"], before.get(field), s[field])
    old_customers = {c["customer"]: c for c in previous.get("processor", [])}
    for c in current.get("processor", []):
        if c["customer"] in old_customers and old_customers[c["customer"]].get("retention") != c["retention"]:
            add("instruction_changed", c["customer"], old_customers[c["customer"]].get("retention"), c["retention"])
    return changes


# -- files -------------------------------------------------------------------------------------


def _months(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.json") if _MONTH_FILE.match(p.stem))


def _paths(folder: Path, month: str) -> ProcessingRecordPaths:
    return ProcessingRecordPaths(folder / f"{month}.json", folder / f"{month}.html", folder / f"{month}.csv")


def latest_processing_record(report_dir: Path) -> ProcessingRecordPaths | None:
    folder = report_dir / RECORD_FOLDER
    months = _months(folder) if folder.is_dir() else []
    return _paths(folder, months[-1]) if months else None


def previous_processing_record(report_dir: Path, month: str) -> dict[str, Any] | None:
    """The newest record of a month before ``month`` (YYYY-MM), as written then."""
    earlier = [m for m in _months(report_dir / RECORD_FOLDER) if m < month]
    if not earlier:
        return None
    return json.loads((report_dir / RECORD_FOLDER / f"{earlier[-1]}.json").read_text(encoding="utf-8"))


def _write(path: Path, text: str) -> None:
    """Whole or not at all: the compliance page may be serving the file while it is replaced."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_processing_record(record: dict[str, Any], report_dir: Path) -> ProcessingRecordPaths:
    folder = report_dir / RECORD_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    paths = _paths(folder, record["month"])
    _write(paths.json, json.dumps(record, indent=2, ensure_ascii=False, default=str))
    _write(paths.html, render_processing_record_html(record))
    _write(paths.csv, processing_record_csv(record))
    return paths


def publish_processing_record(
    *, tag_engine: Engine, policy: Policy, catalog: Catalog, mechanisms: MechanismTable, as_of: date,
    report_dir: Path, run_id: str = "", thresholds: ChangeThresholds = ChangeThresholds(),
) -> ProcessingRecordPaths | None:
    """Build tonight's record against the previous month's and write this month's files. A run
    for an earlier month than the newest record (a backfill) writes nothing: the tag store holds
    today's state, and the earlier month's record is what the next month compares against."""
    month = f"{as_of:%Y-%m}"
    folder = report_dir / RECORD_FOLDER
    if folder.is_dir() and any(m > month for m in _months(folder)):
        return None
    record = build_processing_record(tag_engine=tag_engine, policy=policy, catalog=catalog, mechanisms=mechanisms,
                                     as_of=as_of, run_id=run_id, previous=previous_processing_record(report_dir, month),
                                     thresholds=thresholds)
    return write_processing_record(record, report_dir)


# -- renderings --------------------------------------------------------------------------------


def _transfers(recipients: list[dict[str, Any]]) -> tuple[str, str, str]:
    abroad = [r for r in recipients if r["third_country"]]
    transfers = "; ".join(f"{r['name']}: {r['location']}" for r in abroad) or "none"
    safeguards = "; ".join(f"{r['name']}: {r['mechanism_label']} ({r['article']})" for r in abroad) or "not applicable"
    findings = "; ".join(f"{r['name']}: {r['problem']}" for r in recipients if not r["valid"])
    return transfers, safeguards, findings


def processing_record_csv(record: dict[str, Any]) -> str:
    """One row per activity and category (as processor: per customer, activity and category),
    with the columns of a supervisory authority's art. 30 template and the measured facts."""
    ctl = record["controller"]
    us_contact = f"{ctl['org_number']}, {ctl['address']}, {ctl['contact']}"
    rows = []

    def row(section: str, a: dict[str, Any], c: dict[str, Any], controller: str, contact: str,
            processor: str, processor_contact: str) -> dict[str, Any]:
        transfers, safeguards, findings = _transfers(a["recipients"])
        m = c["measured"]
        return {
            "section": section, "controller_name": controller, "controller_contact": contact,
            "processor_name": processor, "processor_contact": processor_contact, "activity": a["activity"],
            "activity_label": a["label_sv"], "purpose": a["purpose"], "categories_of_data_subjects": a["data_subjects"],
            "category": c["category"], "category_label": c["label_sv"], "categories_of_personal_data": ", ".join(c["fields"]),
            "lawful_basis": "; ".join(f"{b['label_sv']} ({b['article']})" for b in c["lawful_bases"]),
            "recipients": "; ".join(f"{r['name']} ({r['purpose']}, {r['location']})" for r in a["recipients"]) or "none",
            "third_country_transfers": transfers, "transfer_safeguards": safeguards,
            "retention_period": "; ".join(f"{r['basis']}: {r['text']}" for r in c["retention"]),
            "register_findings": findings, "sources": ", ".join(f"{s} ({n})" for s, n in sorted(m["sources"].items())),
            "records": m["records"], "data_subjects": m["data_subjects"], "free_text_identifiers": m["free_text_identifiers"],
            "oldest_record_clock": m["oldest_clock"] or "", "records_legal_obligation": m["legal_obligation"],
            "violations": m["violations"],
        }

    for a in record["activities"]:
        for c in a["categories"]:
            rows.append(row("art30_1_controller", a, c, ctl["name"], us_contact, "", ""))
    for cu in record["processor"]:
        who = f"{cu['name']} ({cu['customer']})"
        contact = cu["instruction_ref"] or cu["problem"]
        for a in cu["activities"]:
            for c in a["categories"]:
                rows.append(row("art30_2_processor", a, c, who, contact, ctl["name"], us_contact))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def render_processing_record_html(record: dict[str, Any]) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    return env.get_template("processing_record.html.j2").render(r=record)
