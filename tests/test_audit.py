"""The audit trail: a keyed hash chain in the tag store, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from lifecycle.discovery.identifiers import SubjectHasher
from lifecycle.reporting import AuditCheck, append, chain_head, rotate_key, verify
from lifecycle.tagstore.tables import audit_log
from tests.conftest import ROOT, TEST_SECRET
from tests.request_world import EMAIL, PHONE, World, erase, prepare
from tests.test_enforcement import _run, setup  # noqa: F401  (setup: the hand-built tables fixture)

OTHER_SECRET = "another-secret-not-for-production-987654"


@pytest.fixture
def tags(tag_db):  # type: ignore[no-untyped-def]
    return tag_db.tag_store()


def _fill(tags, hasher, n: int = 5) -> None:  # type: ignore[no-untyped-def]
    for i in range(1, n + 1):
        append(tags, hasher, "enforce_batch", f"source_{i}", {"run_id": "r1", "batch_no": i, "counts": {"erased": i}})


def _rows(tags) -> list:  # type: ignore[no-untyped-def]
    with tags.connect() as conn:
        return conn.execute(select(audit_log).order_by(audit_log.c.seq)).all()


def _broken(check: AuditCheck, seq: int) -> None:
    assert not check.intact and check.first_broken == seq, check
    assert f"entry {seq}" in check.message, check.message


def test_appends_chain_and_verify(tags, hasher) -> None:  # type: ignore[no-untyped-def]
    assert verify(tags, hasher) == AuditCheck(0, None, True, None, "audit trail intact: 0 entries, head (empty)")
    _fill(tags, hasher)
    rows = _rows(tags)
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.entry_hash for a, b in zip(rows, rows[1:]))
    assert json.loads(rows[2].details) == {"run_id": "r1", "batch_no": 3, "counts": {"erased": 3}}
    check = verify(tags, hasher)
    assert check.intact and check.entries == 5 and check.first_broken is None
    assert check.head == rows[-1].entry_hash and chain_head(tags) == (5, check.head)
    assert TEST_SECRET not in str([tuple(r) for r in rows])  # the secret is stored nowhere


def test_changed_details_are_found(tags, hasher) -> None:  # type: ignore[no-untyped-def]
    _fill(tags, hasher)
    with tags.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == 3)
                     .values(details=json.dumps({"run_id": "r1", "batch_no": 3, "counts": {"erased": 0}})))
    _broken(verify(tags, hasher), 3)


def test_a_changed_subject_or_time_is_found(tags, hasher) -> None:  # type: ignore[no-untyped-def]
    _fill(tags, hasher)
    with tags.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == 4).values(subject="somewhere_else"))
    _broken(verify(tags, hasher), 4)


def test_a_removed_middle_entry_is_found(tags, hasher) -> None:  # type: ignore[no-untyped-def]
    _fill(tags, hasher)
    with tags.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq == 3))
    check = verify(tags, hasher)
    _broken(check, 3)
    assert "missing" in check.message and check.entries == 4


def test_a_removed_and_renumbered_entry_is_found(tags, hasher) -> None:  # type: ignore[no-untyped-def]
    _fill(tags, hasher)
    with tags.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq == 2))
        for seq in (3, 4, 5):
            conn.execute(update(audit_log).where(audit_log.c.seq == seq).values(seq=seq - 1))
    _broken(verify(tags, hasher), 2)


def test_swapped_entries_are_found(tags, hasher) -> None:  # type: ignore[no-untyped-def]
    _fill(tags, hasher)
    with tags.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == 2).values(seq=-2))
        conn.execute(update(audit_log).where(audit_log.c.seq == 4).values(seq=2))
        conn.execute(update(audit_log).where(audit_log.c.seq == -2).values(seq=4))
    _broken(verify(tags, hasher), 2)


def test_another_secret_fails_verification(tags, hasher) -> None:  # type: ignore[no-untyped-def]
    _fill(tags, hasher)
    check = verify(tags, SubjectHasher(OTHER_SECRET.encode()))
    _broken(check, 1)
    assert "another secret" in check.message


def test_entries_cut_off_the_end_are_found_against_an_earlier_head(tags, hasher) -> None:  # type: ignore[no-untyped-def]
    _fill(tags, hasher)
    head = verify(tags, hasher).head
    assert verify(tags, hasher, expect_head=head).intact
    _fill(tags, hasher, 2)
    assert verify(tags, hasher, expect_head=head).intact  # the chain grew past it
    with tags.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq >= 5))
    assert verify(tags, hasher).intact  # a chain alone cannot tell
    _broken(verify(tags, hasher, expect_head=head), 5)


def test_a_key_rotation_continues_the_chain_under_the_new_secret(tags, hasher) -> None:  # type: ignore[no-untyped-def]
    new = SubjectHasher(OTHER_SECRET.encode())
    _fill(tags, hasher, 3)
    assert rotate_key(tags, hasher) is None  # the chain is under this secret already
    assert rotate_key(tags, new)["seq"] == 4
    assert rotate_key(tags, new) is None
    append(tags, new, "config_fingerprint", "run-2", {"fingerprint": "ab" * 32})
    check = verify(tags, new)
    assert check.intact and check.entries == 5 and check.keyed_from == 4, check
    _broken(verify(tags, hasher), 4)  # the old secret does not write the chain any more
    with tags.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq == 2))
    _broken(verify(tags, new), 2)  # links before the rotation are still checked


def test_concurrent_appends_keep_one_chain(tag_db, hasher) -> None:  # type: ignore[no-untyped-def]
    tags = tag_db.tag_store()
    errors: list[BaseException] = []
    threads_n, each = 6, 15

    def writer(t: int) -> None:
        try:
            for i in range(each):
                append(tags, hasher, "request_outcome", f"DSR-{t}-{i}", {"writer": t, "n": i})
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    check = verify(tags, hasher)
    assert check.intact and check.entries == threads_n * each, check
    assert [r.seq for r in _rows(tags)] == list(range(1, threads_n * each + 1))


def test_an_enforcement_batch_leaves_an_entry_in_its_transaction(setup, hasher) -> None:  # type: ignore[no-untyped-def]
    policy, catalog, engine, tags, _ = setup
    # Given no hasher, enforce_source keys the trail with the secret in the environment.
    stats = _run(policy, catalog, engine, tags, hasher, ["invoices", "newsletter_subscribers"])
    rows = [r for r in _rows(tags) if r.kind == "enforce_batch"]
    assert len(rows) == sum(s.batches for s in stats.values()) > 0
    by_source = {(r.subject, json.loads(r.details)["batch_no"]): json.loads(r.details) for r in rows}
    first = by_source[("invoices", 0)]
    assert first["run_id"] == "run-1" and first["action"] in ("erase", "anonymise") and first["keys"] >= 1
    assert {s for s, _ in by_source} == {"invoices", "newsletter_subscribers"}
    assert "@" not in str([r.details for r in rows]) and "Person" not in str([r.details for r in rows])
    assert verify(tags, hasher).intact
    # A re-run skips the done batches and enters nothing new; a dry run enters nothing either.
    _run(policy, catalog, engine, tags, hasher, ["invoices"])
    _run(policy, catalog, engine, tags, hasher, ["invoices"], run_id="run-2", dry_run=True)
    assert len(_rows(tags)) == len(rows)


def test_enforcement_without_any_secret_warns(setup, hasher, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    policy, catalog, engine, tags, _ = setup
    monkeypatch.delenv("LIFECYCLE_HASH_SECRET")
    stats = _run(policy, catalog, engine, tags, hasher, ["invoices"])
    assert stats["invoices"].batches > 0 and _rows(tags) == []
    assert "not entered in the audit trail" in caplog.text


def test_a_request_leaves_its_outcome(db, tag_db, tmp_path, hasher) -> None:  # type: ignore[no-untyped-def]
    world = World(db.url, db.schema, tag_db.url, tag_db.schema, str(tmp_path / "reports"))
    prepare(world)
    result = erase(world, "DSR-AUDIT")
    _, tags = world.engines()
    rows = [r for r in _rows(tags) if r.kind == "request_outcome"]
    assert [r.subject for r in rows] == ["DSR-AUDIT"]
    details = json.loads(rows[0].details)
    assert details["request_type"] == "erasure" and details["verified"] is True and details["status"] == "completed"
    assert details["per_source"] == json.loads(json.dumps(result.summary["per_source"]))
    assert len(details["certificate_sha256"]) == 64
    # The identifiers in every form the demo writes them; not a digit run, which a hex digest can hold by chance.
    digits = "".join(ch for ch in PHONE if ch.isdigit())[1:]
    written = rows[0].details.lower()
    assert EMAIL.lower() not in written and EMAIL.split("@")[0].lower() not in written
    assert all(form not in written for form in (PHONE, digits, "0" + digits, "+46" + digits))
    assert verify(tags, world.hasher()).intact


def _cli(tag_db, *extra: str) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    args = [sys.executable, "-m", "lifecycle.reporting.audit", "verify", "--tag-store-url", tag_db.url]
    if tag_db.schema:
        args += ["--schema", tag_db.schema]
    return subprocess.run(args + list(extra), capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "LIFECYCLE_HASH_SECRET": TEST_SECRET})


def test_cli_prints_head_and_count_and_exits_1_on_a_broken_chain(tag_db, tags, hasher) -> None:  # type: ignore[no-untyped-def]
    _fill(tags, hasher)
    ok = _cli(tag_db)
    assert ok.returncode == 0, ok.stderr
    assert "entries: 5" in ok.stdout and f"head: {chain_head(tags)[1]}" in ok.stdout
    with tags.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq == 2))
    broken = _cli(tag_db)
    assert broken.returncode == 1
    assert "broken at entry 2" in broken.stderr


def test_cli_refuses_to_run_without_a_secret(tag_db) -> None:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if k != "LIFECYCLE_HASH_SECRET"}
    done = subprocess.run([sys.executable, "-m", "lifecycle.reporting.audit", "verify", "--tag-store-url", tag_db.url],
                          capture_output=True, text=True, cwd=ROOT, env=env)
    assert done.returncode == 2 and "no keyed-hash secret" in done.stderr


def test_the_config_fingerprint_follows_the_files(tmp_path: Path) -> None:
    from lifecycle_airflow.nightly import config_fingerprint

    policy, catalog = tmp_path / "p.yaml", tmp_path / "c.yaml"
    policy.write_text("a: 1\n")
    catalog.write_text("b: 2\n")
    first = config_fingerprint(policy, catalog)
    catalog.write_text("b: 3\n")
    second = config_fingerprint(policy, catalog)
    assert first["policy_sha256"] == second["policy_sha256"] and first["fingerprint"] != second["fingerprint"]


@pytest.mark.e2e
def test_the_nightly_run_enters_its_configuration_and_fails_on_a_broken_chain(  # type: ignore[no-untyped-def]
        db, tag_db, airflow_db, tmp_path, monkeypatch, hasher) -> None:
    from airflow.models import DagBag

    from demo.company import generate
    from tests.test_nightly_e2e import run_nightly

    dag = DagBag(dag_folder=str(ROOT / "dags")).dags["lifecycle_nightly"]
    generate(db.url, rows=20, seed=3, as_of=date(2026, 11, 25), schema=db.schema)
    dr = run_nightly(dag, db, tag_db, tmp_path / "r1", monkeypatch, {"dry_run": True})
    assert str(dr.state) == "success"
    report = json.loads(next((tmp_path / "r1").glob("*.json")).read_text())
    tags = tag_db.tag_store()
    rows = _rows(tags)
    assert [r.kind for r in rows] == ["config_fingerprint"]  # a dry run destroys nothing
    details = json.loads(rows[0].details)
    assert details["dry_run"] is True and len(details["fingerprint"]) == 64 and "invoices" in details["sources"]
    assert report["audit"] == {"entries": 1, "head": rows[0].entry_hash, "intact": True, "first_broken": None,
                               "message": f"audit trail intact: 1 entries, head {rows[0].entry_hash}",
                               "export": {"status": "not_exported", "locked": False, "message": (
                                   "audit trail not exported: no artifact bucket configured (lifecycle_artifact_url)")}}

    with tags.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == 1).values(details=json.dumps({**details, "sources": []})))
    dr = run_nightly(dag, db, tag_db, tmp_path / "r2", monkeypatch, {"dry_run": True})
    assert str(dr.state) == "failed"
    assert {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}["report"] == "failed"
    report = json.loads(next((tmp_path / "r2").glob("*.json")).read_text())  # written before the task failed
    assert report["audit"]["intact"] is False and report["audit"]["first_broken"] == 1
    assert report["audit"]["entries"] == 2
