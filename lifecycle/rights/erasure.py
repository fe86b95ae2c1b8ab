"""Erasure of one person (Art. 17), resolved through the subject index.

Per location:
- the person's own record: erased; or, where a legal obligation (BFL) still runs, only what
  the law requires is kept, the rest anonymised, and the record held until the obligation
  lapses (the nightly run then erases it as any expired record);
- another person's free text that mentions them: the matched spans are redacted, not the text;
- processor-role data: untouched; the request is recorded as forwarded to that customer.
The plan is journaled under the request's reference before anything changes and applied in
steps (lifecycle.rights.journal), so a crashed request resumes its own plan. Afterwards the
person is searched for again, in the index and independently in every source itself
(lifecycle.rights.verify); anything left fails the request.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Engine, and_, delete, insert, select, update

from lifecycle.config import Catalog, dependency_order
from lifecycle.discovery import redact_text
from lifecycle.rights import journal as journal
from lifecycle.faults import crashpoint
from lifecycle.stores import RecordChange, RecordStore, open_store, open_stores
from lifecycle.discovery import SubjectHasher
from lifecycle.config import Policy
from lifecycle.stores import Reached, check_foreign_keys, reach, unreachable
from lifecycle.rights.requests import SubjectIdentifiers
from lifecycle.discovery import Location, locate
from lifecycle.rights.review import list_mentions
from lifecycle.rights.verify import Probe, summarise, verify_in_sources
from lifecycle.tagstore import RequestAction, record_tag, subject_ref, suppression

log = logging.getLogger(__name__)

HELD_REASON = "erasure refused in part: legal obligation (Bokföringslagen)"
# Records a request leaves in place: their parents must stay too.
KEPT_ACTIONS = ("hold", "forward", "anonymise")


@dataclass(frozen=True)
class RecordAction:
    source: str
    record_key: str
    action: RequestAction
    fields: tuple[str, ...] = ()
    anonymise_categories: tuple[str, ...] = ()
    lapses_on: date | None = None
    controller: str = "self"
    step: int = -1  # its step in the request's journal (-1: nothing to do, e.g. forwarded)
    reason: str = ""  # why it is held, when not the legal obligation


@dataclass
class ErasureOutcome:
    reference: str
    dry_run: bool
    per_source: dict[str, dict[str, int]] = field(default_factory=dict)
    held: list[dict[str, Any]] = field(default_factory=list)
    forwarded: dict[str, int] = field(default_factory=dict)
    remaining: dict[str, int] = field(default_factory=dict)
    verified: bool = False
    # Object-storage sources: objects rewritten or deleted, versions and delete markers removed.
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    # What verification checked: the index, and each source searched directly.
    verification: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0  # how many times the request's steps were started (a crash and re-run: 2)
    # Other people's records naming the person, per source, waiting for a reviewer's decision
    # (lifecycle.rights.review): a name is never redacted unreviewed.
    names_for_review: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_erasure(catalog: Catalog, policy: Policy, tag_engine: Engine, hashes: list[str], today: date,
                 stores: dict[str, RecordStore] | None = None) -> list[RecordAction]:
    """What to do with each record that holds the person (from the index and the tags) and,
    given the stores, with each record that belongs to them through references; children
    before parents, so no foreign key breaks on the way."""
    def tags_of(records: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[Any]]:
        """The tags of many records: one query per source and batch of keys, not one per record."""
        keys: dict[str, set[str]] = defaultdict(set)
        for source_name, key in records:
            keys[source_name].add(key)
        found: dict[tuple[str, str], list[Any]] = defaultdict(list)
        with tag_engine.connect() as conn:
            for source_name, wanted in sorted(keys.items()):
                ordered = sorted(wanted)
                for i in range(0, len(ordered), 1000):
                    for row in conn.execute(select(record_tag).where(
                            record_tag.c.source == source_name, record_tag.c.record_key.in_(ordered[i:i + 1000]))).mappings():
                        found[(source_name, row["record_key"])].append(row)
        return found

    by_record: dict[tuple[str, str], list[Location]] = defaultdict(list)
    for loc in locate(tag_engine, hashes):
        by_record[(loc.source, loc.record_key)].append(loc)
    tags = tags_of(r for r, locs in by_record.items() if r[0] in catalog.sources and not all(l.free_text for l in locs))
    actions: dict[tuple[str, str], RecordAction] = {}
    for (source_name, key), locs in sorted(by_record.items()):
        if source_name not in catalog.sources:
            continue
        if all(loc.free_text for loc in locs):  # only mentioned in someone else's text
            actions[(source_name, key)] = RecordAction(source_name, key, "redact", tuple(sorted({l.field for l in locs})))
        else:
            actions[(source_name, key)] = _own_action(catalog, policy, source_name, key, today,
                                                      tags.get((source_name, key), []))
    if stores:
        reached = reach(catalog, stores, own_records(actions.values()))
        tags = tags_of((r.source, r.record_key) for r in reached)
        for r in reached:  # parents before children: a child without a clock follows its parent's hold
            actions[(r.source, r.record_key)] = _own_action(catalog, policy, r.source, r.record_key, today,
                                                            tags.get((r.source, r.record_key), []),
                                                            parent=actions.get((r.parent_source, r.parent_key)))
        _keep_parents_of_kept(catalog, actions, reached)
        check_foreign_keys(catalog, stores, sorted({a.source for a in actions.values() if a.action == "erase"}))
    return children_first(catalog, list(actions.values()))


def own_records(actions: Iterable[RecordAction]) -> dict[str, set[str]]:
    """{source: keys} of the records that are the person's own (not mentions of them)."""
    roots: dict[str, set[str]] = defaultdict(set)
    for a in actions:
        if a.action != "redact":
            roots[a.source].add(a.record_key)
    return roots


def _own_action(catalog: Catalog, policy: Policy, source_name: str, key: str, today: date, tags: list[Any],
                parent: RecordAction | None = None) -> RecordAction:
    """A record of the person's (``tags``: its tags): forwarded (processor role), held for a
    running legal obligation (its own, or its parent's when it has no clock of its own), or
    treated as the catalog says for the source (erased or anonymised)."""
    source = catalog.source(source_name)
    if policy.activities[source.activity].role == "processor":
        return RecordAction(source_name, key, "forward", controller=tags[0]["controller"] if tags else "unknown")
    legal = [t for t in tags if t["lawful_basis"] == "legal_obligation" and t["deadline"] and t["deadline"] >= today]
    lapses = max((t["deadline"] for t in legal), default=None)
    if not legal and source.clock_parent and parent is not None and parent.action == "hold" and parent.lapses_on:
        legal = [t for t in tags if t["lawful_basis"] == "legal_obligation" and t["deadline"] is None]
        lapses = parent.lapses_on
    if legal:
        kept = {t["category"] for t in legal}
        return RecordAction(source_name, key, "hold", anonymise_categories=tuple(c for c in source.categories if c not in kept),
                            lapses_on=lapses)
    if source.on_expiry == "anonymise":
        return RecordAction(source_name, key, "anonymise", anonymise_categories=source.categories)
    return RecordAction(source_name, key, "erase")


def _keep_parents_of_kept(catalog: Catalog, actions: dict[tuple[str, str], RecordAction], reached: list[Reached]) -> None:
    """A record that stays (held, forwarded, anonymised) keeps the parent it references: erasing
    the parent would break the foreign key or cascade into the kept record. The parent is
    anonymised whole and held as long as its child is."""
    for r in sorted(reached, key=lambda r: -r.depth):  # deepest first: a kept grandchild keeps both
        child = actions[(r.source, r.record_key)]
        parent = actions.get((r.parent_source, r.parent_key))
        if child.action in KEPT_ACTIONS and parent is not None and parent.action == "erase":
            actions[(r.parent_source, r.parent_key)] = RecordAction(
                r.parent_source, r.parent_key, "hold", anonymise_categories=catalog.source(r.parent_source).categories,
                lapses_on=child.lapses_on, reason=f"kept, anonymised: referenced by a kept record of {r.source}")


def children_first(catalog: Catalog, actions: list[RecordAction]) -> list[RecordAction]:
    rank = {name: i for group in dependency_order(catalog) for i, name in enumerate(group)}
    return sorted(actions, key=lambda a: rank.get(a.source, 0))


def _redactor(fields: tuple[str, ...], hashes: set[str], hasher: SubjectHasher, ids: SubjectIdentifiers,
              year: int) -> RecordChange:
    patterns = Probe.of(ids, year).text_patterns()  # the identifiers themselves, in any writing

    def change(record: dict[str, Any]) -> dict[str, Any]:
        return {**record, **{f: redact_text(str(record[f]), hashes, hasher, year, patterns)
                             for f in fields if record.get(f)}}
    return change


@dataclass(frozen=True)
class RequestScope:
    """Where one person's request is carried out: the catalog and the backend of each of its
    Connections (SQL engine or object store), the tag store, and the person's identifiers with
    their keyed hashes."""

    catalog: Catalog
    backends: dict[str, Any]
    tag_engine: Engine
    hasher: SubjectHasher
    identifiers: SubjectIdentifiers
    hashes: list[str]

    def store(self, source_name: str) -> RecordStore:
        source = self.catalog.source(source_name)
        return open_store(source, self.backends[source.connection], self.tag_engine)

    def stores(self) -> dict[str, RecordStore]:
        return open_stores(self.catalog, self.backends, self.tag_engine)


_COUNTED = {"erase": "erased", "hold": "held", "anonymise": "anonymised", "redact": "redacted", "forward": "forwarded"}


def outcome_of(reference: str, dry_run: bool, actions: list[RecordAction], steps: list[Any] = ()) -> ErasureOutcome:  # type: ignore[assignment]
    """The counts of a request from its plan (journaled, or planned in a dry run) and what its
    steps reported: the same however many attempts it took."""
    outcome = ErasureOutcome(reference=reference, dry_run=dry_run)
    for a in actions:
        counts = outcome.per_source.setdefault(a.source, {"erased": 0, "anonymised": 0, "held": 0, "redacted": 0, "forwarded": 0})
        counts[_COUNTED[a.action]] += 1
        if a.action == "forward":
            outcome.forwarded[a.controller] = outcome.forwarded.get(a.controller, 0) + 1
        if a.action == "hold":
            if a.anonymise_categories:  # a held record none of whose columns changed is not anonymised
                counts["anonymised"] += 1
            outcome.held.append({"source": a.source, "record_key": a.record_key, "reason": a.reason or HELD_REASON,
                                 "lapses_on": a.lapses_on.isoformat() if a.lapses_on else None})
    for step in steps:
        if step.source and step.result:
            totals = outcome.objects.setdefault(step.source, {})
            for name, value in step.result.items():
                totals[name] = totals.get(name, 0) + value
    return outcome


def apply_erasure(actions: list[RecordAction], scope: RequestScope, *, reference: str, today: date, dry_run: bool,
                  suppress_as: str | None = "erasure") -> ErasureOutcome:
    """Journal the plan (unless this request already has one: then that plan is resumed) and
    apply its unfinished steps; the outcome counts every step of every attempt."""
    if dry_run:
        return outcome_of(reference, True, actions)
    tag_engine = scope.tag_engine
    stored = journal.stored_actions(tag_engine, reference)
    if stored is None:
        stored = journal.store_plan(tag_engine, reference, actions, suppress_as)
        crashpoint("request:planned")
    for step in journal.steps(tag_engine, reference):
        if step.state == "done":
            continue
        journal.mark_started(tag_engine, reference, step.number)
        crashpoint(f"request:step-{step.number}:started")
        result = _apply_step(step, [a for a in stored if a.step == step.number], scope, reference, today)
        crashpoint(f"request:step-{step.number}:applied")
        journal.mark_done(tag_engine, reference, step.number, result)
    outcome = outcome_of(reference, False, stored, journal.steps(tag_engine, reference))
    outcome.attempts = journal.attempts(tag_engine, reference)
    return outcome


def _apply_step(step: Any, actions: list[RecordAction], scope: RequestScope, reference: str, today: date) -> dict[str, int]:
    """One journaled step; idempotent, so a step a crash left 'started' is simply applied again."""
    if step.kind.startswith("suppress:"):
        _suppress(scope.tag_engine, scope.hashes, reference, today, step.kind.removeprefix("suppress:"))
        return {}
    source = scope.catalog.source(step.source)
    store = scope.store(step.source)
    if step.kind == "redact":  # the person's identifiers in other people's free text, span by span
        wanted = set(scope.hashes)
        done = store.change({a.record_key: _redactor(a.fields, wanted, scope.hasher, scope.identifiers, today.year)
                             for a in actions})
        with scope.tag_engine.begin() as conn:
            for a in actions:
                conn.execute(delete(subject_ref).where(
                    subject_ref.c.source == a.source, subject_ref.c.record_key == a.record_key,
                    subject_ref.c.field.in_(a.fields), subject_ref.c.subject_hash.in_(scope.hashes)))
        return done.counts
    keys = [a.record_key for a in actions]
    categories = actions[0].anonymise_categories if actions else ()
    columns = [c for cat in categories for c in source.columns_of(cat) if source.columns[c].anonymise != "keep"]
    done = store.erase(keys) if step.kind == "erase" else store.anonymise(keys, columns)
    if step.kind == "erase":
        _forget_records(scope.tag_engine, source.name, keys)
    else:
        _hold_records(scope.tag_engine, source.name, keys, categories, columns, hold=step.kind == "hold")
    return done.counts


def _forget_records(tag_engine: Engine, source: str, keys: list[str]) -> None:
    with tag_engine.begin() as conn:
        conn.execute(delete(record_tag).where(record_tag.c.source == source, record_tag.c.record_key.in_(keys)))
        conn.execute(delete(subject_ref).where(subject_ref.c.source == source, subject_ref.c.record_key.in_(keys)))


def _hold_records(tag_engine: Engine, source: str, keys: list[str], categories: tuple[str, ...],
                  anonymised_columns: list[str], hold: bool) -> None:
    mine = and_(record_tag.c.source == source, record_tag.c.record_key.in_(keys))
    with tag_engine.begin() as conn:
        conn.execute(update(record_tag).where(mine, record_tag.c.category.in_(categories)).values(status="anonymised"))
        if hold:
            # Held: out of processing, kept to the obligation's end; the nightly run erases it then.
            conn.execute(update(record_tag).where(mine, record_tag.c.category.notin_(categories))
                         .values(status="held", violation=HELD_REASON[:200]))
        conn.execute(delete(subject_ref).where(subject_ref.c.source == source, subject_ref.c.record_key.in_(keys),
                                               subject_ref.c.field.in_(anonymised_columns)))


def _suppress(tag_engine: Engine, hashes: list[str], reference: str, today: date, reason: str) -> None:
    with tag_engine.begin() as conn:
        existing = set(conn.execute(select(suppression.c.subject_hash).where(
            suppression.c.subject_hash.in_(hashes), suppression.c.reason == reason)).scalars())
        rows = [{"subject_hash": h, "reason": reason, "request_reference": reference, "since": today}
                for h in hashes if h not in existing]
        if rows:
            conn.execute(insert(suppression), rows)


def check_references(catalog: Catalog, stores: dict[str, RecordStore], actions: list[RecordAction]) -> dict[str, Any]:
    """Every record still referencing the person's records, asked of each store again (not the
    index): only those the plan keeps (held, forwarded, anonymised) may be left."""
    roots = own_records(actions)
    kept = {(a.source, a.record_key) for a in actions if a.action in KEPT_ACTIONS}
    reached = reach(catalog, stores, roots)
    checked: dict[str, int] = defaultdict(int)
    left: dict[str, int] = defaultdict(int)
    for r in reached:
        checked[r.source] += 1
        if (r.source, r.record_key) not in kept:
            left[r.source] += 1
    return {"passed": not left, "records_still_referencing": dict(checked), "left": dict(left),
            "unreachable": unreachable(catalog, stores, roots)}


def own_names(scope: RequestScope, actions: Iterable[RecordAction]) -> list[str]:
    """The full names in the name columns of the person's own records (read before they are
    erased): searched in others' free text to be listed for review."""
    keys: dict[str, list[str]] = defaultdict(list)
    for a in actions:
        if a.action != "redact" and "name" in scope.catalog.source(a.source).subject.columns():
            keys[a.source].append(a.record_key)
    names: set[str] = set()
    for source_name, wanted in keys.items():
        column = scope.catalog.source(source_name).subject.columns()["name"]
        names |= {str(r[column]) for r in scope.store(source_name).read(wanted).values() if r.get(column)}
    return sorted(names)


def verify_erasure(outcome: ErasureOutcome, actions: list[RecordAction], scope: RequestScope, *, year: int,
                   names: Iterable[str] = (), today: date | None = None) -> ErasureOutcome:
    """Search again, two ways: the subject index, and, independently of it, every source
    itself (lifecycle.rights.verify). Held and forwarded records are the only ones allowed to keep the
    person. ``verified`` only when every check passed. Others' records writing the person's full
    name (``names`` and the request's) are listed for review (lifecycle.rights.review), not failed."""
    allowed = {(a.source, a.record_key) for a in actions if a.action in ("hold", "forward")}
    in_index: dict[str, int] = defaultdict(int)
    for loc in locate(scope.tag_engine, scope.hashes):
        if (loc.source, loc.record_key) not in allowed:
            in_index[loc.source] += 1
    probe = Probe.of(scope.identifiers, year).with_names(names)
    stores = scope.stores()
    checks = verify_in_sources(stores, probe, allowed)
    if probe.mention_names:
        outcome.names_for_review = list_mentions(scope.tag_engine, scope.hasher, outcome.reference, checks,
                                                 today or date(year, 1, 1))
    references = check_references(scope.catalog, stores, actions)
    remaining: dict[str, int] = defaultdict(int)
    for source, n in [*in_index.items(), *summarise(checks).items(), *references["left"].items()]:
        remaining[source] += n
    incomplete = [c.source for c in checks if c.status == "incomplete"] + references["unreachable"]
    outcome.remaining = dict(remaining)
    outcome.verification = {
        "method": "subject index, and every catalogued source searched directly: identifier columns for the "
                  "person's normalised identifiers, free text for every identifier in any common writing",
        "identifiers_checked": sorted(k for k, v in (("email", probe.email), ("phone", probe.phone_national),
                                                     ("personnummer", probe.personnummer),
                                                     ("name_company", probe.name and probe.company)) if v),
        "index": {"passed": not in_index, "remaining": dict(in_index)},
        "references": references,
        "sources": [c.to_dict() for c in checks],
        "incomplete": incomplete,
    }
    outcome.verified = not remaining and not incomplete
    return outcome
