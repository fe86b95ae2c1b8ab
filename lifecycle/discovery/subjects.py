"""The subject index: from a person's identifiers to every record and field that holds them."""

from __future__ import annotations

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


def label_persons(refs: list[dict[str, Any]], source: str, record_key: str) -> list[dict[str, Any]]:
    """Set ``person`` on one record's index entries: who each entry is about, stored with it so
    that counting persons (breach scoping) is one aggregate instead of a per-record window.

    - a structured entry belongs to the record's own person: its first identifier of
      PERSON_KINDS (``kind:hash``; the smallest hash of that kind); a record with a name alone
      is a person of its own (``record:source/key``); otherwise nobody (``""``);
    - a free-text entry is the person it names, ``kind:hash`` for those kinds, else ``""``.
    """
    own = ""
    for kind in PERSON_KINDS:
        hashes = [r["subject_hash"] for r in refs if not r["free_text"] and r["kind"] == kind]
        if hashes:
            own = f"{kind}:{min(hashes)}"
            break
    else:
        if any(not r["free_text"] and r["kind"] == "name" for r in refs):
            own = f"record:{source}/{record_key}"
    for r in refs:
        if r["free_text"]:
            r["person"] = f"{r['kind']}:{r['subject_hash']}" if r["kind"] in PERSON_KINDS else ""
        else:
            r["person"] = own
    return refs
