"""Personal identifiers in free text: e-mail, Swedish phone numbers, personnummer and
samordningsnummer, organisationsnummer, IPv4/IPv6 addresses and URLs.

One combined regular expression finds candidates in a single pass; each candidate is then
validated (Luhn check digit, a real date, octet ranges, Swedish numbering plan), so look-alikes
such as order numbers, dates, prices and numbers with a wrong check digit do not match.

Names: a free name cannot be told from an ordinary word reliably (Swedish surnames are also
words: Berg, Lind, Strand), so names are found only where a reliable signal exists: a name the
same record already holds in a structured column (see lifecycle.scan).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from lifecycle.identifiers import normalise_phone

VERSION = "1"  # bump when detection changes: scans then rescan every free-text source in full

Kind = Literal["email", "phone", "personnummer", "samordningsnummer", "org_number", "ipv4", "ipv6", "url"]


@dataclass(frozen=True, slots=True)
class Finding:
    kind: Kind
    start: int
    end: int
    normalised: str


# Alternatives in precedence order: at one position the first that matches wins.
_PATTERN = re.compile(
    r"""
    (?P<email>[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})
  | (?P<url>(?:https?://|www\.)[^\s<>"']+)
  | (?P<ipv6>(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:]))
  | (?P<ipv4>(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d))
  | (?P<idnum>(?<![\w+-])(?:(?:19|20|16)?\d{6}[-+]?\d{4})(?![\w-]))
  | (?P<phone>(?<![\w+])(?:\+46|0046|0)[ \-]?(?:\(0\)[ \-]?)?\d(?:[ \-]?\d){5,10}(?!\d))
    """,
    re.VERBOSE,
)
_HAS_SIGNAL = re.compile(r"@|\d{2}|www\.|https?:")


def _luhn_ok(ten: str) -> bool:
    total = 0
    for i, ch in enumerate(ten):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _valid_date(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _identity_number(raw: str, reference_year: int) -> tuple[Kind, str] | None:
    """A personnummer, samordningsnummer or organisationsnummer, validated; else None."""
    separator = "+" if "+" in raw else "-" if "-" in raw else ""
    digits = raw.replace("-", "").replace("+", "")
    prefix, ten = digits[:-10], digits[-10:]
    if not _luhn_ok(ten):
        return None
    if int(ten[2]) >= 2:  # "month" 20-99: a legal person, not a natural one
        return ("org_number", ten) if prefix in ("", "16") else None
    if prefix == "16":
        return None
    month, day = int(ten[2:4]), int(ten[4:6])
    kind: Kind = "personnummer"
    if day > 60:
        kind, day = "samordningsnummer", day - 60
    if prefix:
        year = int(prefix + ten[:2])
    else:
        year = reference_year // 100 * 100 + int(ten[:2])
        if year > reference_year:
            year -= 100
        if separator == "+":
            year -= 100
    if not _valid_date(year, month, day) or year > reference_year:
        return None
    return kind, f"{year:04d}{ten[2:]}"


def _swedish_phone(raw: str) -> str | None:
    """E.164 of a Swedish number, or None when it breaks the numbering plan."""
    e164 = normalise_phone(raw)
    if not e164 or not e164.startswith("+46"):
        return None
    national = e164[3:]
    if national[0] == "0":
        return None
    if national[0] == "7":  # mobile: 7X XXX XX XX
        return e164 if len(national) == 9 and national[1] in "0236" else None
    return e164 if 7 <= len(national) <= 9 else None


def _phone_prefix(raw: str) -> tuple[str, str] | None:
    """The longest leading run of digit groups that is a valid number (a phone followed by
    another number in the same run of digits and spaces is still found)."""
    groups = re.split(r"(?<=\d)(?=[ \-])", raw)
    for n in range(len(groups), 0, -1):
        candidate = "".join(groups[:n]).rstrip(" -")
        e164 = _swedish_phone(candidate)
        if e164:
            return candidate, e164
    return None


def _ip(raw: str, version: int) -> str | None:
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return None
    return str(address) if address.version == version else None


def find_identifiers(text: str, *, reference_year: int = 2026) -> list[Finding]:
    """Every identifier in ``text``, in order, without overlaps."""
    if not text or not _HAS_SIGNAL.search(text):
        return []
    found: list[Finding] = []
    for match in _PATTERN.finditer(text):
        kind = match.lastgroup
        raw = match.group()
        start = match.start()
        if kind == "email":
            found.append(Finding("email", start, match.end(), raw.lower()))
        elif kind == "url":
            raw = raw.rstrip(".,;:!?)")
            found.append(Finding("url", start, start + len(raw), raw))
        elif kind in ("ipv4", "ipv6"):
            if value := _ip(raw, 4 if kind == "ipv4" else 6):
                found.append(Finding(kind, start, match.end(), value))  # type: ignore[arg-type]
        elif kind == "idnum":
            number = _identity_number(raw, reference_year)
            if number and not (raw[0] == "0" and raw.isdigit() and _swedish_phone(raw)):
                found.append(Finding(number[0], start, match.end(), number[1]))
            elif raw.isdigit() and (phone := _swedish_phone(raw)):
                # 0701234567 is a phone; 011313-3912 is shaped as an identity number, not a phone
                found.append(Finding("phone", start, match.end(), phone))
        elif kind == "phone":
            if prefix := _phone_prefix(raw):
                found.append(Finding("phone", start, start + len(prefix[0]), prefix[1]))
    return found


def redact(text: str, findings: Sequence[Finding], replacement: Callable[[Finding], str] | str = "[raderad]") -> str:
    """``text`` with each finding's span replaced."""
    out, last = [], 0
    for f in sorted(findings, key=lambda f: f.start):
        out.append(text[last:f.start])
        out.append(replacement(f) if callable(replacement) else replacement)
        last = f.end
    out.append(text[last:])
    return "".join(out)
