"""SQL statements from include/sql, with a dialect-specific override where one is needed.

Values are always bind parameters. Only identifiers (table and column names) are templated,
and only after the catalog validated them as plain identifiers; they are quoted by the
dialect's own identifier preparer on top of that.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.sql.elements import TextClause

SQL_DIR = Path(os.environ.get("LIFECYCLE_SQL_DIR", Path(__file__).resolve().parents[2] / "include" / "sql"))


# A dialect that speaks another's SQL: SQLAlchemy names the dialect of a ``mariadb+pymysql://``
# URL "mariadb" (of ``mysql+pymysql://`` "mysql", whichever server answers), and MariaDB runs
# the MySQL statements.
_FALLBACK = {"mariadb": "mysql"}


@lru_cache(maxsize=128)
def load_sql(name: str, dialect: str) -> str:
    """include/sql/<dialect>/<name>.sql if present, else that of the dialect it falls back to
    (mariadb: mysql), else include/sql/<name>.sql."""
    dialects = [dialect] + ([_FALLBACK[dialect]] if dialect in _FALLBACK else [])
    for candidate in [SQL_DIR / d / f"{name}.sql" for d in dialects] + [SQL_DIR / f"{name}.sql"]:
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    raise FileNotFoundError(f"no SQL statement {name!r} for dialect {dialect!r} in {SQL_DIR}")


def statement(engine: Engine, name: str, **identifiers: str) -> TextClause:
    quote = engine.dialect.identifier_preparer.quote
    sql = load_sql(name, engine.dialect.name)
    if identifiers:
        sql = sql.format(**{k: v if k.endswith("_sql") else quote(v) for k, v in identifiers.items()})
    return text(sql)


def quote_identifier(engine: Engine, name: str) -> str:
    return engine.dialect.identifier_preparer.quote(name)
