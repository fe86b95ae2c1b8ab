"""Personal identifiers in free text: e-mail, Swedish phone numbers, personnummer and
samordningsnummer, organisationsnummer, IPv4/IPv6 addresses and URLs.

One compiled expression per kind finds candidates, each kind behind a cheap pre-check (no '@':
no e-mail pass); every candidate is then validated in Python (Luhn check digit, a real date,
octet ranges, the Swedish numbering plan), so look-alikes such as order numbers, dates, prices
and numbers with a wrong check digit do not match. Kinds are searched independently and
overlaps settled afterwards by precedence (email > url > ipv6 > ipv4 > personnummer and
samordningsnummer > org_number > phone), so a rejected candidate of one kind never hides a
valid one of another.

Names: a free name cannot be told from an ordinary word reliably (Swedish surnames are also
words: Berg, Lind, Strand), so names are found only where a reliable signal exists: a name the
same record already holds in a structured column (see lifecycle.discovery.scan).
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import chain
from typing import Literal

VERSION = "2"  # bump when detection changes: scans then rescan every free-text source in full

Kind = Literal["email", "phone", "personnummer", "samordningsnummer", "org_number", "ipv4", "ipv6", "url"]


@dataclass(frozen=True, slots=True)
class Finding:
    kind: Kind
    start: int
    end: int
    normalised: str


Candidate = tuple[Kind, int, int, str]

# Where spans overlap, the lower number wins.
_PRECEDENCE: dict[str, int] = {
    "email": 0, "url": 1, "ipv6": 2, "ipv4": 3, "personnummer": 4, "samordningsnummer": 4, "org_number": 5, "phone": 6,
}

# Speed: a pattern that starts with a literal character lets the regex engine jump straight to
# its occurrences, and a class such as [0-9] still lets it skip quickly; a leading lookbehind
# would be tried at every position. So the check on the preceding character is a lookbehind
# placed after the first character, or done in Python on the few candidates.
_LOCAL_REVERSED = re.compile(r"[\w.%+-]{1,64}")
_DOMAIN = re.compile(r"[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}(?![\w-])")
_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"'`{}|\\^\[\]]+", re.IGNORECASE)
_IPV6 = re.compile(r"[0-9A-Fa-f:](?<![\w.][0-9A-Fa-f:])[0-9A-Fa-f:]{1,38}"
                   r"(?:(?<=:)[0-9]{1,3}(?:\.[0-9]{1,3}){3})?(?![\w:]|\.[0-9])")
_IPV4_HINT = re.compile(r"\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]")
_IPV4 = re.compile(r"[0-9](?<![\w.][0-9])[0-9]{0,2}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(?!\w|\.[0-9])")
# 12 digits only with a century (19, 20) or the organisation prefix 16; else 10 digits.
_IDNUM = re.compile(r"[0-9](?<![\w+.,][0-9])(?:[0-9]{7}(?<=(?:16|19|20)[0-9]{6})|[0-9]{5})[-+\u2013]?[0-9]{4}"
                    r"(?![\w+]|[-.,:][0-9])")
_SEPARATORS = " -\u2013\u00a0"  # space, hyphen, en dash (word processors), no-break space
_SEP = "[ \\-\u2013\u00a0]"
_RUN_END = rf"(?!{_SEP}?[0-9]|\w)"  # the whole run of digit groups is the number, no more
_PHONE = re.compile(  # 070-123 45 67, 0046 70 123 45 67, 0046 (0)8-123 456 78
    rf"0(?:046{_SEP}?(?:\(0\){_SEP}?|0{_SEP}?)?)?[1-9](?:{_SEP}?[0-9]){{5,10}}{_RUN_END}")
_PHONE_MARKED = re.compile(  # +46 (0)70-123 45 67, +46 8 123 456 78, (08) 123 45 67
    rf"(?:\+46{_SEP}?(?:\(0\){_SEP}?|0{_SEP}?)?[1-9](?:{_SEP}?[0-9]){{5,10}}"
    rf"|\(0[1-9][0-9]{{0,2}}\){_SEP}?[1-9](?:{_SEP}?[0-9]){{4,7}}){_RUN_END}")

_NON_DIGITS = re.compile(r"[^0-9]")
_DIGIT_GROUPS = re.compile(r"[0-9]+")
# A number labelled as something else is not a phone number: "ordernr 0851234567", "konto 012 345 678-9".
_OTHER_NUMBERS = frozenset({
    "order", "faktura", "ärende", "referens", "ref", "ocr", "konto", "clearing", "artikel", "art", "avi",
    "bankgiro", "plusgiro", "bg", "pg", "iban", "id",
})
_OTHER_NUMBERS_WITH_NR = _OTHER_NUMBERS | {"kund", "medlems", "lgh", "serie", "kort"}  # "kund 070-..." is a phone
_NUMBER_WORDS = ("nummer", "nr", "no")
# Said just before the number, with no other number in between.
_PERSON_LABEL = re.compile(r"\b(?:personn|person nr|pers\.?\s?nr|p-?nr|födelse|född|samordn)[^0-9]{0,25}$",
                           re.IGNORECASE)
_VERSION_LABEL = re.compile(r"\b(?:version|ver|v|build|release)\.?\s*$", re.IGNORECASE)
_DATE_LIKE = re.compile(r"0[0-9]-[01][0-9]-(?:19|20)[0-9]{2}")  # 08-12-2024 is a day, not Stockholm
_TIME_RANGE = re.compile(r"0[0-9][0-5][0-9][-\u2013][0-2][0-9][0-5][0-9]")  # opening hours 0830-1700
_MOBILE_SECOND_DIGIT = "02369"  # 070 072 073 076 079; 071 (M2M), 074, 075, 077, 078 are not personal
_ORG_GROUPS = "12356789"  # an organisationsnummer's first digit is its legal-form group; 0 and 4 unused


# -- validators ----------------------------------------------------------------------------


_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)  # Luhn: a digit doubled, its digits summed


def _luhn_ok(ten: str) -> bool:
    """Luhn over 10 digits, every other one doubled from the first (unrolled: a hot path)."""
    d = ten.encode()  # ASCII codes, 48 is "0"
    doubled = _DOUBLED[d[0] - 48] + _DOUBLED[d[2] - 48] + _DOUBLED[d[4] - 48] + _DOUBLED[d[6] - 48] \
        + _DOUBLED[d[8] - 48]
    return (doubled + d[1] + d[3] + d[5] + d[7] + d[9] - 5 * 48) % 10 == 0


def _valid_date(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _birth_year(century: str, yy: str, separator: str, reference_year: int) -> int:
    """The century as written (12 digits) or inferred: the latest year not after
    ``reference_year``, a hundred years earlier when written with '+' (aged 100 or more)."""
    if century:
        return int(century + yy)
    year = reference_year // 100 * 100 + int(yy)
    if year > reference_year:
        year -= 100
    return year - 100 if separator == "+" else year


def parse_identity_number(raw: str, reference_year: int) -> tuple[Kind, str] | None:
    """A personnummer, samordningsnummer or organisationsnummer, validated; else None.

    ``raw`` is 10 or 12 digits with an optional '-' (or en dash) or '+' before the last four."""
    separator = raw[-5] if len(raw) > 5 and raw[-5] in "-+\u2013" else ""
    digits = raw[:-5] + raw[-4:] if separator else raw
    if len(digits) not in (10, 12) or not (digits.isascii() and digits.isdigit()):
        return None
    prefix, ten = digits[:-10], digits[-10:]
    if not _luhn_ok(ten):
        return None
    if ten[2] >= "2":  # "month" 20-99: a legal person, never a natural one
        return ("org_number", ten) if prefix in ("", "16") and ten[0] in _ORG_GROUPS else None
    if prefix not in ("", "19", "20"):
        return None
    month, day = int(ten[2:4]), int(ten[4:6])
    kind: Kind = "personnummer"
    if day > 60:
        kind, day = "samordningsnummer", day - 60
    year = _birth_year(prefix, ten[:2], separator, reference_year)
    if year > reference_year or not _valid_date(year, month, day):
        return None
    return kind, f"{year:04d}{ten[2:]}"


def _numbering_plan(national: str) -> str | None:
    """E.164 of a national significant number (no trunk zero) that fits the Swedish plan:
    mobile 7[02369] + 7 digits; otherwise an area code and subscriber number, 7-9 digits."""
    if not national or national[0] == "0":
        return None
    if national[0] == "7":
        ok = len(national) == 9 and national[1] in _MOBILE_SECOND_DIGIT
    else:
        ok = 7 <= len(national) <= 9
    return "+46" + national if ok else None


def parse_swedish_phone(raw: str) -> str | None:
    """Lenient, for one value typed on its own (a form field): E.164 or None."""
    raw = raw.strip()
    digits = _NON_DIGITS.sub("", raw)
    if raw.startswith("+"):
        national = digits[2:] if digits.startswith("46") else ""
    elif digits.startswith("0046"):
        national = digits[4:]
    else:
        national = digits if digits.startswith("0") else ""
    return _numbering_plan(national.removeprefix("0"))  # +46 (0)70 writes the trunk zero too


def _phone_groups(raw: str) -> list[str]:
    """The digit groups after the country code or trunk zero, as written."""
    if raw.startswith("+46"):
        body = raw[3:]
    elif raw.startswith("0046"):
        body = raw[4:]
    else:
        return _DIGIT_GROUPS.findall(raw.lstrip("(")[1:])
    body = body.lstrip(_SEPARATORS)
    body = body[3:] if body.startswith("(0)") else body.removeprefix("0")
    return _DIGIT_GROUPS.findall(body)


def _phone(raw: str) -> str | None:
    """E.164 of a matched candidate, also judging how it is written: a separated area code is
    1-3 digits after the zero, a one-digit one is 8 (Stockholm), so 01-12-2024 is no number."""
    if len(raw) in (9, 10) and (_DATE_LIKE.fullmatch(raw) or _TIME_RANGE.fullmatch(raw)):
        return None
    groups = _phone_groups(raw)
    if not groups:
        return None
    first = groups[0]
    if len(groups) > 1 and (len(first) > 3 or (len(first) == 1 and first != "8")):
        return None
    return _numbering_plan("".join(groups))


def _ip(raw: str, version: int) -> str | None:
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return None
    return str(address) if address.version == version else None


def _free_start(text: str, start: int, inside: str) -> bool:
    """Whether a match starts a token: not after a letter or digit or one of ``inside``."""
    return start == 0 or not (text[start - 1].isalnum() or text[start - 1] in inside)


def _digit_run_start(text: str, start: int) -> bool:
    """Whether a phone candidate starts its run of digit groups: "SE45 5000 0583 9825 74" and
    "2024-0701234567" do not, "kl 14:30 070-123 45 67" does."""
    if not _free_start(text, start, "+_"):
        return False
    if start < 2 or text[start - 1] not in _SEPARATORS or not text[start - 2].isdigit():
        return True
    before = text[max(0, start - 12):start - 1].rsplit(None, 1)[-1]  # the token before the separator
    return ":" in before or "." in before


# -- candidates per kind ---------------------------------------------------------------------


def _emails(text: str) -> Iterator[Candidate]:
    """Anchored on each '@': the local part is read backwards, the domain forwards."""
    at = text.find("@")
    while at != -1:
        local = _LOCAL_REVERSED.match(text[max(0, at - 64):at][::-1])
        domain = _DOMAIN.match(text, at + 1) if local else None
        name = local.group()[::-1].lstrip(".") if local and domain else ""
        if domain and name:
            start = at - len(name)
            yield "email", start, domain.end(), text[start:domain.end()].lower()
            at = text.find("@", domain.end())
        else:
            at = text.find("@", at + 1)


def _trim_url(url: str) -> str:
    """Sentence punctuation after a URL is not part of it, nor is an unbalanced ')'."""
    while url and (url[-1] in ".,;:!?'\"»" or (url[-1] == ")" and url.count("(") < url.count(")"))):
        url = url[:-1]
    return url


def _urls(text: str) -> Iterator[Candidate]:
    for m in _URL.finditer(text):
        url = _trim_url(m.group())
        host = url.split("//", 1)[-1]
        if _free_start(text, m.start(), "@./-_") and "." in host.rstrip(".") and len(host) > 4:
            yield "url", m.start(), m.start() + len(url), url


def _ipv6s(text: str) -> Iterator[Candidate]:
    for m in _IPV6.finditer(text):
        raw = m.group()
        if raw.count(":") >= 2 and raw.strip(":") and (value := _ip(raw, 6)):
            yield "ipv6", m.start(), m.end(), value


def _ipv4s(text: str) -> Iterator[Candidate]:
    for m in _IPV4.finditer(text):
        value = _ip(m.group(), 4)
        if value and not _VERSION_LABEL.search(text, max(0, m.start() - 12), m.start()):
            yield "ipv4", m.start(), m.end(), value


def _identity_numbers(text: str, reference_year: int) -> Iterator[Candidate]:
    for m in _IDNUM.finditer(text):
        raw = m.group()
        found = parse_identity_number(raw, reference_year)
        if found is None:
            continue
        if raw[0] == "0" and raw.isdigit() and _numbering_plan(raw[1:]) and not _person_labelled(text, m.start()):
            continue  # 0701234567 is read as a phone number unless the text says personnummer
        yield found[0], m.start(), m.end(), found[1]


def _person_labelled(text: str, start: int) -> bool:
    return _PERSON_LABEL.search(text, max(0, start - 40), start) is not None


def _labelled_other_number(text: str, start: int) -> bool:
    """Whether the words just before ``start`` call it an order, account, ... number."""
    words = text[max(0, start - 24):start].lower().replace(":", " ").replace("#", " ").split()
    if not words:
        return False
    last = words[-1].strip(".")
    if last in _NUMBER_WORDS and len(words) > 1:  # "order nr"
        return words[-2].strip(".") in _OTHER_NUMBERS_WITH_NR
    for word in _NUMBER_WORDS:  # "ordernr", "order-nr", "art.nr"
        if last.endswith(word):
            return last[:-len(word)].rstrip(".-") in _OTHER_NUMBERS_WITH_NR
    return last in _OTHER_NUMBERS


def _phones(text: str) -> Iterator[Candidate]:
    matches = _PHONE.finditer(text)
    if "+46" in text or "(0" in text:
        matches = chain(matches, _PHONE_MARKED.finditer(text))
    for m in matches:
        start = m.start()
        if not _digit_run_start(text, start):
            continue
        value = _phone(m.group())
        if value and not _labelled_other_number(text, start):
            yield "phone", start, m.end(), value


# -- the public API ----------------------------------------------------------------------------


def _candidates(text: str, reference_year: int) -> list[Candidate]:
    found: list[Candidate] = []
    if "@" in text:
        found += _emails(text)
    if "://" in text or "ww." in text or "WW." in text:
        found += _urls(text)
    if "::" in text or text.count(":") >= 6:  # a full IPv6 address has 7 colons, 6 with IPv4 inside
        found += _ipv6s(text)
    if _IPV4_HINT.search(text):
        found += _ipv4s(text)
    found += _identity_numbers(text, reference_year)
    found += _phones(text)
    return found


def _resolve(candidates: list[Candidate]) -> list[Candidate]:
    """Keep the highest-precedence candidate wherever spans overlap, in text order (bisect, so
    a long document with thousands of candidates stays fast)."""
    kept: list[Candidate] = []  # disjoint, sorted by start
    starts: list[int] = []
    for c in sorted(candidates, key=lambda c: (_PRECEDENCE[c[0]], c[1])):
        i = bisect_left(starts, c[1])
        if (i == 0 or kept[i - 1][2] <= c[1]) and (i == len(kept) or c[2] <= kept[i][1]):
            kept.insert(i, c)
            starts.insert(i, c[1])
    return kept


def find_identifiers(text: str, *, reference_year: int = 2026) -> list[Finding]:
    """Every identifier in ``text``, sorted by start, without overlaps.

    ``reference_year`` anchors the century of 10-digit personnummer: use the year the text was
    written when it is known."""
    if not text:
        return []
    candidates = _candidates(text, reference_year)
    if len(candidates) > 1:
        candidates = _resolve(candidates)
    return [Finding(*c) for c in candidates]


# What replaces erased or redacted values, in sources and in free text.
REDACTED = "[raderad]"


def redact(text: str, findings: Sequence[Finding], replacement: Callable[[Finding], str] | str = REDACTED) -> str:
    """``text`` with each finding's span replaced; a span overlapping an earlier one is skipped."""
    out, last = [], 0
    for f in sorted(findings, key=lambda f: f.start):
        if f.start < last:
            continue
        out.append(text[last:f.start])
        out.append(replacement(f) if callable(replacement) else replacement)
        last = f.end
    out.append(text[last:])
    return "".join(out)
