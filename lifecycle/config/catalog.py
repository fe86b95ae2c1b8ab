"""The source catalog: where personal data lives and what the policy says about it.

Loaded from YAML (config/catalog.yaml), validated structurally, then checked against the
policy: every column's category must belong to the source's activity and every fixed lawful
basis must be one the policy lists for that category. Identifiers are checked to be plain
SQL identifiers, since they are templated into SQL after validation.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lifecycle.config.files import parse_model, read_yaml
from lifecycle.errors import CatalogError, UnknownSourceError
from lifecycle.config.policy import LawfulBasis, Policy

Action = Literal["erase", "anonymise", "restrict"]
AnonymiseStrategy = Literal["null", "redact", "email_domain", "keep"]
SubjectKind = Literal["email", "phone", "personnummer", "org_number", "name", "company"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_MONTH_DAY = re.compile(r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")


def plain_identifier(value: str) -> str:
    if not isinstance(value, str) or not _IDENTIFIER.match(value):
        raise ValueError(f"{value!r} is not a plain SQL identifier (letters, digits and _, at most 63)")
    return value


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ColumnSpec(_Frozen):
    category: str
    anonymise: AnonymiseStrategy = "null"
    # Free text may hold anyone's identifiers: it is searched by the detectors.
    free_text: bool = False


class BasisFromColumn(_Frozen):
    column: str

    _check_column = field_validator("column")(plain_identifier)


BasisSpec = LawfulBasis | BasisFromColumn


class SubjectSpec(_Frozen):
    # A child record belongs to the person its parent belongs to: {foreign-key column: parent
    # source}, one hop each; order_lines -> orders -> customers is two sources with one `via` each.
    via: dict[str, str] = {}
    email: str | None = None
    phone: str | None = None
    personnummer: str | None = None
    org_number: str | None = None
    name: str | None = None
    company: str | None = None

    @field_validator("via")
    @classmethod
    def _plain_via(cls, value: dict[str, str]) -> dict[str, str]:
        for column, parent in value.items():
            plain_identifier(column)
            if not isinstance(parent, str) or not parent:
                raise ValueError(f"via.{column} names the parent source, a non-empty name")
        return value

    def columns(self) -> dict[SubjectKind, str]:
        return {kind: col for kind, col in self.model_dump(exclude={"via"}).items() if col}


class ParentClock(_Frozen):
    """The record has no clock of its own: it is kept as long as the parent it references
    through ``parent`` (a ``subject.via`` column) is, and goes with it."""

    parent: str

    _check = field_validator("parent")(plain_identifier)


# A column; the first non-empty of several columns; or the parent's clock.
ClockSpec = str | tuple[str, ...] | ParentClock


class ConsentState(_Frozen):
    """Columns that end a consent: a withdrawal date that is set, or an opt-in flag that is
    cleared. Categories held under consent are then no longer lawfully held."""

    withdrawn_at: str | None = None
    opt_in: str | None = None

    _check = field_validator("withdrawn_at", "opt_in")(lambda v: v if v is None else plain_identifier(v))

    @model_validator(mode="after")
    def _at_least_one(self) -> ConsentState:
        if self.withdrawn_at is None and self.opt_in is None:
            raise ValueError("give withdrawn_at (a withdrawal date column), opt_in (an opt-in flag column) or both")
        return self

    def columns(self) -> list[str]:
        return [c for c in (self.withdrawn_at, self.opt_in) if c]


class ActivityFromColumn(_Frozen):
    """The activity of each record, from a column: one CRM table holding contact-form, e-mail
    and phone contacts. ``values`` maps what the column holds to the policy's activities; a
    record whose value is not mapped is a violation (``unknown_activity``)."""

    column: str
    values: dict[str, str] = Field(min_length=1)

    _check = field_validator("column")(plain_identifier)


class ColumnValue(_Frozen):
    """A value read per record from a column (e.g. a fiscal year end that differs per customer)."""

    column: str

    _check = field_validator("column")(plain_identifier)


class ChangeTracking(_Frozen):
    """How to find what changed since the last scan.

    ``column``: an updated-at timestamp (or date) set on every insert and update;
    ``monotonic_key``: a key that only grows, which sees inserts but not updates.
    """

    column: str | None = None
    monotonic_key: str | None = None

    _check = field_validator("column", "monotonic_key")(lambda v: v if v is None else plain_identifier(v))

    @model_validator(mode="after")
    def _exactly_one(self) -> ChangeTracking:
        if (self.column is None) == (self.monotonic_key is None):
            raise ValueError("give exactly one of column or monotonic_key")
        return self

    @property
    def tracking_column(self) -> str:
        return self.column or self.monotonic_key or ""


ObjectFormat = Literal["csv", "jsonl", "json"]
# Retention clock of records in object storage that carry no date of their own: the object's
# last-modified time (kept across the pipeline's own rewrites, see lifecycle.stores.s3).
OBJECT_LAST_MODIFIED = "_object_last_modified"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class ObjectStorage(_Frozen):
    """Records in objects of an S3-compatible store: one file format per source."""

    bucket: str
    prefix: str = ""
    format: ObjectFormat

    @field_validator("bucket")
    @classmethod
    def _bucket_name(cls, value: str) -> str:
        if not _BUCKET.match(value):
            raise ValueError(f"{value!r} is not a valid bucket name (3-63 lower-case letters, digits, '.' and '-')")
        return value

    @field_validator("prefix")
    @classmethod
    def _plain_prefix(cls, value: str) -> str:
        if value.startswith("/") or any(ord(ch) < 32 for ch in value):
            raise ValueError(f"{value!r}: a prefix starts without '/' and holds no control characters")
        return value


class LakeTable(_Frozen):
    """A Delta Lake table: ``s3://bucket/path`` on an S3-compatible store, or a local table
    (``file:///abs/path`` or an absolute path). Read and written with delta-rs
    (lifecycle/stores/lake_table.py)."""

    uri: str

    @field_validator("uri")
    @classmethod
    def _table_uri(cls, value: str) -> str:
        if not value or any(ord(ch) < 32 for ch in value):
            raise ValueError("a table URI is not empty and holds no control characters")
        if value.startswith("s3://"):
            bucket, _, path = value[len("s3://"):].partition("/")
            if not _BUCKET.match(bucket):
                raise ValueError(f"{value!r}: {bucket!r} is not a valid bucket name "
                                 "(3-63 lower-case letters, digits, '.' and '-')")
        else:
            path = value[len("file://"):] if value.startswith("file://") else value
            if not path.startswith("/"):
                raise ValueError(f"{value!r}: give s3://bucket/path, file:///absolute/path or an absolute path")
            if not path.strip("/"):
                raise ValueError(f"{value!r}: a local table is a folder below the root")
        if ".." in path.split("/"):
            raise ValueError(f"{value!r}: a table URI does not climb out of its folder ('..')")
        return value.rstrip("/")

    @property
    def is_s3(self) -> bool:
        return self.uri.startswith("s3://")


AnalyticsPeriod = Literal["day", "week"]


class Analytics(_Frozen):
    """Aggregate-only use of a source (the policy: visits are used for research and analysis on
    an aggregated level only). Records are counted per ``group_by`` column and period of
    ``date_column``; a group of fewer than ``k`` distinct visitors is merged into "other", and
    "other" is dropped when it is under ``k`` too. Visitors are counted distinct by
    ``visitor_column`` inside the database (no identifier leaves it); without one, each record
    is a visitor of its own."""

    group_by: tuple[str, ...] = Field(min_length=1, max_length=1)
    date_column: str
    period: AnalyticsPeriod = "day"
    k: int = Field(5, ge=2, le=1000)
    visitor_column: str | None = None

    @field_validator("group_by", mode="before")
    @classmethod
    def _one_column(cls, value: Any) -> Any:
        # `group_by: company` is short for `group_by: [company]`; one column for now.
        return [value] if isinstance(value, str) else value

    @field_validator("group_by")
    @classmethod
    def _plain_group(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for column in value:
            plain_identifier(column)
        return value

    _check = field_validator("date_column", "visitor_column")(lambda v: v if v is None else plain_identifier(v))

    @property
    def group_column(self) -> str:
        return self.group_by[0]


PARTITION_ROWS = 250_000  # about 15 s of scanning per partition on one core


class Defaults(_Frozen):
    connection: str = "lifecycle_demo"
    batch_size: int = Field(1000, ge=1, le=50_000)
    max_destroy_share: float = Field(0.5, gt=0, le=1)
    confirm_min_records: int = Field(10, ge=0)
    partition_rows: int = Field(PARTITION_ROWS, ge=10, le=100_000_000)


Location = Literal["table", "storage", "lake_table"]


class Source(_Frozen):
    name: str
    connection: str
    # Exactly one location: a table in a SQL database, objects in a bucket (then primary_key is a
    # field of each record), or a Delta Lake table (then primary_key is one of its columns).
    table: str | None = None
    storage: ObjectStorage | None = None
    lake_table: LakeTable | None = None
    primary_key: str
    # The source's activity; with activity_column, the activity of records whose value is empty,
    # and the one that gives the role (every mapped activity must share it).
    activity: str
    activity_column: ActivityFromColumn | None = None
    columns: dict[str, ColumnSpec] = Field(min_length=1)
    lawful_basis: BasisSpec
    category_bases: dict[str, BasisSpec] = {}
    retention_clock: ClockSpec
    # A fixed month-day, or a column holding each record's own (MM-DD or a date).
    fiscal_year_end: str | ColumnValue = "12-31"
    consent: ConsentState | None = None
    controller_column: str | None = None
    subject: SubjectSpec = SubjectSpec()
    on_expiry: Action
    # Columns known to hold no personal data; any other column in the table is schema drift.
    not_personal: tuple[str, ...] = ()
    change_tracking: ChangeTracking | None = None
    # Aggregate-only analytics over the source (lifecycle.enforcement.aggregation).
    analytics: Analytics | None = None
    batch_size: int = Field(1000, ge=1, le=50_000)
    max_destroy_share: float = Field(0.5, gt=0, le=1)
    # Below this many records a share is noise (1 of 1 is 100 %): no confirmation needed.
    confirm_min_records: int = Field(10, ge=0)
    # A full scan of a SQL table with more rows than this (by a cheap estimate) is split into key
    # ranges of about this many rows, scanned as separate tasks (lifecycle.discovery.partitions).
    partition_rows: int = Field(PARTITION_ROWS, ge=10, le=100_000_000)

    _check_identifiers = field_validator("table", "primary_key", "controller_column")(
        lambda v: v if v is None else plain_identifier(v)
    )

    @field_validator("retention_clock", mode="before")
    @classmethod
    def _clock(cls, value: Any) -> Any:
        if isinstance(value, list):
            if not value:
                raise ValueError("a list of clock columns names at least one column")
            value = tuple(value)
        if isinstance(value, tuple):
            for column in value:
                plain_identifier(column)
        elif isinstance(value, str) and value != OBJECT_LAST_MODIFIED:
            plain_identifier(value)
        return value

    @field_validator("columns", mode="before")
    @classmethod
    def _shorthand_columns(cls, value: Any) -> Any:
        # `email: contact_details` is short for `email: {category: contact_details}`.
        if isinstance(value, dict):
            for column in value:
                plain_identifier(column)
            return {c: {"category": v} if isinstance(v, str) else v for c, v in value.items()}
        return value

    @field_validator("not_personal")
    @classmethod
    def _plain_columns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for column in value:
            plain_identifier(column)
        return value

    @field_validator("fiscal_year_end")
    @classmethod
    def _month_day(cls, value: str | ColumnValue) -> str | ColumnValue:
        if isinstance(value, str) and not _MONTH_DAY.match(value):
            raise ValueError(f"{value!r} is not a month-day such as 12-31")
        return value

    @model_validator(mode="after")
    def _one_location(self) -> Source:
        given = [key for key in ("table", "storage", "lake_table") if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of table (a SQL table), storage (records in objects of a bucket) or lake_table "
                f"(a Delta Lake table); {'none was given' if not given else 'got ' + ' and '.join(given)}")
        if isinstance(self.retention_clock, ParentClock) and self.retention_clock.parent not in self.subject.via:
            raise ValueError(f"retention_clock.parent {self.retention_clock.parent!r} is not a subject.via column")
        if self.retention_clock == OBJECT_LAST_MODIFIED and self.storage is None:
            raise ValueError(f"retention_clock {OBJECT_LAST_MODIFIED} exists only for object-storage sources")
        if self.storage is not None and self.change_tracking is not None:
            raise ValueError("object-storage sources are scanned incrementally by ETag: remove change_tracking")
        if self.lake_table is not None and self.change_tracking is not None:
            raise ValueError("lake_table sources are scanned incrementally by Delta table version: remove change_tracking")
        return self

    @property
    def location(self) -> Location:
        """Which kind of store holds the source: the tagged union of its location keys. Each
        kind has its own module, lifecycle/stores/<kind>.py."""
        if self.lake_table is not None:
            return "lake_table"
        return "storage" if self.storage is not None else "table"

    @model_validator(mode="after")
    def _subject_columns_are_catalogued(self) -> Source:
        for kind, column in self.subject.columns().items():
            if column not in self.columns:
                raise ValueError(f"subject.{kind} names column {column!r}, which is not under columns")
        return self

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(spec.category for spec in self.columns.values()))

    def columns_of(self, category: str) -> list[str]:
        return [c for c, spec in self.columns.items() if spec.category == category]

    def basis_spec(self, category: str) -> BasisSpec:
        return self.category_bases.get(category, self.lawful_basis)

    @property
    def clock_columns(self) -> tuple[str, ...]:
        """The fields a record's own clock is read from, first non-empty wins (none: the
        parent's clock). Object records carry their object's last-modified time as a field."""
        clock = self.retention_clock
        if isinstance(clock, ParentClock):
            return ()
        return clock if isinstance(clock, tuple) else (clock,)

    @property
    def clock_parent(self) -> str | None:
        """The ``via`` column whose parent's clock this record follows, if it has none of its own."""
        return self.retention_clock.parent if isinstance(self.retention_clock, ParentClock) else None

    @property
    def fiscal_year_end_column(self) -> str | None:
        return self.fiscal_year_end.column if isinstance(self.fiscal_year_end, ColumnValue) else None

    def referenced_columns(self) -> list[str]:
        """Every column the pipeline reads from the table, key first."""
        extra = [c for c in self.clock_columns if c != OBJECT_LAST_MODIFIED] + list(self.subject.via)
        if self.activity_column:
            extra.append(self.activity_column.column)
        if self.fiscal_year_end_column:
            extra.append(self.fiscal_year_end_column)
        if self.consent:
            extra += self.consent.columns()
        extra += [spec.column for spec in [self.lawful_basis, *self.category_bases.values()] if isinstance(spec, BasisFromColumn)]
        if self.controller_column:
            extra.append(self.controller_column)
        if self.change_tracking:
            extra.append(self.change_tracking.tracking_column)
        return list(dict.fromkeys([self.primary_key, *self.columns, *extra]))

    def known_columns(self) -> set[str]:
        """Every column the catalog accounts for: anything else in the table is drift."""
        return set(self.referenced_columns()) | set(self.not_personal)

    @property
    def free_text_columns(self) -> list[str]:
        return [c for c, spec in self.columns.items() if spec.free_text]


class Catalog(_Frozen):
    version: Literal[1]
    defaults: Defaults = Defaults()
    sources: dict[str, Source] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _apply_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("sources"), dict):
            return data
        defaults = Defaults.model_validate(data.get("defaults") or {})
        sources = {}
        for name, spec in data["sources"].items():
            if isinstance(spec, dict):
                spec = {**defaults.model_dump(), **spec, "name": name}
            sources[name] = spec
        return {**data, "sources": sources}

    def source(self, name: str) -> Source:
        if name not in self.sources:
            raise UnknownSourceError(name, list(self.sources))
        return self.sources[name]


def load_catalog(path: Path | str, policy: Policy) -> Catalog:
    path = Path(path)
    catalog = parse_model(Catalog, read_yaml(path, CatalogError), path, CatalogError)
    for source in catalog.sources.values():
        check_against_policy(source, policy, str(path))
    check_connections(catalog, str(path))
    check_references(catalog, str(path))
    return catalog


def check_references(catalog: Catalog, file: str) -> None:
    """Every ``via`` names a source of the catalog, and following them never comes back."""
    for source in catalog.sources.values():
        for column, parent in source.subject.via.items():
            if parent not in catalog.sources:
                raise CatalogError(file, f"sources.{source.name}.subject.via.{column}",
                                   f"{parent!r} is not a source of the catalog (sources: {', '.join(sorted(catalog.sources))})")
    for name in catalog.sources:
        path = [name]
        _walk_parents(catalog, path, file)


def _walk_parents(catalog: Catalog, path: list[str], file: str) -> None:
    for column, parent in catalog.sources[path[-1]].subject.via.items():
        if parent in path:
            cycle = " -> ".join([*path[path.index(parent):], parent])
            raise CatalogError(file, f"sources.{path[-1]}.subject.via.{column}", f"references form a cycle: {cycle}")
        _walk_parents(catalog, [*path, parent], file)


def children_of(catalog: Catalog) -> dict[str, list[tuple[str, str]]]:
    """{parent source: [(child source, its via column), ...]} over the whole catalog."""
    children: dict[str, list[tuple[str, str]]] = {}
    for source in catalog.sources.values():
        for column, parent in source.subject.via.items():
            children.setdefault(parent, []).append((source.name, column))
    return children


def dependency_order(catalog: Catalog, names: list[str] | None = None) -> list[list[str]]:
    """Sources in groups that reference each other (transitively), each group ordered children
    before parents: the order in which records can be removed without breaking a foreign key.
    Unrelated sources are groups of their own, so they can be worked on side by side."""
    names = list(catalog.sources) if names is None else names
    group_of = {n: n for n in catalog.sources}

    def root(n: str) -> str:
        while group_of[n] != n:
            n = group_of[n]
        return n

    for source in catalog.sources.values():
        for parent in source.subject.via.values():
            group_of[root(source.name)] = root(parent)
    children = children_of(catalog)
    depth: dict[str, int] = {}

    def height(n: str) -> int:  # longest path to a leaf child: children come first
        if n not in depth:
            depth[n] = 1 + max((height(c) for c, _ in children.get(n, [])), default=-1)
        return depth[n]

    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(root(n), []).append(n)
    return [sorted(members, key=lambda n: (height(n), n)) for members in groups.values()]


def check_connections(catalog: Catalog, file: str) -> None:
    """A Connection gives one kind of client (SQL engine, S3 client, Delta storage options), and
    each Connection's backend is made once: sources of different kinds need their own."""
    kinds: dict[str, dict[str, str]] = {}
    for source in catalog.sources.values():
        seen = kinds.setdefault(source.connection, {})
        other = next((name for name, kind in seen.items() if kind != source.location), None)
        if other is not None:
            raise CatalogError(
                file, f"sources.{source.name}.connection",
                f"Connection {source.connection!r} also serves {other!r}, a {seen[other]} source; a {source.location} "
                "source needs a Connection of its own")
        seen[source.name] = source.location


def check_against_policy(source: Source, policy: Policy, file: str) -> None:
    check_activity(source, policy, source.activity, file, f"sources.{source.name}.activity")
    if policy.activities[source.activity].aggregate_only and source.analytics is None:
        # The policy allows this activity's data for analysis on an aggregated level only: the
        # catalog must say how it is aggregated (and so what is counted before it is anonymised).
        raise CatalogError(file, f"sources.{source.name}.analytics",
                           f"activity {source.activity!r} is aggregate-only in the policy: give analytics "
                           "{group_by, date_column, period, k}")
    if source.analytics is not None:
        check_analytics(source, file)
    if source.activity_column:
        role = policy.activities[source.activity].role
        for value, name in source.activity_column.values.items():
            where = f"sources.{source.name}.activity_column.values.{value}"
            check_activity(source, policy, name, file, where)
            if policy.activities[name].role != role:
                raise CatalogError(file, where, f"activity {name!r} is {policy.activities[name].role}-role, but "
                                                f"{source.activity!r} is {role}-role: one source has one role")


def check_analytics(source: Source, file: str) -> None:
    """Analytics are counted in the source's SQL database, over columns the catalog accounts for."""
    spec, key = source.analytics, f"sources.{source.name}.analytics"
    if spec is None:
        return
    if source.location != "table":
        raise CatalogError(file, key, f"aggregates are computed in a SQL database: a {source.location} source has none")
    for name, column in [("group_by", spec.group_column), ("date_column", spec.date_column),
                         ("visitor_column", spec.visitor_column)]:
        if column is not None and column not in source.known_columns():
            raise CatalogError(file, f"{key}.{name}", f"column {column!r} is not one the catalog lists for the source "
                                                      "(columns, not_personal, retention_clock)")


def check_activity(source: Source, policy: Policy, name: str, file: str, where: str) -> None:
    """The source's columns, bases and controller column fit activity ``name`` of the policy."""
    key = f"sources.{source.name}"
    activity = policy.activities.get(name)
    if activity is None:
        raise CatalogError(file, where, f"{name!r} is not an activity of the policy")
    for column, spec in source.columns.items():
        if spec.category not in activity.categories:
            raise CatalogError(
                file,
                f"{key}.columns.{column}",
                f"category {spec.category!r} is not one the policy allows for activity {name!r} "
                f"(allowed: {', '.join(activity.categories)})",
            )
    for category in source.category_bases:
        if category not in source.categories:
            raise CatalogError(file, f"{key}.category_bases.{category}", "no column of this source has that category")
    for category in source.categories:
        spec = source.basis_spec(category)
        if isinstance(spec, str) and spec not in activity.categories[category]:
            raise CatalogError(
                file,
                f"{key}.lawful_basis" if category not in source.category_bases else f"{key}.category_bases.{category}",
                f"basis {spec!r} is not one the policy allows for {category!r} in activity {name!r} "
                f"(allowed: {', '.join(activity.categories[category])})",
            )
    if activity.role == "processor" and not source.controller_column:
        raise CatalogError(file, f"{key}.controller_column", "a processor-role source must name the column holding the customer (controller)")
    if activity.role == "controller" and source.controller_column:
        raise CatalogError(file, f"{key}.controller_column", f"activity {name!r} is controller-role; remove controller_column")

