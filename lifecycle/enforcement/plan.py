"""The plan: what will be destroyed, how, and why, stored before anything is touched."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import Engine, delete, func, select, update

from lifecycle.config import Catalog, Source, dependency_order
from lifecycle.tagstore import statement
from lifecycle.tagstore import plan_item, record_tag, run, schema_finding


@dataclass
class SourcePlan:
    source: str
    records_in_tag_store: int
    records_to_erase: int = 0
    records_to_anonymise: int = 0
    records_to_restrict: int = 0
    fields_to_anonymise: int = 0
    violations_to_restrict: int = 0
    # Records whose free text mentions an erased person (suppression list): redacted span by span.
    mentions_to_redact: int = 0
    # Records acted on because their consent was withdrawn, and parents kept for a kept child.
    consent_withdrawn: int = 0
    parents_kept_for_children: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    destroy_share: float = 0.0
    needs_confirmation: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def register_run(engine: Engine, run_id: str, logical_date: date, dry_run: bool) -> bool:
    """Record the run; True when its plan already exists (a re-run of the same night)."""
    with engine.begin() as conn:
        row = conn.execute(select(run.c.plan_created_at).where(run.c.run_id == run_id)).first()
        if row is None:
            conn.execute(
                run.insert().values(
                    run_id=run_id,
                    logical_date=logical_date,
                    dry_run=dry_run,
                    created_at=datetime.now(timezone.utc),
                    confirmed=False,
                )
            )
            return False
        return row.plan_created_at is not None


def reference_pairs(catalog: Catalog, names: list[str]) -> list[tuple[str, str]]:
    """(child, parent) source pairs among ``names`` whose child goes with its parent record,
    children first (the order in which a kept record protects its parents)."""
    order = [n for group in dependency_order(catalog, names) for n in group]
    pairs = []
    for child in order:
        source = catalog.source(child)
        parent = source.subject.via.get(source.clock_parent or "") or next(iter(source.subject.via.values()), None)
        if parent in names:
            pairs.append((child, parent))
    return pairs


def inherit_parent_clocks(engine: Engine, catalog: Catalog, names: list[str]) -> None:
    """Records without a clock of their own take their parent's deadline; parents before their
    children, so a grandchild sees its parent's fresh deadline."""
    pairs = [(c, p) for c, p in reversed(reference_pairs(catalog, names)) if catalog.source(c).clock_parent]
    with engine.begin() as conn:
        for child, parent in pairs:
            conn.execute(statement(engine, "inherit_parent_clock"), {"child": child, "parent": parent})
            conn.execute(statement(engine, "inherit_parent_status"), {"child": child})


def build_plan(engine: Engine, sources: list[Source], run_id: str, logical_date: date,
               marketing_activities: tuple[str, ...] = (), references: list[tuple[str, str]] = ()) -> None:  # type: ignore[assignment]
    """Insert the plan for every source in one transaction, unless this run already has one.
    ``marketing_activities``: controller-role direct-marketing activities, from which people who
    objected are removed again if their data came back. ``references``: (child, parent) source
    pairs, children first (``reference_pairs()``): a parent whose child stays is kept, anonymised."""
    if plan_exists(engine, run_id):
        return
    blocked = blocked_sources(engine)
    with engine.begin() as conn:
        conn.execute(delete(plan_item).where(plan_item.c.run_id == run_id))
        for source in sources:
            if source.name in blocked:
                continue  # a catalogued column is gone: act on nothing until a person looks
            params = {"run_id": run_id, "source": source.name, "logical_date": logical_date, "no": False, "yes": True}
            # Mentions of erased people come last: whatever else is planned for a record or a
            # category (erased, anonymised whole, restricted) takes precedence over redaction.
            for name in ("plan_restrict_violations", "plan_suppressed_subjects", "plan_expired_records",
                         "plan_expired_fields", "plan_suppressed_mentions"):
                conn.execute(statement(engine, name), params)
                if name == "plan_suppressed_subjects" and source.activity in marketing_activities:
                    conn.execute(statement(engine, "plan_objected_subjects"), params)
        for child, parent in references:  # children first
            conn.execute(statement(engine, "protect_referenced_parents"), {"run_id": run_id, "child": child, "parent": parent})
        conn.execute(update(run).where(run.c.run_id == run_id).values(plan_created_at=datetime.now(timezone.utc)))


def blocked_sources(engine: Engine) -> set[str]:
    """Sources whose last scan found a catalogued column missing (schema drift)."""
    with engine.connect() as conn:
        return set(conn.execute(
            select(schema_finding.c.source).where(schema_finding.c.finding == "missing_column")).scalars())


def plan_exists(engine: Engine, run_id: str) -> bool:
    with engine.connect() as conn:
        return conn.execute(select(run.c.plan_created_at).where(run.c.run_id == run_id)).scalar() is not None


def summarise_plan(engine: Engine, source: Source, run_id: str) -> SourcePlan:
    with engine.connect() as conn:
        held = conn.execute(
            select(func.count(func.distinct(record_tag.c.record_key))).where(record_tag.c.source == source.name)
        ).scalar_one()
        rows = [dict(r) for r in conn.execute(statement(engine, "plan_summary"), {"run_id": run_id, "source": source.name}).mappings()]
    plan = SourcePlan(source=source.name, records_in_tag_store=int(held), rows=rows)
    for r in rows:
        if r["scope"] == "fields":
            if r["action"] == "restrict":
                plan.violations_to_restrict += int(r["items"])
            elif r["action"] == "redact":
                plan.mentions_to_redact += int(r["items"])
            else:
                plan.fields_to_anonymise += int(r["items"])
    with engine.connect() as conn:
        per_action = conn.execute(
            select(plan_item.c.action, func.count(func.distinct(plan_item.c.record_key)))
            .where(plan_item.c.run_id == run_id, plan_item.c.source == source.name, plan_item.c.scope == "record")
            .group_by(plan_item.c.action)
        ).all()
        per_reason = dict(conn.execute(
            select(plan_item.c.reason, func.count(func.distinct(plan_item.c.record_key)))
            .where(plan_item.c.run_id == run_id, plan_item.c.source == source.name,
                   plan_item.c.reason.in_(("consent_withdrawn", "referenced_by_kept_record")))
            .group_by(plan_item.c.reason)).all())
    plan.consent_withdrawn = int(per_reason.get("consent_withdrawn", 0))
    plan.parents_kept_for_children = int(per_reason.get("referenced_by_kept_record", 0))
    counts = dict(per_action)
    plan.records_to_erase = int(counts.get("erase", 0))
    plan.records_to_anonymise = int(counts.get("anonymise", 0))
    plan.records_to_restrict = int(counts.get("restrict", 0))
    destroyed = plan.records_to_erase + plan.records_to_anonymise
    plan.destroy_share = round(destroyed / held, 4) if held else 0.0
    plan.needs_confirmation = plan.destroy_share > source.max_destroy_share and destroyed >= source.confirm_min_records
    return plan
