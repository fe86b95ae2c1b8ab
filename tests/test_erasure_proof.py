"""Erasure you can prove: each way a request used to certify 'verified' while the person was
still there is a test here (another secret, a request racing a full rescan, a record the index
does not know, a crash and a re-run), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import MetaData, Table, select, text

from lifecycle.errors import KeyMismatchError, RequestNotVerifiedError
from lifecycle.discovery.keys import key_id, recorded_keys
from lifecycle.tagstore.tables import subject_ref
from tests.request_world import ROOT, TODAY, World, erase, insert, prepare, scan_all, table_rows

OTHER_SECRET = "another-Secret-for-a-second-deployment-98765"


@pytest.fixture
def world(db, tag_db, tmp_path) -> World:  # type: ignore[no-untyped-def]
    w = World(db.url, db.schema, tag_db.url, tag_db.schema, str(tmp_path / "reports"))
    prepare(w)
    return w


def _row(world: World, table: str, key: int):  # type: ignore[no-untyped-def]
    engine, _ = world.engines()
    t = Table(table, MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        return conn.execute(select(t).where(t.c.id == key)).mappings().first()


def _certificate(world: World, reference: str = "DSR-1") -> dict:
    return json.loads((Path(world.report_dir) / "certificates" / f"erasure-certificate-{reference}.json").read_text())


# -- 1. another secret -------------------------------------------------------------------------


def test_a_request_under_another_secret_stops_before_reading_anything(world: World) -> None:
    before = table_rows(world)
    other = World(**{**world.__dict__, "secret": OTHER_SECRET})
    with pytest.raises(KeyMismatchError, match="not the one that built the subject index"):
        erase(other)
    assert table_rows(world) == before  # nothing changed, nothing certified
    assert not (Path(world.report_dir) / "certificates").exists()
    _, tags = world.engines()
    assert set(recorded_keys(tags).values()) == {key_id(world.hasher())}  # a keyed constant, never the secret
    assert world.secret not in json.dumps(recorded_keys(tags))


def test_a_scan_under_another_secret_stops_and_a_deliberate_rotation_reindexes(world: World) -> None:
    other = World(**{**world.__dict__, "secret": OTHER_SECRET})
    with pytest.raises(KeyMismatchError, match="source newsletter_subscribers: the keyed-hash secret is not the one"):
        scan_all(other, run_id="n2", only="newsletter_subscribers")
    scan_all(other, run_id="rot", rotate_key=True)  # the documented rotation: every source rescanned in full
    _, tags = world.engines()
    keys = recorded_keys(tags)
    assert {v for k, v in keys.items() if k.startswith("source:")} == {key_id(other.hasher())}
    # The index now answers under the new secret only.
    from lifecycle.discovery.subjects import locate
    from lifecycle.rights.requests import SubjectIdentifiers

    ids = SubjectIdentifiers.parse({"email": "test.person@exempel.se"}, 2026)
    assert locate(tags, ids.hashes(other.hasher(), 2026))
    assert not locate(tags, ids.hashes(world.hasher(), 2026))


# -- 3. verification asks the sources, not only the index ----------------------------------------


def test_verification_finds_what_the_index_does_not_know(world: World) -> None:
    """Rows written after the last scan (the index has never seen them) and a writing the
    detector does not read: the request must fail, and its certificate must say where."""
    engine, _ = world.engines()
    from datetime import date, datetime

    insert(engine, "newsletter_subscribers", dict(id=9002, subscribed_at=date(2026, 11, 20), last_confirmed_at=None,
                                                  name="Test Person", email=" Test.Person@exempel.SE ",
                                                  updated_at=datetime(2026, 11, 20)))
    insert(engine, "contact_form_submissions", dict(
        id=9002, submitted_at=datetime(2026, 11, 20), last_interaction_at=date(2026, 11, 20), name="Tredje Person",
        email="tredje@exempel.se", message="Ring honom på 0 7 0 5 5 5 1 2 3 4 i morgon.",
        message_basis="consent",
        updated_at=datetime(2026, 11, 20)))
    with pytest.raises(RequestNotVerifiedError, match="newsletter_subscribers"):
        erase(world)
    certificate = _certificate(world)
    assert certificate["verified"] is False
    checks = {c["source"]: c for c in certificate["verification"]["sources"]}
    assert checks["newsletter_subscribers"]["status"] == "failed" and checks["newsletter_subscribers"]["records_found"] == 1
    assert checks["newsletter_subscribers"]["identifier_columns"]["email"] == ["email"]
    assert checks["contact_form_submissions"]["status"] == "failed"
    assert checks["contact_form_submissions"]["free_text_kinds"] == ["email", "phone"]
    assert checks["customers"]["status"] == "passed"
    assert certificate["verification"]["index"]["passed"] is True  # the index alone would have said 'verified'
    dumped = json.dumps(certificate).lower()
    assert "exempel.se" not in dumped and "555 12 34" not in dumped and "5551234" not in dumped and "test person" not in dumped
    # Once the new rows are scanned, a re-run of the same request plans what the index now knows
    # beyond its journal, acts on it and verifies again: the new subscriber row is erased, but the
    # phone number spelled digit by digit is a writing the detectors do not read, so the run still
    # fails, and says where, rather than certify it.
    scan_all(world, run_id="n2", full_rescan=True)
    with pytest.raises(RequestNotVerifiedError, match="contact_form_submissions"):
        erase(world)
    assert _row(world, "newsletter_subscribers", 9002) is None and _row(world, "newsletter_subscribers", 9001) is None
    certificate = _certificate(world)
    checks = {c["source"]: c for c in certificate["verification"]["sources"]}
    assert checks["newsletter_subscribers"]["status"] == "passed"
    assert checks["contact_form_submissions"]["status"] == "failed"
    assert certificate["per_source"]["newsletter_subscribers"]["erased"] == 2 and certificate["verified"] is False


# -- 4. a crash and a re-run ------------------------------------------------------------------------


def _child(world: World, command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tests.request_world", command, world.to_json()], cwd=ROOT,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=600)


def _crash_points(world: World) -> list[str]:
    from lifecycle.rights import journal as request_journal
    _, tags = world.engines()
    numbers = [s.number for s in request_journal.steps(tags, "DSR-1")]
    return (["request:planned"] + [f"request:step-{n}:{when}" for n in numbers for when in ("started", "applied")]
            + ["request:verified", "request:certified"])


def _comparable(certificate: dict) -> dict:
    return {k: v for k, v in certificate.items() if k not in ("completed_at", "attempts")}


def test_kill_9_at_every_step_then_a_rerun_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    world = World(f"sqlite:///{base / 'source.db'}", None, f"sqlite:///{base / 'tags.db'}", None, str(base / "reports"))
    prepare(world)
    clean = tmp_path / "clean"
    shutil.copytree(base, clean)
    reference = _copy(world, base, clean)
    done = _child(reference, "erase")
    assert done.returncode == 0, done.stderr[-3000:]
    expected_rows, expected_certificate = table_rows(reference), _certificate(reference)
    assert expected_certificate["verified"] is True and expected_certificate["per_source"]["invoices"]["held"] == 1
    points = _crash_points(reference)
    assert len(points) >= 9
    for n, point in enumerate(points):
        folder = tmp_path / f"crash{n}"
        shutil.copytree(base, folder)
        crashed = _copy(world, base, folder)
        killed = _child(crashed, "erase", {"LIFECYCLE_CRASH_AT": point})
        assert killed.returncode == -9, (point, killed.stderr[-3000:])
        rerun = _child(crashed, "erase")
        assert rerun.returncode == 0, (point, rerun.stderr[-3000:])
        assert table_rows(crashed) == expected_rows, point
        assert _comparable(_certificate(crashed)) == _comparable(expected_certificate), point
        if n == 0:  # a completed request re-run changes nothing and reproduces its certificate
            first = _certificate(crashed)
            again = _child(crashed, "erase")
            assert again.returncode == 0 and table_rows(crashed) == expected_rows
            assert _certificate(crashed) == first


def _copy(world: World, base: Path, folder: Path) -> World:
    return World(world.url.replace(str(base), str(folder)), None, world.tag_url.replace(str(base), str(folder)), None,
                 str(folder / "reports"))


# -- 2. a request racing a full rescan ----------------------------------------------------------------


@pytest.mark.postgres
def test_a_request_during_a_full_rescan_waits_for_it_and_erases_everything(pg_schema: str, tmp_path: Path) -> None:
    """Two processes on PostgreSQL: a full rescan held mid-way (its first chunk written), and an
    erasure started meanwhile. The request must wait for the scan's guard, then find and erase
    the person, the phone number in someone else's message included."""
    from tests.conftest import PG_URL

    from lifecycle.rights.requests import SubjectIdentifiers
    from lifecycle.discovery.subjects import locate

    world = World(PG_URL, pg_schema, PG_URL, pg_schema, str(tmp_path / "reports"))
    prepare(world, rows=200)
    _, tags = world.engines()
    hashes = SubjectIdentifiers.parse({"email": "test.person@exempel.se", "phone": "0705551234"}, 2026).hashes(world.hasher(), 2026)
    indexed_before = locate(tags, hashes)
    hold = tmp_path / "hold-scan"
    hold.write_text("")
    scan = subprocess.Popen([sys.executable, "-m", "tests.request_world", "scan", world.to_json()], cwd=ROOT,
                            env={**os.environ, "LIFECYCLE_PAUSE_AT": "scan:chunk-written", "LIFECYCLE_PAUSE_FILE": str(hold)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    request = None
    try:
        _wait(lambda: Path(f"{hold}.reached").exists() or scan.poll() is not None, "the scan to reach its pause")
        assert scan.poll() is None, scan.communicate()[1][-3000:]
        assert locate(tags, hashes) == indexed_before  # mid-rescan, the complete old index is what readers see
        request = subprocess.Popen([sys.executable, "-m", "tests.request_world", "erase", world.to_json()], cwd=ROOT,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait(lambda: _waiting_on_guard(tags) or request.poll() is not None, "the request to wait for the guard")
        assert request.poll() is None, "the request ran while the scan rebuilt the index"
        hold.unlink()  # let the scan finish
        _, scan_err = scan.communicate(timeout=600)
        assert scan.returncode == 0, scan_err[-3000:]
        out, err = request.communicate(timeout=600)
        assert request.returncode == 0, err[-3000:]
        assert json.loads(out.strip().splitlines()[-1]) == {"verified": True}
    finally:
        for p in (scan, request):
            if p is not None and p.poll() is None:
                p.kill()
    assert _row(world, "newsletter_subscribers", 9001) is None and _row(world, "customers", 9001) is None
    assert _row(world, "contact_form_submissions", 9001)["message"] == \
        "Hej! Prata med min kollega [raderad] eller [raderad] om offerten."
    certificate = _certificate(world)
    assert certificate["verified"] is True and certificate["per_source"]["contact_form_submissions"]["redacted"] == 1
    _, tags = world.engines()
    with tags.connect() as conn:  # the index is whole: every scanned source still has its entries
        indexed = set(conn.execute(select(subject_ref.c.source).distinct()).scalars())
    assert {"contact_form_submissions", "invoices", "customers"} <= indexed


def _waiting_on_guard(tags) -> bool:  # type: ignore[no-untyped-def]
    with tags.connect() as conn:
        return bool(conn.execute(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).scalar())


def _wait(condition, what: str, limit: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.mark.parametrize("writing", ["070 555\u201312 34", "070\u00a0555 12\u00a034", "+46 (0)70-555 12 34",
                                     "0046 70 555 12 34", "070.555.12.34", "070/555 12 34", "070 555\n12 34"])
def test_the_source_search_finds_a_phone_in_every_separator_writing(world: World, writing: str) -> None:
    """The database pre-filter strips the same separators the Python check accepts: a writing it
    missed would be certified as gone."""
    from datetime import date, datetime

    from lifecycle.rights.requests import SubjectIdentifiers
    from lifecycle.stores import open_store
    from lifecycle.rights.verify import Probe

    engine, tags = world.engines()
    insert(engine, "contact_form_submissions", dict(
        id=9003, submitted_at=datetime(2026, 11, 20), last_interaction_at=date(2026, 11, 20), name="Fjärde Person",
        email="fjarde@exempel.se", message=f"Ring {writing} i morgon.", message_basis="consent",
        updated_at=datetime(2026, 11, 20)))
    _, catalog = world.config()
    store = open_store(catalog.source("contact_form_submissions"), engine, tags)
    probe = Probe.of(SubjectIdentifiers.parse({"phone": "070-555 12 34"}, 2026), 2026)
    allowed = {("contact_form_submissions", "9001")}  # the seeded mention: only the new row counts
    assert store.find(probe, allowed).records_found == 1
