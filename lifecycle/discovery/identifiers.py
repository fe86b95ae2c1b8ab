"""Normalised identifiers and their keyed hashes (HMAC-SHA256).

Subjects are referred to only by keyed hash everywhere outside the data itself: the same
person gets the same reference in every source, and nobody without the secret can reverse or
recompute it.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

_NON_DIGITS = re.compile(r"\D")
_SPACES = re.compile(r"\s+")


def luhn_check_digit(body: str) -> int:
    """The Luhn check digit of a 9-digit body (personnummer YYMMDDNNN, organisationsnummer)."""
    total = 0
    for i, ch in enumerate(body):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return (10 - total % 10) % 10


def normalise_email(value: str) -> str | None:
    value = value.strip().lower()
    return value if "@" in value else None


def normalise_phone(value: str) -> str | None:
    """Swedish numbers to E.164: 070-123 45 67, +46 70 123 45 67, 0046701234567 -> +46701234567."""
    raw = value.strip()
    digits = _NON_DIGITS.sub("", raw)
    if raw.startswith("+"):
        e164 = "+" + digits
    elif digits.startswith("00"):
        e164 = "+" + digits[2:]
    elif digits.startswith("0"):
        e164 = "+46" + digits[1:]
    else:
        return None
    if e164.startswith("+460"):
        e164 = "+46" + e164[4:]  # "+46 (0)70 ..." writes the trunk zero too
    return e164 if 8 <= len(e164) - 1 <= 15 else None


def normalise_personnummer(value: str, reference_year: int) -> str | None:
    """To the 12-digit form YYYYMMDDNNNN; a 10-digit number's century is inferred ('+' = 100+ years)."""
    raw = value.strip()
    digits = _NON_DIGITS.sub("", raw)
    if len(digits) == 12:
        return digits
    if len(digits) != 10:
        return None
    yy = int(digits[:2])
    year = (reference_year // 100) * 100 + yy
    if year > reference_year:
        year -= 100
    if "+" in raw:
        year -= 100
    return f"{year:04d}{digits[2:]}"


def normalise_text(value: str) -> str:
    return _SPACES.sub(" ", value.strip()).casefold()


@dataclass(frozen=True)
class SubjectHasher:
    """Keyed hashes of normalised identifiers. ``secret`` must come from outside the repo."""

    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) < 16:
            raise ValueError("the keyed-hash secret must be at least 16 bytes")

    def hash(self, kind: str, normalised: str) -> str:
        # hmac.digest: the one-shot C implementation, several times faster than hmac.new.
        return hmac.digest(self.secret, f"{kind}:{normalised}".encode(), "sha256").hex()[:32]

    def reference(self, kind: str, value: object, reference_year: int = 2026) -> str | None:
        """The keyed hash of one raw identifier, or None when it is empty or not an identifier."""
        if value is None:
            return None
        text = str(value)
        if not text.strip():
            return None
        if kind == "email":
            normalised = normalise_email(text)
        elif kind == "phone":
            normalised = normalise_phone(text)
        elif kind == "personnummer":
            normalised = normalise_personnummer(text, reference_year)
        else:
            normalised = normalise_text(text)
        return self.hash(kind, normalised) if normalised else None
