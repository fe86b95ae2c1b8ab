"""Search indexes on a PostgreSQL source: what makes a request's independent search of the
source proportional to what it finds instead of a pass over every row.

Verification (lifecycle.rights.verify) asks each table for the person in any writing. Without
help from the database that is a sequential scan of every free-text row. A source's owner can
add, once, indexes on exactly the expressions the search uses; the search then runs as a
bitmap-OR of index scans:

- a trigram index (``pg_trgm``) on ``lower(<text>)``: the e-mail's parts and a name, any case;
- a trigram index on the text without separators (``include/sql/postgresql/digits.sql``): a
  number however it is spaced, dotted or broken over lines;
- a partial index on the rows holding a disguising character (``DISGUISED``: invisible and
  full-width characters, look-alike letters, HTML entities), which no trigram can serve; such
  rows are few, and every one of them is re-read and confirmed in Python;
- B-tree expression indexes on the identifier columns as the search compares them.

The indexes live in the source database and are kept current by PostgreSQL itself, so the
search stays independent of the pipeline's own subject index. Nothing here is required: without
the indexes the search is the same sequential pass, with the same results.

    python -m lifecycle.stores.search_index --url postgresql+psycopg://… [--schema S] [--source NAME …] [--print]
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text

from lifecycle.config import Source, load_catalog, load_policy
from lifecycle.discovery import INVISIBLE, LOOK_ALIKES
from lifecycle.tagstore import load_sql, make_engine, quote_identifier

PREFIX = "lc_search_"
# Every character a writing may be disguised with (lifecycle.rights.verify's single-character
# pre-filter terms: invisible and spacing characters, full-width forms, look-alike letters) and
# the two HTML entities: one fixed expression, so one partial index serves every request.
_CHARACTERS = sorted({*INVISIBLE, *(chr(c) for c in range(0x2000, 0x200B)), "\u2012", "\u2024", "\u205f", "\u3000",
                      "\ufe63", "\uff20", "\ufe6b", *(chr(0xFF10 + d) for d in range(10)),
                      *(form for alikes in LOOK_ALIKES.values() for ch in alikes for form in (ch, ch.lower(), ch.upper())
                        if len(form) == 1)})
DISGUISED = "[" + "".join(_CHARACTERS) + "]|&#|&commat;"
_DISGUISED_RE = re.compile(DISGUISED)


def disguised(term: str) -> bool:
    """Whether every row holding ``term`` (a pre-filter term of fewer than three characters,
    which a trigram index cannot serve) is picked by the ``DISGUISED`` expression."""
    return bool(_DISGUISED_RE.search(term))


@dataclass(frozen=True)
class IndexSpec:
    name: str
    ddl: str


def _name(table: str, column: str, what: str) -> str:
    # PostgreSQL truncates names at 63 bytes: keep the prefix and purpose, shorten the rest.
    return f"{PREFIX}{what}_{table}_{column}"[:63]


def index_specs(engine: Engine, source: Source, trgm_schema: str) -> list[IndexSpec]:
    """The indexes the search of ``source`` can use, as DDL (IF NOT EXISTS: safe to re-run)."""
    if engine.dialect.name != "postgresql" or not source.table:
        return []
    table = quote_identifier(engine, source.table)
    ops = f"{quote_identifier(engine, trgm_schema)}.gin_trgm_ops"
    digits = load_sql("digits", "postgresql").strip()
    specs: list[IndexSpec] = []
    for column in source.free_text_columns:
        c = quote_identifier(engine, column)
        specs += [
            IndexSpec(_name(source.table, column, "trgm"),
                      f"CREATE INDEX IF NOT EXISTS {_name(source.table, column, 'trgm')} ON {table} USING gin ((lower({c})) {ops})"),
            IndexSpec(_name(source.table, column, "digits"),
                      f"CREATE INDEX IF NOT EXISTS {_name(source.table, column, 'digits')} ON {table} "
                      f"USING gin (({digits.format(column=c)}) {ops})"),
            IndexSpec(_name(source.table, column, "disguised"),
                      f"CREATE INDEX IF NOT EXISTS {_name(source.table, column, 'disguised')} ON {table} "
                      f"({quote_identifier(engine, source.primary_key)}) WHERE {c} ~ {_literal(DISGUISED)}"),
        ]
    for kind, column in source.subject.columns().items():
        c = quote_identifier(engine, column)
        if kind == "email":
            expression = f"lower(trim({c}))"
        elif kind in ("phone", "personnummer"):
            expression = digits.format(column=c)
        else:
            continue
        specs.append(IndexSpec(_name(source.table, column, kind),
                               f"CREATE INDEX IF NOT EXISTS {_name(source.table, column, kind)} ON {table} (({expression}))"))
    return specs


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def disguised_condition(column_sql: str) -> str:
    """The partial index's own predicate, as SQL text: the planner uses the index only for this
    exact expression, so the search writes it the same way (a constant, never user input)."""
    return f"{column_sql} ~ {_literal(DISGUISED)}"


def trgm_schema(engine: Engine) -> str | None:
    """The schema pg_trgm is installed in, or None."""
    with engine.connect() as conn:
        return conn.execute(text("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                                 "WHERE e.extname = 'pg_trgm'")).scalar()


def create_search_indexes(engine: Engine, sources: list[Source]) -> list[str]:
    """Install pg_trgm (where allowed) and create the indexes of ``sources``; the names made."""
    if engine.dialect.name != "postgresql":
        raise ValueError(f"search indexes are for PostgreSQL sources; this connection is {engine.dialect.name}")
    schema = trgm_schema(engine)
    if schema is None:
        with engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        schema = trgm_schema(engine)
    assert schema is not None
    made = []
    for source in sources:
        specs = index_specs(engine, source, schema)
        with engine.begin() as conn:
            for spec in specs:
                conn.execute(text(spec.ddl))
            if specs:
                conn.execute(text(f"ANALYZE {quote_identifier(engine, source.table or '')}"))
        made += [s.name for s in specs]
    return made


def has_text_indexes(engine: Engine, source: Source) -> bool:
    """Whether every free-text column of the source has its three search indexes."""
    if engine.dialect.name != "postgresql" or not source.table or not source.free_text_columns:
        return False
    wanted = {_name(source.table, c, what) for c in source.free_text_columns for what in ("trgm", "digits", "disguised")}
    with engine.connect() as conn:
        present = set(conn.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = :t AND indexname LIKE :p "
                                        "AND schemaname = ANY (current_schemas(false))"),
                                   {"t": source.table, "p": f"{PREFIX}%"}).scalars())
    return wanted <= present


def main(argv: list[str] | None = None) -> int:
    root = Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser(description="Create the search indexes of PostgreSQL sources.")
    parser.add_argument("--url", required=True, help="SQLAlchemy URL of the source database")
    parser.add_argument("--schema", help="PostgreSQL schema of the source tables")
    parser.add_argument("--catalog", default=str(root / "config" / "catalog.yaml"))
    parser.add_argument("--policy", default=str(root / "config" / "policy.yaml"))
    parser.add_argument("--source", action="append", help="catalog source (repeatable; default: every table source)")
    parser.add_argument("--print", action="store_true", help="print the DDL for review instead of running it")
    args = parser.parse_args(argv)
    catalog = load_catalog(Path(args.catalog), load_policy(Path(args.policy)))
    names = args.source or [n for n, s in catalog.sources.items() if s.table]
    sources = [catalog.source(n) for n in names]
    engine = make_engine(args.url, schema=args.schema)
    if args.print:
        for source in sources:
            for spec in index_specs(engine, source, trgm_schema(engine) or "public"):
                print(spec.ddl + ";")
        return 0
    for name in create_search_indexes(engine, sources):
        print(f"index {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
