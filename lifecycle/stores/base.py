"""The store protocol: what the pipeline asks of any place that holds records."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from lifecycle.config import Source
    from lifecycle.discovery import SubjectHasher
    from lifecycle.config import Policy
    from lifecycle.discovery import ScanStats
    from lifecycle.rights import Probe, SourceCheck

# A change of one record: the new record, or None to drop it (erase).
RecordChange = Callable[[dict[str, Any]], "dict[str, Any] | None"]


@dataclass
class Changed:
    """What a write did: records changed, records that could not be reached now (they stay
    planned), and the store's own counts (objects rewritten, versions removed, ...)."""

    records: int = 0
    skipped_keys: tuple[str, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ConnectionInfo:
    """An Airflow Connection's fields, without Airflow: what a store needs to make its client."""

    conn_id: str
    conn_type: str
    host: str | None = None
    login: str | None = None
    password: str | None = None
    port: int | None = None
    schema: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Dependent:
    """A foreign key in the store's database that points at the source's records."""

    table: str
    column: str
    on_delete: str  # RESTRICT, NO ACTION, CASCADE, SET NULL, SET DEFAULT


@runtime_checkable
class RecordStore(Protocol):
    """One source's records. Keys are the tag store's record keys (strings); every write is
    idempotent, so a journaled batch left unfinished by a crash is simply applied again."""

    source: Source
    # The store's own counts of what a write did (objects rewritten, ...), zero before any write.
    count_names: tuple[str, ...]

    def scan(self, policy: Policy, *, hasher: SubjectHasher, run_id: str, logical_date: date,
             full_rescan: bool = False, progress: Callable[[int, int], None] | None = None,
             rotate_key: bool = False) -> ScanStats:
        """Tag every record (or what changed since the last scan) into the tag store."""
        ...

    def erase(self, keys: Sequence[str]) -> Changed:
        """Remove the records, older versions included where the store keeps them."""
        ...

    def anonymise(self, keys: Sequence[str], columns: Sequence[str]) -> Changed:
        """Apply each column's anonymisation (catalog ``anonymise``) to the records."""
        ...

    def change(self, changes: dict[str, RecordChange]) -> Changed:
        """Rewrite records one by one (redaction of spans, rectification); only what differs is written."""
        ...

    def read(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The records as they are now, by key (missing ones are left out)."""
        ...

    def find(self, probe: Probe, allowed: set[tuple[str, str]]) -> SourceCheck:
        """Search the whole store for a person, independently of the subject index."""
        ...

    def referencing(self, column: str, parent_keys: Sequence[str]) -> dict[str, str]:
        """{record key: parent key} of the records whose ``column`` (a foreign key, catalog
        ``subject.via``) holds one of ``parent_keys``: read from the store itself, not the index."""
        ...

    def dependents(self) -> list[Dependent]:
        """Foreign keys of the store's database that point at the source (none where the store
        has no such thing): what deleting its records would break or cascade into."""
        ...
