"""A labelled corpus of Swedish free-text messages for measuring the detectors.

Each text comes with the identifiers truly in it, as (kind, normalised value); the truth is
built alongside the text, never by running the detectors. Texts also carry look-alikes that
must not match: order numbers, dates and times, prices, version numbers, IBANs, and
personnummer or organisation numbers with a wrong check digit or an impossible date.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from lifecycle.demo import luhn_check_digit

Truth = list[tuple[str, str]]
Item = tuple[str, Truth]

_FIRST = ["anna", "erik", "maria", "lars", "karin", "johan", "eva", "per", "ingrid", "nils", "sofia", "olle"]
_LAST = ["andersson", "johansson", "karlsson", "nilsson", "eriksson", "larsson", "berg", "lind", "strand", "holm"]
_DOMAINS = ["gmail.com", "telia.com", "foretaget.se", "bolaget.nu", "kommun.se", "exempel.org"]
_OPEN = ["Hej!", "Hej,", "Tjena.", "God morgon.", "Hejsan!", "Tack för senast."]
_FILL = [
    "Vi vill gärna veta mer om era tjänster för annonsering.",
    "Kan ni återkomma om offerten så snart som möjligt?",
    "Jag har en fråga om fakturan som kom förra veckan.",
    "Vi planerar en kampanj inför sommaren och behöver hjälp.",
    "Hör av er när ni har tid att ses.",
]
_CLOSE = ["Mvh", "Vänliga hälsningar", "Tack på förhand!", "Hälsningar"]


@dataclass(frozen=True)
class Scores:
    kind: str
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        real = self.true_positives + self.false_negatives
        return self.true_positives / real if real else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def _email(rng: random.Random) -> tuple[str, Truth]:
    address = f"{rng.choice(_FIRST)}.{rng.choice(_LAST)}{rng.choice(['', str(rng.randrange(99))])}@{rng.choice(_DOMAINS)}"
    written = address.title() if rng.random() < 0.1 else address
    return written, [("email", address.lower())]


def _phone(rng: random.Random) -> tuple[str, Truth]:
    if rng.random() < 0.6:
        national = f"7{rng.choice('0236')}{rng.randrange(10_000_000):07d}"
        a, b, c, d = national[:2], national[2:5], national[5:7], national[7:]
        written = rng.choice([
            f"0{a}-{b} {c} {d}", f"0{a}{b}{c}{d}", f"+46 {a} {b} {c} {d}", f"0046{national}",
            f"+46 (0){a}-{b} {c} {d}", f"0{a} {b} {c} {d}", f"+46{national}",
        ])
    else:
        national = f"8{rng.randrange(10_000_000):07d}"
        written = rng.choice([f"08-{national[1:4]} {national[4:6]} {national[6:]}", f"+46 8 {national[1:4]} {national[4:6]} {national[6:]}",
                              f"08-{national[1:]}"])
    return written, [("phone", f"+46{national}")]


def _birth(rng: random.Random) -> date:
    return date(1940, 1, 1) + timedelta(days=rng.randrange(0, 64 * 365))


def _personnummer(rng: random.Random, samordning: bool = False) -> tuple[str, Truth]:
    born = _birth(rng)
    body = f"{born:%y%m}{born.day + (60 if samordning else 0):02d}{rng.randrange(1000):03d}"
    ten = body + str(luhn_check_digit(body))
    twelve = f"{born.year}{ten[2:]}"
    written = rng.choice([f"{ten[:6]}-{ten[6:]}", f"{born.year}{ten[2:6]}-{ten[6:]}", f"{born.year}{ten[2:]}"])
    return written, [("samordningsnummer" if samordning else "personnummer", twelve)]


def _org(rng: random.Random) -> tuple[str, Truth]:
    body = f"{rng.choice(['55', '71', '80', '91'])}{rng.randrange(2, 10)}{rng.randrange(1_000_000):06d}"
    ten = body + str(luhn_check_digit(body))
    return rng.choice([f"{ten[:6]}-{ten[6:]}", f"16{ten[:6]}-{ten[6:]}"]), [("org_number", ten)]


def _ipv4(rng: random.Random) -> tuple[str, Truth]:
    ip = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    return ip, [("ipv4", ip)]


def _ipv6(rng: random.Random) -> tuple[str, Truth]:
    groups = [f"{rng.randrange(65536):x}" for _ in range(3)]
    ip = f"2001:db8:{groups[0]}::{groups[1]}:{groups[2]}"
    import ipaddress

    return ip, [("ipv6", str(ipaddress.ip_address(ip)))]


def _url(rng: random.Random) -> tuple[str, Truth]:
    url = rng.choice(["https://www.", "http://", "www."]) + f"{rng.choice(_LAST)}.se/{rng.choice(['kontakt', 'om-oss', 'p/123'])}"
    return url, [("url", url)]


def _lookalike(rng: random.Random) -> str:
    """Text that resembles an identifier but is not one."""
    born = _birth(rng)
    body = f"{born:%y%m%d}{rng.randrange(1000):03d}"
    bad_check = (luhn_check_digit(body) + rng.randrange(1, 10)) % 10
    org_body = f"55{rng.randrange(2, 10)}{rng.randrange(1_000_000):06d}"
    impossible = f"{born:%y}13{rng.randrange(1, 29):02d}{rng.randrange(1000):03d}"
    return rng.choice([
        f"Gäller order {rng.randrange(2019, 2027)}-{rng.randrange(100000, 999999)}.",
        f"Mötet är {rng.randrange(2024, 2027)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d} kl {rng.randrange(8, 18)}:{rng.choice(['00', '15', '30', '45'])}.",
        f"Priset blir {rng.randrange(1, 99)} {rng.randrange(100, 999)} kr.",
        f"Budget {rng.randrange(10, 99)} {rng.randrange(100, 999)},00 SEK exkl moms.",
        f"Version {rng.randrange(1, 9)}.{rng.randrange(0, 20)}.{rng.randrange(0, 20)} av pluginet.",
        f"Betala till SE{rng.randrange(10, 99)} 5000 0000 0583 9825 {rng.randrange(1000, 9999)}.",
        f"Referens {body[:6]}-{body[6:]}{bad_check}.",
        f"Kundnummer {org_body[:6]}-{org_body[6:]}{(luhn_check_digit(org_body) + 3) % 10}.",
        f"Ärende {impossible[:6]}-{impossible[6:]}{luhn_check_digit(impossible)}.",
        f"Ring växeln efter {rng.randrange(8, 17)}.{rng.choice(['00', '30'])}.",
    ])


_MAKERS: list[Callable[[random.Random], tuple[str, Truth]]] = [
    _email, _phone, _personnummer, lambda r: _personnummer(r, samordning=True), _org, _ipv4, _ipv6, _url,
]
_WEIGHTS = [30, 30, 12, 4, 8, 6, 4, 6]


def labelled_corpus(n: int, seed: int = 1) -> list[Item]:
    """``n`` texts of 40-400 characters with their true identifiers; ~60 % hold at least one."""
    rng = random.Random(seed)
    corpus: list[Item] = []
    for _ in range(n):
        parts = [rng.choice(_OPEN), rng.choice(_FILL)]
        truth: Truth = []
        if rng.random() < 0.6:
            for maker in rng.choices(_MAKERS, weights=_WEIGHTS, k=rng.choice([1, 1, 2, 3])):
                written, found = maker(rng)
                parts.append(rng.choice(["Nå mig på {}.", "Kontakt: {}", "Uppgift: {} gäller.", "({})", "Se {} tack."]).format(written))
                truth += found
        if rng.random() < 0.4:
            parts.append(_lookalike(rng))
        parts.append(f"{rng.choice(_CLOSE)} {rng.choice(_FIRST).title()}")
        corpus.append((" ".join(parts)[:400], truth))
    return corpus


def score(corpus: list[Item], detect: Callable[[str], Truth]) -> dict[str, Scores]:
    """Precision and recall per kind, comparing (kind, normalised) multisets per text."""
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for text, truth in corpus:
        want, got = Counter(truth), Counter(detect(text))
        for (kind, _), n in (want & got).items():
            tp[kind] += n
        for (kind, _), n in (got - want).items():
            fp[kind] += n
        for (kind, _), n in (want - got).items():
            fn[kind] += n
    kinds = sorted(set(tp) | set(fp) | set(fn))
    return {k: Scores(k, tp[k], fp[k], fn[k]) for k in kinds}
