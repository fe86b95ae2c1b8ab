"""Free-text detectors: every identifier kind, its look-alikes, and the labelled corpus."""

from __future__ import annotations

import ipaddress
import itertools

import pytest

from demo.corpus import labelled_corpus, score
from lifecycle.discovery.detect import Finding, find_identifiers, redact


def found(text: str, reference_year: int = 2026) -> list[tuple[str, str]]:
    return [(f.kind, f.normalised) for f in find_identifiers(text, reference_year=reference_year)]


def spans(text: str) -> list[str]:
    return [text[f.start:f.end] for f in find_identifiers(text)]


MOBILE = [("phone", "+46701234567")]


@pytest.mark.parametrize(
    "text",
    [
        "ring 070-123 45 67", "ring 070 123 45 67", "ring 0701234567", "ring 070-1234567", "ring 070\u2013123 45 67",
        "ring +46 70 123 45 67", "ring +46701234567", "ring +46 (0)70-123 45 67", "ring +46(0)70 123 45 67",
        "ring 0046 70 123 45 67", "ring 0046701234567", "ring +46-70-123 45 67", "ring +46 070-123 45 67",
        "tel:+46701234567", "(070-123 45 67)", "kl 14:30 070-123 45 67",
    ],
)
def test_mobile_phone_writings(text: str) -> None:
    assert found(text) == MOBILE


@pytest.mark.parametrize(
    ("text", "e164"),
    [
        ("växel 08-123 456 78", "+46812345678"), ("växel +46 8 123 456 78", "+46812345678"),
        ("växel 08-12 34 56", "+468123456"), ("växel 031-12 34 56", "+4631123456"),
        ("växel 031-123 45 67", "+46311234567"), ("växel 0520-123 45", "+4652012345"),
        ("växel (08) 123 45 67", "+4681234567"), ("växel (0520) 123 45.", "+4652012345"),
        ("växel 0046 8 123 456 78", "+46812345678"), ("växel +46 (0)31-12 34 56", "+4631123456"),
        ("växel 0812345678", "+46812345678"), ("mobil 079-123 45 67", "+46791234567"),
    ],
)
def test_landline_and_other_phone_writings(text: str, e164: str) -> None:
    assert found(text) == [("phone", e164)]


@pytest.mark.parametrize(
    "text",
    [
        "möte 2025-03-14", "möte 2025-03-14 kl 14:30", "loggat 2024-11-25 14:30:15", "leverans 08-12-2024",
        "leverans 01-12-2024", "order 2024-118833", "ordernr 118833", "ordernr 0851234567", "Order nr: 0851234567",
        "kundnr 0851234567", "kontonr 012 345 678-9", "pris 1 299 kr och 12 500,00 SEK", "pris 1 299:- eller 0,50 kr",
        "IBAN SE45 5000 0000 0583 9825 7466", "IBAN SE12 8000 0810 5934 1234 5678", "SE4550000000058398257466",
        "åren 2019-2024", "Öppet 0800-1700", "kort 4111 1111 1111 1111", "order 2024-0701234567",
        "070-123 45 6",     # mobile number one digit short
        "071-123 45 67",    # 071 is machine-to-machine, not a personal number
        "0000 123 45 67",   # no area code starts with 0
        "08-12 3",          # too short
        "+47 412 34 567",   # not Swedish
        "114 55 Stockholm",
    ],
)
def test_phone_look_alikes_do_not_match(text: str) -> None:
    assert found(text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pnr 811218-9876", ("personnummer", "198112189876")),
        ("pnr 811218\u20139876", ("personnummer", "198112189876")),
        ("pnr 8112189876", ("personnummer", "198112189876")),
        ("pnr 19811218-9876", ("personnummer", "198112189876")),
        ("pnr 198112189876.", ("personnummer", "198112189876")),
        ("pnr:811218-9876,", ("personnummer", "198112189876")),
        ("pnr 121212-1212", ("personnummer", "201212121212")),   # latest century not after 2026
        ("pnr 121212+1212", ("personnummer", "191212121212")),   # '+': a hundred years or older
        ("pnr 20000229-1235", ("personnummer", "200002291235")),  # 2000 was a leap year
        ("samordningsnummer 811278-9873", ("samordningsnummer", "198112789873")),
        ("samordningsnummer 19811278-9873", ("samordningsnummer", "198112789873")),
        ("orgnr 556898-9718", ("org_number", "5568989718")),
        ("orgnr 5568989718", ("org_number", "5568989718")),
        ("orgnr 16556898-9718", ("org_number", "5568989718")),
        ("orgnr 165568989718", ("org_number", "5568989718")),
        ("Skatteverket 212000-1421", ("org_number", "2120001421")),
        ("föreningen 802479-6545", ("org_number", "8024796545")),
    ],
)
def test_identity_numbers(text: str, expected: tuple[str, str]) -> None:
    assert found(text) == [expected]


@pytest.mark.parametrize(
    "text",
    [
        "pnr 811218-9875", "pnr 8112189875", "pnr 19811218-9875",   # wrong check digit
        "pnr 811332-1239",      # month 13, right check digit
        "pnr 811232-1230",      # day 32
        "pnr 810230-1234",      # 30 February
        "pnr 990229-1237",      # 29 February 1999
        "pnr 19000229-1235",    # 1900 was no leap year
        "pnr 20301212-1212",    # born in the future
        "samordning 811292-9875",   # day 92 - 60 = 32
        "orgnr 556898-9719",    # wrong check digit
        "orgnr 16811218-9876",  # the 16 prefix belongs to organisations, not people
        "kund 811218-98765", "ref 1811218-9876", "T811218-9876", "811218-9876-12",  # part of longer tokens
    ],
)
def test_invalid_identity_numbers_do_not_match(text: str) -> None:
    assert found(text) == []


def test_century_follows_the_reference_year() -> None:
    assert found("pnr 121212-1212", reference_year=2010) == [("personnummer", "191212121212")]
    assert found("pnr 251231-1230", reference_year=2026) == [("personnummer", "202512311230")]
    assert found("pnr 251231-1230", reference_year=2024) == [("personnummer", "192512311230")]


def test_person_and_company_numbers_are_told_apart() -> None:
    text = "Anställd 811218-9876 hos 556898-9718"
    assert found(text) == [("personnummer", "198112189876"), ("org_number", "5568989718")]


def test_a_bare_ten_digit_number_starting_with_zero_is_a_phone_unless_called_a_personnummer() -> None:
    assert found("ring 0701234569") == [("phone", "+46701234569")]
    assert found("personnummer 0701234569") == [("personnummer", "200701234569")]
    assert found("Kontaktperson: 0701234569") == [("phone", "+46701234569")]
    assert found("personnr: 030101-1235") == [("personnummer", "200301011235")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("från 192.168.1.10.", [("ipv4", "192.168.1.10")]),
        ("server 10.0.0.1:8080", [("ipv4", "10.0.0.1")]),
        ("[8.8.8.8]", [("ipv4", "8.8.8.8")]),
        ("från 2001:DB8::1", [("ipv6", "2001:db8::1")]),
        ("från 2001:0db8:0000:0000:0000:ff00:0042:8329.", [("ipv6", "2001:db8::ff00:42:8329")]),
        ("via [2001:db8::1]:443", [("ipv6", "2001:db8::1")]),
        ("länk fe80::1%eth0", [("ipv6", "fe80::1")]),
        ("IPv6:2001:db8::1", [("ipv6", "2001:db8::1")]),
        ("mappad ::ffff:192.0.2.128", [("ipv6", str(ipaddress.ip_address("::ffff:192.0.2.128")))]),  # not an IPv4
    ],
)
def test_ip_addresses(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "version 2.4.1 och 10.2.3.4.5", "version 1.2.3.4", "v1.2.3.4", "3.14159 och 999.1.1.1",
        "192.168.01.1", "kl 14:30", "kl 14:30:00", "MAC 00:1A:2B:3C:4D:5E", "Obs: se nedan: tack",
    ],
)
def test_ip_look_alikes_do_not_match(text: str) -> None:
    assert found(text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Skriv till Anna.Berg@Foretaget.SE tack", ("email", "anna.berg@foretaget.se")),
        ("mejla <anna+nyhet@x.se>.", ("email", "anna+nyhet@x.se")),
        ("mail:åsa.öberg@företaget.se", ("email", "åsa.öberg@företaget.se")),
        ("se https://www.exempel.se/kontakt.", ("url", "https://www.exempel.se/kontakt")),
        ("se (http://exempel.se/a?b=1&c=2)", ("url", "http://exempel.se/a?b=1&c=2")),
        ("se www.exempel.se/om-oss, tack", ("url", "www.exempel.se/om-oss")),
        ("Www.Exempel.se", ("url", "Www.Exempel.se")),
    ],
)
def test_email_and_url(text: str, expected: tuple[str, str]) -> None:
    assert found(text) == [expected]


@pytest.mark.parametrize("text", ["skriv till anna@localhost", "a @ b", "exempel.se/kontakt", "www. tack"])
def test_email_and_url_look_alikes_do_not_match(text: str) -> None:
    assert found(text) == []


def test_precedence_on_overlap() -> None:
    assert found("https://crm.se/kund?mail=anna@x.se") == [("email", "anna@x.se")]   # email > url
    assert found("https://crm.se/kund/811218-9876") == [("url", "https://crm.se/kund/811218-9876")]
    assert found("http://192.168.1.1/admin") == [("url", "http://192.168.1.1/admin")]


def test_several_identifiers_in_order_without_overlap() -> None:
    text = "Anna Berg, 070-123 45 67, anna@x.se | 811218-9876 / 08-12 34 56; 556898-9718"
    assert spans(text) == ["070-123 45 67", "anna@x.se", "811218-9876", "08-12 34 56", "556898-9718"]


def test_a_long_document_with_many_identifiers() -> None:
    text = " ".join(f"rad {i}: user{i}@x.se ringde från 070-{i % 1000:03d} 45 67 via 10.0.{i // 256}.{i % 256}."
                    for i in range(3000))
    findings = find_identifiers(text)
    assert len(findings) == 3 * 3000
    assert findings[0].normalised == "user0@x.se" and findings[-1].normalised == "10.0.11.183"


def test_redact_replaces_spans_only() -> None:
    text = "Hej, maila anna@x.se eller ring 070-123 45 67. Order 2024-118833."
    assert redact(text, find_identifiers(text)) == "Hej, maila [raderad] eller ring [raderad]. Order 2024-118833."
    assert redact(text, find_identifiers(text), lambda f: f"<{f.kind}>") == \
        "Hej, maila <email> eller ring <phone>. Order 2024-118833."
    assert redact(text, []) == text


def test_redact_takes_findings_in_any_order_and_skips_overlaps() -> None:
    text = "abc 123 def"
    findings = [Finding("phone", 4, 7, "x"), Finding("email", 0, 3, "y"), Finding("url", 5, 9, "z")]
    assert redact(text, findings, "#") == "# # def"


def test_empty_and_plain_text() -> None:
    assert find_identifiers("") == []
    assert find_identifiers("Hej! Inget att se här, bara text om väder och vind.") == []


def test_corpus_is_deterministic_and_shaped_as_promised() -> None:
    corpus = labelled_corpus(2000, seed=11)
    assert corpus == labelled_corpus(2000, seed=11)
    assert corpus != labelled_corpus(2000, seed=12)
    assert all(40 <= len(text) <= 400 for text, _ in corpus)
    share = sum(1 for _, truth in corpus if truth) / len(corpus)
    assert 0.55 <= share <= 0.65


def test_findings_are_sorted_and_never_overlap() -> None:
    for text, _ in labelled_corpus(2000, seed=5):
        findings = find_identifiers(text)
        assert all(a.end <= b.start for a, b in itertools.pairwise(findings)), text


def test_precision_and_recall_on_the_labelled_corpus() -> None:
    scores = score(labelled_corpus(5000, seed=7), found)
    assert set(scores) == {"email", "phone", "personnummer", "samordningsnummer", "org_number", "ipv4", "ipv6", "url"}
    for kind, s in scores.items():
        assert s.true_positives > 100, kind
        assert s.precision >= 0.99 and s.recall >= 0.99, (kind, s)


# -- writings beyond the canonical ones (Finding.writing) ------------------------------------------


def written(text: str) -> list[tuple[str, str, str, str]]:
    """(kind, normalised, the span of the original text, writing) per finding."""
    return [(f.kind, f.normalised, text[f.start:f.end], f.writing) for f in find_identifiers(text)]


PNR = ("personnummer", "198112189876")


@pytest.mark.parametrize(
    ("text", "expected", "span", "writing"),
    [
        ("pnr 811218 9876 gäller", PNR, "811218 9876", "spaced"),
        ("pnr 19811218 9876.", PNR, "19811218 9876", "spaced"),
        ("pnr 811218 - 9876", PNR, "811218 - 9876", "spaced"),
        ("pnr 81 12 18-9876", PNR, "81 12 18-9876", "spaced"),
        ("pnr 81.12.18-9876", PNR, "81.12.18-9876", "spaced"),
        ("född 1981.12.18-9876", PNR, "1981.12.18-9876", "spaced"),
        ("pnr 811218-\n9876 ok", PNR, "811218-\n9876", "spaced"),
        ("pnr 121212 +1212", ("personnummer", "191212121212"), "121212 +1212", "spaced"),
        ("samordningsnummer 811278 9873", ("samordningsnummer", "198112789873"), "811278 9873", "spaced"),
        ("ring 070.123.45.67", MOBILE[0], "070.123.45.67", "spaced"),
        ("ring +46.70.123.45.67", MOBILE[0], "+46.70.123.45.67", "spaced"),
        ("ring 070/123 45 67", MOBILE[0], "070/123 45 67", "spaced"),
        ("växel 08/123 45 67", ("phone", "+4681234567"), "08/123 45 67", "spaced"),
        ("ring 070 - 123 45 67", MOBILE[0], "070 - 123 45 67", "spaced"),
        ("ring 46701234567", MOBILE[0], "46701234567", "spaced"),
        ("växel 46 8 123 456 78", ("phone", "+46812345678"), "46 8 123 456 78", "spaced"),
        ("ring 07 01 23 45 67", MOBILE[0], "07 01 23 45 67", "spaced"),
        ("ring 070-123\n45 67 tack", MOBILE[0], "070-123\n45 67", "spaced"),
        ("ring 070-\n123 45 67", MOBILE[0], "070-\n123 45 67", "spaced"),
        ("växel 08.123.456.78", ("phone", "+46812345678"), "08.123.456.78", "spaced"),
        ("mejla anna.berg(at)x.se", ("email", "anna.berg@x.se"), "anna.berg(at)x.se", "obfuscated"),
        ("mejla anna.berg [at] x.se.", ("email", "anna.berg@x.se"), "anna.berg [at] x.se", "obfuscated"),
        ("mejla anna.berg {AT} x.se", ("email", "anna.berg@x.se"), "anna.berg {AT} x.se", "obfuscated"),
        ("mejla anna dot berg at x dot se", ("email", "anna.berg@x.se"), "anna dot berg at x dot se", "obfuscated"),
        ("mejla anna.berg(at)x(dot)se", ("email", "anna.berg@x.se"), "anna.berg(at)x(dot)se", "obfuscated"),
        ("mejla anna.berg snabel-a x.se", ("email", "anna.berg@x.se"), "anna.berg snabel-a x.se", "obfuscated"),
        ("mejla anna.berg @ x.se", ("email", "anna.berg@x.se"), "anna.berg @ x.se", "obfuscated"),
        ("mejla anna.berg&#64;x.se", ("email", "anna.berg@x.se"), "anna.berg&#64;x.se", "obfuscated"),
        ("mejla anna.berg&commat;x.se", ("email", "anna.berg@x.se"), "anna.berg&commat;x.se", "obfuscated"),
        ("mejla anna.berg@\nx.se", ("email", "anna.berg@x.se"), "anna.berg@\nx.se", "spaced"),
        ("mejla anna.berg@exempel.\nse tack", ("email", "anna.berg@exempel.se"), "anna.berg@exempel.\nse", "spaced"),
        ("mejla an\u200bna.berg@x.se", ("email", "anna.berg@x.se"), "an\u200bna.berg@x.se", "unicode"),
        ("mejla anna.\u00adberg@x.se", ("email", "anna.berg@x.se"), "anna.\u00adberg@x.se", "unicode"),
        ("mejla ａｎｎａ＠ｘ．ｓｅ", ("email", "anna@x.se"), "ａｎｎａ＠ｘ．ｓｅ", "unicode"),
        ("mejla аnnа.bеrg@x.se", ("email", "anna.berg@x.se"), "аnnа.bеrg@x.se", "unicode"),  # Cyrillic а, е
        ("mejla a\u0308sa@x.se", ("email", "äsa@x.se"), "a\u0308sa@x.se", "unicode"),  # a combining diaeresis
        ("ring ０７０－１２３　４５　６７ nu", MOBILE[0], "０７０－１２３　４５　６７", "unicode"),
        ("ring 070\u2011123\u202f45\u202f67", MOBILE[0], "070\u2011123\u202f45\u202f67", "unicode"),
        ("pnr ８１１２１８－９８７６", PNR, "８１１２１８－９８７６", "unicode"),
        ("pnr 811218\u200b-9876", PNR, "811218\u200b-9876", "unicode"),
        ("ring 070&nbsp;123&nbsp;45&nbsp;67", MOBILE[0], "070&nbsp;123&nbsp;45&nbsp;67", "unicode"),
    ],
)
def test_other_writings(text: str, expected: tuple[str, str], span: str, writing: str) -> None:
    assert written(text) == [(*expected, span, writing)]


@pytest.mark.parametrize(
    "text",
    [
        # dates, times, versions, prices, order numbers, IBANs: with dots, slashes, blanks
        "leverans 08.12.2024", "leverans 08/12/2024", "leverans 01.12.2024", "öppet 08.30-17.00",
        "öppet 0830 - 1700", "öppet 08.00 - 17.00", "möte 10.30-11.30 och 08.15", "loggat 2024.11.25 14.30",
        "version 0.12.345.67", "version 4.2.0.17.3", "pris 46 812 kr", "budget 46 123,00 SEK", "pris 12.500.000 kr",
        "IBAN SE46 5000 0000 0583 9825 7466", "kort 4611 1111 1111 1111", "box 46 705 51 Göteborg",
        "order 811218 9876", "ordernr 81 12 18-9876", "fakturanr 19811218 9876", "order 46701234567",
        "ordernr 070.123.45.67", "ref 070/123 45 67",
        "pnr 811218 9875",        # spaced, wrong check digit
        "pnr 81 12 18 9876",      # a grouped date needs its dash
        "orgnr 556898 9718",      # organisationsnummer keep their dash
        "tel 46 12 34", "tid 07 05 55", "åren 1980 - 2000", "tel 08 - 17",
        # e-mail look-alikes
        "kaffe @ 25 kr", "möte @ kontoret", "jag är (at) work", "fråga [at] kundtjänst", "5 st (at) 20 kr",
        "available at example.com", "vi ses at noon.", "tryck på snabel-a.", "snabel-a saknas",
        # Unicode and entities that hide nothing
        "&amp; &lt; &#8211; &nbsp;", "Bröderna Berg & Söner", "pris １２３ ４５６ kr", "Привет мир, как дела?",
        "en\u200bkort\u00adtext", "ｈｅｊ ｐå dig",
    ],
)
def test_other_writings_look_alikes_do_not_match(text: str) -> None:
    assert found(text) == []


def test_a_plain_reading_wins_over_a_joined_one() -> None:
    # A sentence ends after the address, a line ends after the number: nothing is joined.
    assert written("Mejla anna@exempel.se.\nTack") == [("email", "anna@exempel.se", "anna@exempel.se", "canonical")]
    assert written("Ring 070-123 45 67\n2 st kvar") == [("phone", "+46701234567", "070-123 45 67", "canonical")]
    assert written("Ring 08-12 34 56\n78 kr") == [("phone", "+468123456", "08-12 34 56", "canonical")]
    assert written("pnr 811218-9876\n12 st") == [("personnummer", "198112189876", "811218-9876", "canonical")]
    assert written("Ring 070-123 45 67. 2 st kvar") == [("phone", "+46701234567", "070-123 45 67", "canonical")]
    assert written("Ring 070-123 45 67/08-123 456 78") == [
        ("phone", "+46701234567", "070-123 45 67", "canonical"), ("phone", "+46812345678", "08-123 456 78", "canonical")]


def test_redaction_cuts_the_original_characters() -> None:
    text = "Hej, mejla an\u200bna@x.se eller ring ０７０－１２３ ４５ ６７ &amp; kom."
    assert redact(text, find_identifiers(text)) == "Hej, mejla [raderad] eller ring [raderad] &amp; kom."
    text = "Skriv till anna.berg [at] x.se eller 070.123.45.67."
    assert redact(text, find_identifiers(text)) == "Skriv till [raderad] eller [raderad]."


def test_readable_text_keeps_every_character_s_origin() -> None:
    from lifecycle.discovery.detect import readable, unicode_view

    text = "ａ\u200bｂ&#64;c\u00ad-d a\u0308"
    view = unicode_view(text)
    assert view is not None and view.text == readable(text) == "ab@c-d ä"
    assert [text[slice(*view.span(i, i + 1))] for i in range(len(view.text))] == \
        ["ａ", "ｂ", "&#64;", "c", "-", "d", " ", "a\u0308"]
    assert unicode_view("Hej på dig – 070-123 45 67") is None  # nothing to read differently: no copy
