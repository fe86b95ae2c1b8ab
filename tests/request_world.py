"""One person in the demo company, and requests about them, in this process or in another.

Used by the erasure-proof tests, which run requests and scans in child processes (to kill -9
them, or to race them against each other):

    python -m tests.request_world erase '<json settings>'
    python -m tests.request_world scan '<json settings>'
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, Table, select

ROOT = Path(__file__).resolve().parents[1]
TODAY = date(2026, 11, 25)
EMAIL = "Test.Person@Exempel.se"
PHONE = "070-555 12 34"
PERSONNUMMER = "19850412-2386"


@dataclass(frozen=True)
class World:
    """Where the demo company lives: the source database and the tag store (URL + schema)."""

    url: str
    schema: str | None
    tag_url: str
    tag_schema: str | None
    report_dir: str
    secret: str = "test-secret-not-for-production-0123456789"

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    def engines(self):  # type: ignore[no-untyped-def]
        from lifecycle.tagstore.db import make_engine, open_tag_store

        return make_engine(self.url, schema=self.schema), open_tag_store(self.tag_url, schema=self.tag_schema)

    def hasher(self):  # type: ignore[no-untyped-def]
        from lifecycle.discovery.identifiers import SubjectHasher

        return SubjectHasher(self.secret.encode())

    def config(self):  # type: ignore[no-untyped-def]
        from lifecycle.config.catalog import load_catalog
        from lifecycle.config.policy import load_policy

        policy = load_policy(ROOT / "config" / "policy.yaml")
        return policy, load_catalog(ROOT / "config" / "catalog.yaml", policy)


def insert(engine, name: str, row: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    t = Table(name, MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        conn.execute(t.insert().values(**row))


def prepare(world: World, rows: int = 40) -> None:
    """The demo company plus one person in five sources (own records, a BFL invoice, a mention
    in someone else's message, a customer's audience), scanned once."""
    from demo.company import generate

    generate(world.url, rows=rows, seed=4, as_of=TODAY, schema=world.schema)
    engine, tags = world.engines()
    now = datetime(2026, 11, 1, 12)
    insert(engine, "newsletter_subscribers", dict(id=9001, subscribed_at=date(2026, 1, 1), last_confirmed_at=date(2026, 6, 1),
                                                  name="Test Person", email="test.person@exempel.se", updated_at=now))
    insert(engine, "customers", dict(id=9001, customer_number="K9", company_name="Provbolaget AB", org_number="556898-9718",
                                     contact_name="Test Person", contact_email="TEST.PERSON@exempel.se",
                                     contact_phone="+46 70 555 12 34", contract_start=date(2024, 1, 1), contract_end=None,
                                     updated_at=now))
    insert(engine, "invoices", dict(id=9001, invoice_number="F2024-9", customer_id=9001, invoice_date=date(2024, 3, 1),
                                    amount_sek=1000, vat_sek=250, buyer_company="Provbolaget AB", buyer_org_number="556898-9718",
                                    buyer_address="Provgatan 1", contact_name="Test Person",
                                    contact_email="test.person@exempel.se", contact_phone=PHONE, updated_at=now))
    insert(engine, "contact_form_submissions", dict(
        id=9001, submitted_at=now, last_interaction_at=date(2026, 11, 1), name="Annan Person", email="annan@exempel.se",
        message=f"Hej! Prata med min kollega {EMAIL.lower()} eller 0705551234 om offerten.", message_basis="consent",
        updated_at=now))
    insert(engine, "ad_audiences", dict(id=9001, customer_id="kund-nordisk-handel", uploaded_at=date(2026, 11, 1),
                                        name="Test Person", email="test.person@exempel.se", phone=None,
                                        segment="retargeting", updated_at=now))
    scan_all(world, run_id="n1")


def scan_all(world: World, run_id: str, full_rescan: bool = False, only: str | None = None,
             rotate_key: bool = False) -> None:
    from lifecycle.discovery.scan import scan_source

    engine, tags = world.engines()
    policy, catalog = world.config()
    for source in catalog.sources.values():
        if only and source.name != only:
            continue
        scan_source(source, policy, source_engine=engine, tag_engine=tags, hasher=world.hasher(), run_id=run_id,
                    logical_date=TODAY, full_rescan=full_rescan, rotate_key=rotate_key)


def erase(world: World, reference: str = "DSR-1", **identifiers: str):  # type: ignore[no-untyped-def]
    """An erasure request through the domain's one dispatcher, as the DAG runs it."""
    from lifecycle.rights.dispatcher import SubjectRequest, Workspace, fulfil
    from lifecycle.rights.requests import SubjectIdentifiers

    engine, tags = world.engines()
    policy, catalog = world.config()
    ids = SubjectIdentifiers.parse(identifiers or {"email": EMAIL, "phone": PHONE}, TODAY.year)
    workspace = Workspace(policy, catalog, {"lifecycle_demo": engine}, tags, world.hasher())
    request = SubjectRequest(reference, "erasure", ids, TODAY, dry_run=False)
    return fulfil(request, workspace, report_dir=Path(world.report_dir), extract_dir=Path(world.report_dir) / "x")


def table_rows(world: World) -> dict[str, list[tuple[Any, ...]]]:
    """Every demo table, row by row, for comparing two runs."""
    engine, _ = world.engines()
    _, catalog = world.config()
    out = {}
    with engine.connect() as conn:
        for source in catalog.sources.values():
            if source.table:
                t = Table(source.table, MetaData(), autoload_with=engine)
                out[source.table] = [tuple(map(str, r)) for r in conn.execute(select(t).order_by(t.c[source.primary_key]))]
    return out


def main(argv: list[str]) -> int:
    command, settings = argv[0], json.loads(argv[1])
    world = World(**settings)
    if command == "erase":
        result = erase(world)
        print(json.dumps({"verified": result.verified}))
    elif command == "scan":
        scan_all(world, run_id="rescan", full_rescan=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
