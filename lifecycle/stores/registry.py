"""Which store module serves a source: the one named after its catalog location key."""

from __future__ import annotations

import importlib
from typing import Any

from sqlalchemy import Engine

from lifecycle.config import Catalog, Source
from lifecycle.stores.base import ConnectionInfo, RecordStore


def _module(source: Source) -> Any:
    return importlib.import_module(f"lifecycle.stores.{source.location}")


def open_store(source: Source, backend: Any, tag_engine: Engine, **options: Any) -> RecordStore:
    """The store of ``source`` over ``backend`` (the client its Connection gives: an SQLAlchemy
    engine, an S3 client...). A RecordStore passed in is returned as it is."""
    if isinstance(backend, RecordStore):
        return backend
    return _module(source).Store(source, backend, tag_engine, **options)


def open_stores(catalog: Catalog, backends: dict[str, Any], tag_engine: Engine) -> dict[str, RecordStore]:
    """One store per catalog source whose Connection has a backend in ``backends``."""
    return {name: open_store(s, backends[s.connection], tag_engine)
            for name, s in catalog.sources.items() if s.connection in backends}


def backend_for(source: Source, conn: ConnectionInfo) -> Any:
    """The client a source's kind of store needs, from its Connection."""
    return _module(source).backend(conn)
