import pytest

from lifecycle.discovery.identifiers import SubjectHasher, normalise_email, normalise_personnummer, normalise_phone


@pytest.mark.parametrize(
    "raw",
    ["070-123 45 67", "+46 70 123 45 67", "0046701234567", "+46 (0)70-1234567", "070 123 45 67"],
)
def test_swedish_phone_writings_normalise_to_e164(raw: str) -> None:
    assert normalise_phone(raw) == "+46701234567"


def test_landline_and_garbage() -> None:
    assert normalise_phone("08-123 456 78") == "+46812345678"
    assert normalise_phone("12") is None
    assert normalise_phone("abc") is None


def test_personnummer_to_twelve_digits() -> None:
    assert normalise_personnummer("811218-9876", 2026) == "198112189876"
    assert normalise_personnummer("19811218-9876", 2026) == "198112189876"
    assert normalise_personnummer("121212+1212", 2026) == "191212121212"  # '+' = 100 years or older
    assert normalise_personnummer("201212-1212", 2026) == "202012121212"


def test_keyed_hash_is_stable_normalised_and_keyed() -> None:
    a = SubjectHasher(b"k" * 32)
    b = SubjectHasher(b"x" * 32)
    assert a.reference("email", " Anna.Berg@Example.SE ") == a.reference("email", "anna.berg@example.se")
    assert a.reference("email", "anna.berg@example.se") != b.reference("email", "anna.berg@example.se")
    assert a.reference("phone", "070-123 45 67") == a.reference("phone", "+46701234567")
    assert a.reference("email", "not an e-mail") is None
    assert a.reference("email", None) is None
    ref = a.reference("email", "anna.berg@example.se")
    assert ref and len(ref) == 32 and "anna" not in ref
    assert normalise_email("A@B.se") == "a@b.se"


@pytest.mark.parametrize("secret", [b"sixteen-bytes-ok", b"k" * 64, b"a-secret-longer-than-a-sha256-block-" * 3])
def test_keyed_hash_is_hmac_sha256(secret: bytes) -> None:
    """The prepared inner and outer hashes give exactly RFC 2104 HMAC-SHA256, for keys shorter
    than, as long as and longer than the block; and the hasher survives pickling (worker processes)."""
    import hmac
    import pickle

    hasher = SubjectHasher(secret)
    for kind, value in (("email", "anna.berg@example.com"), ("phone", "+46701234567"), ("name", "åsa öberg")):
        assert hasher.hash(kind, value) == hmac.digest(secret, f"{kind}:{value}".encode(), "sha256").hex()[:32]
    assert pickle.loads(pickle.dumps(hasher)).hash("email", "x@y.se") == hasher.hash("email", "x@y.se")


def test_short_secret_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        SubjectHasher(b"short")


@pytest.mark.parametrize(
    ("kind", "text", "raw"),
    [
        ("email", "mejla anna.berg [at] exempel dot se", "anna.berg@exempel.se"),
        ("email", "mejla ａｎｎａ．ｂｅｒｇ＠ｅｘｅｍｐｅｌ．ｓｅ", "Anna.Berg@Exempel.se"),
        ("email", "mejla аnnа.bеrg@exempel.se", "anna.berg@exempel.se"),  # Cyrillic а, е
        ("phone", "ring 07 01 23 45 67", "070-123 45 67"),
        ("phone", "ring ０７０．１２３．４５．６７", "+46 70 123 45 67"),
        ("personnummer", "pnr 81.12.18-\u200b9876", "19811218-9876"),
    ],
)
def test_every_writing_gets_the_keyed_hash_of_the_canonical_one(kind: str, text: str, raw: str) -> None:
    from lifecycle.discovery.detect import find_identifiers

    hasher = SubjectHasher(b"k" * 32)
    (finding,) = find_identifiers(text)
    assert finding.writing != "canonical"
    assert hasher.hash(kind, finding.normalised) == hasher.reference(kind, raw, 2026)
