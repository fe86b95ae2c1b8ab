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
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal


from lifecycle.config import Source
from lifecycle.discovery import (
    INVISIBLE,
    LOOK_ALIKES,
    normalise_email,
    normalise_personnummer,
    normalise_phone,
    name_pattern,
    name_search_term,
    name_spans,
    person_in_text,
    person_patterns,
)
from lifecycle.rights.requests import SubjectIdentifiers

CheckStatus = Literal["passed", "failed", "incomplete"]
SEARCH_WORKERS = 4
# Characters a person does not see or reads as others (lifecycle.discovery.detect) that the
# SQL form of a number without separators (include/sql/<dialect>/digits.sql) keeps: a row
# holding one is handed to Python by the SQL pre-filter whatever else it holds.
_DISGUISES = (*sorted(INVISIBLE), *(chr(c) for c in range(0x2000, 0x200B)), "\u2012", "\u2024", "\u205f",
              "\u3000", "\ufe63", "&#")
_FULL_WIDTH_DIGITS = tuple(chr(0xFF10 + d) for d in range(10))


@dataclass(frozen=True)
class Probe:
    """What the request knows of the person, normalised; held in memory only."""

    email: str | None = None
    phone_national: str | None = None  # digits after the country code / trunk zero: 705551234
    personnummer: str | None = None  # 12 digits
    name: str | None = None
    company: str | None = None
    # Full names searched in others' free text to be listed for review, never redacted unreviewed.
    mention_names: tuple[str, ...] = ()

    @classmethod
    def of(cls, ids: SubjectIdentifiers, year: int) -> Probe:
        phone = normalise_phone(ids.phone) if ids.phone else None
        return cls(
            email=normalise_email(ids.email) if ids.email else None,
            phone_national=phone[3:] if phone and phone.startswith("+46") else None,
            personnummer=normalise_personnummer(ids.personnummer, year) if ids.personnummer else None,
            name=ids.name.strip().casefold() if ids.name else None,
            company=ids.company.strip().casefold() if ids.company else None,
            mention_names=(" ".join(ids.name.split()).casefold(),) if ids.name and len(ids.name.split()) > 1 else (),
        )

    def with_names(self, names: Iterable[str]) -> Probe:
        """The probe with more full names (read from the person's own records) to list."""
        full = {" ".join(n.split()).casefold() for n in names if n and len(n.split()) > 1}
        return replace(self, mention_names=tuple(sorted(set(self.mention_names) | full)))

    # -- the forms a column or a text may hold ---------------------------------------------

    def phone_digit_forms(self) -> list[str]:
        n = self.phone_national
        return [f"0{n}", f"46{n}", f"0046{n}", f"460{n}", n] if n else []

    def personnummer_digit_forms(self) -> list[str]:
        p = self.personnummer
        return [p, p[2:]] if p else []

    def text_patterns(self) -> dict[str, re.Pattern[str]]:
        """One expression per kind, matching every writing of the identifier (any separators
        between digits, the e-mail's parts with any obfuscation of '@' and '.'), never inside a
        longer number or address; searched in the text as a person reads it (found_in_text)."""
        return person_patterns(self.email, self.phone_national, self.personnummer)

    def found_in_text(self, text: str) -> list[str]:
        return person_in_text(text, self.text_patterns())

    def name_patterns(self) -> dict[str, re.Pattern[str]]:
        """{name: expression} of each full name to look for in free text."""
        return {n: p for n in self.mention_names if (p := name_pattern(n)) is not None}

    def names_in_text(self, text: str) -> list[str]:
        """The full names (casefolded) written in ``text``, as a person reads it."""
        return [n for n, p in self.name_patterns().items() if name_spans(text, p)]

    def name_like_terms(self) -> list[str]:
        """``%word%`` terms (the longest word of each name, in the cases SQLite's ASCII-only
        lower() may leave) for a database pre-filter; Python confirms the whole name."""
        words = {name_search_term(n) for n in self.name_patterns()}
        return sorted({f"%{w}%" for word in words for w in (word, word.capitalize(), word.upper())})

    def text_like_terms(self) -> list[str]:
        """LIKE terms on a free-text column (lower-cased) of which every writing of the e-mail
        satisfies at least one: a part of its local part (obfuscations leave those whole), the
        full-width form of one, a look-alike letter, '＠'; and, with a number, full-width digits;
        and characters that disguise any identifier. The digits of a number with any common
        separators are matched apart (digits.sql). Python confirms each row (found_in_text)."""
        terms: set[str] = set()
        if self.email:
            local = self.email.rpartition("@")[0]
            parts = [p for p in local.split(".") if len(p) >= 3] or [max(local.split("."), key=len) or local]
            terms |= {f"%{p}%" for p in parts}
            terms |= {f"%{_full_width(p)}%" for p in parts} | {f"%{_full_width(p.upper())}%" for p in parts}
            terms |= {f"%{ch}%" for letter in set(local) for ch in LOOK_ALIKES.get(letter, "")}
            terms |= {"%\uff20%", "%\ufe6b%", "%&commat;%"}
        if self.phone_national or self.personnummer:
            terms |= {f"%{d}%" for d in _FULL_WIDTH_DIGITS}
        if terms:
            terms |= {f"%{ch}%" for ch in _DISGUISES}
        return sorted(terms | {t.lower() for t in terms})  # whether the database lower-cases them or not


def _full_width(text: str) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


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
    # Keys of the records holding the person outside what may stay (for the access extract).
    found_keys: list[str] = field(default_factory=list)
    # (record key, full name) of other people's records whose free text names the person: listed
    # for review, not a failure. In memory only: to_dict counts them.
    name_mentions: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Counts only: which records is the work of the request and review ledgers."""
        out = asdict(self)
        del out["found_keys"]
        out["name_mentions"] = len(self.name_mentions)
        return out


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


def record_names(record: dict[str, Any], source: Source, probe: Probe) -> list[str]:
    """The probe's full names (casefolded) a free-text column of the record writes."""
    if not probe.mention_names:
        return []
    return sorted({n for c in source.free_text_columns if record.get(c) for n in probe.names_in_text(str(record[c]))})


def allowed_record(record: dict[str, Any], source: Source, allowed_keys: set[str]) -> bool:
    """Whether a record inside a container (object, file) is one the request may leave: record
    keys there end in '/<primary key>'."""
    pk = str(record.get(source.primary_key))
    return any(key.endswith(f"/{pk}") for key in allowed_keys)


def summarise(checks: Iterable[SourceCheck]) -> dict[str, int]:
    """Per source, the records (and old versions) still holding the person: empty when verified."""
    return {c.source: c.records_found + c.old_versions_left for c in checks if c.records_found or c.old_versions_left}

