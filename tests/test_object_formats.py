"""Records in objects (no server needed): formats, gzip, malformed content, and the catalog's
checks on object-storage sources."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import yaml

from lifecycle.config.catalog import load_catalog
from lifecycle.errors import CatalogError
from lifecycle.stores.s3 import MalformedObjectError, decode_records, encode_records, object_format
from lifecycle.config.policy import load_policy

RECORDS = [{"id": "1", "email": "a@example.se", "note": "Hej, \"du\"; ring 070-123 45 67"},
           {"id": "2", "email": None, "note": "rad\nbrytning"}]


@pytest.mark.parametrize("fmt,key", [("csv", "x.csv"), ("jsonl", "x.jsonl"), ("json", "x.json"), ("csv", "x.csv.gz"),
                                     ("jsonl", "x.ndjson.gz")])
def test_records_survive_a_round_trip(fmt: str, key: str) -> None:
    body = encode_records(fmt, key, RECORDS, ["id", "email", "note"])
    if key.endswith(".gz"):
        assert body[:2] == b"\x1f\x8b"
    records, fields = decode_records(fmt, key, body)
    assert records == RECORDS and fields == ["id", "email", "note"]
    assert object_format(key, fmt) == fmt


@pytest.mark.parametrize("fmt,key,body,problem", [
    ("csv", "x.csv", b"id,email\n1,a@x.se,extra\n", "row 2 has 3 fields"),
    ("csv", "x.csv", b"id,id\n1,2\n", "repeated column"),
    ("csv", "x.csv", b'id,note\n1,"unterminated\n', "not valid CSV"),
    ("jsonl", "x.jsonl", b'{"id": 1}\n{"id": 2, "email": "b@x.se"\n', "line 2"),
    ("jsonl", "x.jsonl", b'{"id": 1}\n[1, 2]\n', "line 2 is not an object"),
    ("json", "x.json", b'{"id": 1}', "array of objects"),
    ("json", "x.json", b'[{"id": 1},', "not valid JSON"),
    ("csv", "x.csv", b"id\n\xff\xfe\n", "not UTF-8"),
    ("csv", "x.csv.gz", b"not gzip at all", "not valid gzip"),
])
def test_malformed_content_is_named_without_its_content(fmt: str, key: str, body: bytes, problem: str) -> None:
    with pytest.raises(MalformedObjectError) as err:
        decode_records(fmt, key, body)
    assert problem in str(err.value)
    assert "b@x.se" not in str(err.value) and "a@x.se" not in str(err.value)


def test_other_formats_are_not_read() -> None:
    assert object_format("exports/list.xlsx", "csv") is None
    assert object_format("exports/list.csv.gz", "jsonl") is None
    assert object_format("exports/LIST.CSV", "csv") == "csv"
    assert gzip.decompress(encode_records("csv", "a.csv.gz", [], ["id"])) == b"id\n"


def _write(tmp_path: Path, mutate) -> Path:  # type: ignore[no-untyped-def]
    root = Path(__file__).resolve().parents[1]
    data = yaml.safe_load((root / "config" / "catalog.objects.yaml").read_text())
    mutate(data["sources"]["newsletter_exports"])
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("mutate,problem", [
    (lambda s: s.update(table="t"), "exactly one of table"),
    (lambda s: s.pop("storage"), "exactly one of table"),
    (lambda s: s["storage"].update(bucket="Bad_Bucket"), "not a valid bucket name"),
    (lambda s: s["storage"].update(format="parquet"), "storage.format"),
    (lambda s: s["storage"].update(prefix="/abs/"), "prefix starts without"),
    (lambda s: s.update(change_tracking={"column": "updated_at"}), "incrementally by ETag"),
    (lambda s: s.update(primary_key="id; DROP TABLE x"), "plain SQL identifier"),
])
def test_bad_object_source_is_refused_with_its_key(tmp_path: Path, mutate, problem: str) -> None:  # type: ignore[no-untyped-def]
    root = Path(__file__).resolve().parents[1]
    policy = load_policy(root / "config" / "policy.yaml")
    with pytest.raises(CatalogError) as err:
        load_catalog(_write(tmp_path, mutate), policy)
    assert "newsletter_exports" in str(err.value) and problem in str(err.value)


def test_last_modified_clock_is_only_for_object_sources(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    policy = load_policy(root / "config" / "policy.yaml")
    data = yaml.safe_load((root / "config" / "catalog.yaml").read_text())
    data["sources"]["newsletter_subscribers"]["retention_clock"] = "_object_last_modified"
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(CatalogError) as err:
        load_catalog(path, policy)
    assert "only for object-storage sources" in str(err.value)
