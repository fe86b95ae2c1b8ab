"""Normalised identifiers and their keyed hashes (HMAC-SHA256).

Subjects are referred to only by keyed hash everywhere outside the data itself: the same
person gets the same reference in every source, and nobody without the secret can reverse or
recompute it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

_SHA256_BLOCK = 64  # bytes: HMAC pads (or first hashes) the key to the hash's block size
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
    # HMAC-SHA256's inner and outer hashes with the padded key already fed in (RFC 2104): each
    # identifier then costs two copies and two updates, under half of hmac.digest's key setup.
    _inner: Any = field(init=False, repr=False, compare=False)
    _outer: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.secret) < 16:
            raise ValueError("the keyed-hash secret must be at least 16 bytes")
        key = hashlib.sha256(self.secret).digest() if len(self.secret) > _SHA256_BLOCK else self.secret
        key = key.ljust(_SHA256_BLOCK, b"\0")
        object.__setattr__(self, "_inner", hashlib.sha256(bytes(b ^ 0x36 for b in key)))
        object.__setattr__(self, "_outer", hashlib.sha256(bytes(b ^ 0x5C for b in key)))

    def __reduce__(self) -> tuple[Any, ...]:
        return (SubjectHasher, (self.secret,))  # the prepared hashes cannot be pickled: the secret can

    def hash(self, kind: str, normalised: str) -> str:
        """HMAC-SHA256 of ``kind:normalised`` (hex, first 32 characters)."""
        inner = self._inner.copy()
        inner.update(f"{kind}:{normalised}".encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()[:32]

    def reference(self, kind: str, value: object, reference_year: int = 2026) -> str | None:
        """The keyed hash of one raw identifier, or None when it is empty or not an identifier."""
        if value is None:
            return None
        text = str(value)
        if not text.strip():
            return None
        normalised = normaliser(kind, reference_year)(text)
        return self.hash(kind, normalised) if normalised else None


def normaliser(kind: str, reference_year: int = 2026) -> Callable[[str], str | None]:
    """How an identifier of ``kind`` is normalised before it is hashed (a scan looks it up once)."""
    if kind == "email":
        return normalise_email
    if kind == "phone":
        return normalise_phone
    if kind == "personnummer":
        return partial(normalise_personnummer, reference_year=reference_year)
    return normalise_text
