"""Records that belong to a person through references: an order whose customer is the person,
the order's lines, a ticket's messages. They hold none of the person's identifiers, so the
subject index cannot find them; the catalog's ``subject.via`` says which column points at which
parent, and each store is asked directly which of its records reference the parents found so far,
hop by hop, until nothing new turns up.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from lifecycle.config import Catalog, children_of
from lifecycle.errors import UndeclaredReferenceError
from lifecycle.stores.base import RecordStore


@dataclass(frozen=True)
class Reached:
    """A record reached through a reference, and the parent record it references."""

    source: str
    record_key: str
    parent_source: str
    parent_key: str
    depth: int  # hops from the person's own record


def reach(catalog: Catalog, stores: dict[str, RecordStore], roots: dict[str, set[str]]) -> list[Reached]:
    """Every record connected to ``roots`` ({source: keys of records that are the person's})
    through the catalog's references, any number of hops, each once. A child source with no
    backend here is skipped; callers that must be complete check ``unreachable``."""
    children = children_of(catalog)
    seen = {(source, key) for source, keys in roots.items() for key in keys}
    frontier = {source: set(keys) for source, keys in roots.items() if keys}
    found: list[Reached] = []
    depth = 0
    while frontier:
        depth += 1
        following: dict[str, set[str]] = defaultdict(set)
        for parent, keys in sorted(frontier.items()):
            for child, column in children.get(parent, []):
                if child not in stores:
                    continue
                for key, parent_key in sorted(stores[child].referencing(column, sorted(keys)).items()):
                    if (child, key) not in seen:
                        seen.add((child, key))
                        found.append(Reached(child, key, parent, parent_key, depth))
                        following[child].add(key)
        frontier = following
    return found


def unreachable(catalog: Catalog, stores: dict[str, RecordStore], roots: dict[str, set[str]]) -> list[str]:
    """Child sources that references lead to from ``roots`` but that have no backend here."""
    children = children_of(catalog)
    missing, todo, visited = set(), list(roots), set()
    while todo:
        parent = todo.pop()
        if parent in visited:
            continue
        visited.add(parent)
        for child, _ in children.get(parent, []):
            if child not in stores:
                missing.add(child)
            todo.append(child)
    return sorted(missing)


def undeclared_dependents(catalog: Catalog, stores: dict[str, RecordStore], names: list[str]) -> dict[str, list[str]]:
    """{source: ["table.column (ON DELETE ...)", ...]} for foreign keys in a source's database
    that point at it from a table no catalogued source declares as its child (``subject.via``)."""
    declared: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for child in catalog.sources.values():
        for column, parent in child.subject.via.items():
            if child.table and child.connection == catalog.sources[parent].connection:
                declared[parent].add((child.table, column))
    problems: dict[str, list[str]] = {}
    for name in names:
        if name not in stores:
            continue
        undeclared = [f"{d.table}.{d.column} (ON DELETE {d.on_delete})" for d in stores[name].dependents()
                      if (d.table, d.column) not in declared[name]]
        if undeclared:
            problems[name] = sorted(undeclared)
    return problems


def check_foreign_keys(catalog: Catalog, stores: dict[str, RecordStore], names: list[str]) -> None:
    """Stop, before anything changes, when deleting from a source would meet a foreign key the
    catalog does not describe (refused by RESTRICT, or cascading into undescribed records)."""
    problems = undeclared_dependents(catalog, stores, names)
    if problems:
        raise UndeclaredReferenceError(problems)
