"""Where a source's records live, behind one protocol (``RecordStore``).

Scan, plan, enforcement, every request type and verification use only the protocol. Each kind
of store is one module here, named after the catalog's location key (``table``, ``storage``,
``lake_table``), with a ``Store`` class and a ``backend`` function that makes its client from a
Connection: adding a kind means adding its module, its catalog variant and its tests.
"""

from lifecycle.surface import public_surface

__all__, __getattr__ = public_surface(__name__, {
    "base": ("Changed", "ConnectionInfo", "Dependent", "RecordChange", "RecordStore"),
    "references": ("Reached", "check_foreign_keys", "reach", "unreachable", "undeclared_dependents"),
    "registry": ("backend_for", "open_store", "open_stores"),
    "s3": ("Encryption", "ObjectStore"),
    "search_index": ("create_search_indexes", "has_text_indexes", "index_specs"),
})
