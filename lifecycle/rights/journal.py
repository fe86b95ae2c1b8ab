"""A request's own journal: its plan, stored before anything is changed, cut into steps that
are journaled started and done under the request's reference.

A crashed request resumes its own plan, never a new one rebuilt from what the first attempt
left (which would forget what that attempt already erased); every step is idempotent, so a
step left 'started' is applied again. The certificate is computed from the journal, so it
counts what every attempt did, and a completed request re-run changes nothing.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from lifecycle.tagstore import request_action, request_step

@dataclass(frozen=True)
class Step:
    number: int
    kind: str  # erase | hold | anonymise | redact | suppress:<reason>
    source: str
    state: str  # planned | started | done
    result: dict[str, Any]


def _step_plan(actions: list[Any], suppress_as: str | None) -> list[tuple[str, str, list[Any]]]:
    """(kind, source, actions) per step: one per source, action and categories for the
    record actions (set-based), one per source for redactions, then the suppression."""
    groups: dict[tuple[str, str, tuple[str, ...]], list[Any]] = defaultdict(list)
    for a in actions:
        if a.action in ("erase", "hold", "anonymise"):
            groups[(a.source, a.action, a.anonymise_categories)].append(a)
        elif a.action == "redact":
            groups[(a.source, "redact", ())].append(a)
    steps = [(action, source, members) for (source, action, _), members in groups.items()]
    if suppress_as:
        steps.append((f"suppress:{suppress_as}", "", []))
    return steps


def stored_actions(tag_engine: Engine, reference: str) -> list[Any] | None:
    """The request's journaled plan, or None when it has none yet."""
    from lifecycle.rights.erasure import RecordAction

    with tag_engine.connect() as conn:
        rows = conn.execute(select(request_action).where(request_action.c.reference == reference)
                            .order_by(request_action.c.seq)).mappings().all()
        any_step = conn.execute(select(request_step.c.step).where(request_step.c.reference == reference).limit(1)).first()
    if not rows and any_step is None:
        return None
    return [RecordAction(r["source"], r["record_key"], r["action"], tuple(json.loads(r["fields"])),
                         tuple(json.loads(r["categories"])), r["lapses_on"], r["controller"], step=r["step"], reason=r["reason"] or "")
            for r in rows]


def store_plan(tag_engine: Engine, reference: str, actions: list[Any], suppress_as: str | None) -> list[Any]:
    """Journal the plan in one transaction (all of it or none), after what the request already
    journaled; returns every journaled action with its step number. Forwarded records change
    nothing here: they are journaled without a step."""
    numbered: list[Any] = []
    step_rows = []
    step_of: dict[int, int] = {}
    with tag_engine.connect() as conn:  # a re-run after a failed verification adds to the plan
        first_seq = conn.execute(select(func.max(request_action.c.seq)).where(request_action.c.reference == reference)).scalar()
        first_step = conn.execute(select(func.max(request_step.c.step)).where(request_step.c.reference == reference)).scalar()
    first_seq = -1 if first_seq is None else first_seq
    first_step = -1 if first_step is None else first_step
    for number, (kind, source, members) in enumerate(_step_plan(actions, suppress_as), start=first_step + 1):
        step_rows.append({"reference": reference, "step": number, "kind": kind, "source": source, "state": "planned",
                          "attempts": 0})
        for a in members:
            step_of[id(a)] = number
    for a in actions:
        numbered.append(replace(a, step=step_of.get(id(a), -1)))
    action_rows = [{"reference": reference, "seq": first_seq + 1 + i, "step": a.step, "source": a.source, "record_key": a.record_key,
                    "action": a.action, "fields": json.dumps(list(a.fields)),
                    "categories": json.dumps(list(a.anonymise_categories)), "lapses_on": a.lapses_on,
                    "controller": a.controller, "reason": a.reason or None} for i, a in enumerate(numbered)]
    with tag_engine.begin() as conn:
        if action_rows:
            conn.execute(insert(request_action), action_rows)
        if step_rows:
            conn.execute(insert(request_step), step_rows)
    return stored_actions(tag_engine, reference) or numbered


def steps(tag_engine: Engine, reference: str) -> list[Step]:
    with tag_engine.connect() as conn:
        rows = conn.execute(select(request_step).where(request_step.c.reference == reference)
                            .order_by(request_step.c.step)).mappings().all()
    return [Step(r["step"], r["kind"], r["source"], r["state"], json.loads(r["result"]) if r["result"] else {})
            for r in rows]


def mark_started(tag_engine: Engine, reference: str, step: int) -> None:
    with tag_engine.begin() as conn:
        conn.execute(update(request_step).where(request_step.c.reference == reference, request_step.c.step == step)
                     .values(state="started", attempts=request_step.c.attempts + 1, started_at=datetime.now(timezone.utc)))


def mark_done(tag_engine: Engine, reference: str, step: int, result: dict[str, Any]) -> None:
    with tag_engine.begin() as conn:
        conn.execute(update(request_step).where(request_step.c.reference == reference, request_step.c.step == step)
                     .values(state="done", result=json.dumps(result), finished_at=datetime.now(timezone.utc)))


def attempts(tag_engine: Engine, reference: str) -> int:
    """How many times the request's most retried step was started."""
    with tag_engine.connect() as conn:
        values = conn.execute(select(request_step.c.attempts).where(request_step.c.reference == reference)).scalars().all()
    return max(values, default=0)
