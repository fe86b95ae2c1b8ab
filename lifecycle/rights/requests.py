"""Data-subject requests: the identifiers a person gives, validated, and the request ledger.

Identifiers live only in memory while a request runs; the ledger, certificates and logs hold
the operator's reference, keyed hashes and counts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Literal, NoReturn, get_args

from dateutil.relativedelta import relativedelta
from sqlalchemy import Engine, select, update

from lifecycle.discovery import parse_identity_number, parse_swedish_phone
from lifecycle.errors import InvalidRequestError
from lifecycle.discovery import SubjectHasher
from lifecycle.tagstore import subject_request

# The one list of request types; lifecycle.rights.dispatcher dispatches on it.
RequestType = Literal["erasure", "access", "rectification", "consent_withdrawal", "objection"]
REQUEST_TYPES: tuple[str, ...] = get_args(RequestType)
RECTIFIABLE_FIELDS = ("email", "phone")

# -- what an operator may type: one named pattern per rule ---------------------------------
#
# Limits: an e-mail address at most 254 characters, its local part at most 64 (RFC 5321);
# mirrored in the DAG's Params (dags/lifecycle_subject_request.py) so the form refuses early.
MAX_LENGTH = {"email": 254, "phone": 30, "personnummer": 13, "name": 200, "company": 200, "reference": 100}
MAX_EMAIL_LOCAL_PART = 64

# Structured fields are whitelisted by their format, which leaves no room for SQL or control text.
EMAIL_PATTERN = re.compile(r"[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,63}")
# One Swedish number, the whole value: +46 / 0046 (optionally with the trunk zero, "(0)"), or a
# leading 0, or an area code in brackets "(08)"; digit groups separated by one space or a dash.
_PHONE_SEP = r"(?: ?[-\u2013] ?| )"
_PHONE_DIGITS = rf"[1-9][0-9]*(?:{_PHONE_SEP}[0-9]+)*"
PHONE_PATTERN = re.compile(
    rf"(?:(?:\+|00)46{_PHONE_SEP}?(?:\(0\){_PHONE_SEP}?|0{_PHONE_SEP}?)?|0){_PHONE_DIGITS}"
    rf"|\(0[1-9][0-9]{{0,2}}\) ?{_PHONE_DIGITS}")
# 10 or 12 digits, optionally '-' (or '+', aged 100 or more) before the last four.
PERSONNUMMER_PATTERN = re.compile(r"(?:[0-9]{2})?[0-9]{6}[-+]?[0-9]{4}")
# Case numbers: letters, digits and . _ / -
REFERENCE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")
# A person's name: letters of any script (with combining accents), spaces, and - ' ’ . ,
NAME_PATTERN = re.compile(r"(?=.*?[^\W\d_])(?:[^\W\d_]|[\u0300-\u036f ’'.,-])+")
# A company: letters, digits, spaces, and - ' ’ . , & ( ) / +  ("Bröderna Berg & Söner AB", "AB Volvo (publ)")
COMPANY_PATTERN = re.compile(r"(?=.*?[^\W_])(?:[^\W_]|[\u0300-\u036f ’'.,&()/+-])+")

# Refused in every free field (name, company, reference, the value of a correction).
# Control characters, and invisible formatting characters that can disguise text (bidi
# overrides, zero-width space, BOM); zero-width (non-)joiners stay allowed, some scripts need them.
CONTROL_CHARACTERS = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b\u200e\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f"
    r"\ufeff\ufff9-\ufffb\ud800-\udfff]")
SQL_PUNCTUATION = re.compile(r";|--|/\*|\*/")
_QUOTE = "['\"`\u2018\u2019]"
# A quote as SQL uses it ("x' OR '1'='1", "x'; ...", "='", "''"), not the apostrophe of O'Brien or 't Hooft.
SQL_QUOTE = re.compile(
    rf"{_QUOTE}{{2}}|{_QUOTE}\s*(?:[;=<>)+,]|\|\||--)|(?:[=<>]|\|\|)\s*{_QUOTE}"
    rf"|{_QUOTE}\s*(?:OR|AND)\b\s*(?:{_QUOTE}|[0-9(])"
    rf"|{_QUOTE}\s*(?:UNION|SELECT|INSERT|UPDATE|DELETE|DROP|EXEC|EXECUTE)\b",
    re.IGNORECASE)
SQL_KEYWORDS = re.compile(
    r"\b(?:DROP|TRUNCATE|ALTER|CREATE)\s+(?:TABLE|DATABASE|SCHEMA|VIEW|INDEX|USER|ROLE|FUNCTION)\b"
    r"|\bUNION\s+(?:ALL\s+)?SELECT\b|\bSELECT\s+(?:\*|[\w.]+(?:\s*,\s*[\w.]+)*)\s+FROM\b"
    r"|\bINSERT\s+INTO\b|\bDELETE\s+FROM\b|\bUPDATE\s+\w+\s+SET\b"
    r"|\b(?:OR|AND)\s+\S+?\s*(?:=|<>|!=|<|>)|\b(?:EXEC|EXECUTE)\s*\(|\bxp_\w+|\bpg_sleep\b"
    r"|\bSLEEP\s*\(|\bWAITFOR\s+DELAY\b|\bBENCHMARK\s*\(",
    re.IGNORECASE)

_PHONE_EXAMPLE = "e.g. 070-123 45 67 or +46 70 123 45 67"


def _refuse(field: str, rule: str, problem: str) -> NoReturn:
    raise InvalidRequestError(problem, field=field, rule=rule)


def _check_length(field: str, value: str, limit: int) -> None:
    if len(value) > limit:
        _refuse(field, "max_length", f"longer than {limit} characters")


def _check_control(field: str, value: str) -> None:
    if CONTROL_CHARACTERS.search(value):
        _refuse(field, "control_characters", "contains control or invisible formatting characters")


def _check_free_text(field: str, value: str, limit: int, allowed: re.Pattern[str], described: str) -> None:
    """Length, control characters, SQL-looking text, then the field's own characters."""
    _check_length(field, value, limit)
    _check_control(field, value)
    if SQL_PUNCTUATION.search(value):
        _refuse(field, "sql_punctuation", "contains characters that look like SQL (; -- /* */)")
    if SQL_QUOTE.search(value):
        _refuse(field, "sql_quote", "uses quotes the way SQL does (e.g. ' OR '1'='1)")
    if SQL_KEYWORDS.search(value):
        _refuse(field, "sql_keywords", "contains SQL statements or conditions (e.g. DROP TABLE, UNION SELECT, OR 1=1)")
    if not allowed.fullmatch(value):
        _refuse(field, "characters", f"may contain only {described}")


def check_email(value: str, field: str = "email") -> str:
    _check_length(field, value, MAX_LENGTH["email"])
    _check_control(field, value)
    if len(value.rpartition("@")[0]) > MAX_EMAIL_LOCAL_PART:
        _refuse(field, "local_part_length", f"the part before @ is longer than {MAX_EMAIL_LOCAL_PART} characters")
    if not EMAIL_PATTERN.fullmatch(value):
        _refuse(field, "format", "not a valid address (e.g. anna.berg@exempel.se)")
    return value


def check_phone(value: str, field: str = "phone") -> str:
    _check_length(field, value, MAX_LENGTH["phone"])
    _check_control(field, value)
    if not PHONE_PATTERN.fullmatch(value):
        _refuse(field, "format", f"not a valid Swedish number, written on its own ({_PHONE_EXAMPLE})")
    if not parse_swedish_phone(value):  # the Swedish numbering plan: mobile 7[02369] + 7 digits, else 7-9 digits
        _refuse(field, "numbering_plan", f"not a valid Swedish number ({_PHONE_EXAMPLE})")
    return value


def check_personnummer(value: str, reference_year: int, field: str = "personnummer") -> str:
    _check_length(field, value, MAX_LENGTH["personnummer"])
    _check_control(field, value)
    if not PERSONNUMMER_PATTERN.fullmatch(value):
        _refuse(field, "format", "not in the form YYYYMMDD-NNNN or YYMMDD-NNNN (10 or 12 digits, - or +)")
    found = parse_identity_number(value, reference_year)
    if found is None:
        _refuse(field, "check_digit_or_date", "this personnummer is not valid (wrong check digit or no such date)")
    if found[0] == "org_number":
        _refuse(field, "org_number", "an organisation number, not a person's personnummer")
    return value


def check_name(value: str, field: str = "name") -> str:
    _check_free_text(field, value, MAX_LENGTH["name"], NAME_PATTERN, "letters, spaces and - ' . ,")
    return value


def check_company(value: str, field: str = "company") -> str:
    _check_free_text(field, value, MAX_LENGTH["company"], COMPANY_PATTERN,
                     "letters, digits, spaces and - ' . , & ( ) / +")
    return value


@dataclass(frozen=True)
class SubjectIdentifiers:
    email: str | None = None
    phone: str | None = None
    personnummer: str | None = None
    name: str | None = None
    company: str | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any], reference_year: int) -> SubjectIdentifiers:
        """Validate what an operator typed; every problem is named, nothing is guessed.

        ``raw`` may be the whole form: a correction (``rectify_field``, ``new_value``) is checked
        by the rules of its field here too, so it fails before anything is read or written."""
        values = {k: _text(raw.get(k)) for k in ("email", "phone", "personnummer", "name", "company")}
        ids = cls(**values)
        if ids.email:
            check_email(ids.email)
        if ids.phone:
            check_phone(ids.phone)
        if ids.personnummer:
            check_personnummer(ids.personnummer, reference_year)
        if ids.name:
            check_name(ids.name)
        if ids.company:
            check_company(ids.company)
        _check_correction(_text(raw.get("rectify_field")), _text(raw.get("new_value")))
        if bool(ids.name) != bool(ids.company):
            _refuse("name" if ids.company else "company", "name_with_company",
                    "name and company identify a person only together: give both or neither")
        if not any((ids.email, ids.phone, ids.personnummer, ids.name)):
            _refuse("identifiers", "required",
                    "no identifier given: at least one of e-mail, phone, personnummer, or name with company")
        return ids

    def hashes(self, hasher: SubjectHasher, reference_year: int) -> list[str]:
        pairs = [("email", self.email), ("phone", self.phone), ("personnummer", self.personnummer)]
        if self.name and self.company:
            pairs.append(("name_company", f"{self.name}|{self.company}"))
        return [h for kind, value in pairs if value and (h := hasher.reference(kind, value, reference_year))]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value).strip() or None


def _check_correction(field: str | None, new_value: str | None) -> None:
    if field is None:
        if new_value is not None:
            _refuse("new_value", "rectify_field_required", "given without a field to correct (email or phone)")
        return
    if field not in RECTIFIABLE_FIELDS:
        _refuse("rectify_field", "one_of", f"not one of {', '.join(RECTIFIABLE_FIELDS)}")
    if new_value is not None:
        (check_email if field == "email" else check_phone)(new_value, field="new_value")


def validate_reference(reference: str) -> str:
    reference = (reference or "").strip()
    if not reference:
        _refuse("reference", "required", "required: 1-100 letters, digits or . _ / - (e.g. DSR-2026-0042)")
    _check_free_text("reference", reference, MAX_LENGTH["reference"], REFERENCE_PATTERN,
                     "letters, digits and . _ / -, starting with a letter or digit (e.g. DSR-2026-0042)")
    return reference


def validate_request_type(request_type: str) -> str:
    if request_type not in REQUEST_TYPES:
        _refuse("request_type", "one_of", f"not one of {', '.join(REQUEST_TYPES)}, name_review")
    return request_type


def register_request(engine: Engine, reference: str, request_type: str, received_on: date) -> dict[str, Any]:
    """Record the request (idempotent: a re-run of the same reference continues it)."""
    with engine.begin() as conn:
        row = conn.execute(select(subject_request).where(subject_request.c.reference == reference)).mappings().first()
        if row is not None:
            if row["request_type"] != request_type:
                _refuse("reference", "taken", f"already taken (request type {row['request_type']})")
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
