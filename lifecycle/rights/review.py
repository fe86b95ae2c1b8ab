"""An erased person's name in other people's free text: listed for a person's decision.

A name is not unique: "Eva Ek" in a colleague's message may be another Eva Ek. So erasure never
redacts a name on its own. Verification (lifecycle.rights.verify) finds every other person's
record whose free text writes the person's full name (the request's, and the name columns of
their own records); ``list_mentions`` records each as a pending item of the request, the name
kept only as its keyed hash. A later run of the request DAG with request type ``name_review``
applies a reviewer's decision to items by number: ``redact`` replaces every writing of the name
in those records' free text and checks it is gone; ``keep`` records that it stays. The reviewer
types the name again (it is never stored); its keyed hash must be the one listed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Literal, get_args

from sqlalchemy import Engine, func, select, update

from lifecycle.discovery import SubjectHasher, name_pattern, name_spans, redact_text
from lifecycle.errors import InvalidRequestError
from lifecycle.rights.requests import check_name, validate_reference
from lifecycle.rights.verify import SourceCheck
from lifecycle.stores import RecordStore
from lifecycle.tagstore import review_item

Decision = Literal["redact", "keep"]
DECISIONS: tuple[str, ...] = get_args(Decision)
_STATUS_OF: dict[str, str] = {"redact": "redacted", "keep": "kept"}
MAX_ITEMS = 1000  # numbers one review run may name


def name_hash(hasher: SubjectHasher, name: str) -> str:
    """The keyed hash of a full name as searched: words joined by one space, casefolded."""
    return hasher.hash("name", " ".join(name.split()).casefold())


def list_mentions(tag_engine: Engine, hasher: SubjectHasher, reference: str, checks: Iterable[SourceCheck],
                  today: date) -> dict[str, int]:
    """Record the name mentions verification found as pending items of ``reference`` (those
    already listed, decided or not, are left as they are); {source: pending items}."""
    found = sorted({(c.source, key, name_hash(hasher, name)) for c in checks for key, name in c.name_mentions})
    with tag_engine.begin() as conn:
        listed = {(r.source, r.record_key, r.name_hash) for r in conn.execute(
            select(review_item.c.source, review_item.c.record_key, review_item.c.name_hash)
            .where(review_item.c.reference == reference))}
        last = conn.execute(select(func.max(review_item.c.item_no)).where(review_item.c.reference == reference)).scalar()
        rows = [{"reference": reference, "item_no": (last or 0) + i, "source": source, "record_key": key, "kind": "name",
                 "name_hash": h, "status": "pending", "listed_on": today}
                for i, (source, key, h) in enumerate((f for f in found if f not in listed), start=1)]
        if rows:
            conn.execute(review_item.insert(), rows)
    return pending(tag_engine, reference)


def pending(tag_engine: Engine, reference: str | None = None) -> dict[str, int]:
    """{source: items waiting for a decision} of one request, or {reference: items} of all."""
    group = review_item.c.reference if reference is None else review_item.c.source
    query = select(group, func.count()).where(review_item.c.status == "pending").group_by(group)
    if reference is not None:
        query = query.where(review_item.c.reference == reference)
    with tag_engine.connect() as conn:
        return {str(k): int(n) for k, n in conn.execute(query)}


def listed_items(tag_engine: Engine, reference: str) -> list[dict[str, Any]]:
    """A request's items by number: source, record key, status (no name, not even hashed)."""
    with tag_engine.connect() as conn:
        return [dict(r) for r in conn.execute(
            select(review_item.c.item_no, review_item.c.source, review_item.c.record_key, review_item.c.status,
                   review_item.c.decided_by).where(review_item.c.reference == reference)
            .order_by(review_item.c.item_no)).mappings()]


@dataclass(frozen=True)
class ReviewDecision:
    """A reviewer's decision on items of one request, with the name they reviewed."""

    reference: str
    decision: Decision
    items: tuple[int, ...]  # empty: every pending item of the request
    name: str
    reviewer: str

    @classmethod
    def parse(cls, raw: dict[str, Any], reviewer: str) -> ReviewDecision:
        """Validate the form; every problem names its field and rule, never the value."""
        reference = validate_reference(str(raw.get("reference") or ""))
        decision = str(raw.get("review_decision") or "")
        if decision not in DECISIONS:
            raise InvalidRequestError(f"not one of {', '.join(DECISIONS)}", field="review_decision", rule="one_of")
        items = raw.get("review_items") or []
        if not isinstance(items, list) or len(items) > MAX_ITEMS or \
                not all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in items):
            raise InvalidRequestError(f"must be a list of at most {MAX_ITEMS} item numbers (1, 2, ...)",
                                      field="review_items", rule="item_numbers")
        name = str(raw.get("name") or "").strip()
        if not name:
            raise InvalidRequestError("required: the name the items were listed for", field="name", rule="required")
        check_name(name)
        return cls(reference, decision, tuple(sorted(set(items))), name, reviewer or "unknown")  # type: ignore[arg-type]


@dataclass
class ReviewOutcome:
    reference: str
    decision: str
    reviewer: str
    per_source: dict[str, dict[str, int]]
    already_decided: int
    still_named: dict[str, int]  # redacted records that still write the name (verification)
    pending_after: dict[str, int]

    @property
    def verified(self) -> bool:
        return not self.still_named

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "request_type": "name_review", "decision": self.decision,
                "reviewer": self.reviewer, "per_source": self.per_source, "already_decided": self.already_decided,
                "still_named": self.still_named, "pending_after": self.pending_after, "verified": self.verified}


def apply_review(decision: ReviewDecision, stores: dict[str, RecordStore], tag_engine: Engine,
                 hasher: SubjectHasher, year: int) -> ReviewOutcome:
    """Apply the decision to the items it names (all pending ones when it names none). Items
    already decided are left as they are, so a re-run changes nothing twice."""
    items = _chosen_items(tag_engine, decision, name_hash(hasher, decision.name))
    todo = [i for i in items if i["status"] == "pending"]
    by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in todo:
        by_source[item["source"]].append(item)
    per_source: dict[str, dict[str, int]] = {}
    still: dict[str, int] = {}
    done: list[int] = []
    pattern = name_pattern(decision.name)
    for source_name, chosen in sorted(by_source.items()):
        if source_name not in stores:
            raise InvalidRequestError(f"item {chosen[0]['item_no']}: its source is no longer in the catalog",
                                      field="review_items", rule="source_in_catalog")
        keys = [i["record_key"] for i in chosen]
        if decision.decision == "redact" and pattern is not None:
            store = stores[source_name]
            texts = store.source.free_text_columns
            patterns = {"name": pattern}

            def redacted(record: dict[str, Any]) -> dict[str, Any]:
                return {**record, **{c: redact_text(str(record[c]), set(), hasher, year, patterns)
                                     for c in texts if record.get(c)}}
            store.change({key: redacted for key in keys})
            now = store.read(keys)
            left = {k for k, r in now.items() if any(name_spans(str(r.get(c) or ""), pattern) for c in texts)}
            if left:
                still[source_name] = len(left)
            done += [i["item_no"] for i in chosen if i["record_key"] not in left]
            per_source[source_name] = {"redacted": len(keys) - len(left), "kept": 0}
        else:
            done += [i["item_no"] for i in chosen]
            per_source[source_name] = {"redacted": 0, "kept": len(keys)}
    if done:
        with tag_engine.begin() as conn:
            conn.execute(update(review_item).where(review_item.c.reference == decision.reference,
                                                   review_item.c.item_no.in_(done))
                         .values(status=_STATUS_OF[decision.decision], decided_by=decision.reviewer[:250],
                                 decided_at=datetime.now(timezone.utc)))
    return ReviewOutcome(decision.reference, decision.decision, decision.reviewer, per_source,
                         already_decided=len(items) - len(todo), still_named=still,
                         pending_after=pending(tag_engine, decision.reference))


def _chosen_items(tag_engine: Engine, decision: ReviewDecision, hashed: str) -> list[dict[str, Any]]:
    with tag_engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(review_item).where(
            review_item.c.reference == decision.reference)).mappings()]
    if not rows:
        raise InvalidRequestError("no names were listed for review under this request",
                                  field="reference", rule="has_review_items")
    by_number = {r["item_no"]: r for r in rows}
    unknown = [n for n in decision.items if n not in by_number]
    if unknown:
        raise InvalidRequestError(f"items {', '.join(map(str, unknown))} are not listed under this request",
                                  field="review_items", rule="listed")
    chosen = [by_number[n] for n in decision.items] if decision.items else \
        [r for r in rows if r["status"] == "pending" and r["name_hash"] == hashed]
    other = [r["item_no"] for r in chosen if r["name_hash"] != hashed]
    if other or not chosen and not decision.items and any(r["status"] == "pending" for r in rows):
        raise InvalidRequestError(
            f"does not match the name listed for review{' in items ' + ', '.join(map(str, other)) if other else ''}",
            field="name", rule="matches_listed_name")
    return chosen
