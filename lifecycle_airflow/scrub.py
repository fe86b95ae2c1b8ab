"""Airflow's own records of a data-subject request, with the person's identifiers replaced by
keyed references once the run has ended.

Airflow keeps what the trigger form sent: the run's configuration (``dag_run.conf``), the
audit-log entry of the trigger (``log.extra``), and anything a task rendered or pushed. When a
run of ``lifecycle_subject_request`` ends (success or failure) the listener in
``plugins/lifecycle_scrub.py`` calls :func:`scrub_run`, which rewrites those records so that each
identifier reads ``keyed:<hash>``, the same keyed hash (HMAC-SHA256 of the normalised value) the
request ledger and certificates use. The raw value is never kept: without a keyed-hash secret it
becomes ``removed``. Audit-log entries of triggers the API refused (no run ever ends for them)
are swept at the same time.

The pure functions (:func:`scrub_conf`, :func:`hunted_forms`, :func:`scrub_text`,
:func:`scrub_json`) take a conf and a hasher; :func:`scrub_run` is the thin database layer and
runs inside the session that ends the run (the scheduler's, the API server's or dag.test's), so
the rewrite is committed together with the run's final state.
"""

from __future__ import annotations

import json
import logging
import os
import re
from datetime import datetime
from typing import Any

from lifecycle.discovery import SubjectHasher, normalise_email, normalise_phone, normalise_personnummer, normalise_text

log = logging.getLogger("lifecycle")

DAG_ID = "lifecycle_subject_request"
# The request form's params that identify a person (a domain rule: everything else on the form
# -- request type, reference, field to correct, dry run -- says nothing about who it is).
IDENTIFIER_PARAMS = ("email", "phone", "personnummer", "name", "company", "new_value")
KEYED_PREFIX = "keyed:"
REMOVED = "removed"  # what an identifier becomes when no keyed-hash secret is available
_KEYED = re.compile(r"keyed:[0-9a-f]{32}")
_MIN_FREE_TEXT = 3  # shorter forms are not hunted in free text: they would garble unrelated words
TIMEZONE = "Europe/Stockholm"


def is_scrubbed(value: Any) -> bool:
    return isinstance(value, str) and (value == REMOVED or _KEYED.fullmatch(value) is not None)


def _present(value: Any) -> bool:
    """Whether a param holds something (None, blank strings and empty containers hold nothing)."""
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, (list, tuple, dict, set)):
        return bool(value)
    return True


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def _kind(param: str, conf: dict[str, Any]) -> str:
    """The identifier kind a param is hashed as; the correct value of a rectification is hashed
    as the field it corrects, so its reference equals the one the rectification records."""
    if param == "new_value" and conf.get("rectify_field") in ("email", "phone"):
        return str(conf["rectify_field"])
    return param


def keyed_reference(hasher: SubjectHasher | None, param: str, value: Any, year: int,
                    conf: dict[str, Any] | None = None) -> str:
    """``keyed:<hash>`` of one identifier; a value that does not normalise as its kind (a
    malformed e-mail, say) is hashed as text. ``removed`` when there is no hasher."""
    if hasher is None:
        return REMOVED
    text = _as_text(value)
    ref = hasher.reference(_kind(param, conf or {}), text, year)
    if ref is None:  # not an identifier of its kind: still never kept raw
        ref = hasher.hash("text", normalise_text(text))
    return KEYED_PREFIX + ref


def scrub_conf(conf: dict[str, Any] | None, hasher: SubjectHasher | None, year: int) -> dict[str, Any] | None:
    """A copy of a run's conf with every identifier param replaced by its keyed reference.

    Other params are kept; None and blank values are kept (they hold nothing); values already
    scrubbed are kept, so scrubbing twice changes nothing."""
    if not isinstance(conf, dict):
        return conf
    out = dict(conf)
    for param in IDENTIFIER_PARAMS:
        value = conf.get(param)
        if _present(value) and not is_scrubbed(value):
            out[param] = keyed_reference(hasher, param, value, year, conf)
    return out


def changed_fields(before: dict[str, Any] | None, after: dict[str, Any] | None) -> int:
    before, after = before or {}, after or {}
    return sum(1 for p in IDENTIFIER_PARAMS if before.get(p) != after.get(p))


def _variants(param: str, text: str, conf: dict[str, Any], year: int) -> set[str]:
    """The ways one identifier may have been written down: as typed, trimmed, lower-cased,
    normalised (E.164 phone, 12-digit personnummer), and as JSON escapes it (non-ASCII)."""
    forms = {text, text.strip(), text.strip().lower(), normalise_text(text)}
    kind = _kind(param, conf)
    if kind == "email" and (e := normalise_email(text)):
        forms.add(e)
    if kind == "phone" and (p := normalise_phone(text)):
        forms |= {p, "0" + p[3:] if p.startswith("+46") else p}
    if kind == "personnummer" and (n := normalise_personnummer(text, year)):
        forms |= {n, f"{n[:8]}-{n[8:]}", n[2:], f"{n[2:8]}-{n[8:]}"}
    forms |= {json.dumps(f)[1:-1] for f in list(forms)}
    return {f for f in forms if len(f.strip()) >= _MIN_FREE_TEXT}


def hunted_forms(conf: dict[str, Any] | None, hasher: SubjectHasher | None, year: int) -> dict[str, str]:
    """Every written form of the conf's raw identifiers, mapped to the keyed reference that
    replaces it wherever else it turns up (audit log, rendered fields, XCom, notes)."""
    if not isinstance(conf, dict):
        return {}
    forms: dict[str, str] = {}
    for param in IDENTIFIER_PARAMS:
        value = conf.get(param)
        if not _present(value) or is_scrubbed(value):
            continue
        ref = keyed_reference(hasher, param, value, year, conf)
        for form in _variants(param, _as_text(value), conf, year):
            forms.setdefault(form, ref)
    return forms


def _pattern(form: str) -> re.Pattern[str]:
    # Not inside a longer word or number: "Ann" must not eat "channel", a phone not a longer number.
    head = r"(?<![0-9A-Za-z])" if form[:1].isalnum() else ""
    tail = r"(?![0-9A-Za-z])" if form[-1:].isalnum() else ""
    return re.compile(head + re.escape(form) + tail, re.IGNORECASE)


def scrub_text(text: str, forms: dict[str, str]) -> str:
    """Free text with every hunted form replaced (longest first, case-insensitively)."""
    for form in sorted(forms, key=len, reverse=True):
        if form.lower() in text.lower():
            text = _pattern(form).sub(forms[form], text)
    return text


def scrub_json(value: Any, forms: dict[str, str]) -> Any:
    """A JSON-like value with every hunted form replaced in its strings (keys included)."""
    if isinstance(value, str):
        return scrub_text(value, forms)
    if isinstance(value, dict):
        return {scrub_json(k, forms) if isinstance(k, str) else k: scrub_json(v, forms) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_json(v, forms) for v in value]
    return value


def scrub_log_extra(extra: str, forms: dict[str, str], hasher: SubjectHasher | None, year: int) -> str:
    """An audit-log ``extra`` (the JSON body of the trigger request, or free text)."""
    try:
        body = json.loads(extra)
    except (TypeError, ValueError):
        return scrub_text(extra, forms)
    scrubbed = body
    if isinstance(body, dict) and isinstance(body.get("conf"), dict):
        scrubbed = {**body, "conf": scrub_conf(body["conf"], hasher, year)}
    scrubbed = scrub_json(scrubbed, forms)
    return extra if scrubbed == body else json.dumps(scrubbed)


def reference_year(logical_date: datetime | None, run_after: datetime | None) -> int:
    """The year a 10-digit personnummer is read against: the run's night in Stockholm, as the tasks do."""
    import pendulum

    when = logical_date or run_after
    if when is None:
        return pendulum.now(TIMEZONE).year
    return pendulum.instance(when).in_timezone(TIMEZONE).year


def scheduler_hasher(session: Any) -> SubjectHasher | None:
    """The keyed-hash secret where the run ends (scheduler, API server, dag.test()): the Airflow
    Variable ``lifecycle_hash_secret`` from the configured secrets backends, the metadata
    database read through ``session``, else the environment -- the order the tasks use. None
    when neither is set.

    Not ``Variable.get()``: its metadata-database backend opens the thread's scoped session,
    which in the scheduler *is* the session that is ending the run; it would commit it (the
    scheduler forbids that mid-loop) and close it under the scheduler's feet."""
    from airflow.configuration import ensure_secrets_loaded
    from airflow.secrets.metastore import MetastoreBackend

    from lifecycle.config import HASH_SECRET_ENV
    from lifecycle_airflow.runtime import HASH_SECRET_VARIABLE

    secret = None
    for backend in ensure_secrets_loaded():
        try:
            if isinstance(backend, MetastoreBackend):
                secret = _guarded(session, lambda b=backend: b.get_variable(HASH_SECRET_VARIABLE, session=session))
            else:
                secret = backend.get_variable(HASH_SECRET_VARIABLE)
        except Exception:  # noqa: BLE001 - as Airflow does: the next backend, then the environment
            log.warning("Variable %s not readable from %s", HASH_SECRET_VARIABLE, type(backend).__name__, exc_info=True)
        if secret:
            break
    secret = secret or os.environ.get(HASH_SECRET_ENV)
    if not secret:
        return None
    try:
        return SubjectHasher(str(secret).encode())
    except ValueError:
        log.error("the keyed-hash secret is shorter than 16 bytes: not used")
        return None


def _guarded(session: Any, work: Any) -> Any:
    """``work()`` (Core statements on the session's connection) in a savepoint of its own, so a
    failing statement cannot abort the caller's transaction. A Core savepoint, not
    ``Session.begin_nested()``: releasing an ORM savepoint fires the session's before_commit
    event, which the scheduler's loop treats as a forbidden commit. SQLite's driver does not do
    savepoints reliably: there the work runs as is."""
    if session.get_bind().dialect.name == "sqlite":
        return work()
    session.flush()  # the caller's pending changes are not ours to roll back
    savepoint = session.connection().begin_nested()
    try:
        result = work()
    except BaseException:
        savepoint.rollback()
        raise
    savepoint.commit()
    return result


def scrub_run(session: Any, dag_run: Any, hasher: SubjectHasher | None) -> dict[str, int]:
    """Rewrite Airflow's records of one run of the request DAG in ``session``'s transaction (not
    committed: the caller commits with the run's final state). Returns what was rewritten.

    The run's conf is set on the ORM object (written with its state); the other records are
    rewritten with Core statements, each kind in a savepoint of its own, so a failure in one --
    logged -- neither loses the others nor aborts the transaction that ends the run."""
    conf = dict(dag_run.conf or {})
    year = reference_year(dag_run.logical_date, dag_run.run_after)
    scrubbed = scrub_conf(conf, hasher, year) or {}
    forms = hunted_forms(conf, hasher, year)
    counts = {"fields": changed_fields(conf, scrubbed), "log": 0, "rendered": 0, "xcom": 0, "notes": 0}
    if scrubbed != conf:
        dag_run.conf = scrubbed
    # The raw values are known only until the conf is scrubbed: a second call finds none. The
    # sweep of rejected triggers needs none of them.
    parts = {"sweep": lambda conn: _sweep_trigger_log(conn, dag_run.dag_id, hasher)}
    if forms:
        parts = {"log": lambda conn: _scrub_log(conn, dag_run, forms, hasher, year), **parts,
                 "rendered": lambda conn: _scrub_rendered(conn, dag_run, forms),
                 "xcom": lambda conn: _scrub_xcom(conn, dag_run, forms),
                 "notes": lambda conn: _scrub_notes(conn, dag_run, forms)}
    for name, part in parts.items():
        try:
            counts["log" if name == "sweep" else name] += _guarded(session, lambda p=part: p(session.connection()))
        except Exception:  # noqa: BLE001 - never break the run's end; the failure is logged
            log.exception("could not scrub %s of run %s", name, dag_run.run_id)
    return counts


def _scrub_log(conn: Any, dag_run: Any, forms: dict[str, str], hasher: SubjectHasher | None, year: int) -> int:
    """The audit log: the trigger's entry carries the conf; it has no run_id unless the client
    chose the run id, so entries of this DAG are matched by value."""
    from sqlalchemy import or_, select, update

    from airflow.models.log import Log

    t = Log.__table__
    rows = conn.execute(select(t.c.id, t.c.extra).where(
        t.c.dag_id == dag_run.dag_id, or_(t.c.run_id == dag_run.run_id, t.c.run_id.is_(None)), t.c.extra.is_not(None),
        or_(*(t.c.extra.icontains(f, autoescape=True) for f in forms)))).all()
    n = 0
    for log_id, extra in rows:
        new = scrub_log_extra(extra, forms, hasher, year)
        if new != extra:
            conn.execute(update(t).where(t.c.id == log_id).values(extra=new))
            n += 1
    return n


def _sweep_trigger_log(conn: Any, dag_id: str, hasher: SubjectHasher | None) -> int:
    """Audit-log entries of the DAG that still carry a raw conf. The API logs a trigger before it
    validates the params, so a trigger it rejects (say, a malformed e-mail: HTTP 400) leaves the
    form's values in the log with no run whose end would scrub them; they go at the end of the
    next request run. Entries of requests still going are scrubbed early, which is harmless: the
    run reads its conf, not the log."""
    from sqlalchemy import select, update

    from airflow.models.log import Log

    t = Log.__table__
    rows = conn.execute(select(t.c.id, t.c.extra, t.c.dttm).where(
        t.c.dag_id == dag_id, t.c.extra.contains('"conf"', autoescape=True),
        t.c.extra.not_like("%keyed:%"), t.c.extra.not_like('%"removed"%'))).all()
    n = 0
    for log_id, extra, dttm in rows:
        try:
            body = json.loads(extra)
        except ValueError:
            continue
        if not isinstance(body, dict) or not isinstance(body.get("conf"), dict):
            continue
        year = reference_year(dttm, None)
        new = scrub_log_extra(extra, hunted_forms(body["conf"], hasher, year), hasher, year)
        if new != extra:
            conn.execute(update(t).where(t.c.id == log_id).values(extra=new))
            n += 1
    return n


def _scrub_rendered(conn: Any, dag_run: Any, forms: dict[str, str]) -> int:
    from sqlalchemy import select, update

    from airflow.models.renderedtifields import RenderedTaskInstanceFields

    t = RenderedTaskInstanceFields.__table__
    key = (t.c.dag_id, t.c.task_id, t.c.run_id, t.c.map_index)
    n = 0
    for row in conn.execute(select(*key, t.c.rendered_fields, t.c.k8s_pod_yaml).where(
            t.c.dag_id == dag_run.dag_id, t.c.run_id == dag_run.run_id)).all():
        fields, pod = scrub_json(row.rendered_fields, forms), scrub_json(row.k8s_pod_yaml, forms)
        if fields != row.rendered_fields or pod != row.k8s_pod_yaml:
            conn.execute(update(t).where(*(c == row._mapping[c.name] for c in key))
                         .values(rendered_fields=fields, k8s_pod_yaml=pod))
            n += 1
    return n


def _scrub_xcom(conn: Any, dag_run: Any, forms: dict[str, str]) -> int:
    from sqlalchemy import select, update

    from airflow.models.xcom import XComModel

    t = XComModel.__table__
    key = (t.c.dag_run_id, t.c.task_id, t.c.map_index, t.c.key)
    n = 0
    for row in conn.execute(select(*key, t.c.value).where(t.c.dag_id == dag_run.dag_id,
                                                          t.c.run_id == dag_run.run_id)).all():
        value = scrub_json(row.value, forms)
        if value != row.value:
            conn.execute(update(t).where(*(c == row._mapping[c.name] for c in key)).values(value=value))
            n += 1
    return n


def _scrub_notes(conn: Any, dag_run: Any, forms: dict[str, str]) -> int:
    from sqlalchemy import select, update

    from airflow.models.dagrun import DagRunNote
    from airflow.models.taskinstance import TaskInstance, TaskInstanceNote

    runs, tis, ti = DagRunNote.__table__, TaskInstanceNote.__table__, TaskInstance.__table__
    ti_ids = select(ti.c.id).where(ti.c.dag_id == dag_run.dag_id, ti.c.run_id == dag_run.run_id)
    n = 0
    for table, key, where in ((runs, runs.c.dag_run_id, runs.c.dag_run_id == dag_run.id),
                              (tis, tis.c.ti_id, tis.c.ti_id.in_(ti_ids))):
        for note_id, content in conn.execute(select(key, table.c.content).where(where)).all():
            new = scrub_text(content or "", forms)
            if new != (content or ""):
                # The column holds 1000 characters; keyed references are longer than most values.
                conn.execute(update(table).where(key == note_id).values(content=new[:1000]))
                n += 1
    return n


def on_run_ended(dag_run: Any) -> dict[str, int] | None:
    """Listener body: scrub a finished run of the request DAG in the session that ended it."""
    if getattr(dag_run, "dag_id", None) != DAG_ID:
        return None
    from sqlalchemy.orm import object_session

    session = object_session(dag_run)
    if session is not None:
        counts = _scrub_in(session, dag_run)
    else:
        # A detached run: its row is rewritten in a session of our own (never the thread's
        # scoped one, which may be the caller's), and the caller's copy gets the scrubbed conf
        # too, so merging it back (update_state() does) cannot restore the raw values.
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session

        with create_session(scoped=False) as own:
            stored = own.get(DagRun, dag_run.id)
            if stored is None:
                return None
            counts = _scrub_in(own, stored)
            dag_run.conf = dict(stored.conf or {})
    log.info("scrubbed %d identifier fields from Airflow's records of run %s (audit-log entries %d, rendered-field "
             "rows %d, XComs %d, notes %d)", counts["fields"], dag_run.run_id, counts["log"], counts["rendered"],
             counts["xcom"], counts["notes"])
    return counts


def _scrub_in(session: Any, dag_run: Any) -> dict[str, int]:
    hasher = scheduler_hasher(session)
    if hasher is None:
        log.error("no keyed-hash secret where run %s ended (Variable lifecycle_hash_secret or LIFECYCLE_HASH_SECRET): "
                  "identifiers are replaced by %r instead of keyed references", dag_run.run_id, REMOVED)
    return scrub_run(session, dag_run, hasher)
