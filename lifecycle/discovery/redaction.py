"""A person's identifiers in free text, found by keyed hash and redacted span by span.

Used by erasure requests (with the identifiers the request was given) and by the nightly run
(with the suppression list's keyed hashes only): the text around the identifiers stays.
"""

from __future__ import annotations

from lifecycle.discovery.detect import REDACTED, Finding, find_identifiers, redact
from lifecycle.discovery.identifiers import SubjectHasher

# Detector kinds to subject-index kinds; URLs identify a site, not a person.
FREE_TEXT_KINDS = {
    "email": "email", "phone": "phone", "personnummer": "personnummer", "samordningsnummer": "personnummer",
    "org_number": "org_number", "ipv4": "ip", "ipv6": "ip",
}


def mentions(text: str, hashes: set[str], hasher: SubjectHasher, year: int) -> list[Finding]:
    """The identifiers in ``text`` whose keyed hash is one of ``hashes``."""
    return [x for x in find_identifiers(text, reference_year=year)
            if FREE_TEXT_KINDS.get(x.kind) and hasher.hash(FREE_TEXT_KINDS[x.kind], x.normalised) in hashes]


def redact_text(text: str, hashes: set[str], hasher: SubjectHasher, year: int, name: str | None = None) -> str:
    """``text`` with the identifiers of ``hashes`` (and ``name``, when given) replaced."""
    new = redact(text, mentions(text, hashes, hasher, year), REDACTED)
    if name and name in new:
        new = new.replace(name, REDACTED)
    return new
