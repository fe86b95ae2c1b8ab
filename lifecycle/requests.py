"""Data-subject requests: the identifiers a person gives, validated, and the request ledger.

Identifiers live only in memory while a request runs; the ledger, certificates and logs hold
the operator's reference, keyed hashes and counts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import Engine, select, update

from lifecycle.detect import _identity_number, _swedish_phone
from lifecycle.errors import LifecycleError
from lifecycle.identifiers import SubjectHasher
from lifecycle.tables import subject_request

REQUEST_TYPES = ("erasure", "access", "rectification", "consent_withdrawal", "objection")
_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")


class InvalidRequestError(LifecycleError):
    """A request's input is malformed: nothing was read or written."""


@dataclass(frozen=True)
class SubjectIdentifiers:
    email: str | None = None
    phone: str | None = None
    personnummer: str | None = None
    name: str | None = None
    company: str | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any], reference_year: int) -> SubjectIdentifiers:
        """Validate what an operator typed; every problem is named, nothing is guessed."""
        values = {k: (str(raw.get(k)).strip() if raw.get(k) not in (None, "") else None)
                  for k in ("email", "phone", "personnummer", "name", "company")}
        ids = cls(**values)
        if ids.email and not _EMAIL.match(ids.email):
            raise InvalidRequestError(f"e-mail {ids.email!r} is not a valid address")
        if ids.phone and not _swedish_phone(ids.phone):
            raise InvalidRequestError("phone is not a valid Swedish number (e.g. 070-123 45 67 or +46 70 123 45 67)")
        if ids.personnummer:
            digits = ids.personnummer.replace("-", "").replace("+", "")
            found = _identity_number(ids.personnummer, reference_year) if digits.isdigit() and len(digits) in (10, 12) else None
            if not found or found[0] == "org_number":
                raise InvalidRequestError("personnummer is not valid (check digit, date or format YYYYMMDD-NNNN)")
        if bool(ids.name) != bool(ids.company):
            raise InvalidRequestError("name and company identify a person only together: give both or neither")
        if not any((ids.email, ids.phone, ids.personnummer, ids.name)):
            raise InvalidRequestError("no identifier given: at least one of e-mail, phone, personnummer, or name with company")
        return ids

    def hashes(self, hasher: SubjectHasher, reference_year: int) -> list[str]:
        pairs = [("email", self.email), ("phone", self.phone), ("personnummer", self.personnummer)]
        if self.name and self.company:
            pairs.append(("name_company", f"{self.name}|{self.company}"))
        return [h for kind, value in pairs if value and (h := hasher.reference(kind, value, reference_year))]


def validate_reference(reference: str) -> str:
    reference = (reference or "").strip()
    if not _REFERENCE.match(reference):
        raise InvalidRequestError(
            f"request reference {reference!r} must be 1-100 letters, digits or . _ / - (e.g. DSR-2026-0042)")
    return reference


def validate_request_type(request_type: str) -> str:
    if request_type not in REQUEST_TYPES:
        raise InvalidRequestError(f"request type {request_type!r} is not one of {', '.join(REQUEST_TYPES)}")
    return request_type


def register_request(engine: Engine, reference: str, request_type: str, received_on: date) -> dict[str, Any]:
    """Record the request (idempotent: a re-run of the same reference continues it)."""
    with engine.begin() as conn:
        row = conn.execute(select(subject_request).where(subject_request.c.reference == reference)).mappings().first()
        if row is not None:
            if row["request_type"] != request_type:
                raise InvalidRequestError(f"reference {reference!r} is already taken (request type {row['request_type']})")
            return dict(row)
        values = {
            "reference": reference, "request_type": request_type, "received_on": received_on,
            "due_on": received_on + relativedelta(months=1), "status": "received",
            "created_at": datetime.now(timezone.utc),
        }
        conn.execute(subject_request.insert().values(**values))
        return values


def complete_request(engine: Engine, reference: str, status: str, outcome: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(update(subject_request).where(subject_request.c.reference == reference).values(
            status=status, outcome=json.dumps(outcome, default=str), completed_at=datetime.now(timezone.utc)))


def open_requests(engine: Engine, today: date) -> list[dict[str, Any]]:
    """Requests not completed, with days left to their one-month deadline (for reports)."""
    with engine.connect() as conn:
        rows = conn.execute(select(subject_request.c.reference, subject_request.c.request_type,
                                   subject_request.c.received_on, subject_request.c.due_on, subject_request.c.status)
                            .where(subject_request.c.status.notin_(["completed"]))).mappings().all()
    return [{**dict(r), "days_left": (r["due_on"] - today).days, "late": r["due_on"] < today} for r in rows]
