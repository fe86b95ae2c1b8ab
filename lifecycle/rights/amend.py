"""Consent withdrawal, objection to direct marketing, and rectification of one person.

- Withdrawal: what rests on consent alone is erased (a record whose every category rests on
  consent) or anonymised (the consent-based categories of a record that has another basis
  too); everything with another basis stays. The withdrawal is recorded by keyed hash.
- Objection (Art. 21): the person is removed from direct-marketing activities (erased where
  Millstone Group is controller, forwarded where a customer is) and kept out for good by a
  suppression record; other processing is unaffected.
- Both reach the records that reference the person's (their orders, tickets) when given the stores.
- Rectification: the given identifier is replaced wherever it sits in a structured column of
  the person's own records; before and after are recorded as keyed hashes only.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Engine, delete, select, update

from lifecycle.config import Catalog, Source
from lifecycle.stores import RecordChange, RecordStore, open_store, reach
from lifecycle.rights.erasure import RecordAction
from lifecycle.discovery import SubjectHasher
from lifecycle.config import Policy
from lifecycle.rights.requests import InvalidRequestError, SubjectIdentifiers
from lifecycle.discovery import Location, label_persons, locate
from lifecycle.tagstore import record_tag, subject_ref


def _own_records(tag_engine: Engine, hashes: list[str]) -> dict[tuple[str, str], list[Location]]:
    records: dict[tuple[str, str], list[Location]] = defaultdict(list)
    for loc in locate(tag_engine, hashes):
        if not loc.free_text:
            records[(loc.source, loc.record_key)].append(loc)
    return records


def _tags(tag_engine: Engine, source: str, key: str) -> list[dict[str, Any]]:
    with tag_engine.connect() as conn:
        return [dict(t) for t in conn.execute(select(record_tag).where(
            record_tag.c.source == source, record_tag.c.record_key == key,
            record_tag.c.status.in_(["active", "violation"]))).mappings()]


def _person_records(catalog: Catalog, tag_engine: Engine, hashes: list[str],
                    stores: dict[str, RecordStore] | None) -> list[tuple[str, str]]:
    """The person's own records and, given the stores, the records that reference them."""
    own = sorted(_own_records(tag_engine, hashes))
    if not stores:
        return own
    roots: dict[str, set[str]] = defaultdict(set)
    for source_name, key in own:
        roots[source_name].add(key)
    return own + [(r.source, r.record_key) for r in reach(catalog, stores, roots)]


def plan_withdrawal(catalog: Catalog, policy: Policy, tag_engine: Engine, hashes: list[str],
                    stores: dict[str, RecordStore] | None = None) -> list[RecordAction]:
    actions = []
    for (source_name, key) in _person_records(catalog, tag_engine, hashes, stores):
        if source_name not in catalog.sources or policy.activities[catalog.source(source_name).activity].role != "controller":
            continue
        tags = _tags(tag_engine, source_name, key)
        consent = tuple(sorted(t["category"] for t in tags if t["lawful_basis"] == "consent"))
        if not consent:
            continue
        if len(consent) == len(tags):
            actions.append(RecordAction(source_name, key, "erase"))
        else:
            actions.append(RecordAction(source_name, key, "anonymise", anonymise_categories=consent))
    return actions


def plan_objection(catalog: Catalog, policy: Policy, tag_engine: Engine, hashes: list[str],
                   stores: dict[str, RecordStore] | None = None) -> list[RecordAction]:
    actions = []
    for (source_name, key) in _person_records(catalog, tag_engine, hashes, stores):
        if source_name not in catalog.sources:
            continue
        activity = policy.activities[catalog.source(source_name).activity]
        if not activity.direct_marketing:
            continue
        if activity.role == "processor":
            tags = _tags(tag_engine, source_name, key)
            actions.append(RecordAction(source_name, key, "forward", controller=tags[0]["controller"] if tags else "unknown"))
        else:
            actions.append(RecordAction(source_name, key, "erase"))
    return actions


@dataclass
class RectificationOutcome:
    reference: str
    dry_run: bool
    kind: str
    before_hash: str
    after_hash: str
    per_source: dict[str, int] = field(default_factory=dict)
    forwarded: dict[str, int] = field(default_factory=dict)  # processor data: the customer decides

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


RECTIFIABLE = ("email", "phone")


def rectify(
    *,
    catalog: Catalog,
    policy: Policy,
    source_engines: dict[str, Engine],
    tag_engine: Engine,
    hasher: SubjectHasher,
    identifiers: SubjectIdentifiers,
    kind: str,
    new_value: str,
    reference: str,
    today: date,
    dry_run: bool,
) -> RectificationOutcome:
    if kind not in RECTIFIABLE:
        raise InvalidRequestError(f"field {kind!r} cannot be rectified here (one of {', '.join(RECTIFIABLE)})")
    checked = SubjectIdentifiers.parse({kind: new_value}, today.year)
    old_value = getattr(identifiers, kind)
    if not old_value:
        raise InvalidRequestError(f"give the current {kind} to rectify it")
    old_hash = hasher.reference(kind, old_value, today.year) or ""
    new_hash = hasher.reference(kind, getattr(checked, kind), today.year) or ""
    outcome = RectificationOutcome(reference, dry_run, kind, old_hash, new_hash)
    for (source_name, key), locs in sorted(_own_records(tag_engine, identifiers.hashes(hasher, today.year)).items()):
        if source_name not in catalog.sources:
            continue
        source = catalog.source(source_name)
        column = source.subject.columns().get(kind)
        if not column:
            continue
        if policy.activities[source.activity].role == "processor":
            controller = _tags(tag_engine, source_name, key)
            customer = controller[0]["controller"] if controller else "unknown"
            outcome.forwarded[customer] = outcome.forwarded.get(customer, 0) + 1
            continue
        store = open_store(source, source_engines[source.connection], tag_engine)
        if dry_run:
            current = store.read([key]).get(key, {}).get(column)
            changed = hasher.reference(kind, current, today.year) == old_hash if current is not None else False
        else:
            changed = store.change({key: _rectifier(column, kind, old_hash, getattr(checked, kind), hasher,
                                                    today.year)}).records > 0
        if changed:
            outcome.per_source[source_name] = outcome.per_source.get(source_name, 0) + 1
        if changed and not dry_run:
            _reindex(tag_engine, source, key, column, kind, new_hash)
    return outcome


def _reindex(tag_engine: Engine, source: Source, key: str, column: str, kind: str, new_hash: str) -> None:
    with tag_engine.begin() as conn:
        conn.execute(delete(subject_ref).where(subject_ref.c.source == source.name, subject_ref.c.record_key == key,
                                               subject_ref.c.field == column))
        conn.execute(subject_ref.insert().values(
            subject_hash=new_hash, source=source.name, record_key=key, field=column, kind=kind,
            category=source.columns[column].category, free_text=False))
        # The record's person may be known by the new value now (an e-mail rectified): relabel its entries.
        of_record = (subject_ref.c.source == source.name, subject_ref.c.record_key == key)
        entries = [dict(r._mapping) for r in conn.execute(select(subject_ref).where(*of_record))]
        for entry in label_persons(entries, source.name, key):
            conn.execute(update(subject_ref).where(*of_record, subject_ref.c.subject_hash == entry["subject_hash"],
                                                   subject_ref.c.field == entry["field"]).values(person=entry["person"]))


def _rectifier(column: str, kind: str, old_hash: str, new_value: str, hasher: SubjectHasher, year: int) -> RecordChange:
    """Replace the value in the record, only where it still is the old one."""
    def change(record: dict[str, Any]) -> dict[str, Any]:
        if hasher.reference(kind, record.get(column), year) != old_hash:
            return record
        return {**record, column: new_value}
    return change
