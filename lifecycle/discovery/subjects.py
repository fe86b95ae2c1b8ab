"""The subject index: from a person's identifiers to every record and field that holds them."""

from __future__ import annotations

from dataclasses import dataclass

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
