"""The scan's chunk writer: chunks written in order, in a background thread or in line, and a
failed write raised in the scanning thread (never lost)."""

from __future__ import annotations

import threading

import pytest

from lifecycle.discovery.scan import ChunkWriter


@pytest.mark.parametrize("threaded", [True, False])
def test_chunks_are_written_in_order(threaded: bool) -> None:
    written: list[int] = []
    threads: set[str] = set()

    def write(n: int) -> None:
        written.append(n)
        threads.add(threading.current_thread().name)

    writer = ChunkWriter(write, threaded=threaded)
    for n in range(50):
        writer.submit(n)
    writer.close()
    assert written == list(range(50))
    assert threads == ({"tag-writer"} if threaded else {threading.current_thread().name})


def test_a_failed_write_is_raised_in_the_scanning_thread_and_nothing_after_it_is_written() -> None:
    written: list[int] = []

    def write(n: int) -> None:
        if n == 3:
            raise RuntimeError("disk full")
        written.append(n)

    writer = ChunkWriter(write, threaded=True)
    with pytest.raises(RuntimeError, match="disk full"):
        for n in range(100):
            writer.submit(n)
        writer.close()
    assert written == [0, 1, 2]


# -- the rows it writes --------------------------------------------------------------------


def test_every_column_the_scan_copies_has_its_binary_wire_type() -> None:
    """Binary COPY names each column's type; a column of an unmapped type must fail here."""
    from lifecycle.discovery.scan import _wire_type
    from lifecycle.tagstore.tables import record_tag, subject_ref, subject_ref_build

    types = {f"{t.name}.{c.name}": _wire_type(c) for t in (record_tag, subject_ref, subject_ref_build) for c in t.c}
    assert types["lc_record_tag.record_key"] == "text"
    assert types["lc_record_tag.clock_value"] == types["lc_record_tag.deadline"] == "date"
    assert types["lc_record_tag.first_of_record"] == types["lc_subject_ref.free_text"] == "bool"
    assert set(types.values()) == {"text", "date", "bool"}


def test_copied_tags_and_entries_read_back_as_written(tag_db) -> None:  # type: ignore[no-untyped-def]
    """Dates, flags, NULLs and non-ASCII keys survive the first scan's COPY (binary on
    PostgreSQL) and the staged upsert of later scans, on both tag stores."""
    from datetime import date

    from sqlalchemy import select

    from lifecycle.discovery.scan import ref_row, tag_dict, tag_row, write_refs, write_tags
    from lifecycle.tagstore.tables import record_tag, subject_ref

    engine = tag_db.tag_store()

    def tag(key: str, category: str, **extra: object) -> list[object]:
        return tag_row({"source": "crm", "record_key": key, "category": category, "activity": "contact_form",
                "lawful_basis": None, "role": "controller", "controller": "self", "clock_value": date(2024, 2, 29),
                "deadline": None, "on_expiry": "erase", "status": "violation", "violation": "no_lawful_basis",
                "run_id": "r1", "parent_key": None, "expiry_reason": None, "first_of_record": True, **extra})

    first = [tag("åsa-1", "contact_details"), tag("åsa-1", "company_details", first_of_record=False,
                                                  lawful_basis="contract", deadline=date(2026, 2, 28),
                                                  status="active", violation=None, parent_key="p\t1")]
    entries = [{"subject_hash": "ab" * 16, "source": "crm", "record_key": "åsa-1", "field": "email", "kind": "email",
                "category": "contact_details", "free_text": False, "person": "email:" + "ab" * 16},
               {"subject_hash": "cd" * 16, "source": "crm", "record_key": "åsa-1", "field": "notes", "kind": "phone",
                "category": "case_details", "free_text": True, "person": None}]
    refs = [ref_row(e) for e in entries]
    with engine.begin() as conn:
        write_tags(conn, engine, first, first=True)
        write_refs(conn, engine, refs, fresh=True)
    later = [tag("åsa-2", "contact_details", run_id="r2", deadline=date(2027, 1, 1), status="active", violation=None)]
    with engine.begin() as conn:
        write_tags(conn, engine, later)
        write_refs(conn, engine, refs[:1], fresh=False)  # already there: kept once
    with engine.connect() as conn:
        stored = [dict(r._mapping) for r in conn.execute(select(record_tag).order_by(record_tag.c.record_key,
                                                                                     record_tag.c.category))]
        stored_entries = [dict(r._mapping) for r in conn.execute(select(subject_ref).order_by(subject_ref.c.field))]
    written = [tag_dict(t) for t in first + later]
    assert stored == sorted(written, key=lambda t: (t["record_key"], t["category"]))
    assert stored_entries == entries


def test_tag_rows_built_from_remembered_inputs_equal_rows_built_afresh(policy_path, catalog_path, hasher,  # type: ignore[no-untyped-def]
                                                                        monkeypatch) -> None:
    """A Tagger builds a record's tag rows once per distinct inputs and copies them: each
    record still gets its own rows and keys, and the memory of inputs stays bounded."""
    from datetime import date, timedelta

    import lifecycle.discovery.scan as scan_module
    from lifecycle.config.catalog import load_catalog
    from lifecycle.config.policy import load_policy
    from lifecycle.discovery.scan import TAG_COLUMNS, Tagger, tag_dict

    policy = load_policy(policy_path)
    source = load_catalog(catalog_path, policy).source("contact_form_submissions")
    rows = [{"id": n, "name": f"Person {n}", "email": f"p{n}@example.se", "phone": None, "ip_address": None,
             "company_name": "Acme AB" if n % 2 else None, "company_url": None,
             "message": "ring 070-123 45 67" if n % 3 == 0 else None,
             "message_basis": ("consent", "legitimate_interest", None, "nonsense")[n % 4],
             "last_interaction_at": date(2024, 1, 1) + timedelta(days=n % 5)} for n in range(40)]
    monkeypatch.setattr(scan_module, "_MAX_TEMPLATES", 3)
    remembering = Tagger(source, policy, hasher, "r", 2026)
    for row in rows:
        tags, refs = remembering.tag(row)
        afresh_tags, afresh_refs = Tagger(source, policy, hasher, "r", 2026).tag(row)
        assert tags == afresh_tags and refs == afresh_refs
        assert {tag_dict(t)["record_key"] for t in tags} == {str(row["id"])}
        assert len(remembering._templates) <= 3
    # Copies, not shared rows: changing one record's row leaves the next record's alone.
    first, _ = remembering.tag(rows[0])
    first[0][TAG_COLUMNS.index("status")] = "changed"
    again, _ = remembering.tag(rows[0])
    assert tag_dict(again[0])["status"] != "changed"


def test_a_taggers_tally_equals_a_recount_of_the_rows_it_returned(policy_path, catalog_path, hasher,  # type: ignore[no-untyped-def]
                                                                   monkeypatch) -> None:
    """The tally is counted per template use, also across the templates being forgotten
    (bounded memory): it must equal counting every returned tag row and entry again."""
    from collections import Counter
    from datetime import date, timedelta

    import lifecycle.discovery.scan as scan_module
    from lifecycle.config.catalog import load_catalog
    from lifecycle.config.policy import load_policy
    from lifecycle.discovery.scan import Tagger, ref_dict, tag_dict

    policy = load_policy(policy_path)
    source = load_catalog(catalog_path, policy).source("contact_form_submissions")
    monkeypatch.setattr(scan_module, "_MAX_TEMPLATES", 4)
    tagger = Tagger(source, policy, hasher, "r", 2026)
    for chunk in range(3):
        tags, refs = [], []
        for n in range(chunk * 50, chunk * 50 + 50):
            row = {"id": n, "name": f"Person {n}", "email": f"p{n}@example.se", "phone": None, "ip_address": None,
                   "company_name": "Acme AB", "company_url": None,
                   "message": f"mejla p{n}@example.se" if n % 4 == 0 else None,
                   "message_basis": ("consent", "legitimate_interest", None, "nonsense")[n % 4],
                   "last_interaction_at": date(2024, 1, 1) + timedelta(days=n % 7)}
            row_tags, row_refs = tagger.tag(row)
            tags += row_tags
            refs += map(ref_dict, row_refs)
        tally = tagger.take_tally()
        recount = Counter((t["category"], t["lawful_basis"], t["status"], t["violation"]) for t in map(tag_dict, tags))
        assert tally.by_outcome == recount and tally.tags == len(tags) == 150
        assert tally.refs == len(refs) and tally.free_text_refs == sum(r["free_text"] for r in refs) > 0
        assert sum(tally.writings.values()) == tally.free_text_refs  # one canonical e-mail a message
    assert tagger.take_tally().tags == 0  # taken: nothing since


def test_an_identifier_written_twice_in_a_message_is_one_index_entry(policy_path, catalog_path, hasher) -> None:  # type: ignore[no-untyped-def]
    """The writers copy a chunk's entries without removing duplicates: the Tagger gives each
    (identifier, column) of a record once, and still counts every writing it found."""
    from lifecycle.config.catalog import load_catalog
    from lifecycle.config.policy import load_policy
    from lifecycle.discovery.scan import Tagger, ref_dict

    policy = load_policy(policy_path)
    source = load_catalog(catalog_path, policy).source("contact_form_submissions")
    tagger = Tagger(source, policy, hasher, "r", 2026)
    row = {"id": 1, "name": "Anna Berg", "email": "anna@example.se", "phone": None, "ip_address": None,
           "company_name": None, "company_url": None, "message_basis": "consent", "last_interaction_at": None,
           "message": "Anna Berg här: anna@example.se, och igen ANNA@example.se, ring 070-123 45 67 / 0701234567"}
    _, rows = tagger.tag(row)
    refs = [ref_dict(r) for r in rows]
    keys = [(r["subject_hash"], r["record_key"], r["field"]) for r in refs]
    assert len(keys) == len(set(keys))
    in_message = sorted(r["kind"] for r in refs if r["field"] == "message")
    assert in_message == ["email", "name_company", "phone"]
    assert sum(tagger.take_tally().writings.values()) == 4  # two e-mails, two phone numbers


def test_the_collector_is_paused_while_scans_stream_and_restored_after_the_last() -> None:
    import gc

    from lifecycle.discovery.scan import collector_paused

    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():  # a second scan in another thread of the same process
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer one still streams
    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        with collector_paused():
            raise RuntimeError("scan failed")
    assert gc.isenabled()
    gc.disable()  # off by the program's own choice: a pause does not turn it on
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_streamed_rows_equal_what_sqlalchemy_reads(db) -> None:  # type: ignore[no-untyped-def]
    """On PostgreSQL a scan reads through the driver's server-side cursor when no column's type
    converts values; the rows must be SQLAlchemy's, chunk by chunk, and a column that converts
    (numeric) sends the read back through SQLAlchemy."""
    from datetime import date, datetime, timezone

    from sqlalchemy import (JSON, Boolean, Column, Date, DateTime, Integer, MetaData, Numeric, String, Table, Text,
                            insert, select)

    from lifecycle.discovery.scan import _driver_values_suffice, stream_rows

    engine = db.engine()
    metadata = MetaData()
    table = Table("typed_rows", metadata, Column("id", Integer, primary_key=True), Column("born", Date),
                  Column("seen", DateTime(timezone=True)), Column("name", String(50)), Column("note", Text),
                  Column("opted_in", Boolean), Column("extra", JSON), Column("amount", Numeric(10, 2)))
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(table), [
            {"id": n, "born": date(1980, 1, 1 + n) if n % 3 else None,
             "seen": datetime(2026, 1, 1, n, tzinfo=timezone.utc), "name": f"Åsa {n}" if n % 4 else None,
             "note": "x\ty\n'; DROP TABLE typed_rows; --", "opted_in": n % 2 == 0, "extra": {"n": n},
             "amount": n * 1.25} for n in range(10)])
    reflected = Table("typed_rows", MetaData(), autoload_with=engine)
    for columns in ([c for c in reflected.c if c.name != "amount"], list(reflected.c)):
        query = select(*columns).where(reflected.c.id >= 1)
        with engine.connect() as conn:
            expected = [dict(r._mapping) for r in conn.execute(query)]
            driver = _driver_values_suffice(conn, query)
        chunks = list(stream_rows(engine, query, chunk_rows=3))
        assert [len(c) for c in chunks] == [3, 3, 3]
        assert [row for chunk in chunks for row in chunk] == expected
        assert driver == (db.kind == "postgresql" and "amount" not in query.selected_columns.keys())


def test_a_taggers_person_labels_follow_the_index_rule(policy_path, catalog_path, hasher) -> None:  # type: ignore[no-untyped-def]
    """The Tagger labels its value-list entries as it builds them; subjects.label_persons is
    the rule (used where entries are dicts): both must agree, whichever identifiers a record has."""
    from lifecycle.config.catalog import load_catalog
    from lifecycle.config.policy import load_policy
    from lifecycle.discovery import label_persons
    from lifecycle.discovery.scan import REF_COLUMNS, Tagger, ref_dict

    assert REF_COLUMNS == ("subject_hash", "source", "record_key", "field", "kind", "category", "free_text", "person")
    policy = load_policy(policy_path)
    source = load_catalog(catalog_path, policy).source("contact_form_submissions")
    tagger = Tagger(source, policy, hasher, "r", 2026)
    labels = set()
    for n, (email, phone, name, message) in enumerate([
            ("a@example.se", "070-111 22 33", "Anna Berg", "mejla b@example.se eller ring 070-999 88 77"),
            (None, "070-111 22 33", "Anna Berg", None), (None, None, "Anna Berg", "Anna Berg skrev"),
            (None, None, None, "personnummer 811218-9876"), ("  ", None, None, None)]):
        row = {"id": n, "name": name, "email": email, "phone": phone, "ip_address": None, "company_name": "Acme AB",
               "company_url": None, "message": message, "message_basis": "consent", "last_interaction_at": None}
        refs = [ref_dict(r) for r in tagger.tag(row)[1]]
        expected = label_persons([{**r, "person": None} for r in refs], source.name, str(n))
        assert refs == expected
        labels |= {r["person"].split(":")[0] for r in refs}
    assert {"email", "phone", "name_company", "personnummer"} <= labels


def test_a_writer_opened_around_a_scan_pauses_the_collector_and_keeps_the_scans_own_error() -> None:
    import gc

    def write(n: int) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(KeyError, match="scan failed"):
        with ChunkWriter(write, threaded=True) as writer:
            assert not gc.isenabled()
            writer.submit(1)
            raise KeyError("scan failed")  # the scan's error is the one to see, not the write's
    assert gc.isenabled()
    with pytest.raises(RuntimeError, match="disk full"):
        with ChunkWriter(write, threaded=True) as writer:
            writer.submit(1)  # the write fails after the scan's last chunk: raised on the way out
    assert gc.isenabled()
