"""Independent verification of an erasure: the sources themselves are searched again.

The subject index planned the work, so it cannot also prove it was done: whatever it does not
know (another writing, another secret, a rescan window, a record reached by reference) would
be certified as gone. Here every catalogued identifier column is queried directly for the
person's normalised identifiers, and every free-text column is searched for every identifier
the request knows (e-mail, phone, personnummer) in any common writing. Each kind of store does
the search its own way (``RecordStore.find``: a set-based SQL pre-filter confirmed in Python for
tables, every object and old version read for buckets); this module holds what they share: the
person's normalised forms (``Probe``), the separator-tolerant expressions, and the per-source
result (``SourceCheck``). Records allowed to keep the person (held by law, forwarded to their
controller) are the only exceptions.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal


from lifecycle.config import Source
from lifecycle.discovery import normalise_email, normalise_personnummer, normalise_phone
from lifecycle.rights.requests import SubjectIdentifiers

CheckStatus = Literal["passed", "failed", "incomplete"]
SEARCH_WORKERS = 4
_SEP = r"[\s\-./()\u00a0\u2013]{0,3}"


@dataclass(frozen=True)
class Probe:
    """What the request knows of the person, normalised; held in memory only."""

    email: str | None = None
    phone_national: str | None = None  # digits after the country code / trunk zero: 705551234
    personnummer: str | None = None  # 12 digits
    name: str | None = None
    company: str | None = None

    @classmethod
    def of(cls, ids: SubjectIdentifiers, year: int) -> Probe:
        phone = normalise_phone(ids.phone) if ids.phone else None
        return cls(
            email=normalise_email(ids.email) if ids.email else None,
            phone_national=phone[3:] if phone and phone.startswith("+46") else None,
            personnummer=normalise_personnummer(ids.personnummer, year) if ids.personnummer else None,
            name=ids.name.strip().casefold() if ids.name else None,
            company=ids.company.strip().casefold() if ids.company else None,
        )

    # -- the forms a column or a text may hold ---------------------------------------------

    def phone_digit_forms(self) -> list[str]:
        n = self.phone_national
        return [f"0{n}", f"46{n}", f"0046{n}", f"460{n}", n] if n else []

    def personnummer_digit_forms(self) -> list[str]:
        p = self.personnummer
        return [p, p[2:]] if p else []

    def text_patterns(self) -> dict[str, re.Pattern[str]]:
        """Separator-tolerant expressions, one per kind, never matching inside a longer number
        or address."""
        patterns: dict[str, re.Pattern[str]] = {}
        if self.email:
            patterns["email"] = re.compile(
                r"(?<![A-Za-z0-9._%+\-])" + re.escape(self.email) + r"(?![A-Za-z0-9\-]|\.[A-Za-z0-9])", re.IGNORECASE)
        if self.phone_national:
            prefix = r"(?:(?:\+|00)?\s*46\s*(?:\(0\))?[\s\-./]*|0\s*)"
            patterns["phone"] = re.compile(r"(?<![\d+])" + prefix + _spaced(self.phone_national) + r"(?!\s?\d)")
        if self.personnummer:
            p = self.personnummer
            century = _spaced(p[:2])
            patterns["personnummer"] = re.compile(
                r"(?<!\d)(?:" + century + _SEP + r")?" + _spaced(p[2:8]) + r"[\s\-+./\u2013]{0,3}" + _spaced(p[8:]) + r"(?!\d)")
        return patterns

    def found_in_text(self, text: str) -> list[str]:
        return [kind for kind, pattern in self.text_patterns().items() if pattern.search(text)]


def _spaced(digits: str) -> str:
    return _SEP.join(digits)


@dataclass
class SourceCheck:
    """What was checked in one source and what was found there (counts, never values)."""

    source: str
    store: str  # table | objects
    identifier_columns: dict[str, list[str]] = field(default_factory=dict)  # kind -> columns queried
    free_text_columns: list[str] = field(default_factory=list)
    free_text_kinds: list[str] = field(default_factory=list)
    records_found: int = 0  # records holding the person outside what may stay
    objects_read: int = 0
    objects_unreadable: int = 0
    old_versions_left: int = 0
    status: CheckStatus = "passed"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def verify_in_sources(stores: dict[str, Any], probe: Probe, allowed: set[tuple[str, str]]) -> list[SourceCheck]:
    """Search every source's store for the person. ``allowed``: (source, record key) pairs that
    may keep the person (held by law, forwarded to their controller)."""
    checks = []
    # Each store's search is a scan the database (or the object store) does: run them side by side.
    with ThreadPoolExecutor(max_workers=SEARCH_WORKERS) as pool:
        found = list(pool.map(lambda store: store.find(probe, allowed), stores.values()))
    for check in found:
        if check.records_found or check.old_versions_left:
            check.status = "failed"
        elif check.objects_unreadable:
            check.status = "incomplete"
        checks.append(check)
    return checks


def record_holds(record: dict[str, Any], source: Source, probe: Probe) -> bool:
    """Does the record hold the person: a catalogued identifier column equal to one of the
    person's normalised identifiers (as the table store compares them in SQL), or one of them
    written anywhere in a free-text column?"""
    columns = source.subject.columns()
    for kind, column in columns.items():
        value = record.get(column)
        if value in (None, ""):
            continue
        text = str(value)
        if kind == "email" and probe.email and normalise_email(text) == probe.email:
            return True
        if kind == "phone" and probe.phone_national and "".join(ch for ch in text if ch.isdigit()) in probe.phone_digit_forms():
            return True
        if kind == "personnummer" and probe.personnummer and "".join(ch for ch in text if ch.isdigit()) in probe.personnummer_digit_forms():
            return True
        if kind == "name" and probe.name and probe.company and "company" in columns and \
                text.strip().casefold() == probe.name and \
                str(record.get(columns["company"]) or "").strip().casefold() == probe.company:
            return True
    return any(probe.found_in_text(str(record.get(c) or "")) for c in source.free_text_columns if record.get(c))


def allowed_record(record: dict[str, Any], source: Source, allowed_keys: set[str]) -> bool:
    """Whether a record inside a container (object, file) is one the request may leave: record
    keys there end in '/<primary key>'."""
    pk = str(record.get(source.primary_key))
    return any(key.endswith(f"/{pk}") for key in allowed_keys)


def summarise(checks: Iterable[SourceCheck]) -> dict[str, int]:
    """Per source, the records (and old versions) still holding the person: empty when verified."""
    return {c.source: c.records_found + c.old_versions_left for c in checks if c.records_found or c.old_versions_left}

