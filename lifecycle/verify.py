"""Independent verification of an erasure: the sources themselves are searched again.

The subject index planned the work, so it cannot also prove it was done: whatever it does not
know (another writing, another secret, a rescan window, a record reached by reference) would
be certified as gone. Here every catalogued identifier column is queried directly for the
person's normalised identifiers, and every free-text column is searched for every identifier
the request knows (e-mail, phone, personnummer) in any common writing: a cheap SQL pre-filter
on the database (lower-cased text, digits only), confirmed in Python by separator-tolerant
expressions. Records allowed to keep the person (held by law, forwarded to their controller)
are the only exceptions. The result says, per source, what was checked and what was found.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from sqlalchemy import Engine, Table, and_, func, literal_column, or_, select

from lifecycle.catalog import Source
from lifecycle.identifiers import normalise_email, normalise_personnummer, normalise_phone
from lifecycle.objects import MalformedObjectError, ObjectStore
from lifecycle.requests import SubjectIdentifiers
from lifecycle.sqlfiles import load_sql

CheckStatus = Literal["passed", "failed", "incomplete"]
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
    for store in stores.values():
        check = store.find(probe, allowed)
        if check.records_found or check.old_versions_left:
            check.status = "failed"
        elif check.objects_unreadable:
            check.status = "incomplete"
        checks.append(check)
    return checks


# -- SQL tables ---------------------------------------------------------------------------------


def _digits(engine: Engine, column: Any) -> Any:
    sql = load_sql("digits", engine.dialect.name).strip()
    return literal_column(sql.format(column=column.compile(engine).string)) if "{column}" in sql else column


def _conditions(engine: Engine, t: Table, source: Source, probe: Probe) -> tuple[list[Any], dict[str, list[str]]]:
    conditions: list[Any] = []
    checked: dict[str, list[str]] = {}
    columns = source.subject.columns()
    for kind, column in columns.items():
        c = t.c[column]
        if kind == "email" and probe.email:
            conditions.append(func.lower(func.trim(c)) == probe.email)
        elif kind == "phone" and probe.phone_national:
            conditions.append(_digits(engine, c).in_(probe.phone_digit_forms()))
        elif kind == "personnummer" and probe.personnummer:
            conditions.append(_digits(engine, c).in_(probe.personnummer_digit_forms()))
        elif kind == "name" and probe.name and probe.company and "company" in columns:
            conditions.append(and_(func.lower(func.trim(c)) == probe.name,
                                   func.lower(func.trim(t.c[columns["company"]])) == probe.company))
            checked.setdefault("name_company", []).append(f"{column}+{columns['company']}")
            continue
        else:
            continue
        checked.setdefault(kind, []).append(column)
    return conditions, checked


def _text_prefilter(engine: Engine, t: Table, source: Source, probe: Probe) -> list[Any]:
    """Cheap, wide conditions on the database; Python confirms each hit."""
    conditions = []
    for name in source.free_text_columns:
        c = t.c[name]
        if probe.email:
            conditions.append(func.lower(c).like(f"%{probe.email}%"))
        digits = _digits(engine, c)
        if probe.phone_national:
            conditions.append(digits.like(f"%{probe.phone_national}%"))
        if probe.personnummer:
            conditions.append(digits.like(f"%{probe.personnummer[2:]}%"))
    return conditions


def check_table(engine: Engine, source: Source, probe: Probe, allowed: set[tuple[str, str]]) -> SourceCheck:
    from lifecycle.stores.table import reflect

    t = reflect(engine, source.table or "")
    pk = t.c[source.primary_key]
    structured, checked = _conditions(engine, t, source, probe)
    check = SourceCheck(source.name, "table", identifier_columns=checked, free_text_columns=list(source.free_text_columns),
                        free_text_kinds=[k for k in ("email", "phone", "personnummer") if k in probe.text_patterns()]
                        if source.free_text_columns else [])
    found: set[str] = set()
    with engine.connect() as conn:
        if structured:
            found.update(str(k) for k in conn.execute(select(pk).where(or_(*structured))).scalars())
        prefilter = _text_prefilter(engine, t, source, probe)
        if prefilter:
            texts = [t.c[c] for c in source.free_text_columns]
            for row in conn.execute(select(pk, *texts).where(or_(*prefilter))):
                if any(probe.found_in_text(str(value)) for value in row[1:] if value):
                    found.add(str(row[0]))
    check.records_found = len({k for k in found if (source.name, k) not in allowed})
    return check


# -- object storage -----------------------------------------------------------------------------


def check_objects(store: ObjectStore, source: Source, probe: Probe, allowed: set[tuple[str, str]]) -> SourceCheck:
    """Every object under the source's prefix is read (a bucket has no query to ask), and so is
    every older version still kept: an old version of a rewritten object holds what was erased."""
    from lifecycle.object_scan import read_records  # object_scan imports the scan machinery
    from lifecycle.objects import decode_records, object_format

    assert source.storage is not None
    bucket = source.storage.bucket
    check = SourceCheck(source.name, "objects", free_text_columns=list(source.free_text_columns),
                        free_text_kinds=[k for k in ("email", "phone", "personnummer") if k in probe.text_patterns()]
                        if source.free_text_columns else [])
    columns = source.subject.columns()
    check.identifier_columns = {k: [c] for k, c in columns.items() if k in ("email", "phone", "personnummer")}
    allowed_pks = {key for s, key in allowed if s == source.name}
    for info in store.list(bucket, source.storage.prefix):
        if object_format(info.key, source.storage.format) is None:
            continue  # another format: reported by the scan as untagged data, not read
        try:
            read = read_records(store, source, info.key)
        except MalformedObjectError:
            check.objects_unreadable += 1  # cannot vouch for what cannot be read
            continue
        if read is None:
            continue
        check.objects_read += 1
        check.records_found += sum(1 for record in read[1]
                                   if _record_holds(record, source, columns, probe) and not _allowed(record, source, allowed_pks))
    for key, version_id in _older_versions(store, bucket, source.storage.prefix):
        if object_format(key, source.storage.format) is None:
            continue
        body = store.client.get_object(Bucket=bucket, Key=key, VersionId=version_id)["Body"].read()
        try:
            records, _ = decode_records(source.storage.format, key, body)
        except MalformedObjectError:
            check.objects_unreadable += 1
            continue
        if any(_record_holds(r, source, columns, probe) and not _allowed(r, source, allowed_pks) for r in records):
            check.old_versions_left += 1
    return check


def _older_versions(store: ObjectStore, bucket: str, prefix: str) -> list[tuple[str, str]]:
    """(key, version id) of every kept version that is not an object's current one."""
    older = []
    for page in store.client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        older += [(v["Key"], v["VersionId"]) for v in page.get("Versions", [])
                  if not v.get("IsLatest") and v.get("VersionId") not in (None, "null")]
    return older


def _allowed(record: dict[str, Any], source: Source, allowed_pks: set[str]) -> bool:
    pk = str(record.get(source.primary_key))
    return any(key.endswith(f"/{pk}") for key in allowed_pks)


def _record_holds(record: dict[str, Any], source: Source, columns: dict[str, str], probe: Probe) -> bool:
    for kind, column in columns.items():
        value = record.get(column)
        if value in (None, ""):
            continue
        text = str(value)
        if kind == "email" and probe.email and normalise_email(text) == probe.email:
            return True
        if kind == "phone" and probe.phone_national and normalise_phone(text) == f"+46{probe.phone_national}":
            return True
        if kind == "personnummer" and probe.personnummer and \
                "".join(ch for ch in text if ch.isdigit()) in probe.personnummer_digit_forms():
            return True
    return any(probe.found_in_text(str(record.get(c) or "")) for c in source.free_text_columns)


def summarise(checks: Iterable[SourceCheck]) -> dict[str, int]:
    """Per source, the records (and old versions) still holding the person: empty when verified."""
    return {c.source: c.records_found + c.old_versions_left for c in checks if c.records_found or c.old_versions_left}

