"""Tag store tables: the pipeline's own inventory, plan and journal.

The tag store lives in a database (or PostgreSQL schema) of its own. It never holds a raw
identifier: subjects appear as keyed hashes, records by source and primary key.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# The tag store's vocabulary, one place each.
TagStatus = Literal["active", "anonymised", "restricted", "violation", "held"]
PlanAction = Literal["erase", "anonymise", "restrict", "redact"]  # nightly plan items and batches
RequestAction = Literal["erase", "hold", "anonymise", "redact", "forward"]  # a request's actions per record

# One row per (record, category): categories of one record can have different lawful bases
# and deadlines (a bookkeeping record keeps its accounting fields for 7 years while its
# contact fields expire after 2), so expiry is decided per category.
record_tag = Table(
    "lc_record_tag",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("record_key", String(200), primary_key=True),
    Column("category", String(60), primary_key=True),
    Column("activity", String(60), nullable=False),
    Column("lawful_basis", String(40)),
    Column("role", String(20), nullable=False),
    Column("controller", String(100), nullable=False),
    Column("clock_value", Date),
    Column("deadline", Date),
    Column("on_expiry", String(20), nullable=False),
    # a TagStatus
    Column("status", String(20), nullable=False),
    Column("violation", String(200)),
    # (Stores made before 2026-11-28 also have subject_refs, the record's hashes repeated on every
    # category row: never read, lc_subject_ref is the index. It is no longer written.)
    Column("run_id", String(250), nullable=False),
    # The parent record (through the catalog's subject.via) whose clock this record follows.
    Column("parent_key", String(200)),
    # Why the deadline came early: consent_withdrawn; else it is the retention period's end.
    Column("expiry_reason", String(40)),
    # True on the row of the record's first category, false on the others: counting records is
    # counting these rows, with no set of keys to build. NULL: tagged before the column existed
    # (counted by key, include/sql/breach_records_unlabelled.sql).
    Column("first_of_record", Boolean),
    # PostgreSQL: a partition per source, loaded in bulk on its first scan (lifecycle.tagstore.loading).
    postgresql_partition_by="LIST (source)",
)
Index("ix_lc_record_tag_status_deadline", record_tag.c.status, record_tag.c.deadline)
# Only the tags of records reached through a parent (the catalog's subject.via) have a
# parent_key, and every query of this index compares it with a key: tags without one (most
# sources have no parent) are left out of it, which spares a first scan their index entries.
# PostgreSQL and SQLite; MySQL has no partial indexes and indexes every tag.
Index("ix_lc_record_tag_parent", record_tag.c.source, record_tag.c.parent_key,
      postgresql_where=record_tag.c.parent_key.isnot(None), sqlite_where=record_tag.c.parent_key.isnot(None))

# Keyed-hash subject references: which records and fields hold an identifier of a person.
subject_ref = Table(
    "lc_subject_ref",
    metadata,
    Column("subject_hash", String(64), primary_key=True),
    Column("source", String(100), primary_key=True),
    Column("record_key", String(200), primary_key=True),
    Column("field", String(100), primary_key=True),
    Column("kind", String(20), nullable=False),
    # The field's category; activity and lawful basis follow from the record's tags.
    Column("category", String(60), nullable=False),
    # In free text the person may be someone else than the record's subject: redact, not erase.
    Column("free_text", Boolean, nullable=False, default=False),
    # Who the entry is about, set by the scan (lifecycle.discovery.label_persons): the record's
    # own person for a structured entry, the person named for a mention; "" for nobody. NULL in
    # entries indexed before the column existed (breach scoping then counts each record apart).
    Column("person", String(320)),
    # PostgreSQL: a partition per source, loaded in bulk on its first scan (lifecycle.tagstore.loading).
    postgresql_partition_by="LIST (source)",
)
Index("ix_lc_subject_ref_record", subject_ref.c.source, subject_ref.c.record_key)

run = Table(
    "lc_run",
    metadata,
    Column("run_id", String(250), primary_key=True),
    Column("logical_date", Date, nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("plan_created_at", DateTime(timezone=True)),
    Column("confirmed", Boolean, nullable=False, default=False),
)

# The plan is computed and stored before anything is destroyed (invariant 7).
# scope = record: the whole record gets the source's on_expiry action;
# scope = fields: only this category's columns are anonymised.
plan_item = Table(
    "lc_plan_item",
    metadata,
    Column("run_id", String(250), primary_key=True),
    Column("source", String(100), primary_key=True),
    Column("record_key", String(200), primary_key=True),
    Column("category", String(60), primary_key=True),
    Column("scope", String(10), nullable=False),
    Column("action", String(20), nullable=False),
    Column("lawful_basis", String(40)),
    Column("reason", String(40), nullable=False),
    Column("batch_no", Integer),
)
Index("ix_lc_plan_item_batch", plan_item.c.run_id, plan_item.c.source, plan_item.c.batch_no)

# One row per enforcement batch: written 'started' before the source is touched and 'done'
# after, so a re-run after a crash re-applies (idempotently) only unfinished batches.
journal = Table(
    "lc_journal",
    metadata,
    Column("run_id", String(250), primary_key=True),
    Column("source", String(100), primary_key=True),
    Column("batch_no", Integer, primary_key=True),
    Column("action", String(20), nullable=False),
    Column("scope", String(10), nullable=False),
    Column("keys", Integer, nullable=False),
    Column("rows_affected", Integer),
    Column("state", String(10), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
)

# Where the last scan of a source stopped, and under which catalog/policy/detectors: a change
# of fingerprint forces a full rescan, since old tags may be wrong under the new rules.
watermark = Table(
    "lc_watermark",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("tracking_column", String(100), nullable=False),
    Column("value", String(100)),
    Column("fingerprint", String(64), nullable=False),
    Column("run_id", String(250), nullable=False),
)

# Columns in a source that the catalog does not account for, or catalogued columns that are
# gone: reported as untagged data, and a validation failure for that source.
schema_finding = Table(
    "lc_schema_finding",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("column_name", String(100), primary_key=True),
    Column("finding", String(30), nullable=False),  # untagged_column | missing_column
    Column("run_id", String(250), nullable=False),
)

# Keys present in a source, staged to find records deleted since the last scan.
key_stage = Table(
    "lc_key_stage",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("record_key", String(200), primary_key=True),
)


# Data-subject requests (Art. 12-22): one row per request, by the operator's reference.
subject_request = Table(
    "lc_subject_request",
    metadata,
    Column("reference", String(100), primary_key=True),
    Column("request_type", String(20), nullable=False),  # erasure | access | ...
    Column("received_on", Date, nullable=False),
    Column("due_on", Date, nullable=False),  # one month, art. 12.3
    Column("status", String(20), nullable=False),  # received | completed | failed | dry_run
    Column("outcome", Text),  # JSON: counts per source and action; never identifiers
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True)),
)

# Erased and objecting people, by keyed hash only: the nightly run erases (or keeps out of
# marketing) whatever of theirs comes back through a re-import or a restored backup.
suppression = Table(
    "lc_suppression",
    metadata,
    Column("subject_hash", String(64), primary_key=True),
    Column("reason", String(20), primary_key=True),  # erasure | objection
    Column("request_reference", String(100), nullable=False),
    Column("since", Date, nullable=False),
)

# Objects of object-storage sources as last scanned: the ETag says whether an object changed
# (incremental scans read only changed objects); `clock` keeps the original last-modified time
# across the pipeline's own rewrites. Records of an object have keys '<object_ref>/<pk>'.
# The object key is kept here (the tag store is internal); reports name objects by object_ref.
object_state = Table(
    "lc_object_state",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("object_ref", String(32), primary_key=True),
    Column("object_key", Text, nullable=False),
    Column("etag", String(100)),
    Column("version_id", String(200)),
    Column("clock", Date),
    Column("records", Integer, nullable=False, default=0),
    Column("status", String(20), nullable=False),  # ok | malformed | unsupported
    Column("problem", String(300)),
    Column("run_id", String(250), nullable=False),
)

# Which secret built what: a keyed hash of a constant (never the secret) per scope, where a
# scope is 'source:<name>' (its subject index) or 'installation' (suppression list, requests).
# A run or request under another secret stops before reading anything.
index_key = Table(
    "lc_index_key",
    metadata,
    Column("scope", String(120), primary_key=True),
    Column("key_id", String(64), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("run_id", String(250)),
)

# A full rescan builds a source's new index entries here, beside the live ones, and swaps them
# in with one transaction: a complete index is visible at every moment (and after a crash).
subject_ref_build = Table(
    "lc_subject_ref_build",
    metadata,
    *(c.copy() for c in subject_ref.c),
)
Index("ix_lc_subject_ref_build_source", subject_ref_build.c.source)

# A request's own journal: every action planned (stored before anything is changed), grouped
# in steps that are started and done, so a crashed request resumes its own plan and its
# certificate counts what every attempt did.
request_action = Table(
    "lc_request_action",
    metadata,
    Column("reference", String(100), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("step", Integer, nullable=False),
    Column("source", String(100), nullable=False),
    Column("record_key", String(200), nullable=False),
    Column("action", String(20), nullable=False),  # erase | hold | anonymise | redact | forward
    Column("fields", Text, nullable=False),  # JSON list
    Column("categories", Text, nullable=False),  # JSON list
    Column("lapses_on", Date),
    Column("controller", String(100), nullable=False),
    Column("reason", String(200)),  # why a record is held, when not the legal obligation
)

# Mentions of an erased person's name in other people's free text (lifecycle.rights.review): a
# name is not unique, so each is listed for a person's decision (redact | keep) instead of being
# redacted. The name itself is never stored: only its keyed hash, to check the reviewer's input.
review_item = Table(
    "lc_review_item",
    metadata,
    Column("reference", String(100), primary_key=True),  # the erasure request that listed it
    Column("item_no", Integer, primary_key=True),  # 1, 2, ... per request: what a reviewer names
    Column("source", String(100), nullable=False),
    Column("record_key", String(200), nullable=False),
    Column("kind", String(20), nullable=False),  # name
    Column("name_hash", String(64), nullable=False),
    Column("status", String(10), nullable=False),  # pending | redacted | kept
    Column("listed_on", Date, nullable=False),
    Column("decided_by", String(250)),  # the reviewer's Airflow user id
    Column("decided_at", DateTime(timezone=True)),
    UniqueConstraint("reference", "source", "record_key", "name_hash", name="uq_lc_review_item_record"),
)
Index("ix_lc_review_item_status", review_item.c.status)

request_step = Table(
    "lc_request_step",
    metadata,
    Column("reference", String(100), primary_key=True),
    Column("step", Integer, primary_key=True),
    Column("kind", String(40), nullable=False),  # the action of its records, or suppress:<reason>
    Column("source", String(100), nullable=False),
    Column("state", String(10), nullable=False),  # planned | started | done
    Column("attempts", Integer, nullable=False, default=0),
    Column("result", Text),  # JSON: what the step did (object rewrites, versions removed)
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
)

# The audit trail (lifecycle.reporting.audit): one row per destructive batch, request outcome,
# approval or configuration fingerprint, each carrying the keyed hash of the one before it, so a
# changed, removed or reordered entry breaks the chain. Keyed references and counts only.
audit_log = Table(
    "lc_audit_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),  # 1, 2, 3, ... without gaps
    Column("at", DateTime(timezone=True), nullable=False),  # UTC
    Column("kind", String(40), nullable=False),  # enforce_batch | request_outcome | config_fingerprint | approval
    Column("subject", String(250), nullable=False),  # a source name, request reference or run id
    Column("details", Text, nullable=False),  # canonical JSON: counts, fingerprints, keyed references
    Column("prev_hash", String(64), nullable=False),
    Column("entry_hash", String(64), nullable=False),
)

# Approvals by a person (lifecycle.enforcement.approval): a nightly source whose plan exceeds its
# max_destroy_share, or a data-subject request under four eyes, waits for a decision; enforcement
# and fulfilment read it here. Airflow user ids of the requester and the responder, no data subject.
approval = Table(
    "lc_approval",
    metadata,
    Column("kind", String(20), primary_key=True),  # nightly | request
    Column("run_id", String(250), primary_key=True),  # the Airflow run that asked
    Column("item", String(250), primary_key=True),  # a source (nightly) or the request reference
    Column("decision", String(20), nullable=False),  # pending | approved | pre_approved | rejected | timed_out | refused
    Column("requested_by", String(250)),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("decided_by", String(250)),
    Column("decided_at", DateTime(timezone=True)),
    Column("details", Text),  # JSON: shares and counts; never personal data
)

# Aggregate-only analytics (lifecycle.enforcement.aggregation): counts per source, period and
# group, never an identifier. A group of fewer than min_group_size distinct visitors is never
# stored (merged into group_kind 'other', or dropped). group_kind: value | unknown | other.
analytics_aggregate = Table(
    "lc_analytics_aggregate",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("period", String(10), primary_key=True),  # day | week
    Column("period_start", Date, primary_key=True),
    Column("group_kind", String(10), primary_key=True),
    Column("group_value", String(200), primary_key=True),  # '' for unknown and other
    Column("visitors", Integer, nullable=False),
    Column("visits", Integer, nullable=False),
    Column("min_group_size", Integer, nullable=False),  # the k it was published under
    Column("run_id", String(250), nullable=False),
)

# How far each analytics source is aggregated: periods before aggregated_until are final, so a
# re-run never counts a visit twice, and raw data may be anonymised once it is aggregated.
analytics_state = Table(
    "lc_analytics_state",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("aggregated_until", Date, nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# PostgreSQL: text columns compare bytewise (COLLATE "C"). They hold keyed hashes, source names,
# record keys and codes: compared for equality and prefixes, never sorted for a reader. Under a
# linguistic collation (the database's default, e.g. C.UTF-8) every comparison goes through the
# C library, which made the subject index's primary-key build 2.5 times as slow (measured on
# 200 000 rows); bytewise, a key prefix (LIKE 'x%') can also use the B-tree.
BYTEWISE = "C"


def _declare_bytewise(tables: MetaData) -> None:
    for table in tables.tables.values():
        for column in table.columns:
            if type(column.type) is String:  # not Text: free-form values, never keys
                column.type = column.type.with_variant(String(column.type.length, collation=BYTEWISE), "postgresql")


_declare_bytewise(metadata)


def store_metadata(conn) -> MetaData:  # type: ignore[no-untyped-def]
    """The tables as this store has them. A PostgreSQL store made before its keys compared
    bytewise keeps the database's collation, and what is added to it must match it: a join of
    a bytewise and a linguistic column compares bytewise, which the linguistic column's
    indexes cannot serve."""
    if conn.dialect.name != "postgresql":
        return metadata
    collation = conn.exec_driver_sql(
        "SELECT c.collname FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation "
        "WHERE a.attrelid = to_regclass(%(t)s) AND a.attname = 'source'", {"t": record_tag.name}).scalar()
    return metadata if collation in (None, BYTEWISE) else _linguistic()


@cache
def _linguistic() -> MetaData:
    """The tables with the database's collation."""
    tables = MetaData()
    for table in metadata.sorted_tables:
        for column in table.to_metadata(tables).columns:
            if type(column.type) is String:
                column.type = String(column.type.length)
    return tables
