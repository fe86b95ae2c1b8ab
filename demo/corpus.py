"""A labelled corpus of Swedish free-text messages for measuring the detectors.

Each text comes with the identifiers truly in it, as (kind, normalised value); the truth is
built alongside the text, never by running the detectors. Identifiers appear in the writings
people use (070-123 45 67, +46 (0)70-123 45 67, 19811218-9876, 121212+1212, 2001:db8::1 ...),
and texts also carry look-alikes that must not match: order numbers, dates and times, opening
hours, prices, version numbers, IBANs and bank accounts, MAC addresses, and personnummer or
organisationsnummer with a wrong check digit or an impossible date.

Deterministic: everything comes from ``random.Random(seed)`` and fixed pools (no Faker, no
clock). Conventions it shares with the detector, stated here because the truth depends on them:
10-digit personnummer are read relative to REFERENCE_YEAR, with '+' for people of 100 or more
(nobody born in REFERENCE_YEAR - 100 or REFERENCE_YEAR is generated: with only a year to go
on, those are ambiguous); and a bare 10-digit number starting with 0 is a phone number unless
the text calls it a personnummer, so such personnummer are always labelled.
"""

from __future__ import annotations

import ipaddress
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from lifecycle.discovery.identifiers import luhn_check_digit

REFERENCE_YEAR = 2026

Truth = list[tuple[str, str]]
Item = tuple[str, Truth]
Piece = tuple[str, Truth]  # one sentence and the identifiers in it

_FIRST = ["anna", "erik", "maria", "lars", "karin", "johan", "eva", "per", "ingrid", "nils", "sofia", "olle",
          "åsa", "björn", "märta", "göran", "elin", "oskar", "linnéa", "jörgen"]
_LAST = ["andersson", "johansson", "karlsson", "nilsson", "eriksson", "larsson", "berg", "lind", "strand", "holm",
         "öberg", "åkesson", "sjöberg", "ström", "lundqvist", "wallin"]
_DOMAINS = ["gmail.com", "telia.com", "hotmail.se", "foretaget.se", "bolaget.nu", "kommun.se", "exempel.org",
            "bredband.net", "företaget.se", "region-skane.se", "student.lu.se"]
_SITES = ["exempel", "foretaget", "bygg-och-vvs", "hemsidan", "kommunen", "butiken", "cykelverkstan"]
_PATHS = ["", "/", "/kontakt", "/om-oss", "/p/123", "/kund?id=8812&ref=mail", "/sv/tjanster/", "/blogg/2024/11/sommar"]
_OPEN = ["Hej!", "Hej,", "Tjena.", "God morgon.", "Hejsan!", "Tack för senast.", "Hej igen,", "Till kundtjänst:"]
_FILL = [
    "Vi vill gärna veta mer om era tjänster för annonsering.",
    "Kan ni återkomma om offerten så snart som möjligt?",
    "Jag har en fråga om fakturan som kom förra veckan.",
    "Vi planerar en kampanj inför sommaren och behöver hjälp.",
    "Hör av er när ni har tid att ses.",
    "Leveransen kom fram men en av kartongerna var trasig.",
    "Jag vill avsluta mitt konto och få mina uppgifter raderade.",
    "Min granne Berg sa att ni hade bra priser på vinterdäck.",
    "Kan ni skicka kvittot igen, jag hittar det inte.",
    "Vi ses på mötet i Göteborg nästa vecka.",
    "Det gäller bokningen för tre personer.",
    "Ni får gärna ringa efter lunch.",
    "Bifogar bilder på skadan.",
    "Tack för snabb hjälp senast, det fungerar nu.",
]
_CLOSE = ["Mvh", "Vänliga hälsningar", "Tack på förhand!", "Hälsningar", "/", "Ha det bra,"]
_AREA_CODES = ["8", "11", "13", "18", "19", "21", "23", "31", "33", "35", "36", "40", "42", "46", "54", "60",
               "63", "90", "120", "141", "152", "171", "220", "240", "300", "320", "370", "410", "470", "520",
               "560", "611", "650", "690", "910", "980"]

_TEMPLATES: dict[str, list[str]] = {
    "email": ["Mejla {}.", "E-post: {}", "Skicka till <{}> tack.", "Min adress är {} om ni undrar.", "({})",
              "mail:{}", "Svara till {}, inte till min gamla adress."],
    "phone": ["Ring mig på {}.", "Tel: {}", "Mobil {} efter kl 17.", "Nå mig på {} eller via mejl.",
              "Växeln: {}.", "({})", "Telefonnummer {}", "Sms:a {} så ringer jag upp."],
    "personnummer": ["Mitt personnummer är {}.", "pnr {}", "Pers.nr: {}", "Gäller {} som nämndes.", "({})",
                     "Uppgift: {} gäller."],
    "samordningsnummer": ["Mitt samordningsnummer är {}.", "Samordningsnr {}", "Gäller {} från Skatteverket.",
                          "({})"],
    "org_number": ["Org.nr {}", "Organisationsnummer: {}.", "Fakturera bolaget ({}).", "Vi är {} i registret."],
    "ipv4": ["Inloggning från IP {}.", "Adress {} blockerades.", "Servern på {}:8080 svarar inte.", "[{}]"],
    "ipv6": ["Inloggning från {}.", "IPv6-adress: {}", "Anslut till [{}]:443 i stället.", "Källa {} enligt loggen.",
             "ip:{}"],
    "url": ["Läs mer på {}.", "Länk: {}", "Se ({}) för detaljer.", "Min sida {} har allt.", "{}"],
}
_LABELLED_TEMPLATES = {"personnummer": 3, "samordningsnummer": 2}  # the first ones name the number


# -- helpers -------------------------------------------------------------------------------



def _digits(rng: random.Random, n: int, first: str = "0123456789") -> str:
    return rng.choice(first) + "".join(rng.choice("0123456789") for _ in range(n - 1))


def _grouped(subscriber: str) -> str:
    """Swedish digit grouping of a subscriber number: 123 45, 12 34 56, 123 45 67, 123 456 78."""
    s = subscriber
    return {5: f"{s[:3]} {s[3:]}", 6: f"{s[:2]} {s[2:4]} {s[4:]}", 7: f"{s[:3]} {s[3:5]} {s[5:]}",
            8: f"{s[:3]} {s[3:6]} {s[6:]}"}[len(s)]


def _birth(rng: random.Random) -> date:
    """A birth date from 1915 to REFERENCE_YEAR - 1, never in the ambiguous year REFERENCE_YEAR - 100."""
    while True:
        born = date(1915, 1, 1) + timedelta(days=rng.randrange((date(REFERENCE_YEAR, 1, 1) - date(1915, 1, 1)).days))
        if born.year != REFERENCE_YEAR - 100:
            return born


# -- identifiers ---------------------------------------------------------------------------


def _email(rng: random.Random) -> tuple[str, str]:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    local = rng.choice([f"{first}.{last}", f"{first}{last}{rng.randrange(100)}", f"{first[0]}.{last}",
                        f"{first}_{last}", f"{first}+nyhetsbrev", "info", f"{last}.{first}-1"])
    address = f"{local}@{rng.choice(_DOMAINS)}"
    written = rng.choices([address, address.title(), address.upper()], weights=[85, 12, 3])[0]
    return written, address.lower()


def _mobile(rng: random.Random) -> tuple[str, str]:
    national = f"7{rng.choice('02369')}{_digits(rng, 7)}"
    a, b, c, d = national[:2], national[2:5], national[5:7], national[7:]
    written = rng.choice([
        f"0{a}-{b} {c} {d}", f"0{a} {b} {c} {d}", f"0{a}{b}{c}{d}", f"0{a}-{b}{c}{d}", f"0{a}-{b[:2]} {b[2]}{c} {d}",
        f"+46 {a} {b} {c} {d}", f"+46{national}", f"+46 (0){a}-{b} {c} {d}", f"+46 (0){a} {b} {c} {d}",
        f"0046 {a} {b} {c} {d}", f"0046{national}", f"+46-{a}-{b} {c} {d}", f"0{a}\u2013{b} {c} {d}",
        f"+46 0{a}-{b} {c} {d}",
    ])
    return written, f"+46{national}"


def _landline(rng: random.Random) -> tuple[str, str]:
    area = rng.choice(_AREA_CODES)
    subscriber = _digits(rng, rng.randrange(max(5, 7 - len(area)), 10 - len(area)), first="123456789")
    national, grouped = area + subscriber, _grouped(subscriber)
    written = rng.choice([
        f"0{area}-{grouped}", f"0{area} {grouped}", f"0{area}-{subscriber}", f"+46 {area} {grouped}",
        f"+46 (0){area}-{grouped}", f"0046 {area} {grouped}", f"({'0' + area}) {grouped}", f"+46{national}",
        f"0{area}\u2013{grouped}", f"0{area}{subscriber}",
    ])
    return written, f"+46{national}"


def _phone(rng: random.Random) -> tuple[str, str]:
    return _mobile(rng) if rng.random() < 0.6 else _landline(rng)


def _person_number(rng: random.Random, samordning: bool) -> tuple[str, str, bool]:
    """(written, normalised, needs a label): a personnummer or samordningsnummer."""
    born = _birth(rng)
    body = f"{born:%y%m}{born.day + (60 if samordning else 0):02d}{_digits(rng, 3)}"
    ten = body + str(luhn_check_digit(body))
    hundred = born.year <= REFERENCE_YEAR - 100
    writings = [f"{ten[:6]}{'+' if hundred else '-'}{ten[6:]}", f"{born.year}{ten[2:6]}-{ten[6:]}",
                f"{born.year}{ten[2:]}"]
    if not hundred:
        writings += [ten, f"{ten[:6]}\u2013{ten[6:]}"]
    written = rng.choice(writings)
    return written, f"{born.year}{ten[2:]}", written == ten and ten[0] == "0"


def _org_number(rng: random.Random) -> tuple[str, str]:
    body = f"{rng.choice('25557789')}{rng.randrange(10)}{rng.randrange(2, 10)}{_digits(rng, 6)}"
    ten = body + str(luhn_check_digit(body))
    return rng.choice([f"{ten[:6]}-{ten[6:]}", ten, f"16{ten[:6]}-{ten[6:]}", f"16{ten}"]), ten


def _ipv4(rng: random.Random) -> tuple[str, str]:
    a, b, c, d = rng.randrange(1, 224), rng.randrange(256), rng.randrange(256), rng.randrange(1, 255)
    ip = rng.choice([f"{a}.{b}.{c}.{d}", f"192.168.{c}.{d}", f"10.{b}.{c}.{d}"])
    return ip, ip


def _ipv6(rng: random.Random) -> tuple[str, str]:
    groups = [rng.randrange(65536) for _ in range(8)]
    full = ":".join(f"{g:04x}" for g in [0x2001, 0x0DB8, *groups[2:]])
    g = [f"{x:x}" for x in groups]
    written = rng.choice([
        full, str(ipaddress.IPv6Address(full)), full.upper(), f"2001:db8::{g[6]}:{g[7]}", f"2001:db8::{g[7]}",
        f"fe80::{g[4]}:{g[5]}:{g[6]}:{g[7]}", f"2a02:aa1:{g[2]}::{g[7]}", f"::ffff:{_ipv4(rng)[0]}",
    ])
    return written, str(ipaddress.ip_address(written))


def _url(rng: random.Random) -> tuple[str, str]:
    site, path = rng.choice(_SITES), rng.choice(_PATHS)
    url = rng.choice([f"https://www.{site}.se{path}", f"http://{site}.se{path}", f"www.{site}.se{path}",
                      f"https://{site}.nu{path}"])
    return url, url


def _identifier(rng: random.Random, kind: str) -> Piece:
    """One sentence holding one identifier of ``kind``."""
    templates = _TEMPLATES[kind]
    if kind in ("personnummer", "samordningsnummer"):
        written, value, labelled = _person_number(rng, samordning=kind == "samordningsnummer")
        template = rng.choice(templates[:_LABELLED_TEMPLATES[kind]] if labelled else templates)
        return template.format(written), [(kind, value)]
    maker: Callable[[random.Random], tuple[str, str]] = {
        "email": _email, "phone": _phone, "org_number": _org_number, "ipv4": _ipv4, "ipv6": _ipv6, "url": _url,
    }[kind]
    written, value = maker(rng)
    return rng.choice(templates).format(written), [(kind, value)]


def _signature(rng: random.Random, kinds: list[str]) -> Piece:
    """Several identifiers on one line, as in an e-mail signature: Anna Berg, 070-..., anna@..."""
    parts, truth = [f"{rng.choice(_FIRST).title()} {rng.choice(_LAST).title()}"], []
    makers: dict[str, Callable[[random.Random], tuple[str, str]]] = {
        "email": _email, "phone": _phone, "org_number": _org_number, "url": _url, "ipv4": _ipv4, "ipv6": _ipv6,
    }
    for kind in kinds:
        written, value = makers[kind](rng)
        parts.append(written)
        truth.append((kind, value))
    return rng.choice([", ", " | ", " / ", "; "]).join(parts), truth


# -- look-alikes ---------------------------------------------------------------------------


def _bad_person_number(rng: random.Random) -> str:
    """A personnummer with a wrong check digit, or a right one on a date that does not exist."""
    born = _birth(rng)
    body = f"{born:%y%m%d}{_digits(rng, 3)}"
    wrong = f"{body}{(luhn_check_digit(body) + rng.randrange(1, 10)) % 10}"
    yy = rng.choice([y for y in range(1, 100) if y % 4])  # not a leap year in either century
    impossible_body = rng.choice([f"{yy:02d}13{rng.randrange(1, 29):02d}", f"{yy:02d}0{rng.randrange(1, 10)}32",
                                  f"{yy:02d}0230", f"{yy:02d}0229", f"{yy:02d}{rng.randrange(1, 13):02d}92"])
    impossible_body += _digits(rng, 3)
    impossible = impossible_body + str(luhn_check_digit(impossible_body))
    ten = rng.choice([wrong, impossible])
    return rng.choice([f"{ten[:6]}-{ten[6:]}", f"19{ten[:6]}-{ten[6:]}", f"19{ten}"])


def _not_luhn(body: str) -> str:
    """``body`` and a wrong check digit: a number that is no personnummer whatever it looks like."""
    return f"{body}{(luhn_check_digit(body) + 1) % 10}"


def _bad_org_number(rng: random.Random) -> str:
    body = f"55{rng.randrange(2, 10)}{_digits(rng, 6)}"
    ten = f"{body}{(luhn_check_digit(body) + rng.randrange(1, 10)) % 10}"
    return rng.choice([f"{ten[:6]}-{ten[6:]}", ten])


def _dotted(rng: random.Random, parts: int) -> str:
    """A dotted version number such as 4.2.0.17; with four parts it is shaped like an IPv4 address."""
    return ".".join(str(rng.randrange(1, 9) if i == 0 else rng.randrange(200)) for i in range(parts))


def _lookalike(rng: random.Random) -> str:
    """A sentence that resembles an identifier but holds none."""
    year = rng.randrange(2019, 2027)
    day = f"{year}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
    clock = f"{rng.randrange(7, 24):02d}:{rng.choice(['00', '15', '30', '45'])}"
    makers: list[Callable[[], str]] = [
        lambda: f"Gäller order {year}-{_digits(rng, 6, '123456789')}.",
        lambda: f"Ordernr {_digits(rng, 6)} är betald.",
        lambda: f"Ordernummer: {_not_luhn('0' + _digits(rng, 8, '123456789'))}.",
        lambda: f"Mötet är {day} kl {clock}.",
        lambda: f"Loggat {day} {clock}:{rng.randrange(60):02d}.",
        lambda: f"Leverans {rng.randrange(1, 29):02d}-{rng.randrange(1, 13):02d}-{year} eller {day[-2:]}/6.",
        lambda: f"Öppet {rng.choice(['0800', '0830', '0900'])}-{rng.choice(['1600', '1700', '1730'])} på vardagar.",
        lambda: f"Priset blir {rng.randrange(1, 99)} {_digits(rng, 3)} kr.",
        lambda: f"Budget {rng.randrange(10, 99)} {_digits(rng, 3)},00 SEK exkl moms.",
        lambda: f"Den kostar {rng.randrange(1, 9)} {_digits(rng, 3)}:- eller 0,{rng.randrange(10, 99)} kr/st.",
        lambda: f"Version {rng.randrange(1, 9)}.{rng.randrange(20)}.{rng.randrange(20)} av pluginet.",
        lambda: f"Kräver version {_dotted(rng, 4)} eller senare.",
        lambda: f"Firmware {_dotted(rng, 5)} installerad.",
        lambda: f"Betala till SE{rng.randrange(10, 99)} {' '.join(_digits(rng, 4) for _ in range(5))}.",
        lambda: f"IBAN SE{rng.randrange(10, 99)}{_digits(rng, 20)}, BIC SWEDSESS.",
        lambda: f"Bankgiro {_digits(rng, 4, '123456789')}-{_digits(rng, 4)}, clearing 8{_digits(rng, 3)}-4.",
        lambda: f"Kontonr {_digits(rng, 3)} {_digits(rng, 3)} {_digits(rng, 3)}-{rng.randrange(10)}.",
        lambda: f"Kort {' '.join(_digits(rng, 4, '3456') for _ in range(4))} spärrat.",
        lambda: f"Referens {_bad_person_number(rng)}.",
        lambda: f"Pnr {_bad_person_number(rng)} stämmer inte.",
        lambda: f"Kundnummer {_bad_org_number(rng)}.",
        lambda: f"Åren {rng.randrange(1980, 2000)}-{rng.randrange(2000, 2026)} bodde jag där.",
        lambda: f"Ring växeln efter {rng.randrange(8, 17)}.{rng.choice(['00', '30'])}.",
        lambda: f"Routerns MAC är {':'.join(f'{rng.randrange(256):02X}' for _ in range(6))}.",
        lambda: f"Postadress Storgatan {rng.randrange(1, 90)}, 1{_digits(rng, 2)} {_digits(rng, 2)} Stockholm.",
        lambda: f"Numret {rng.choice(['070-123 45 6', '08-12 3', '0000 123 45 67', '071-123 45 67'])} fungerar inte.",
        lambda: f"Pi är ungefär 3.14159 och kursen {rng.randrange(1, 9)}.{rng.randrange(10)}{rng.randrange(10)}.",
    ]
    return rng.choice(makers)()


# -- the corpus ----------------------------------------------------------------------------

_KINDS = ["email", "phone", "personnummer", "samordningsnummer", "org_number", "ipv4", "ipv6", "url"]
_WEIGHTS = [22, 26, 16, 6, 10, 7, 6, 7]
_SIGNATURE_KINDS = ["email", "phone", "org_number", "url"]


def _identifier_pieces(rng: random.Random) -> list[Piece]:
    kinds = rng.choices(_KINDS, weights=_WEIGHTS, k=rng.choices([1, 2, 3], weights=[55, 30, 15])[0])
    if len(kinds) > 1 and rng.random() < 0.3:
        return [_signature(rng, [rng.choice(_SIGNATURE_KINDS) for _ in kinds])]
    return [_identifier(rng, kind) for kind in kinds]


def _length(head: str, middle: list[Piece], tail: str) -> int:
    return len(head) + len(tail) + sum(len(p[0]) + 1 for p in middle) + 1


def _message(rng: random.Random) -> Item:
    """One message of 40-400 characters: greeting, filler, identifiers and look-alikes, closing."""
    middle = _identifier_pieces(rng) if rng.random() < 0.6 else []
    middle += [(_lookalike(rng), []) for _ in range(rng.choices([0, 1, 2], weights=[45, 40, 15])[0])]
    target = rng.choice([60, 100, 150, 250, 400])
    fillers = rng.sample(_FILL, len(_FILL))
    head, tail = rng.choice(_OPEN), f"{rng.choice(_CLOSE)} {rng.choice(_FIRST).title()}"
    while fillers and (_length(head, middle, tail) < 40 or _length(head, middle, tail) + len(fillers[-1]) < target):
        middle.append((fillers.pop(), []))
    while _length(head, middle, tail) > 400:
        middle.pop(max(range(len(middle)), key=lambda i: (not middle[i][1], i)))  # drop the last sentence without truth
    rng.shuffle(middle)
    text = " ".join([head, *(p[0] for p in middle), tail])
    truth = [t for _, found in middle for t in found]
    return text, truth


def labelled_corpus(n: int, seed: int = 1) -> list[Item]:
    """``n`` texts of 40-400 characters with their true identifiers; ~60 % hold at least one."""
    rng = random.Random(seed)
    return [_message(rng) for _ in range(n)]


# -- scoring -------------------------------------------------------------------------------


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
