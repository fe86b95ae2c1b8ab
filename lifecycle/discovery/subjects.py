"""The subject index: from a person's identifiers to every record and field that holds them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, bindparam

from lifecycle.discovery.identifiers import SubjectHasher
from lifecycle.tagstore import statement


@dataclass(frozen=True)
class Location:
    source: str
    record_key: str
    field: str
    kind: str
    category: str
    free_text: bool


def subject_hashes(hasher: SubjectHasher, identifiers: dict[str, str], reference_year: int) -> list[str]:
    """Keyed hashes of the given identifiers (email, phone, personnummer, org_number, and
    name with company as ``name_company`` = "name|company")."""
    hashes = []
    for kind, value in identifiers.items():
        ref = hasher.reference(kind, value, reference_year)
        if ref:
            hashes.append(ref)
    return hashes


def locate(tag_engine: Engine, hashes: list[str]) -> list[Location]:
    if not hashes:
        return []
    stmt = statement(tag_engine, "subject_locations").bindparams(bindparam("hashes", expanding=True))
    with tag_engine.connect() as conn:
        return [Location(r.source, r.record_key, r.field, r.kind, r.category, bool(r.free_text)) for r in conn.execute(stmt, {"hashes": hashes})]


# The identifiers a person is known by, in the order a record's person is named after them:
# e-mail first, the identifier most sources share, so one person's records agree on it.
PERSON_KINDS = ("email", "personnummer", "phone", "name_company")
_PERSON_RANK = {kind: rank for rank, kind in enumerate(PERSON_KINDS)}


def own_person(structured: Iterable[tuple[str, str]], source: str, record_key: str) -> str:
    """Who a record is about, from its structured entries' (kind, hash): its first identifier
    of PERSON_KINDS (``kind:hash``; the smallest hash of that kind); a record with a name alone
    is a person of its own (``record:source/key``); otherwise nobody (``""``)."""
    entries = list(structured)
    ranked = [(_PERSON_RANK[kind], subject_hash) for kind, subject_hash in entries if kind in _PERSON_RANK]
    if ranked:
        rank, subject_hash = min(ranked)
        return f"{PERSON_KINDS[rank]}:{subject_hash}"
    if any(kind == "name" for kind, _ in entries):
        return f"record:{source}/{record_key}"
    return ""


def mentioned_person(kind: str, subject_hash: str) -> str:
    """Who a free-text entry is about: the person it names, for the kinds that name one."""
    return f"{kind}:{subject_hash}" if kind in _PERSON_RANK else ""


def label_persons(refs: list[dict[str, Any]], source: str, record_key: str) -> list[dict[str, Any]]:
    """Set ``person`` on one record's index entries (dicts): who each entry is about, stored
    with it so that counting persons (breach scoping) is one aggregate instead of a per-record
    window. A structured entry belongs to the record's own person (``own_person``), a
    free-text entry to the person it names (``mentioned_person``)."""
    own = own_person(((r["kind"], r["subject_hash"]) for r in refs if not r["free_text"]), source, record_key)
    for r in refs:
        r["person"] = mentioned_person(r["kind"], r["subject_hash"]) if r["free_text"] else own
    return refs
