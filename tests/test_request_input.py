"""What an operator may type into the data-subject request form, and the keyed-hash secret.

Every refusal names the field and the rule and never repeats the value: the value may be
personal data, or an attack that should not travel into task logs."""

from __future__ import annotations

import secrets
from types import SimpleNamespace

import pendulum
import pytest

from lifecycle.errors import SecretMissingError, WeakSecretError
from lifecycle.rights.requests import (
    MAX_LENGTH,
    InvalidRequestError,
    SubjectIdentifiers,
    validate_reference,
    validate_request_type,
)
from lifecycle.config.settings import hasher_from_secret, secret_weakness
from tests.conftest import ROOT, TEST_SECRET

YEAR = 2026
PERSON = {"email": "anna.berg@exempel.se"}  # a valid identifier, so a refusal is about the field under test
# 254 characters, the local part 64 (RFC 5321): 64 + 1 + 189.
LONGEST_EMAIL = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 58 + ".se"


def _refused(raw: dict[str, object]) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as caught:
        SubjectIdentifiers.parse(raw, YEAR)
    return caught.value


def _assert_names_field_and_rule(error: InvalidRequestError, field: str, rule: str, value: str) -> None:
    message = str(error)
    assert (error.field, error.rule) == (field, rule), message
    assert message.startswith(f"{field}: "), message
    assert not value.strip() or value.strip() not in message, message


# -- each rule refuses, naming field and rule, never the value ---------------------------------


@pytest.mark.parametrize(
    ("field", "value", "rule", "says"),
    [
        ("email", "a" * 60 + "@" + "b" * 191 + ".se", "max_length", "longer than 254 characters"),
        ("email", "a" * 65 + "@exempel.se", "local_part_length", "longer than 64 characters"),
        ("email", "greta.garbo(at)exempel.se", "format", "not a valid address"),
        ("email", "a@b.se'; DROP TABLE customers; --", "format", "not a valid address"),
        ("email", "anna@exempel.se\x00x", "control_characters", "control"),
        ("phone", "070-123 45 67 " + "8" * 20, "max_length", "longer than 30 characters"),
        ("phone", "ring mig på 070-123 45 67", "format", "not a valid Swedish number"),
        ("phone", "070-123 45 67 efter kl 17", "format", "not a valid Swedish number"),
        ("phone", "070-123 45 67; DROP TABLE x", "format", "not a valid Swedish number"),
        ("phone", "+45 70 123 45 67", "format", "not a valid Swedish number"),
        ("phone", "12345", "format", "not a valid Swedish number"),
        ("phone", "074-123 45 67", "numbering_plan", "not a valid Swedish number"),
        ("personnummer", "19811218-98761", "max_length", "longer than 13 characters"),
        ("personnummer", "pnr 811218987", "format", "YYYYMMDD-NNNN"),
        ("personnummer", "811218 9876", "format", "YYYYMMDD-NNNN"),
        ("personnummer", "811218-9875", "check_digit_or_date", "personnummer is not valid"),
        ("personnummer", "811318-9873", "check_digit_or_date", "personnummer is not valid"),
        ("personnummer", "556016-0680", "org_number", "organisation number"),
    ],
)
def test_structured_fields(field: str, value: str, rule: str, says: str) -> None:
    raw = {**PERSON, field: value} if field != "email" else {field: value}
    error = _refused(raw)
    _assert_names_field_and_rule(error, field, rule, value)
    assert says in str(error)


SQL_AND_CONTROL = [
    ("Robert'); DROP TABLE students", "sql_punctuation", "look like SQL (; -- /* */)"),
    ("Anna -- kommentar", "sql_punctuation", "look like SQL"),
    ("Anna /* x */ Berg", "sql_punctuation", "look like SQL"),
    ("x' OR '1'='1", "sql_quote", "quotes the way SQL does"),
    ("Berg' OR 1", "sql_quote", "quotes the way SQL does"),
    ("Anna''Berg", "sql_quote", "quotes the way SQL does"),
    ('Anna" OR "x', "sql_quote", "quotes the way SQL does"),
    ("Anna OR 1=1", "sql_keywords", "SQL statements"),
    ("Anna drop table kunder", "sql_keywords", "SQL statements"),
    ("Anna UNION SELECT losenord FROM users", "sql_keywords", "SQL statements"),
    ("Anna union all select x", "sql_keywords", "SQL statements"),
    ("Anna\x00Berg", "control_characters", "control"),
    ("Anna\x1bBerg", "control_characters", "control"),
    ("Anna\tBerg", "control_characters", "control"),
    ("Anna\u202eBerg", "control_characters", "control"),  # right-to-left override
    ("Anna\u200bBerg", "control_characters", "control"),  # zero-width space
]


@pytest.mark.parametrize("field", ["name", "company"])
@pytest.mark.parametrize(("value", "rule", "says"), SQL_AND_CONTROL)
def test_sql_and_control_text_is_refused_in_free_fields(field: str, value: str, rule: str, says: str) -> None:
    raw = {"name": "Anna Berg", "company": "Exempel AB", field: value}
    error = _refused(raw)
    _assert_names_field_and_rule(error, field, rule, value)
    assert says in str(error)


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("name", "A" * 201, "max_length"),
        ("company", "B" * 201, "max_length"),
        ("name", "Anna Berg 2", "characters"),  # digits: a company may have them, a name not
        ("name", "Anna <Berg>", "characters"),
        ("company", "Exempel AB $", "characters"),
        ("company", "Exempel AB @ Berg", "characters"),
        ("name", "-- .", "sql_punctuation"),
        ("name", "- . ,", "characters"),  # no letter at all
    ],
)
def test_free_field_length_and_characters(field: str, value: str, rule: str) -> None:
    error = _refused({"name": "Anna Berg", "company": "Exempel AB", field: value})
    _assert_names_field_and_rule(error, field, rule, value)
    if rule == "max_length":
        assert "longer than 200 characters" in str(error)


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("DSR-2026-0042'; DROP TABLE lc_subject_request; --", "sql_punctuation"),
        ("DSR--42", "sql_punctuation"),
        ("DSR-42 UNION SELECT x", "sql_keywords"),
        ("DSR-42' OR '1'='1", "sql_quote"),
        ("DSR-42\x00", "control_characters"),
        ("DSR 42", "characters"),
        ("-DSR-42", "characters"),
        ("D" * 101, "max_length"),
        ("   ", "required"),
    ],
)
def test_reference_rules(value: str, rule: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        validate_reference(value)
    _assert_names_field_and_rule(caught.value, "reference", rule, value)


def test_request_type_is_named_not_echoed() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        validate_request_type("erasure'; DROP TABLE x")
    _assert_names_field_and_rule(caught.value, "request_type", "one_of", "erasure'; DROP TABLE x")
    assert validate_request_type("access") == "access"


@pytest.mark.parametrize(
    ("rectify_field", "new_value", "rule"),
    [
        ("email", "fel", "format"),
        ("email", "a" * 65 + "@exempel.se", "local_part_length"),
        ("phone", "ring 070-123 45 67", "format"),
        ("phone", "070-123 45 67" + " 1" * 10, "max_length"),
        (None, "ny@exempel.se", "rectify_field_required"),
    ],
)
def test_correction_is_checked_by_the_rules_of_its_field(rectify_field: str | None, new_value: str, rule: str) -> None:
    error = _refused({**PERSON, "rectify_field": rectify_field, "new_value": new_value})
    _assert_names_field_and_rule(error, "new_value", rule, new_value)


def test_correction_of_an_unknown_field_is_refused() -> None:
    error = _refused({**PERSON, "rectify_field": "name", "new_value": "Anna"})
    assert (error.field, error.rule) == ("rectify_field", "one_of")


# -- valid edge cases ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        {"email": LONGEST_EMAIL},
        {"email": "a.b-c+d_e%f@xn--exempel-5xa.se"},
        {"phone": "+46 (0)70-123 45 67"},
        {"phone": "070-123 45 67"},
        {"phone": "0701234567"},
        {"phone": "+46701234567"},
        {"phone": "+46 70 123 45 67"},
        {"phone": "0046 8 123 456 78"},
        {"phone": "08-123 456 78"},
        {"phone": "(08) 123 45 67"},
        {"phone": "  070 - 123 45 67  "},
        {"personnummer": "19121212+1212"},  # 12 digits with + (aged 100 or more)
        {"personnummer": "191212121212"},
        {"personnummer": "121212-1212"},
        {"personnummer": "8112189876"},
        {"personnummer": "811278-9873"},  # samordningsnummer: day + 60
        {"name": "O'Brien", "company": "Bröderna Berg & Söner AB"},
        {"name": "Anna-Karin Öberg", "company": "AB Volvo (publ)"},
        {"name": "Åsa Ödman", "company": "Ölands Bank"},
        {"name": "Jean-Luc d'Artagnan", "company": "Café d'Or AB"},
        {"name": "'t Hooft", "company": "3M Svenska AB"},
        {"name": "O\u2019Brien", "company": "H&M Hennes & Mauritz AB"},
        {"name": "José Nguyễn", "company": "Berg, Lind & Co."},
        {"name": "Jose\u0301 Muñoz", "company": "Bygg/Måleri i Norr AB"},  # a combining accent
        {"name": "Dr. A. Berg", "company": "Drop Inn Café AB"},
        {"name": "Selma Lagerlöf", "company": "Or och Guld AB"},
        {"name": "A" * 200, "company": "B" * 200},
    ],
)
def test_valid_edge_cases_are_accepted(raw: dict[str, str]) -> None:
    ids = SubjectIdentifiers.parse(raw, YEAR)
    for key, value in raw.items():
        assert getattr(ids, key) == value.strip()


def test_the_longest_email_is_exactly_at_the_limits() -> None:
    assert len(LONGEST_EMAIL) == 254 and len(LONGEST_EMAIL.split("@")[0]) == 64
    longer_domain = LONGEST_EMAIL.replace(".se", ".sex")
    assert _refused({"email": longer_domain}).rule == "max_length"


@pytest.mark.parametrize("reference", ["DSR-2026-0042", "a", "DSR/2026/42", "case_42.v2", "R" * 100])
def test_valid_references(reference: str) -> None:
    assert validate_reference(f" {reference} ") == reference


def test_correction_with_a_valid_value_is_accepted() -> None:
    ids = SubjectIdentifiers.parse({**PERSON, "rectify_field": "phone", "new_value": "+46 (0)70-123 45 67"}, YEAR)
    assert ids.email == PERSON["email"]


def test_a_request_with_sql_in_the_reference_fails_its_first_task() -> None:
    from lifecycle_airflow import subject_request

    run = SimpleNamespace(logical_date=pendulum.datetime(2026, 11, 25, 2, tz="Europe/Stockholm"), run_after=None)
    params = {"request_type": "erasure", "reference": "DSR-1' UNION SELECT reference FROM lc_subject_request",
              **PERSON, "dry_run": True}
    with pytest.raises(InvalidRequestError) as caught:
        subject_request.validate({"params": params, "dag_run": run})
    _assert_names_field_and_rule(caught.value, "reference", "sql_quote", params["reference"])
    params["reference"] = "DSR-1"
    valid = subject_request.validate({"params": params, "dag_run": run})
    assert valid == {"reference": "DSR-1", "request_type": "erasure"}


def test_the_form_mirrors_the_limits() -> None:
    from airflow.models import DagBag
    from jsonschema import Draft7Validator

    params = DagBag(dag_folder=str(ROOT / "dags" / "lifecycle_subject_request.py")).dags[
        "lifecycle_subject_request"].params
    for field in ("email", "phone", "personnummer", "name", "company", "reference"):
        assert params.get_param(field).schema["maxLength"] == MAX_LENGTH[field], field

    def accepts(field: str, value: str) -> bool:
        return Draft7Validator(params.get_param(field).schema).is_valid(value)

    assert accepts("email", LONGEST_EMAIL) and not accepts("email", "a" * 65 + "@exempel.se")
    assert accepts("phone", "+46 (0)70-123 45 67") and not accepts("phone", "ring 070-123 45 67")
    assert accepts("personnummer", "19121212+1212") and not accepts("personnummer", "8112189876 x")
    assert accepts("name", "O'Brien") and accepts("company", "Bröderna Berg & Söner AB")
    assert not accepts("name", "Robert'); DROP TABLE x;") and not accepts("company", "A\x00B")
    assert accepts("reference", "DSR-2026-0042") and not accepts("reference", "DSR--1")


# -- the keyed-hash secret ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "rule"),
    [
        ("aaaaaaaaaaaaaaaa", "min_length"),
        ("0123456789abcdef", "min_length"),
        ("Aa1!" * 7 + "Aa1", "min_length"),  # 31
        ("abcdefghijk" * 4, "min_distinct"),  # 44 characters, 11 distinct
        ("abcdefghijklmnopqrstuvwxyzabcdefgh", "min_classes"),  # lower-case only
        ("!@#$%^&*()-_=+[]" * 2, "min_classes"),  # punctuation only
        ("a" * 12 + "bcdefghijklmnopqrstuvwx1", "repeated_character"),  # 'a' is 12 of 36 characters
    ],
)
def test_weak_secrets_are_refused_naming_the_rule_never_the_secret(secret: str, rule: str) -> None:
    with pytest.raises(WeakSecretError) as caught:
        hasher_from_secret(secret)
    assert caught.value.rule == rule
    message = str(caught.value)
    assert secret not in message and "lifecycle_hash_secret" in message and "32 characters" in message


def test_a_missing_secret_is_refused() -> None:
    for missing in (None, ""):
        with pytest.raises(SecretMissingError, match="no keyed-hash secret.*at least 32 characters"):
            hasher_from_secret(missing)


def test_strong_secrets_pass() -> None:
    assert secret_weakness(TEST_SECRET) is None
    hasher_from_secret(TEST_SECRET)
    for _ in range(2000):  # what scripts/env.sh generates
        token = secrets.token_urlsafe(32)
        assert secret_weakness(token) is None


def test_a_weak_secret_fails_the_first_task_of_each_dag(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from lifecycle_airflow import nightly, subject_request

    monkeypatch.setenv("LIFECYCLE_HASH_SECRET", "aaaaaaaaaaaaaaaa")
    with pytest.raises(WeakSecretError, match="shorter than 32 characters"):
        nightly.selected_sources({})
    params = {"request_type": "erasure", "reference": "DSR-1", **PERSON}
    with pytest.raises(WeakSecretError):
        subject_request.validate({"params": params, "dag_run": None})


def test_unknown_sources_fail_the_first_nightly_task() -> None:
    from lifecycle.errors import UnknownSourceError
    from lifecycle_airflow import nightly

    with pytest.raises(UnknownSourceError, match="unknown source 'crm'"):
        nightly.selected_sources({"sources": ["invoices", "crm"]})
    assert nightly.selected_sources({"sources": ["invoices", "customers", "invoices"]}) == ["invoices", "customers"]
