"""Records in a SQL table, on any SQLAlchemy dialect with its overrides in include/sql/<dialect>/.

Writes are set-based statements per batch of keys, under the source's writer lock; a change of
single records (redaction, rectification) reads the batch, computes the new values in Python
and writes back only the columns that differ, in one transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Engine, MetaData, inspect, Table, and_, bindparam, func, literal_column, or_, select, update

from lifecycle.config import Source
from lifecycle.tagstore import lock_source, make_engine, mysql_url
from lifecycle.discovery import REDACTED
from lifecycle.discovery import SubjectHasher
from lifecycle.config import Policy
from lifecycle.tagstore import load_sql, quote_identifier, statement
from lifecycle.stores.base import Changed, ConnectionInfo, Dependent, RecordChange
from lifecycle.stores.search_index import disguised, disguised_condition, has_text_indexes
from lifecycle.rights import Probe, SourceCheck

_REFLECTED: dict[tuple[str, str], Table] = {}


def reflect(engine: Engine, table_name: str) -> Table:
    """The table, reflected once per engine and table: reflection costs a round trip per column
    on PostgreSQL, far more than a request's own work."""
    key = (engine.url.render_as_string(hide_password=True), table_name)
    if key not in _REFLECTED:
        _REFLECTED[key] = Table(table_name, MetaData(), autoload_with=engine)
    return _REFLECTED[key]


def assignments(engine: Engine, source: Source, columns: Sequence[str]) -> str:
    """SET clauses for each column's anonymisation strategy (null, redact, email_domain)."""
    parts = []
    for name in columns:
        strategy = source.columns[name].anonymise
        col = quote_identifier(engine, name)
        if strategy == "null":
            parts.append(f"{col} = NULL")
        elif strategy == "redact":
            parts.append(f"{col} = :redacted")
        elif strategy == "email_domain":
            parts.append(f"{col} = " + load_sql("email_domain", engine.dialect.name).strip().format(column=col))
    return ", ".join(parts)


REFERENCE_BATCH = 1000  # parent keys per IN list: far below every dialect's parameter limit


class Store:
    """A source's table in a SQL database."""

    count_names: tuple[str, ...] = ()

    def __init__(self, source: Source, engine: Engine, tag_engine: Engine, **_: Any) -> None:
        self.source, self.engine, self.tag_engine = source, engine, tag_engine

    # -- keys -------------------------------------------------------------------------------

    def _key_type(self) -> Callable[[str], Any]:
        try:
            python_type = reflect(self.engine, self.source.table or "").c[self.source.primary_key].type.python_type
        except NotImplementedError:
            return str
        return python_type if python_type in (int, str) else str

    def _typed(self, keys: Sequence[str]) -> list[Any]:
        to_key = self._key_type()
        return [to_key(k) for k in keys]

    # -- the protocol -----------------------------------------------------------------------

    def scan(self, policy: Policy, *, hasher: SubjectHasher, run_id: str, logical_date: date,
             full_rescan: bool = False, progress: Callable[[int, int], None] | None = None,
             rotate_key: bool = False, catalog_file: str = "catalog") -> Any:
        from lifecycle.discovery import scan_source

        return scan_source(self.source, policy, source_engine=self.engine, tag_engine=self.tag_engine, hasher=hasher,
                           run_id=run_id, logical_date=logical_date, full_rescan=full_rescan, progress=progress,
                           catalog_file=catalog_file, rotate_key=rotate_key)

    def erase(self, keys: Sequence[str]) -> Changed:
        stmt = statement(self.engine, "erase_records", table=self.source.table or "", primary_key=self.source.primary_key)
        return Changed(self._execute(stmt, {"keys": self._typed(keys)}))

    def anonymise(self, keys: Sequence[str], columns: Sequence[str]) -> Changed:
        if not columns:
            return Changed()
        stmt = statement(self.engine, "anonymise_columns", table=self.source.table or "",
                         primary_key=self.source.primary_key,
                         assignments_sql=assignments(self.engine, self.source, columns))
        params: dict[str, Any] = {"keys": self._typed(keys)}
        if ":redacted" in stmt.text:
            params["redacted"] = REDACTED
        return Changed(self._execute(stmt, params))

    def _execute(self, stmt: Any, params: dict[str, Any]) -> int:
        with self.engine.begin() as conn:
            lock_source(conn, self.source.name)
            return int(conn.execute(stmt.bindparams(bindparam("keys", expanding=True)), params).rowcount or 0)

    def change(self, changes: dict[str, RecordChange]) -> Changed:
        if not changes:
            return Changed()
        t = reflect(self.engine, self.source.table or "")
        pk = t.c[self.source.primary_key]
        columns = [t.c[c] for c in self.source.referenced_columns() if c in t.c and c != self.source.primary_key]
        by_key = dict(zip(self._typed(list(changes)), changes.values()))
        changed = 0
        with self.engine.begin() as conn:
            lock_source(conn, self.source.name)
            rows = conn.execute(select(pk, *columns).where(pk.in_(list(by_key)))).mappings().all()
            per_column: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for row in rows:
                record = dict(row)
                new = by_key[row[self.source.primary_key]](dict(record))
                if new is None:
                    raise ValueError("a record change that drops the record is an erasure: use erase()")
                diff = {c: v for c, v in new.items() if c in record and v != record[c]}
                changed += bool(diff)
                for c, v in diff.items():
                    per_column[c].append({"b_key": row[self.source.primary_key], "b_value": v})
            for c, params in per_column.items():  # one executemany per column
                conn.execute(update(t).where(pk == bindparam("b_key")).values({c: bindparam("b_value")}), params)
        return Changed(changed)

    def read(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        t = reflect(self.engine, self.source.table or "")
        pk = t.c[self.source.primary_key]
        with self.engine.connect() as conn:
            rows = conn.execute(select(t).where(pk.in_(self._typed(keys)))).mappings().all()
        return {str(r[self.source.primary_key]): dict(r) for r in rows}

    def referencing(self, column: str, parent_keys: Sequence[str]) -> dict[str, str]:
        t = reflect(self.engine, self.source.table or "")
        try:
            python_type = t.c[column].type.python_type
        except NotImplementedError:
            python_type = str
        to_value = python_type if python_type in (int, str) else str
        values = [to_value(k) for k in dict.fromkeys(parent_keys)]
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(values), REFERENCE_BATCH):
                found.update((str(k), str(p)) for k, p in conn.execute(
                    select(t.c[self.source.primary_key], t.c[column])
                    .where(t.c[column].in_(values[i:i + REFERENCE_BATCH]))))
        return found

    def dependents(self) -> list[Dependent]:
        """Read from the database (PostgreSQL: its catalog, in one query; elsewhere SQLAlchemy's
        inspector), not assumed from the catalog."""
        if self.engine.dialect.name == "postgresql":
            # The inspector asks several catalog queries of every table in the schema (the tag
            # store's too) on each request: here one query, for the foreign keys of tables in the
            # current schema that reference this table, as the inspector would find them.
            from sqlalchemy import text

            rules = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
            with self.engine.connect() as conn:
                rows = conn.execute(text(
                    "SELECT child.relname, a.attname, c.confdeltype FROM pg_constraint c "
                    "JOIN pg_class child ON child.oid = c.conrelid "
                    "CROSS JOIN LATERAL unnest(c.conkey) AS k(attnum) "
                    "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum "
                    "WHERE c.contype = 'f' AND c.confrelid = to_regclass(quote_ident(:table)) "
                    "AND child.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) "
                    "ORDER BY child.relname, a.attnum"), {"table": self.source.table or ""}).all()
            return [Dependent(str(t), str(c), rules.get(str(d), "NO ACTION")) for t, c, d in rows]
        inspector = inspect(self.engine)
        found = []
        for table_name in inspector.get_table_names():
            for fk in inspector.get_foreign_keys(table_name):
                if fk.get("referred_table") == self.source.table:
                    on_delete = ((fk.get("options") or {}).get("ondelete") or "NO ACTION").upper()
                    found += [Dependent(table_name, column, on_delete) for column in fk["constrained_columns"]]
        if self.engine.dialect.name == "sqlite":  # its inspector leaves ON DELETE out: ask SQLite itself
            found = [Dependent(d.table, d.column, _sqlite_on_delete(self.engine, d.table, d.column)) for d in found]
        return found

    def find(self, probe: Any, allowed: set[tuple[str, str]]) -> Any:
        return check_table(self.engine, self.source, probe, allowed)


# -- finding a person, independently of the index (lifecycle.rights.verify) --------------------------


def _sqlite_on_delete(engine: Engine, table_name: str, column: str) -> str:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f"PRAGMA foreign_key_list({quote_identifier(engine, table_name)})").mappings().all()
    return next((str(r["on_delete"]).upper() for r in rows if r["from"] == column), "NO ACTION")


def _digits(engine: Engine, column: Any) -> Any:
    """The value without the separators people write inside numbers (include/sql/<dialect>/
    digits.sql: a native string function, cheap enough to apply to every row of a table)."""
    sql = load_sql("digits", engine.dialect.name).strip()
    return literal_column(sql.format(column=column.compile(engine).string)) if "{column}" in sql else column


def _conditions(engine: Engine, t: Table, source: Source, probe: Probe) -> tuple[list[Any], dict[str, list[str]]]:
    conditions: list[Any] = []
    checked: dict[str, list[str]] = {}
    columns = source.subject.columns()
    for kind, column in columns.items():
        c = t.c[column]
        if kind == "email" and probe.email:
            conditions.append(func.lower(func.trim(c)) == probe.email)
        elif kind == "phone" and probe.phone_national:
            conditions.append(_digits(engine, c).in_(probe.phone_digit_forms()))
        elif kind == "personnummer" and probe.personnummer:
            conditions.append(_digits(engine, c).in_(probe.personnummer_digit_forms()))
        elif kind == "name" and probe.name and probe.company and "company" in columns:
            conditions.append(and_(func.lower(func.trim(c)) == probe.name,
                                   func.lower(func.trim(t.c[columns["company"]])) == probe.company))
            checked.setdefault("name_company", []).append(f"{column}+{columns['company']}")
            continue
        else:
            continue
        checked.setdefault(kind, []).append(column)
    return conditions, checked


def _any_of(engine: Engine, column: Any, like_terms: list[str], indexed: bool = False) -> Any:
    """``column`` contains one of the ``%term%`` substrings (case-insensitively for letters).
    PostgreSQL, MySQL and MariaDB test them as one regular expression: seventy LIKEs per row
    cost twenty times one regex on a million rows. SQLite (whose REGEXP calls back into Python)
    uses ``instr``, a plain substring search far cheaper than LIKE: on the lower-cased text for the
    longer terms, on the text itself for single characters (look-alike letters, invisible ones).
    ``indexed`` (the column has the search indexes of lifecycle.stores.search_index): a LIKE per
    longer term, which the trigram index serves, and the partial index's own expression for the
    short ones, so PostgreSQL reads only the rows the indexes pick."""
    if not like_terms:
        return literal_column("1 = 0")
    if indexed and engine.dialect.name == "postgresql":
        terms = {term.strip("%") for term in like_terms}
        longer, short = sorted({t.lower() for t in terms if len(t) >= 3}), [t for t in terms if len(t) < 3]
        if all(disguised(t) for t in short):
            lowered = func.lower(column)
            conditions = [lowered.like(f"%{_like_literal(t)}%", escape="\\") for t in longer]
            if short:
                conditions.append(literal_column(disguised_condition(column.compile(engine).string)))
            return or_(*conditions)
    if engine.dialect.name in ("postgresql", "mysql", "mariadb"):
        return func.lower(column).regexp_match("|".join(_regex_literal(term.strip("%")) for term in like_terms))
    singles = sorted({term.strip("%") for term in like_terms if len(term.strip("%")) == 1})
    # SQLite lower-cases ASCII only: terms in other scripts (full-width) come in both cases already.
    longer = sorted({term.strip("%") for term in like_terms if len(term.strip("%")) != 1})
    lowered = func.lower(column)
    return or_(*(func.instr(lowered, term) > 0 for term in longer), *(func.instr(column, ch) > 0 for ch in singles))


def _like_literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _regex_literal(text: str) -> str:
    """``text`` matched literally by the databases' regular expressions (ARE, ICU, PCRE)."""
    return "".join(ch if ch.isalnum() else "\\" + ch if ch in r".^$*+?()[]{}|\-/" else ch for ch in text)


def _text_prefilter(engine: Engine, t: Table, source: Source, probe: Probe, indexed: bool = False) -> list[Any]:
    """Cheap, wide conditions on the database; Python confirms each hit."""
    conditions = []
    for name in source.free_text_columns:
        c = t.c[name]
        # every writing: the e-mail's parts, full-width digits, characters that disguise them
        conditions.append(_any_of(engine, c, probe.text_like_terms(), indexed))
        digits = _digits(engine, c)
        if probe.phone_national:
            conditions.append(digits.like(f"%{probe.phone_national}%"))
        if probe.personnummer:
            conditions.append(digits.like(f"%{probe.personnummer[2:]}%"))
    return conditions


def check_table(engine: Engine, source: Source, probe: Probe, allowed: set[tuple[str, str]]) -> SourceCheck:
    t = reflect(engine, source.table or "")
    pk = t.c[source.primary_key]
    structured, checked = _conditions(engine, t, source, probe)
    check = SourceCheck(source.name, "table", identifier_columns=checked, free_text_columns=list(source.free_text_columns),
                        free_text_kinds=[k for k in ("email", "phone", "personnummer") if k in probe.text_patterns()]
                        if source.free_text_columns else [])
    found: set[str] = set()
    indexed = has_text_indexes(engine, source)
    conditions = structured + _text_prefilter(engine, t, source, probe, indexed)
    if conditions:  # one pass over the table: structured matches are certain, text hits are confirmed here
        texts = [t.c[c] for c in source.free_text_columns]
        structured_hit = or_(*structured).label("lc_structured") if structured else literal_column("0").label("lc_structured")
        with engine.connect() as conn:
            for row in conn.execute(select(pk, structured_hit, *texts).where(or_(*conditions))):
                if row[1] or any(probe.found_in_text(str(value)) for value in row[2:] if value):
                    found.add(str(row[0]))
    check.found_keys = sorted(k for k in found if (source.name, k) not in allowed)
    check.records_found = len(check.found_keys)
    if probe.mention_names and source.free_text_columns:
        check.name_mentions = _name_mentions(engine, t, source, probe, allowed, indexed)
    return check


def _name_mentions(engine: Engine, t: Table, source: Source, probe: Probe,
                   allowed: set[tuple[str, str]], indexed: bool = False) -> list[tuple[str, str]]:
    """(key, name) of records whose free text writes one of the person's full names: the
    database picks rows holding a name's longest word, Python confirms the whole name."""
    pk = t.c[source.primary_key]
    texts = [t.c[c] for c in source.free_text_columns]
    terms = probe.name_like_terms()
    found: set[tuple[str, str]] = set()
    with engine.connect() as conn:
        for row in conn.execute(select(pk, *texts).where(or_(*(_any_of(engine, c, terms, indexed) for c in texts)))):
            if (source.name, str(row[0])) not in allowed:
                found |= {(str(row[0]), n) for value in row[1:] if value for n in probe.names_in_text(str(value))}
    return sorted(found)


def backend(conn: ConnectionInfo) -> Engine:
    url, schema = url_of(conn)
    return make_engine(url, schema=schema)


def url_of(conn: ConnectionInfo) -> tuple[str, str | None]:
    """SQLAlchemy URL and schema of a Connection: extra ``sqlalchemy_url`` overrides the rest;
    extra ``search_path`` names a PostgreSQL schema."""
    from urllib.parse import quote

    schema = conn.extra.get("search_path")
    if conn.extra.get("sqlalchemy_url"):
        return str(conn.extra["sqlalchemy_url"]), schema
    if conn.conn_type == "sqlite":
        return f"sqlite:///{conn.host}", None
    if conn.conn_type in ("postgres", "postgresql"):
        auth = quote(conn.login or "", safe="")
        if conn.password:
            auth += ":" + quote(conn.password, safe="")
        host = f"{conn.host or 'localhost'}:{conn.port or 5432}"
        return f"postgresql+psycopg://{auth + '@' if auth else ''}{host}/{conn.schema or ''}", schema
    if conn.conn_type in ("mysql", "mariadb"):  # MySQL or MariaDB: schema = the database
        return mysql_url(conn.login, conn.password, conn.host, conn.port, conn.schema, conn_id=conn.conn_id), None
    raise ValueError(f"connection {conn.conn_id!r}: type {conn.conn_type!r} is not supported (sqlite, postgres, mysql)")
