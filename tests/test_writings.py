"""One person planted in other people's messages in every writing people and systems really
use (spaced, dotted, obfuscated, copied from web pages and PDFs), across two sources: a scan and
an erasure leave none of them, and verification fails whenever one is left, on SQLite and
PostgreSQL. Also the targeted search for a known person (lifecycle.discovery.redaction) alone."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import MetaData, Table, delete, select

from lifecycle.discovery.detect import REDACTED, find_identifiers
from lifecycle.discovery.redaction import person_patterns, person_spans, redact_text
from lifecycle.errors import RequestNotVerifiedError
from lifecycle.rights.verify import Probe, verify_in_sources
from lifecycle.stores import open_stores
from tests.request_world import EMAIL, PERSONNUMMER, PHONE, World, erase, insert, prepare, scan_all

# The person of tests.request_world: test.person@exempel.se, 070-555 12 34, 19850412-2386.
WRITINGS: dict[str, tuple[str, str]] = {  # name -> (writing, how the detector reports it)
    "pnr": ("850412-2386", "canonical"),
    "pnr 12 digits": ("19850412-2386", "canonical"),
    "pnr no dash": ("8504122386", "canonical"),
    "pnr space": ("850412 2386", "spaced"),
    "pnr 12 digits space": ("19850412 2386", "spaced"),
    "pnr spaced dash": ("850412 - 2386", "spaced"),
    "pnr grouped date": ("85 04 12-2386", "spaced"),
    "pnr dotted date": ("85.04.12-2386", "spaced"),
    "pnr dotted 12 digits": ("1985.04.12-2386", "spaced"),
    "pnr line break": ("850412-\n2386", "spaced"),
    "pnr full-width": ("８５０４１２－２３８６", "unicode"),
    "pnr zero-width space": ("850412\u200b-2386", "unicode"),
    "pnr soft hyphen": ("8504\u00ad12-2386", "unicode"),
    "phone": ("070-555 12 34", "canonical"),
    "phone +46": ("+46 70 555 12 34", "canonical"),
    "phone +46 (0)": ("+46 (0)70-555 12 34", "canonical"),
    "phone dots": ("070.555.12.34", "spaced"),
    "phone +46 dots": ("+46.70.555.12.34", "spaced"),
    "phone slash": ("070/555 12 34", "spaced"),
    "phone spaced dash": ("070 - 555 12 34", "spaced"),
    "phone 46": ("46705551234", "spaced"),
    "phone 46 spaced": ("46 70 555 12 34", "spaced"),
    "phone pairs": ("07 05 55 12 34", "spaced"),
    "phone line break": ("070-555\n12 34", "spaced"),
    "phone full-width": ("０７０－５５５　１２　３４", "unicode"),
    "phone zero-width space": ("070\u200b-555 12 34", "unicode"),
    "phone thin spaces": ("070\u2009555\u200912\u200934", "unicode"),
    "email": ("test.person@exempel.se", "canonical"),
    "email capitals": ("Test.Person@Exempel.SE", "canonical"),
    "email (at)": ("test.person(at)exempel.se", "obfuscated"),
    "email [at]": ("test.person [at] exempel.se", "obfuscated"),
    "email (AT) (DOT)": ("TEST.PERSON (AT) EXEMPEL (DOT) SE", "obfuscated"),
    "email at dot": ("test dot person at exempel dot se", "obfuscated"),
    "email snabel-a": ("test.person snabel-a exempel.se", "obfuscated"),
    "email spaces around @": ("test.person @ exempel.se", "obfuscated"),
    "email &#64;": ("test.person&#64;exempel.se", "obfuscated"),
    "email line break after @": ("test.person@\nexempel.se", "spaced"),
    "email line break in domain": ("test.person@exempel.\nse", "spaced"),
    "email zero-width space": ("test.\u200bperson@exempel.se", "unicode"),
    "email soft hyphen": ("test.per\u00adson@exempel.se", "unicode"),
    "email full-width": ("ｔｅｓｔ．ｐｅｒｓｏｎ＠ｅｘｅｍｐｅｌ．ｓｅ", "unicode"),
    "email full-width @": ("test.person＠exempel.se", "unicode"),
    "email Cyrillic look-alikes": ("tеst.pеrsоn@ехеmpеl.se", "unicode"),
}
KIND = {"pnr": "personnummer", "pho": "phone", "ema": "email"}
VALUE = {"personnummer": "198504122386", "phone": "+46705551234", "email": "test.person@exempel.se"}
# Someone else's message around the mention; their own number and address must stay.
MESSAGE = "Hej! Min kollega nås på {} om offerten. Mitt eget: eva.ek@exempel.se, 0701234567. Mvh Eva"
SOURCES = {"contact_form_submissions": "message", "email_threads": "body"}
NOW = datetime(2026, 11, 20, 12)


def _kind(name: str) -> str:
    return KIND[name[:3]]


# -- the detector and the targeted search, writing by writing ------------------------------------


@pytest.mark.parametrize("name", list(WRITINGS))
def test_the_detector_reads_every_writing_and_cuts_exactly_it(name: str) -> None:
    written, writing = WRITINGS[name]
    text = MESSAGE.format(written)
    findings = find_identifiers(text)
    mine = [f for f in findings if f.normalised == VALUE[_kind(name)]]
    assert [(f.kind, text[f.start:f.end], f.writing) for f in mine] == [(_kind(name), written, writing)]
    assert {f.normalised for f in findings} - {VALUE[_kind(name)]} == {"eva.ek@exempel.se", "+46701234567"}


@pytest.mark.parametrize("name", list(WRITINGS))
def test_the_targeted_search_finds_every_writing(name: str) -> None:
    text = MESSAGE.format(WRITINGS[name][0])
    probe = Probe(email="test.person@exempel.se", phone_national="705551234", personnummer="198504122386")
    assert probe.found_in_text(text) == [_kind(name)]
    spans = person_spans(text, probe.text_patterns())
    assert [text[s:e] for _, s, e in spans] == [WRITINGS[name][0]]


@pytest.mark.parametrize("text", [
    "Eva: 0701234567, eva.ek@exempel.se, 850412-2385",  # another number, another address
    "Order 850412238612 st", "Ref 19850412238", "Kund 1985041223861",  # inside longer numbers
    "Ring 070-555 12 345", "kontonr 1070555123",
    "mejla x.test.person@exempel.se eller test.person@exempel.se.nu eller test.personal@exempel.se",
    "test.person@exempel.sex", "person@exempel.se",
])
def test_the_targeted_search_stays_on_the_person(text: str) -> None:
    probe = Probe(email="test.person@exempel.se", phone_national="705551234", personnummer="198504122386")
    assert probe.found_in_text(text) == []


def test_targeted_redaction_cuts_what_the_detector_cannot_read() -> None:
    patterns = person_patterns("test.person@exempel.se", "705551234", "198504122386")
    text = "Ring 0 7 0 5 5 5 1 2 3 4 eller skriv test.person@exempel.se, tack."
    redacted = redact_text(text, set(), _NoHasher(), 2026, patterns=patterns)  # type: ignore[arg-type]
    assert redacted == f"Ring {REDACTED} eller skriv {REDACTED}, tack."


class _NoHasher:
    def hash(self, kind: str, normalised: str) -> str:
        return "-"


# -- planted in two sources, scanned and erased ---------------------------------------------------


@pytest.fixture
def planted(db, tag_db, tmp_path) -> tuple[World, dict[tuple[str, int], str]]:  # type: ignore[no-untyped-def]
    """The person's world with one more message per writing (someone else's), alternating
    between the two free-text sources, all scanned."""
    world = World(db.url, db.schema, tag_db.url, tag_db.schema, str(tmp_path / "reports"))
    prepare(world)
    engine, _ = world.engines()
    rows: dict[tuple[str, int], str] = {}
    for i, (name, (written, _)) in enumerate(WRITINGS.items()):
        source = list(SOURCES)[i % 2]
        key = 9100 + i
        insert(engine, source, _message_row(source, key, MESSAGE.format(written)))
        rows[(source, key)] = name
    scan_all(world, run_id="n2")
    return world, rows


def _message_row(source: str, key: int, text: str) -> dict[str, object]:
    common = dict(id=key, last_interaction_at=date(2026, 11, 10), updated_at=NOW)
    if source == "contact_form_submissions":
        return dict(common, submitted_at=NOW, name="Eva Ek", email="eva.ek@exempel.se", message=text,
                    message_basis="consent")
    return dict(common, received_at=NOW, sender_name="Eva Ek", sender_email="eva.ek@exempel.se", body=text,
                body_basis="contract")


def _text(world: World, source: str, key: int) -> str:
    engine, _ = world.engines()
    t = Table(source, MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        return conn.execute(select(t.c[SOURCES[source]]).where(t.c.id == key)).scalar_one()


def _ids() -> dict[str, str]:
    return {"email": EMAIL, "phone": PHONE, "personnummer": PERSONNUMMER}


def test_an_erasure_leaves_no_writing_and_verification_catches_each_one_left(planted) -> None:  # type: ignore[no-untyped-def]
    world, rows = planted
    result = erase(world, **_ids())
    assert result.verified is True
    probe = Probe(email="test.person@exempel.se", phone_national="705551234", personnummer="198504122386")
    for (source, key), name in rows.items():
        assert _text(world, source, key) == MESSAGE.format(REDACTED), name  # the rest of the message stays

    # Each writing, left where the index cannot know it (written after the scan): verification
    # searches the source itself and fails.
    engine, tags = world.engines()
    policy, catalog = world.config()
    stores = open_stores(catalog, {"lifecycle_demo": engine}, tags)
    for i, (name, (written, _)) in enumerate(WRITINGS.items()):
        source = list(SOURCES)[i % 2]
        insert(engine, source, _message_row(source, 9300, MESSAGE.format(written)))
        check = verify_in_sources({source: stores[source]}, probe, set())[0]
        assert (check.status, check.records_found) == ("failed", 1), name
        t = Table(source, MetaData(), autoload_with=engine)
        with engine.begin() as conn:
            conn.execute(delete(t).where(t.c.id == 9300))


def test_an_erasure_with_one_writing_left_on_purpose_is_not_verified(planted) -> None:  # type: ignore[no-untyped-def]
    world, rows = planted
    engine, _ = world.engines()
    insert(engine, "email_threads", _message_row("email_threads", 9400, MESSAGE.format("test.person [at] exempel.se")))
    with pytest.raises(RequestNotVerifiedError, match="email_threads"):
        erase(world, **_ids())  # the index has not seen the row: the request cannot redact it
    assert _text(world, "email_threads", 9400) == MESSAGE.format("test.person [at] exempel.se")
    for (source, key), name in rows.items():  # everything the index knew is gone all the same
        assert _text(world, source, key) == MESSAGE.format(REDACTED), name


def test_the_access_extract_shows_every_writing_and_how_it_was_found(planted) -> None:  # type: ignore[no-untyped-def]
    from lifecycle.rights.extract import build_extract
    from lifecycle.rights.requests import SubjectIdentifiers
    from tests.request_world import TODAY

    world, rows = planted
    engine, tags = world.engines()
    # Written after the scan: only the targeted search for the person's own identifiers finds it.
    # One digit at a time is a writing no detector reads as a phone number: the search reads it.
    insert(engine, "email_threads", _message_row("email_threads", 9400, MESSAGE.format("0 7 0 5 5 5 1 2 3 4")))
    policy, catalog = world.config()
    ids = SubjectIdentifiers.parse(_ids(), TODAY.year)
    extract = build_extract("DSR-X", catalog=catalog, policy=policy, source_engines={"lifecycle_demo": engine},
                            tag_engine=tags, hashes=ids.hashes(world.hasher(), TODAY.year), hasher=world.hasher(),
                            year=TODAY.year, identifiers=ids)
    excerpts = [x for m in extract["mentions"] for x in m["excerpts"]]
    late = [x for x in excerpts if "0 7 0 5 5 5 1 2 3 4" in x["text"]]
    assert [x["found_by"] for x in late] == ["targeted"]
    assert {x["found_by"] for x in excerpts} >= {"canonical", "spaced", "obfuscated", "unicode", "targeted"}
    for written, _ in WRITINGS.values():  # every planted writing is shown to the person
        assert any(written in x["text"] for x in excerpts), written
    assert not any("eva.ek@exempel.se" in x["text"] or "0701234567" in x["text"] for x in excerpts)  # Art. 15(4)


def test_the_scan_counts_free_text_identifiers_by_writing(planted) -> None:  # type: ignore[no-untyped-def]
    from lifecycle.discovery.scan import scan_source
    from tests.request_world import TODAY

    world, rows = planted
    engine, tags = world.engines()
    policy, catalog = world.config()
    for source_name in SOURCES:
        stats = scan_source(catalog.source(source_name), policy, source_engine=engine, tag_engine=tags,
                            hasher=world.hasher(), run_id="n3", logical_date=TODAY, full_rescan=True)
        planted_here: dict[str, int] = {}
        for (source, _), name in rows.items():
            if source == source_name:
                writing = WRITINGS[name][1]
                planted_here[writing] = planted_here.get(writing, 0) + 1
        for writing, n in planted_here.items():
            assert stats.free_text_by_writing.get(writing, 0) >= n, (source_name, writing)
        assert sum(stats.free_text_by_writing.values()) <= stats.free_text_refs
