"""Free-text detectors: every identifier kind, its look-alikes, and the labelled corpus."""

from __future__ import annotations

import pytest

from lifecycle.corpus import labelled_corpus, score
from lifecycle.detect import find_identifiers, redact


def kinds(text: str) -> list[tuple[str, str]]:
    return [(f.kind, f.normalised) for f in find_identifiers(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Skriv till Anna.Berg@Foretaget.SE tack", [("email", "anna.berg@foretaget.se")]),
        ("ring 070-123 45 67", [("phone", "+46701234567")]),
        ("ring +46 70 123 45 67", [("phone", "+46701234567")]),
        ("ring 0046701234567", [("phone", "+46701234567")]),
        ("ring +46 (0)70-123 45 67", [("phone", "+46701234567")]),
        ("ring 0701234567", [("phone", "+46701234567")]),
        ("växel 08-123 456 78", [("phone", "+46812345678")]),
        ("växel +46 8 123 456 78", [("phone", "+46812345678")]),
        ("pnr 811218-9876", [("personnummer", "198112189876")]),
        ("pnr 19811218-9876", [("personnummer", "198112189876")]),
        ("pnr 198112189876", [("personnummer", "198112189876")]),
        ("född 1912: 121212+1212", [("personnummer", "191212121212")]),
        ("samordningsnummer 811278-9873", [("samordningsnummer", "198112789873")]),
        ("orgnr 556898-9718", [("org_number", "5568989718")]),
        ("orgnr 16556898-9718", [("org_number", "5568989718")]),
        ("från 192.168.1.10.", [("ipv4", "192.168.1.10")]),
        ("från 2001:DB8::1", [("ipv6", "2001:db8::1")]),
        ("se https://www.exempel.se/kontakt.", [("url", "https://www.exempel.se/kontakt")]),
    ],
)
def test_finds_each_kind(text: str, expected: list[tuple[str, str]]) -> None:
    assert kinds(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "pnr 811218-9875",            # wrong check digit
        "pnr 811332-1234",            # month 13 does not exist
        "pnr 810230-1239",            # 30 February
        "samordning 811292-9871",     # day 92 - 60 = 32
        "orgnr 556898-9719",          # wrong check digit
        "order 2024-118833",          # order number
        "möte 2025-03-14 kl 14:30",   # date and time
        "pris 1 299 kr och 12 500,00 SEK",
        "version 2.4.1 och 10.2.3.4.5",
        "IBAN SE45 5000 0000 0583 9825 7466",
        "ring 0000 123 45 67",        # no area code starts with 0
        "3.14159 och 999.1.1.1",
    ],
)
def test_look_alikes_do_not_match(text: str) -> None:
    assert kinds(text) == []


def test_person_and_company_numbers_are_told_apart() -> None:
    found = kinds("Anställd 811218-9876 hos 556898-9718")
    assert found == [("personnummer", "198112189876"), ("org_number", "5568989718")]


def test_redact_replaces_spans_only() -> None:
    text = "Hej, maila anna@x.se eller ring 070-123 45 67. Order 2024-118833."
    assert redact(text, find_identifiers(text)) == "Hej, maila [raderad] eller ring [raderad]. Order 2024-118833."
    assert redact(text, find_identifiers(text), lambda f: f"<{f.kind}>") == "Hej, maila <email> eller ring <phone>. Order 2024-118833."


def test_precision_and_recall_on_the_labelled_corpus() -> None:
    corpus = labelled_corpus(5000, seed=7)
    scores = score(corpus, kinds)
    assert set(scores) == {"email", "phone", "personnummer", "samordningsnummer", "org_number", "ipv4", "ipv6", "url"}
    for kind, s in scores.items():
        assert s.true_positives > 50, kind
        assert s.precision >= 0.99 and s.recall >= 0.99, (kind, s)
