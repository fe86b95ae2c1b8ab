"""Access extract (Art. 15, "registerutdrag"): everything held about one person, grouped by
activity, with each category's lawful basis, retention deadline and recipients.

The one document that carries personal data: it goes only to the protected location the
operator configured (lifecycle.rights.certificate.write_extract), never to logs or reports.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from sqlalchemy import Engine, select

from lifecycle.config import Catalog
from lifecycle.rights.certificate import now_iso
from lifecycle.config import Policy
from lifecycle.stores import open_stores
from lifecycle.discovery import locate
from lifecycle.stores import reach
from lifecycle.discovery import REDACTED, SubjectHasher, find_identifiers, mentions, person_spans, redact
from lifecycle.discovery import Finding
from lifecycle.rights.requests import SubjectIdentifiers
from lifecycle.rights.verify import Probe, verify_in_sources
from lifecycle.tagstore import record_tag


def _recipients(policy: Policy, activity: str) -> list[str]:
    subs = policy.activities[activity].sub_processors
    return [f"{policy.sub_processors[s].name} ({policy.sub_processors[s].purpose_sv}; "
            f"{policy.sub_processors[s].location})" for s in subs]


def build_extract(
    reference: str,
    *,
    catalog: Catalog,
    policy: Policy,
    source_engines: dict[str, Engine],
    tag_engine: Engine,
    hashes: list[str],
    hasher: SubjectHasher | None = None,
    year: int | None = None,
    identifiers: SubjectIdentifiers | None = None,
) -> dict[str, Any]:
    """Everything held about one person, grouped by activity; with ``hasher`` and ``year``, each
    mention of them in someone else's message as the text around it, every other identifier in
    it redacted (Art. 15(4): the copy must not reveal other people's data). With the request's
    ``identifiers``, every source is also searched for them in any writing (the targeted search
    erasure verifies with), so a mention the index does not know is in the extract too."""
    locations = [loc for loc in locate(tag_engine, hashes) if loc.source in catalog.sources]
    # A record holding the person in a structured column is theirs, whatever its free text says.
    own: dict[tuple[str, str], str | None] = {(loc.source, loc.record_key): None for loc in locations if not loc.free_text}
    groups: dict[str, dict[str, Any]] = {}
    stores = open_stores(catalog, source_engines, tag_engine)
    roots: dict[str, set[str]] = defaultdict(set)
    for source_name, key in own:
        roots[source_name].add(key)
    for r in reach(catalog, stores, roots):  # their orders, tickets, ...: records that reference theirs
        own[(r.source, r.record_key)] = r.parent_source
    mentions: dict[tuple[str, str], int] = defaultdict(int)
    mentioned: dict[tuple[str, str], set[str]] = defaultdict(set)
    for loc in locations:
        if (loc.source, loc.record_key) not in own:
            mentions[(catalog.source(loc.source).activity, loc.category)] += 1
            mentioned[(loc.source, loc.record_key)].add(loc.field)
    patterns = None
    if identifiers is not None and year:
        probe = Probe.of(identifiers, year)
        patterns = probe.text_patterns()
        for check in verify_in_sources(stores, probe, set(own)):
            source = catalog.source(check.source)
            unknown = [k for k in check.found_keys if (check.source, k) not in own and (check.source, k) not in mentioned]
            for key, record in stores[check.source].read(unknown).items():
                for field in source.free_text_columns:
                    if record.get(field) and probe.found_in_text(str(record[field])):
                        mentions[(source.activity, source.columns[field].category)] += 1
                        mentioned[(check.source, key)].add(field)
    excerpts = _mention_excerpts(catalog, stores, mentioned, set(hashes), hasher, year, patterns) if hasher and year else {}
    for (source_name, key), through in own.items():
        source = catalog.source(source_name)
        row = stores[source_name].read([key]).get(key)
        if row is None:
            continue
        with tag_engine.connect() as conn:
            tags = {t["category"]: t for t in conn.execute(select(record_tag).where(
                record_tag.c.source == source_name, record_tag.c.record_key == key)).mappings()}
        # The record's own activity (a CRM table may hold form, e-mail and phone contacts).
        name = next((t["activity"] for t in tags.values() if t["activity"] in policy.activities), source.activity)
        activity = policy.activities[name]
        group = groups.setdefault(name, {
            "activity": name, "activity_label": activity.label_sv, "role": activity.role,
            "recipients": _recipients(policy, name), "records": []})
        group["records"].append({"source": source_name, "reached_through": through, "categories": [
            {"category": category, "lawful_basis": tags.get(category, {}).get("lawful_basis"),
             "deadline": str(tags[category]["deadline"]) if tags.get(category, {}).get("deadline") else None,
             "fields": {c: str(row[c]) for c in source.columns_of(category) if row.get(c) is not None}}
            for category in source.categories]})
    return {
        "reference": reference,
        "controller": policy.controller.name,
        "generated_at": now_iso(),
        "groups": list(groups.values()),
        "mentions": [{"activity": a, "category": c, "count": n, "excerpts": excerpts.get((a, c), [])}
                     for (a, c), n in sorted(mentions.items())],
    }


EXCERPT_CONTEXT = 40  # characters on each side of a mention


def _mention_excerpts(catalog: Catalog, stores: dict[str, Any], mentioned: dict[tuple[str, str], set[str]],
                      hashes: set[str], hasher: SubjectHasher, year: int,
                      patterns: dict[str, re.Pattern[str]] | None = None) -> dict[tuple[str, str], list[dict[str, str]]]:
    """{(activity, category): excerpts} of the person's mentions in other people's free text."""
    by_source: dict[str, dict[str, set[str]]] = defaultdict(dict)
    for (source_name, key), fields in mentioned.items():
        by_source[source_name][key] = fields
    out: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for source_name, wanted in sorted(by_source.items()):
        source = catalog.source(source_name)
        for key, record in sorted(stores[source_name].read(sorted(wanted)).items()):
            for field in sorted(wanted[key]):
                text = str(record.get(field) or "")
                category = source.columns[field].category
                out[(source.activity, category)] += excerpts_of(text, hashes, hasher, year, patterns=patterns)
    return out


def excerpts_of(text: str, hashes: set[str], hasher: SubjectHasher, year: int, context: int = EXCERPT_CONTEXT,
                patterns: dict[str, re.Pattern[str]] | None = None) -> list[dict[str, str]]:
    """The text around each identifier of ``hashes`` in ``text`` (and each writing of
    ``patterns``, the request's own identifiers), with how it was written (``found_by``: the
    detector's writing, or ``targeted`` where only the search for the person's own identifiers
    reads it); every other identifier the detectors find in an excerpt is redacted."""
    found = find_identifiers(text, reference_year=year)  # once: theirs and everyone else's
    theirs = mentions(text, hashes, hasher, year, found)
    if patterns:  # what the targeted search adds: spans no finding of theirs covers
        theirs += [Finding(kind, start, end, "", "targeted") for kind, start, end in person_spans(text, patterns)  # type: ignore[arg-type]
                   if not any(f.start < end and start < f.end for f in theirs)]
    spans = [(f.start, f.end) for f in theirs]
    # Another identifier is anything found that does not overlap one of theirs.
    others = [f for f in found if not any(f.start < e and s < f.end for s, e in spans)]
    result = []
    for f in sorted(theirs, key=lambda f: f.start):
        start, end = max(0, f.start - context), min(len(text), f.end + context)
        inside = [o for o in others if o.start < end and o.end > start]
        # Widen to whole identifiers at the edges, so no part of another one shows.
        start = min([start, *(o.start for o in inside)])
        end = max([end, *(o.end for o in inside)])
        piece = redact(text[start:end], [o._replace(start=o.start - start, end=o.end - start) for o in inside], REDACTED)
        result.append({"text": ("…" if start else "") + piece.strip() + ("…" if end < len(text) else ""),
                       "found_by": f.writing})
    return result
