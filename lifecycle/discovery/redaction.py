"""A person's identifiers in free text, found by keyed hash and redacted span by span.

Used by erasure requests (with the identifiers the request was given) and by the nightly run
(with the suppression list's keyed hashes only): the text around the identifiers stays.

A request also knows the person's identifiers themselves, so it can search for *them* in any
writing, beyond what the detector recognises as an identifier: their digits with any separators
between any two of them, the e-mail's parts with any of the obfuscations of '@' and '.'
(``person_patterns``), in the text as a person reads it (full-width forms, invisible characters,
look-alike letters and HTML entities undone: ``lifecycle.discovery.detect.unicode_view``).
Verification, erasure and the access extract share these patterns.
"""

from __future__ import annotations

import re
from functools import lru_cache

from lifecycle.discovery.detect import REDACTED, Finding, find_identifiers, redact, unicode_view
from lifecycle.discovery.identifiers import SubjectHasher

# Detector kinds to subject-index kinds; URLs identify a site, not a person.
FREE_TEXT_KINDS = {
    "email": "email", "phone": "phone", "personnummer": "personnummer", "samordningsnummer": "personnummer",
    "org_number": "org_number", "ipv4": "ip", "ipv6": "ip",
}

# Between two digits of a number: up to four of anything but letters, digits and '@' (blanks,
# line breaks, - – . / ( ) +, what a PDF or a form puts there).
DIGIT_GAP = r"[^\w@]{0,4}"
_AT = r"(?:\s*@\s*|\s*[(\[{<]\s*(?:at|@|snabel-?a)\s*[)\]}>]\s*|\s+(?:at|snabel-?a)\s+)"
_DOT = r"(?:\s*\.\s*|\s*[(\[{<]\s*(?:dot|punkt)\s*[)\]}>]\s*|\s+(?:dot|punkt)\s+)"

Span = tuple[str, int, int]  # (kind, start, end) in the original text


def _digits(digits: str) -> str:
    return DIGIT_GAP.join(digits)


@lru_cache(maxsize=64)
def person_patterns(email: str | None, phone_national: str | None,
                    personnummer: str | None) -> dict[str, re.Pattern[str]]:
    """One expression per identifier the request knows, matching every writing of it and never
    inside a longer number or address. ``email`` lower-case, ``phone_national`` the digits
    after the country code or trunk zero (705551234), ``personnummer`` 12 digits."""
    patterns: dict[str, re.Pattern[str]] = {}
    if email and "@" in email:
        local, _, domain = email.rpartition("@")
        written = _DOT.join(map(re.escape, local.split("."))) + _AT + _DOT.join(map(re.escape, domain.split(".")))
        patterns["email"] = re.compile(rf"(?<![\w.%+\-]){written}(?![\w\-]|\.\w)", re.IGNORECASE)
    if phone_national:
        prefix = rf"(?:(?:(?:\+|00){DIGIT_GAP})?46{DIGIT_GAP}(?:0{DIGIT_GAP})?|0{DIGIT_GAP})"
        patterns["phone"] = re.compile(rf"(?<![\d+]){prefix}{_digits(phone_national)}(?![ \t\u00a0]?\d)")
    if personnummer:
        p = personnummer
        patterns["personnummer"] = re.compile(
            rf"(?<!\d)(?:{_digits(p[:2])}{DIGIT_GAP})?{_digits(p[2:8])}{DIGIT_GAP}{_digits(p[8:])}(?!\d)")
    return patterns


def person_spans(text: str, patterns: dict[str, re.Pattern[str]]) -> list[Span]:
    """Where ``patterns`` (``person_patterns``) match ``text`` as a person reads it, as spans
    of ``text`` itself."""
    view = unicode_view(text)
    target = view.text if view else text
    spans: list[Span] = []
    for kind, pattern in patterns.items():
        for m in pattern.finditer(target):
            start, end = m.span()
            spans.append((kind, *view.span(start, end)) if view else (kind, start, end))
    return spans


def person_in_text(text: str, patterns: dict[str, re.Pattern[str]]) -> list[str]:
    """The kinds of ``patterns`` found anywhere in ``text``, in any writing."""
    view = unicode_view(text)
    target = view.text if view else text
    return [kind for kind, pattern in patterns.items() if pattern.search(target)]


def name_pattern(name: str) -> re.Pattern[str] | None:
    """A person's full name as written in running text: its words in order, any blanks or a
    line break between them, any case, never inside a longer word. None for a name of fewer
    than two characters (it would match everywhere)."""
    words = name.split()
    if not words or len("".join(words)) < 2:
        return None
    return re.compile(r"(?<!\w)" + r"[\s\u00a0]+".join(map(re.escape, words)) + r"(?!\w)", re.IGNORECASE)


def name_spans(text: str, pattern: re.Pattern[str]) -> list[Span]:
    """Where ``pattern`` (``name_pattern``) matches ``text`` as a person reads it."""
    return person_spans(text, {"name": pattern})


def name_search_term(name: str) -> str:
    """The longest word of ``name``: what a database pre-filter looks for before Python
    confirms the whole name."""
    return max(name.split(), key=len)


def mentions(text: str, hashes: set[str], hasher: SubjectHasher, year: int,
             findings: list[Finding] | None = None) -> list[Finding]:
    """The identifiers in ``text`` whose keyed hash is one of ``hashes`` (of ``findings``, when
    the caller has already run the detectors on ``text``)."""
    found = find_identifiers(text, reference_year=year) if findings is None else findings
    return [x for x in found
            if FREE_TEXT_KINDS.get(x.kind) and hasher.hash(FREE_TEXT_KINDS[x.kind], x.normalised) in hashes]


def _merged(findings: list[Finding]) -> list[Finding]:
    """Overlapping spans joined, so a wider writing found one way is cut whole."""
    out: list[Finding] = []
    for f in sorted(findings, key=lambda f: f.start):
        if out and f.start < out[-1].end:
            out[-1] = out[-1]._replace(end=max(out[-1].end, f.end))
        else:
            out.append(f)
    return out


def redact_text(text: str, hashes: set[str], hasher: SubjectHasher, year: int,
                patterns: dict[str, re.Pattern[str]] | None = None) -> str:
    """``text`` with the identifiers of ``hashes`` replaced, and, when given, every writing of
    ``patterns`` (``person_patterns``: a request that knows the identifiers; or ``name_pattern``,
    once a person reviewed the mention). A name is never redacted without that review: it is
    not unique to the person."""
    found = mentions(text, hashes, hasher, year)
    if patterns:
        found += [Finding(kind, start, end, "") for kind, start, end in person_spans(text, patterns)]  # type: ignore[arg-type]
    return redact(text, _merged(found), REDACTED)
