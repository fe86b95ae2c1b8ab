"""Personal identifiers in free text: e-mail, Swedish phone numbers, personnummer and
samordningsnummer, organisationsnummer, IPv4/IPv6 addresses and URLs, however they were written.

One compiled expression per kind finds candidates, each kind behind a cheap pre-check (no '@':
no e-mail pass); every candidate is then validated in Python (Luhn check digit, a real date,
octet ranges, the Swedish numbering plan), so look-alikes such as order numbers, dates, prices
and numbers with a wrong check digit do not match. Kinds are searched independently and
overlaps settled afterwards by precedence (email > url > ipv6 > ipv4 > personnummer and
samordningsnummer > org_number > phone), so a rejected candidate of one kind never hides a
valid one of another.

Writings (``Finding.writing``), each kept as precise as the canonical one:
- canonical: 811218-9876, 070-123 45 67, +46 (0)70-123 45 67, anna@x.se ...
- spaced: personnummer with a space (811218 9876), a grouped or dotted date (81 12 18-9876,
  1981.12.18-9876) or a line break after the dash; phones with dots, slashes or a spaced dash,
  46 without the plus, digits in pairs, a line break between digit groups; an e-mail broken
  by a line break at '@' or at a dot of its domain;
- obfuscated: e-mails with (at) [at] {at} snabel-a, ' at ' with ' dot ', (dot), spaces around
  '@', the HTML entity &#64;;
- unicode: text copied from web pages and PDFs, read as a person reads it: Unicode NFKC
  (full-width digits and '＠'), zero-width characters and soft hyphens removed, other dashes
  and spaces folded, Greek and Cyrillic look-alike letters folded inside Latin words, HTML
  entities decoded. Such a text is searched in a normalised copy whose every character
  remembers where it came from, so a finding's span always cuts the original text.
Only texts holding such characters pay for the normalised copy; the others take the
canonical pass alone (a few byte-level checks decide). A line break is read as inside an
identifier only where that is the one reading (after '@', a dash, between digit groups that
make no number alone, before a common top-level domain); where a plain reading and a joined
or de-obfuscated one overlap, the plain one wins ("anna@x.se.\nTack" is anna@x.se).

Names: a free name cannot be told from an ordinary word reliably (Swedish surnames are also
words: Berg, Lind, Strand), so names are found only where a reliable signal exists: a name the
same record already holds in a structured column (see lifecycle.discovery.scan).
"""

from __future__ import annotations

import html
import ipaddress
import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from operator import itemgetter
from typing import Literal, NamedTuple

VERSION = "3"  # bump when detection changes: scans then rescan every free-text source in full

Kind = Literal["email", "phone", "personnummer", "samordningsnummer", "org_number", "ipv4", "ipv6", "url"]
Writing = Literal["canonical", "spaced", "obfuscated", "unicode"]
WRITINGS: tuple[Writing, ...] = ("canonical", "spaced", "obfuscated", "unicode")


class Finding(NamedTuple):
    kind: Kind
    start: int
    end: int
    normalised: str
    writing: Writing = "canonical"  # how it was written (see the module's docstring)


Candidate = tuple[Kind, int, int, str, Writing]
_tuple = tuple.__new__  # a Finding from a Candidate, without the keyword-argument machinery

# Where spans overlap, the lower number wins; then the plainer reading (see _RANK).
_PRECEDENCE: dict[str, int] = {
    "email": 0, "url": 1, "ipv6": 2, "ipv4": 3, "personnummer": 4, "samordningsnummer": 4, "org_number": 5, "phone": 6,
}
# A reading that joins across a line break or undoes an obfuscation gives way to a plain one.
_RANK: dict[str, int] = {"canonical": 0, "unicode": 0, "spaced": 1, "obfuscated": 2}
_ORDER = {(k, w): p * 4 + r for k, p in _PRECEDENCE.items() for w, r in _RANK.items()}
_START = itemgetter(1)

# Speed: a pattern that starts with a literal character lets the regex engine jump straight to
# its occurrences, and a class such as [0-9] still lets it skip quickly; a leading lookbehind
# would be tried at every position. So the check on the preceding character is a lookbehind
# placed after the first character, or done in Python on the few candidates.
_LOCAL_REVERSED = re.compile(r"[\w.%+-]{1,64}")
_DOMAIN = re.compile(r"[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}(?![\w-])")
_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"'`{}|\\^\[\]]+", re.IGNORECASE)
_IPV6 = re.compile(r"[0-9A-Fa-f:](?<![\w.][0-9A-Fa-f:])[0-9A-Fa-f:]{1,38}"
                   r"(?:(?<=:)[0-9]{1,3}(?:\.[0-9]{1,3}){3})?(?![\w:]|\.[0-9])")
_COLON_RUN = re.compile(r":[0-9A-Fa-f:]*")
_HEX = frozenset("0123456789abcdefABCDEF")
_ANY_DIGIT = re.compile(r"[0-9]")
_IPV4_HINT = re.compile(r"\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]")
_IPV4 = re.compile(r"[0-9](?<![\w.][0-9])[0-9]{0,2}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(?!\w|\.[0-9])")
# 12 digits only with a century (19, 20) or the organisation prefix 16; else 10 digits. Also
# a date grouped or dotted (81 12 18, 1981.12.18: then a dash must follow), and before the last
# four a space, a spaced dash, or a dash and a line break.
_IDNUM = re.compile(
    r"[0-9](?<![\w+.,][0-9])"
    r"(?:[0-9]{7}(?<=(?:16|19|20)[0-9]{6})|[0-9]{5}"
    r"|(?:[0-9]{3}(?<=(?:19|20)[0-9]{2})|[0-9])([ .])[0-9]{2}\1[0-9]{2}(?=[ \u00a0]?[-+\u2013]))"
    r"(?:[-+\u2013](?:[ \t]*\r?\n[ \t]*|[ \u00a0])?|[ \u00a0](?:[-+\u2013][ \u00a0]?)?)?"
    r"[0-9]{4}(?![\w+]|[-.,:][0-9])")
_SEPARATORS = " -\u2013\u00a0"  # space, hyphen, en dash (word processors), no-break space
# Between a phone number's digit groups: one of those or a dot, with a blank either side (the
# expression accepts ". " too, cheaper than an alternative; a candidate ends there: _phones);
# a slash only after the area code (08/123 45 67: "070-123 45 67/08-123 45 67" is two numbers).
_SEP = "[ \u00a0]?[-\u2013 \u00a0.][ \u00a0]?"
_RUN_END = "(?![-\u2013 \u00a0.]?[0-9]|\\w)"  # the whole run of digit groups is the number, no more
# The slashed form (08/123 45 67) apart: looked for only in texts holding a '/'.
_PHONE = re.compile(  # 070-123 45 67, 0046 70 123 45 67, 0046 (0)8-123 456 78, 070.123.45.67
    rf"0(?:(?:046(?:{_SEP})?(?:\(0\)(?:{_SEP})?|0(?:{_SEP})?)?)?[1-9](?:(?:{_SEP})?[0-9]){{5,10}}){_RUN_END}")
_PHONE_SLASHED = re.compile(rf"0[1-9][0-9]{{0,2}}/[0-9](?:(?:{_SEP})?[0-9]){{4,8}}{_RUN_END}")  # 08/123 45 67
_PHONE_MARKED = re.compile(  # +46 (0)70-123 45 67, +46 8 123 456 78, (08) 123 45 67
    rf"(?:\+46(?:{_SEP})?(?:\(0\)(?:{_SEP})?|0(?:{_SEP})?)?[1-9](?:(?:{_SEP})?[0-9]){{5,10}}"
    rf"|\(0[1-9][0-9]{{0,2}}\)(?:{_SEP})?[1-9](?:(?:{_SEP})?[0-9]){{4,7}}){_RUN_END}")
_PHONE_BARE = re.compile(rf"46(?:{_SEP})?[1-9](?:(?:{_SEP})?[0-9]){{6,8}}{_RUN_END}")  # 46 70 123 45 67
_SENTENCE_END = re.compile(r"[ \u00a0]?\.[ \u00a0]|[ \u00a0]\.")

_NON_DIGITS = re.compile(r"[^0-9]")
_DIGIT_GROUPS = re.compile(r"[0-9]+")
_NEXT_GROUP = re.compile(r"[ \u00a0][0-9]")
_DOTTED = re.compile(r"[0-9]+(?:\.[0-9]+)+")
_SPACED_PHONE = re.compile(r"[./]|[ \u00a0][-\u2013 \u00a0]|[-\u2013][ \u00a0]")
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
_DATE_LIKE = re.compile(r"0[0-9]([-./])[01][0-9]\1(?:19|20)[0-9]{2}")  # 08-12-2024 is a day, not Stockholm
_TIME_RANGE = re.compile(r"0[0-9][0-5][0-9] ?[-\u2013] ?[0-2][0-9][0-5][0-9]")  # opening hours 0830-1700
_MOBILE_SECOND_DIGIT = "02369"  # 070 072 073 076 079; 071 (M2M), 074, 075, 077, 078 are not personal
_ORG_GROUPS = "12356789"  # an organisationsnummer's first digit is its legal-form group; 0 and 4 unused

# E-mail obfuscations. '@': (at) [at] {at} <at> (@), snabel-a (Swedish for '@'), ' at ' (only
# with a ' dot ' in the domain: "available at example.com" stays English); '.': (dot) [punkt]
# ' dot '; a line break after '@' or a domain's dot.
# Brackets are found with str.find and the marker matched there: cheaper than scanning every
# text with an expression that starts with a class of four brackets.
_AT_BRACKETED = re.compile(r"[(\[{<][ \t]*(?:at|@|snabel-?a)[ \t]*[)\]}>][ \t]*", re.IGNORECASE)
_AT_SNABEL = re.compile(r"snabel-?a[ \t]+", re.IGNORECASE)
_AT_WORD = re.compile(r"[ \t]at[ \t]+", re.IGNORECASE)
_DOT = r"(?:[ \t]*[(\[{<][ \t]*(?:dot|punkt)[ \t]*[)\]}>][ \t]*|[ \t]+dot[ \t]+|\.)"
_DOT_REVERSED = r"(?:[ \t]*[)\]}>][ \t]*(?:tod|tknup)[ \t]*[(\[{<][ \t]*|[ \t]+tod[ \t]+|\.)"
_DOMAIN_OBFUSCATED = re.compile(rf"[\w-]+(?:{_DOT}[\w-]+)*{_DOT}[^\W\d_]{{2,}}(?![\w-])", re.IGNORECASE)
_LOCAL_OBFUSCATED_REVERSED = re.compile(rf"[\w%+-]{{1,64}}(?:{_DOT_REVERSED}[\w%+-]{{1,64}})*", re.IGNORECASE)
_DOT_FORMS = re.compile(_DOT, re.IGNORECASE)
# A domain broken at its only dot: "exempel.\nse". Only a top-level domain's letters may follow,
# in the case of the rest, not a new line: "fråga [at] kundtjänst.\nLeverans ...", "...\nmail: ..."
_TLDS = frozenset({  # the common ones, where a line break makes a domain ambiguous
    "se", "nu", "com", "org", "net", "eu", "io", "info", "biz", "fi", "no", "dk", "is", "de", "uk", "fr", "nl", "es",
    "it", "pl", "ee", "lv", "lt", "at", "ch", "be", "us", "ca", "au", "app", "dev", "tech", "online", "shop", "me",
})
_DOMAIN_BROKEN = re.compile(r"(?:[^\W_A-Z]+(?:-[^\W_A-Z]+)*\.[ \t]*\r?\n[ \t]*[a-z]{2,6}"
                            r"|[^\W_a-z]+(?:-[^\W_a-z]+)*\.[ \t]*\r?\n[ \t]*[A-Z]{2,6})(?![\w:-]|\.\w)")
_OPENERS = "([{<"
_WORD_DOT = re.compile(r"[ \t]dot[ \t]|[(\[{<][ \t]*(?:dot|punkt)", re.IGNORECASE)
_BLANKS = " \t\r\n"

# Characters a person does not see, or sees as another: the text is then read in a normalised copy.
INVISIBLE = frozenset("\u00ad\u180e\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                       "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff")
_DASHES = frozenset("\u2010\u2011\u2012\u2212\ufe63\uff0d")
_CONFUSABLES = str.maketrans(
    "аеорсухіјѕԁһӏԛԝАВЕЅІЈКМНОРСТХУ"  # Cyrillic
    "αοινκρυχΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",  # Greek
    "aeopcyxijsdhlqwABESIJKMHOPCTXY"
    "aoivkpuxABEZHIKMNOPTYX")


def _look_alikes() -> dict[str, str]:
    """Latin letter (lower case) -> the letters read as it, either case."""
    out: dict[str, str] = {}
    for code, latin in _CONFUSABLES.items():
        out[chr(latin).lower()] = out.get(chr(latin).lower(), "") + chr(code)
    return out


LOOK_ALIKES = _look_alikes()
_UNUSUAL = ("\u00ad\u0300-\u036f\u0370-\u03ff\u0400-\u052f\u180e\u2000-\u2012\u2024\u2028-\u202f\u205f-\u2064"
            "\u2066-\u2069\u2212\u3000\ufe50-\ufe6b\ufeff\uff01-\uff5e\U0001d400-\U0001d7ff")
_UNUSUAL_HINT = re.compile(f"[{_UNUSUAL}]")
_ENTITY = r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6});?|&[A-Za-z][A-Za-z0-9]{1,31};"
_ENTITY_HINT = re.compile(_ENTITY)
_UNUSUAL_OR_ENTITY = re.compile(f"[{_UNUSUAL}&]")  # one class: a scan tries one test a character
_RUNS = (  # (first, last character, expression): where a piece of unusual text that starts so ends
    ("&", "&", re.compile(_ENTITY)), ("\u0300", "\u036f", re.compile("[\u0300-\u036f]+")),
    ("\u0370", "\u052f", re.compile("[\u0370-\u03ff\u0400-\u052f]+")),
    ("\uff01", "\uff5e", re.compile("[\uff01-\uff5e]+")),
)
_ASCII_ALNUM = re.compile(r"[A-Za-z0-9]")
_LINE_STARTING_WITH_DIGIT = re.compile(r"\n[ \t]*(?=[0-9])")


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
    return _identity_digits(digits, separator, reference_year)


def _identity_digits(digits: str, separator: str, reference_year: int) -> tuple[Kind, str] | None:
    """10 or 12 ASCII digits, '+' as ``separator`` for people of 100 or more."""
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


def _phone_body(raw: str) -> str:
    """What follows the country code (+46, 0046, 46) or trunk zero, as written."""
    if raw[0] == "+":
        body = raw[3:]
    elif raw.startswith("0046"):
        body = raw[4:]
    elif raw[0] == "4":
        body = raw[2:]
    else:
        return raw.lstrip("(")[1:]
    body = body.lstrip(_SEPARATORS + ".")
    return body[3:] if body.startswith("(0)") else body.removeprefix("0")


def _phone(raw: str) -> tuple[str, Writing] | None:
    """E.164 of a matched candidate and how it was written, also judging the writing itself:
    a separated area code is 1-3 digits after the zero, a one-digit one is 8 (Stockholm), so
    01-12-2024 is no number (07 01 23 45 67, in pairs, is); dots separate every group or none."""
    if len(raw) <= 11 and ((raw[2] in "-./" and _DATE_LIKE.fullmatch(raw))
                           or (raw[4] in " -\u2013" and _TIME_RANGE.fullmatch(raw))):
        return None
    body = _phone_body(raw)
    groups = _DIGIT_GROUPS.findall(body)
    if not groups:
        return None
    first = groups[0]
    writing: Writing = "canonical"
    if len(groups) > 1 and (len(first) > 3 or (len(first) == 1 and first != "8")):
        if not (raw[0] == "0" and len(groups) >= 4 and all(len(g) == 2 for g in _DIGIT_GROUPS.findall(raw))):
            return None
        writing = "spaced"  # in pairs
    if raw[0] == "4":
        if len(groups) == 1 and len(first) != 9:
            return None  # 46 and no separator: only the full 11 digits of an exported E.164 number
        writing = "spaced"
    if "." in body and not _DOTTED.fullmatch(body):
        return None
    if writing == "canonical" and _SPACED_PHONE.search(raw):
        writing = "spaced"
    value = _numbering_plan("".join(groups))
    return (value, writing) if value else None


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
    """Whether a number starts its run of digit groups: "SE45 5000 0583 9825 74", "2024-0701234567"
    and "1.070.123" do not, "kl 14:30 070-123 45 67" does."""
    if start == 0:
        return True
    before = text[start - 1]
    if before.isalnum() or before in "+_":
        return False
    if start < 2 or not text[start - 2].isdigit():
        return True
    if before == ".":
        return False
    if before not in _SEPARATORS:
        return True
    token = text[max(0, start - 12):start - 1].rsplit(None, 1)[-1]  # the token before the separator
    return ":" in token or "." in token


# -- candidates per kind ---------------------------------------------------------------------


def _read_address(text: str, local_end: int, domain_start: int) -> tuple[int, int, str] | None:
    """The address whose local part ends at ``local_end`` and whose domain starts at
    ``domain_start``: (start, end, normalised). Plain first; then with obfuscated dots, or a
    domain broken by a line break before a common top-level domain."""
    local = _LOCAL_REVERSED.match(text[max(0, local_end - 64):local_end][::-1])
    domain = _DOMAIN.match(text, domain_start) if local else None
    name = local.group()[::-1].lstrip(".") if local and domain else ""
    if domain and name:
        return local_end - len(name), domain.end(), f"{name}@{domain.group()}".lower()
    domain = _DOMAIN_OBFUSCATED.match(text, domain_start) or _DOMAIN_BROKEN.match(text, domain_start)
    if domain is None or (domain.re is _DOMAIN_BROKEN and domain.group()[-6:].split()[-1].lower() not in _TLDS):
        return None
    local = _LOCAL_OBFUSCATED_REVERSED.match(text[max(0, local_end - 160):local_end][::-1])
    if local is None:
        return None
    written = local.group()[::-1]
    name = _DOT_FORMS.sub(".", written)
    host = "".join(_DOT_FORMS.sub(".", domain.group()).split())
    return local_end - len(written), domain.end(), f"{name}@{host}".lower()


def _address_writing(text: str, start: int, end: int, value: str) -> Writing:
    written = text[start:end]
    if len(written) == len(value):
        return "canonical"
    if "".join(written.split()).lower() == value:
        return "spaced" if "\n" in written else "obfuscated"
    return "obfuscated"


def _emails(text: str) -> list[Candidate]:
    """Anchored on each '@' (with blanks or a line break around it, too): the local part is
    read backwards, the domain forwards."""
    found: list[Candidate] = []
    at = text.find("@")
    while at != -1:
        hit = _read_address(text, at, at + 1)
        if hit is None:
            hit = _spaced_at(text, at)
        if hit:
            found.append(("email", hit[0], hit[1], hit[2], _address_writing(text, *hit)))
            at = text.find("@", hit[1])
        else:
            at = text.find("@", at + 1)
    return found


def _spaced_at(text: str, at: int) -> tuple[int, int, str] | None:
    lo, hi = at, at + 1
    while lo > 0 and text[lo - 1] in _BLANKS:
        lo -= 1
    while hi < len(text) and text[hi] in _BLANKS:
        hi += 1
    return _read_address(text, lo, hi) if (lo, hi) != (at, at + 1) else None


def _obfuscated_emails(text: str) -> list[Candidate]:
    """Anchored on each written-out '@': (at), [at], snabel-a, ' at ' (with a ' dot ')."""
    marks = [m for opener in _OPENERS if opener in text for m in _matches_at(text, opener, 0, _AT_BRACKETED)]
    if "nabel" in text:  # Snabel-a, snabel-a, snabela
        marks += _matches_at(text, "nabel", -1, _AT_SNABEL)
    if "dot" in text:
        marks += _AT_WORD.finditer(text)
    found: list[Candidate] = []
    for m in marks:
        local_end = m.start()
        while local_end > 0 and text[local_end - 1] in " \t":
            local_end -= 1
        hit = _read_address(text, local_end, m.end())
        if hit and (m.re is not _AT_WORD or _WORD_DOT.search(text, m.end(), hit[1])):
            found.append(("email", hit[0], hit[1], hit[2], "obfuscated"))
    return found


def _matches_at(text: str, needle: str, offset: int, pattern: re.Pattern[str]) -> list[re.Match[str]]:
    """``pattern`` matched ``offset`` characters from each occurrence of ``needle``."""
    found = []
    at = text.find(needle)
    while at != -1:
        if at + offset >= 0 and (m := pattern.match(text, at + offset)):
            found.append(m)
        at = text.find(needle, at + 1)
    return found


def _trim_url(url: str) -> str:
    """Sentence punctuation after a URL is not part of it, nor is an unbalanced ')'."""
    while url and (url[-1] in ".,;:!?'\"»" or (url[-1] == ")" and url.count("(") < url.count(")"))):
        url = url[:-1]
    return url


def _urls(text: str) -> list[Candidate]:
    found: list[Candidate] = []
    for m in _URL.finditer(text):
        url = _trim_url(m.group())
        host = url.split("//", 1)[-1]
        if _free_start(text, m.start(), "@./-_") and "." in host.rstrip(".") and len(host) > 4:
            found.append(("url", m.start(), m.start() + len(url), url, "canonical"))
    return found


def _ipv6s(text: str) -> list[Candidate]:
    """Anchored on runs of colons (an address starts at most a hex group before its first)."""
    found: list[Candidate] = []
    pos = 0
    while (run := _COLON_RUN.search(text, pos)) is not None:
        start = run.start()
        while start > 0 and text[start - 1] in _HEX:
            start -= 1
        m = _IPV6.match(text, start)
        while m is None and (start := text.find(":", start, run.end()) + 1):  # "IPv6:2001:db8::1"
            m = _IPV6.match(text, start)
        pos = max(run.end(), m.end() if m else 0)
        if m is None:
            continue
        raw = m.group()
        if raw.count(":") >= 2 and raw.strip(":") and (value := _ip(raw, 6)):
            found.append(("ipv6", m.start(), m.end(), value, "canonical"))
    return found


def _ipv4s(text: str) -> list[Candidate]:
    found: list[Candidate] = []
    for m in _IPV4.finditer(text):
        raw = m.group()
        if _octets_ok(raw) and not _VERSION_LABEL.search(text, max(0, m.start() - 12), m.start()):
            found.append(("ipv4", m.start(), m.end(), raw, "canonical"))
    return found


def _octets_ok(raw: str) -> bool:
    """Four octets of 0-255 without leading zeros (as ipaddress reads them; faster): then the
    address is written in its normal form."""
    return all(len(o) == 1 or (o[0] != "0" and int(o) <= 255) for o in raw.split("."))


def _identity_numbers(text: str, reference_year: int) -> list[Candidate]:
    found: list[Candidate] = []
    for m in _IDNUM.finditer(text):
        raw = m.group()
        plain = raw.isdigit()
        if plain or (raw[-5] in "-+\u2013" and raw[:-5].isdigit()):
            hit = _identity_digits(raw if plain else raw[:-5] + raw[-4:], "" if plain else raw[-5], reference_year)
            if hit is None:
                continue
            if raw[0] == "0" and raw.isdigit() and _numbering_plan(raw[1:]) and not _person_labelled(text, m.start()):
                continue  # 0701234567 is read as a phone number unless the text says personnummer
            found.append((hit[0], m.start(), m.end(), hit[1], "canonical"))
        elif hit := _spaced_identity_number(text, m, reference_year):
            found.append((hit[0], m.start(), m.end(), hit[1], "spaced"))
    return found


def _spaced_identity_number(text: str, m: re.Match[str], reference_year: int) -> tuple[Kind, str] | None:
    """A personnummer or samordningsnummer written with blanks or a grouped date: the whole run
    of digit groups, not labelled as another number (organisationsnummer keep their dash)."""
    start, raw = m.start(), m.group()
    if not _digit_run_start(text, start) or _NEXT_GROUP.match(text, m.end()):
        return None
    hit = _identity_digits(_NON_DIGITS.sub("", raw), "+" if "+" in raw else "-", reference_year)
    if hit is None or hit[0] == "org_number" or _labelled_other_number(text, start):
        return None
    return hit


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


def _phones(text: str) -> list[Candidate]:
    found: list[Candidate] = []
    patterns = [_PHONE]
    if "/" in text:
        patterns.append(_PHONE_SLASHED)
    if ("+" in text and "+46" in text) or ("(" in text and "(0" in text):
        patterns.append(_PHONE_MARKED)
    if " 46" in text or "(46" in text or "\n46" in text or text.startswith("46"):
        patterns.append(_PHONE_BARE)
    for pattern in patterns:
        for m in pattern.finditer(text):
            start, raw = m.start(), m.group()
            if not _digit_run_start(text, start):
                continue
            if "." in raw and (cut := _SENTENCE_END.search(raw)):  # "070-123 45 67. 2 st": a sentence ends
                raw = raw[:cut.start()]
            hit = _phone(raw)
            if hit and not _labelled_other_number(text, start):
                found.append(("phone", start, start + len(raw), hit[0], hit[1]))
    return found


# -- normalised copies of a text ---------------------------------------------------------------


Edit = tuple[int, int, str, Writing]  # (start, end, replacement, writing) in the original


class _Copy(NamedTuple):
    """A rewritten text; each of its characters knows the span of the original it came from
    (through the edits, by bisection: a copy costs its edits, not its length)."""

    text: str
    anchors: list[int]  # where each edit's replacement starts in the copy, ascending
    edits: list[tuple[int, int, int, Writing]]  # (start, end) in the original, replacement length, writing

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original that ``start:end`` of the copy came from."""
        return self._origin(start)[0], self._origin(end - 1)[1]

    def _origin(self, at: int) -> tuple[int, int]:
        i = bisect_right(self.anchors, at) - 1
        if i < 0:
            return at, at + 1
        a, b, n, _ = self.edits[i]
        inside = at - self.anchors[i]
        if inside >= n:  # after the replacement: unchanged text
            return b + inside - n, b + inside - n + 1
        return (a + inside, a + inside + 1) if n == b - a else (a, b)

    def writings(self, start: int, end: int) -> set[Writing]:
        """How the edits inside ``start:end`` of the copy rewrote the original (a removal counts
        where the next character is)."""
        i = bisect_left(self.anchors, start)
        return {self.edits[j][3] for j in range(i, bisect_left(self.anchors, end, i))}

    def original(self, c: Candidate, text: str) -> Candidate:
        """``c`` (found in the copy) in ``text``, the original, with how it was written there."""
        kind, start, end, value, writing = c
        o_start, o_end = self.span(start, end)
        if text[o_start:o_end] != self.text[start:end]:  # else no edit inside: written as found
            inside = self.writings(start, end)
            writing = next((w for w in ("obfuscated", "unicode", "spaced") if w in inside), "unicode")
        return kind, o_start, o_end, value, writing

    def touched(self, c: Candidate) -> bool:
        return bool(self.writings(c[1], c[2]))


def _rewrite(text: str, edits: Iterable[Edit]) -> _Copy | None:
    """``text`` with ``edits`` (in order, not overlapping) applied; None when there are none. A
    replacement as long as what it replaces maps character by character, else each of its
    characters to the whole replaced span."""
    pieces: list[str] = []
    anchors: list[int] = []
    spans: list[tuple[int, int, int, Writing]] = []
    last = length = 0
    for a, b, new, writing in edits:
        pieces.append(text[last:a])
        pieces.append(new)
        length += a - last
        anchors.append(length)
        spans.append((a, b, len(new), writing))
        length += len(new)
        last = b
    if not spans:
        return None
    pieces.append(text[last:])
    return _Copy("".join(pieces), anchors, spans)


def _mixed_word(text: str, at: int) -> bool:
    """Whether the blank-delimited word around ``at`` also holds Latin letters or digits."""
    lo, hi = at, at + 1
    while lo > 0 and not text[lo - 1].isspace():
        lo -= 1
    while hi < len(text) and not text[hi].isspace():
        hi += 1
    return _ASCII_ALNUM.search(text, lo, hi) is not None


def _piece_end(text: str, at: int) -> int:
    """Where the piece of unusual text starting at ``at`` ends: an entity, a run of combining
    marks, of Greek and Cyrillic letters or of full-width forms, else one character."""
    ch = text[at]
    for first, last, run in _RUNS:
        if first <= ch <= last:
            m = run.match(text, at)
            return m.end() if m else at + 1
    return at + 1


def _as_read(text: str, start: int, end: int) -> tuple[str, Writing] | None:
    """One piece of text as a person reads it (see the module's docstring)."""
    piece = text[start:end]
    first = piece[0]
    if first == "&":
        new = unicodedata.normalize("NFKC", html.unescape(piece))
        if new == piece:
            return None
        return new, "obfuscated" if new in ("@", ".") else "unicode"
    if first in INVISIBLE:
        return "", "unicode"
    if first in _DASHES:
        return "-", "unicode"
    if first in "\u2028\u2029":  # line and paragraph separators
        return "\n", "unicode"
    if "\u0370" <= first <= "\u052f":  # a run of Greek, Cyrillic
        folded = piece.translate(_CONFUSABLES)
        return (folded, "unicode") if folded != piece and _mixed_word(text, start) else None
    new = unicodedata.normalize("NFKC", piece)
    return (new, "unicode") if new != piece else None


def _reading_edits(text: str) -> Iterator[Edit]:
    last = pos = 0
    while (m := _UNUSUAL_OR_ENTITY.search(text, pos)) is not None:
        start = m.start()
        pos = end = _piece_end(text, start)
        if "\u0300" <= text[start] <= "\u036f":  # combining marks: composed with the character before
            if start > last:
                yield start - 1, end, unicodedata.normalize("NFKC", text[start - 1:end]), "unicode"
                last = end
        elif new := _as_read(text, start, end):
            yield start, end, new[0], new[1]
            last = end


def _digit_break_edits(text: str) -> Iterator[Edit]:
    """Each line break between digit groups, or after the dash of one, joined: by a blank, or
    by the dash."""
    for m in _LINE_STARTING_WITH_DIGIT.finditer(text):
        before = m.start()
        while before > 0 and text[before - 1] in " \t\r":
            before -= 1
        dash = before > 0 and text[before - 1] in "-\u2013"
        before -= dash
        if before > 0 and text[before - 1].isdigit():
            yield before, m.end(), text[before] if dash else " ", "spaced"


def unicode_view(text: str) -> _Copy | None:
    """``text`` as a person reads it, with where each character came from; None when it reads
    as written (the common case, decided by cheap checks first)."""
    try:  # most texts: Latin-1 (one byte a character, encoded by copying)
        text.encode("latin-1")
        unusual = "\u00ad" in text
    except UnicodeEncodeError:
        unusual = _UNUSUAL_HINT.search(text) is not None
    if not unusual and not ("&" in text and _ENTITY_HINT.search(text)):
        return None
    return _rewrite(text, _reading_edits(text))


def readable(text: str) -> str:
    """``text`` as a person reads it (see ``unicode_view``)."""
    view = unicode_view(text)
    return view.text if view else text


# -- the public API ----------------------------------------------------------------------------


def _candidates(text: str, reference_year: int) -> list[Candidate]:
    digits = _ANY_DIGIT.search(text) is not None  # a quarter of messages hold no number at all
    found = _identity_numbers(text, reference_year) + _phones(text) if digits else []
    if "@" in text:
        found += _emails(text)
    if "(" in text or "[" in text or "{" in text or "<" in text or "nabel" in text or "dot" in text:
        found += _obfuscated_emails(text)
    if ("/" in text and "://" in text) or (("w" in text or "W" in text) and ("ww." in text or "WW." in text)):
        found += _urls(text)
    if ":" in text and ("::" in text or text.count(":") >= 6):  # a full IPv6 address has 7 colons, 6 with IPv4 inside
        found += _ipv6s(text)
    if digits and _IPV4_HINT.search(text):
        found += _ipv4s(text)
    if digits and "\n" in text and _LINE_STARTING_WITH_DIGIT.search(text) and (joined := _rewrite(text, _digit_break_edits(text))):
        numbers = _identity_numbers(joined.text, reference_year) + _phones(joined.text)
        found += [joined.original(c, text) for c in numbers if joined.touched(c)]
    return found


def _resolve(candidates: list[Candidate]) -> list[Candidate]:
    """Keep the highest-precedence candidate wherever spans overlap, in text order (bisect, so
    a long document with thousands of candidates stays fast)."""
    in_order = sorted(candidates, key=_START)
    if all(a[2] <= b[1] for a, b in zip(in_order, in_order[1:])):
        return in_order  # the common case: nothing overlaps
    kept: list[Candidate] = []  # disjoint, sorted by start
    starts: list[int] = []
    for c in sorted(candidates, key=lambda c: (_ORDER[c[0], c[4]], c[1])):
        i = bisect_left(starts, c[1])
        if (i == 0 or kept[i - 1][2] <= c[1]) and (i == len(kept) or c[2] <= kept[i][1]):
            kept.insert(i, c)
            starts.insert(i, c[1])
    return kept


def find_identifiers(text: str, *, reference_year: int = 2026) -> list[Finding]:
    """Every identifier in ``text``, sorted by start, without overlaps, however written.

    ``reference_year`` anchors the century of 10-digit personnummer: use the year the text was
    written when it is known."""
    if not text:
        return []
    view = unicode_view(text) if not text.isascii() or "&" in text else None
    if view is None:
        candidates = _candidates(text, reference_year)
    else:
        candidates = [view.original(c, text) for c in _candidates(view.text, reference_year)]
    if len(candidates) > 1:
        candidates = _resolve(candidates)
    return [_tuple(Finding, c) for c in candidates]


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
