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

Every identifier is also written in one of four ways (``WRITINGS``), as people and systems do:
canonical (above); spaced (a personnummer with a space or a grouped or dotted date, a phone
number with dots, a slash, a spaced dash, 46 without the plus, in pairs, or broken by a line
break; an e-mail broken by a line break); obfuscated (e-mails: (at), [at], ' at ' with
' dot ', snabel-a, spaces around '@', &#64;); unicode (text copied from web pages and PDFs:
full-width forms, zero-width spaces and soft hyphens inside, thin spaces, Cyrillic look-alike
letters, &nbsp;). Each new writing has look-alikes of its own among the texts: dotted and
slashed dates, times and version numbers, labelled order numbers in the same shapes, spaced
numbers with a wrong check digit, '@' and (at) in ordinary sentences, full-width prices,
Cyrillic text. Some messages are written on several lines. ``labelled_writings`` gives each
identifier's writing with its truth; ``score_writings`` scores per writing.
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
Label = tuple[str, str, str]  # (kind, normalised, writing)
LabelledItem = tuple[str, list[Label]]
Piece = tuple[str, list[Label]]  # one sentence and the identifiers in it
Written = tuple[str, str, str]  # (as written, normalised, writing)

WRITINGS = ("canonical", "spaced", "obfuscated", "unicode")
_WRITING_WEIGHTS = {"canonical": 80, "spaced": 10, "obfuscated": 5, "unicode": 5}
_KIND_WRITINGS = {  # the writings each kind is generated in
    "email": WRITINGS, "phone": ("canonical", "spaced", "unicode"), "personnummer": ("canonical", "spaced", "unicode"),
    "samordningsnummer": ("canonical", "spaced", "unicode"), "org_number": ("canonical", "unicode"),
    "ipv4": ("canonical",), "ipv6": ("canonical",), "url": ("canonical",),
}
_CYRILLIC = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "y": "у"}  # look-alikes

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


class _Rng(random.Random):
    """The corpus's source of randomness, and whether it writes identifiers in every writing
    (else canonically only, on one line, with the look-alikes of the canonical writings)."""

    def __init__(self, seed: int, extended: bool) -> None:
        super().__init__(seed)
        self.extended = extended


def _extended(rng: random.Random) -> bool:
    return getattr(rng, "extended", True)


def _writing(rng: random.Random, kind: str) -> str:
    if not _extended(rng):
        return "canonical"
    choices = _KIND_WRITINGS[kind]
    return rng.choices(choices, weights=[_WRITING_WEIGHTS[w] for w in choices])[0]


def _full_width(text: str) -> str:
    """ASCII as its full-width form (０７０－１２３, ａｎｎａ＠ｘ．ｓｅ), a space as an ideographic one."""
    return "".join("\u3000" if ch == " " else chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


def _invisible(rng: random.Random, text: str) -> str:
    """A zero-width space or soft hyphen between two characters of ``text`` that are not blanks."""
    inside = [i for i in range(1, len(text)) if not text[i - 1].isspace() and not text[i].isspace()]
    i = rng.choice(inside)
    return text[:i] + rng.choice(["\u200b", "\u00ad", "\u200b"]) + text[i:]


def _copied(rng: random.Random, text: str) -> str:
    """A number as a web page or PDF hands it over (unicode writing)."""
    how = rng.randrange(5)
    if how == 3 and "-" in text:  # another dash, no-break spaces
        return text.replace("-", rng.choice(["\u2011", "\u2010", "\u2212"])).replace(" ", "\u00a0")
    if how in (2, 3) and " " in text:
        return text.replace(" ", rng.choice(["\u2009", "\u202f", "\u2007"]))
    if how == 4 and " " in text:
        return text.replace(" ", "&nbsp;")
    return _full_width(text) if how % 2 == 0 else _invisible(rng, text)


def _email(rng: random.Random) -> Written:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    local = rng.choice([f"{first}.{last}", f"{first}{last}{rng.randrange(100)}", f"{first[0]}.{last}",
                        f"{first}_{last}", f"{first}+nyhetsbrev", "info", f"{last}.{first}-1"])
    domain = rng.choice(_DOMAINS)
    address = f"{local}@{domain}"
    writing = _writing(rng, "email")
    if writing == "spaced":  # broken by a line break: after '@', or at the domain's only dot
        name, dot, tld = domain.rpartition(".")
        written = f"{local}@\n{domain}" if "." in name or rng.random() < 0.5 else f"{local}@{name}.\n{tld}"
    elif writing == "obfuscated":
        written = _obfuscated(rng, local, domain)
    elif writing == "unicode":
        written = _copied_address(rng, address)
    else:
        written = rng.choices([address, address.title(), address.upper()], weights=[85, 12, 3])[0]
    return written, address.lower(), writing


def _obfuscated(rng: random.Random, local: str, domain: str) -> str:
    how = rng.randrange(9)
    if how == 0:  # words for both: anna dot berg at exempel dot se
        dot = rng.choice([" dot ", " (dot) ", "(dot)", " [dot] "])
        return f"{local.replace('.', dot)} at {domain.replace('.', dot)}"
    if how == 1:
        return f"{local}(at){domain.replace('.', rng.choice(['(dot)', ' (dot) ', '[punkt]']))}"
    if how == 2:
        return f"{local} snabel-a {domain}"
    if how == 3:
        return f"{local}{rng.choice([' @ ', ' @', '@ '])}{domain}"
    if how == 4:
        return f"{local}&#64;{domain}"
    at = rng.choice(["(at)", " (at) ", "[at]", " [at] ", "{at}", " (AT) ", "<at>"])
    return f"{local}{at}{domain}" if rng.random() < 0.8 else f"{local}{at}{domain}".upper()


def _copied_address(rng: random.Random, address: str) -> str:
    how = rng.randrange(4)
    if how == 0:
        return _full_width(address)
    if how == 1:
        return address.replace("@", "＠")
    swappable = [i for i, ch in enumerate(address) if ch in _CYRILLIC]
    if how == 2 and swappable:
        chosen = set(rng.sample(swappable, min(len(swappable), rng.randrange(1, 4))))
        return "".join(_CYRILLIC[ch] if i in chosen else ch for i, ch in enumerate(address))
    return _invisible(rng, address)


def _mobile(rng: random.Random) -> Written:
    national = f"7{rng.choice('02369')}{_digits(rng, 7)}"
    a, b, c, d = national[:2], national[2:5], national[5:7], national[7:]
    canonical = [
        f"0{a}-{b} {c} {d}", f"0{a} {b} {c} {d}", f"0{a}{b}{c}{d}", f"0{a}-{b}{c}{d}", f"0{a}-{b[:2]} {b[2]}{c} {d}",
        f"+46 {a} {b} {c} {d}", f"+46{national}", f"+46 (0){a}-{b} {c} {d}", f"+46 (0){a} {b} {c} {d}",
        f"0046 {a} {b} {c} {d}", f"0046{national}", f"+46-{a}-{b} {c} {d}", f"0{a}\u2013{b} {c} {d}",
        f"+46 0{a}-{b} {c} {d}",
    ]
    ten = "0" + national
    spaced = [
        f"0{a}.{b}.{c}.{d}", f"+46.{a}.{b}.{c}.{d}", f"0{a}/{b} {c} {d}", f"0{a} - {b} {c} {d}", f"46{national}",
        f"46 {a} {b} {c} {d}", " ".join(ten[i:i + 2] for i in range(0, 10, 2)), f"0{a}-{b}\n{c} {d}",
        f"0{a}-\n{b} {c} {d}",
    ]
    return _phone_written(rng, canonical, spaced, f"+46{national}")


def _landline(rng: random.Random) -> Written:
    area = rng.choice(_AREA_CODES)
    subscriber = _digits(rng, rng.randrange(max(5, 7 - len(area)), 10 - len(area)), first="123456789")
    national, grouped = area + subscriber, _grouped(subscriber)
    canonical = [
        f"0{area}-{grouped}", f"0{area} {grouped}", f"0{area}-{subscriber}", f"+46 {area} {grouped}",
        f"+46 (0){area}-{grouped}", f"0046 {area} {grouped}", f"({'0' + area}) {grouped}", f"+46{national}",
        f"0{area}\u2013{grouped}", f"0{area}{subscriber}",
    ]
    spaced = [
        f"0{area}.{grouped.replace(' ', '.')}", f"0{area}/{grouped}", f"0{area} - {grouped}",
        f"46{national}" if len(national) == 9 else f"46 {area} {grouped}", f"0{area}-\n{grouped}",
    ]
    return _phone_written(rng, canonical, spaced, f"+46{national}")


def _phone_written(rng: random.Random, canonical: list[str], spaced: list[str], e164: str) -> Written:
    writing = _writing(rng, "phone")
    if writing == "spaced":
        return rng.choice(spaced), e164, writing
    written = rng.choice(canonical)
    return (_copied(rng, written) if writing == "unicode" else written), e164, writing


def _phone(rng: random.Random) -> Written:
    return _mobile(rng) if rng.random() < 0.6 else _landline(rng)


def _person_number(rng: random.Random, samordning: bool) -> tuple[str, str, str, bool]:
    """(written, normalised, writing, needs a label): a personnummer or samordningsnummer."""
    born = _birth(rng)
    body = f"{born:%y%m}{born.day + (60 if samordning else 0):02d}{_digits(rng, 3)}"
    ten = body + str(luhn_check_digit(body))
    hundred = born.year <= REFERENCE_YEAR - 100
    writing = _writing(rng, "samordningsnummer" if samordning else "personnummer")
    if writing == "spaced":
        writings = [f"{born.year}{ten[2:6]} {ten[6:]}", f"{born.year}.{ten[2:4]}.{ten[4:6]}-{ten[6:]}",
                    f"{born.year}{ten[2:6]}-\n{ten[6:]}"]
        if not hundred:
            writings += [f"{ten[:6]} {ten[6:]}", f"{ten[:6]} - {ten[6:]}", f"{ten[:2]} {ten[2:4]} {ten[4:6]}-{ten[6:]}",
                         f"{ten[:2]}.{ten[2:4]}.{ten[4:6]}-{ten[6:]}", f"{ten[:6]}-\n{ten[6:]}"]
        return rng.choice(writings), f"{born.year}{ten[2:]}", writing, False
    writings = [f"{ten[:6]}{'+' if hundred else '-'}{ten[6:]}", f"{born.year}{ten[2:6]}-{ten[6:]}",
                f"{born.year}{ten[2:]}"]
    if not hundred:
        writings += [ten, f"{ten[:6]}\u2013{ten[6:]}"]
    written = rng.choice(writings)
    labelled = written == ten and ten[0] == "0"
    if writing == "unicode":
        written = rng.choice([_full_width(written), _invisible(rng, written)])
    return written, f"{born.year}{ten[2:]}", writing, labelled


def _org_number(rng: random.Random) -> Written:
    body = f"{rng.choice('25557789')}{rng.randrange(10)}{rng.randrange(2, 10)}{_digits(rng, 6)}"
    ten = body + str(luhn_check_digit(body))
    written = rng.choice([f"{ten[:6]}-{ten[6:]}", ten, f"16{ten[:6]}-{ten[6:]}", f"16{ten}"])
    writing = _writing(rng, "org_number")
    return (rng.choice([_full_width(written), _invisible(rng, written)]) if writing == "unicode" else written), ten, writing


def _ipv4(rng: random.Random) -> Written:
    a, b, c, d = rng.randrange(1, 224), rng.randrange(256), rng.randrange(256), rng.randrange(1, 255)
    ip = rng.choice([f"{a}.{b}.{c}.{d}", f"192.168.{c}.{d}", f"10.{b}.{c}.{d}"])
    return ip, ip, "canonical"


def _ipv6(rng: random.Random) -> Written:
    groups = [rng.randrange(65536) for _ in range(8)]
    full = ":".join(f"{g:04x}" for g in [0x2001, 0x0DB8, *groups[2:]])
    g = [f"{x:x}" for x in groups]
    written = rng.choice([
        full, str(ipaddress.IPv6Address(full)), full.upper(), f"2001:db8::{g[6]}:{g[7]}", f"2001:db8::{g[7]}",
        f"fe80::{g[4]}:{g[5]}:{g[6]}:{g[7]}", f"2a02:aa1:{g[2]}::{g[7]}", f"::ffff:{_ipv4(rng)[0]}",
    ])
    return written, str(ipaddress.ip_address(written)), "canonical"


def _url(rng: random.Random) -> Written:
    site, path = rng.choice(_SITES), rng.choice(_PATHS)
    url = rng.choice([f"https://www.{site}.se{path}", f"http://{site}.se{path}", f"www.{site}.se{path}",
                      f"https://{site}.nu{path}"])
    return url, url, "canonical"


def _identifier(rng: random.Random, kind: str) -> Piece:
    """One sentence holding one identifier of ``kind``."""
    templates = _TEMPLATES[kind]
    if kind in ("personnummer", "samordningsnummer"):
        written, value, writing, labelled = _person_number(rng, samordning=kind == "samordningsnummer")
        template = rng.choice(templates[:_LABELLED_TEMPLATES[kind]] if labelled else templates)
        return template.format(written), [(kind, value, writing)]
    maker: Callable[[random.Random], Written] = {
        "email": _email, "phone": _phone, "org_number": _org_number, "ipv4": _ipv4, "ipv6": _ipv6, "url": _url,
    }[kind]
    written, value, writing = maker(rng)
    return rng.choice(templates).format(written), [(kind, value, writing)]


def _signature(rng: random.Random, kinds: list[str]) -> Piece:
    """Several identifiers on one line, as in an e-mail signature: Anna Berg, 070-..., anna@..."""
    parts, truth = [f"{rng.choice(_FIRST).title()} {rng.choice(_LAST).title()}"], []
    makers: dict[str, Callable[[random.Random], Written]] = {
        "email": _email, "phone": _phone, "org_number": _org_number, "url": _url, "ipv4": _ipv4, "ipv6": _ipv6,
    }
    for kind in kinds:
        written, value, writing = makers[kind](rng)
        parts.append(written)
        truth.append((kind, value, writing))
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
    return rng.choice(makers + (_lookalikes_of_other_writings(rng, year) if _extended(rng) else []))()


def _lookalikes_of_other_writings(rng: random.Random, year: int) -> list[Callable[[], str]]:
    """Look-alikes of the spaced, obfuscated and unicode writings."""
    dd, mm = f"0{rng.randrange(1, 10)}", f"{rng.randrange(1, 13):02d}"
    person = _person_number(rng, samordning=False)[1][2:]  # a valid number, labelled as something else
    return [
        lambda: f"Leverans {dd}.{mm}.{year} eller {dd}/{mm}/{year}.",
        lambda: f"Öppet {dd}.{rng.choice(['00', '30'])}-{rng.randrange(16, 19)}.00, lunch 12.00 - 13.00.",
        lambda: f"Öppet {rng.choice(['0800', '0830'])} - {rng.choice(['1600', '1700'])} och {dd}/{mm}.",
        lambda: f"Version 0.{rng.randrange(20)}.{_digits(rng, 3)}.{rng.randrange(10, 99)} krävs.",
        lambda: f"Pris 46 {_digits(rng, 3)} kr eller {rng.randrange(1, 9)}.{_digits(rng, 3)}.000 kr totalt.",
        lambda: f"Ordernr {person[:6]} {person[6:]} är skickad.",
        lambda: f"Fakturanr {person[:2]} {person[2:4]} {person[4:6]}-{person[6:]}, förfaller snart.",
        lambda: f"Ärendenr 0{rng.choice('2369')}{rng.randrange(10)}.{_digits(rng, 3)}.{_digits(rng, 2)}.{_digits(rng, 2)}.",
        lambda: f"Pnr {(bad := _not_luhn(person[:9]))[:6]} {bad[6:]} stämmer inte.",
        lambda: f"Kaffe @ {rng.randrange(15, 40)} kr/st, möte @ kontoret.",
        lambda: f"Jobbar (at) hemma idag, fråga [at] kundtjänst.",
        lambda: "Snabel-a saknas på tangentbordet, vi ses at the office.",
        lambda: f"Pris {_full_width(f'{rng.randrange(1, 9)} {_digits(rng, 3)}')} kr.",
        lambda: "Спасибо за помощь, до встречи в офисе.",
        lambda: f"Berg &amp; Söner AB, åren {year - 5}&#8211;{year}.",
        lambda: "Tack\u200b för hjälpen, det var verk\u00adligen bra.",
    ]


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


def _message(rng: random.Random) -> LabelledItem:
    """One message of 40-400 characters: greeting, filler, identifiers and look-alikes, closing;
    a quarter of them on several lines."""
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
    text = ("\n" if _extended(rng) and rng.random() < 0.25 else " ").join([head, *(p[0] for p in middle), tail])
    truth = [t for _, found in middle for t in found]
    return text, truth


def labelled_writings(n: int, seed: int = 1, extended: bool = True) -> list[LabelledItem]:
    """``n`` texts of 40-400 characters with their true identifiers and how each is written;
    ~60 % hold at least one. ``extended=False``: canonical writings only, on one line, as the
    corpus was before the other writings (for comparing throughput on today's texts)."""
    rng = _Rng(seed, extended)
    return [_message(rng) for _ in range(n)]


def labelled_corpus(n: int, seed: int = 1) -> list[Item]:
    """``labelled_writings`` with (kind, normalised) truth."""
    return [(text, [(kind, value) for kind, value, _ in labels]) for text, labels in labelled_writings(n, seed)]


# -- scoring -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scores:
    kind: str  # or a writing (score_writings)
    true_positives: int
    false_positives: int
    false_negatives: int
    same_writing: int = 0  # true positives the detector says were written as the truth says (score_writings)

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


def score_writings(corpus: list[LabelledItem], detect: Callable[[str], list[Label]]) -> dict[str, Scores]:
    """Precision and recall per writing: findings match the truth by (kind, normalised); a
    true positive or false negative counts for the writing of the truth, a false positive for
    the writing the detector reports."""
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    same: Counter[str] = Counter()
    for text, truth in corpus:
        want: dict[tuple[str, str], list[str]] = {}
        got: dict[tuple[str, str], list[str]] = {}
        for kind, value, writing in truth:
            want.setdefault((kind, value), []).append(writing)
        for kind, value, writing in detect(text):
            got.setdefault((kind, value), []).append(writing)
        for key in want.keys() | got.keys():
            truths, founds = sorted(want.get(key, [])), sorted(got.get(key, []))
            matched = min(len(truths), len(founds))
            for writing in truths[:matched]:
                tp[writing] += 1
                same[writing] += writing in founds
            for writing in truths[matched:]:
                fn[writing] += 1
            for writing in founds[matched:]:
                fp[writing] += 1
    return {w: Scores(w, tp[w], fp[w], fn[w], same[w]) for w in WRITINGS if tp[w] or fp[w] or fn[w]}
