from datetime import date
from pathlib import Path

import pytest
import yaml

from lifecycle.errors import PolicyError
from lifecycle.config.policy import load_policy
from lifecycle.config.retention import compute_deadline, fiscal_year_end


def test_policy_encodes_bilaga_1(policy_path: Path) -> None:
    policy = load_policy(policy_path)
    # Kontaktformulär: contact and company details on contract and legitimate interest,
    # the free-text message also on consent.
    form = policy.activities["contact_form"]
    assert set(form.categories["contact_details"]) == {"contract", "legitimate_interest"}
    assert set(form.categories["case_details"]) == {"consent", "contract", "legitimate_interest"}
    assert "org_number" in policy.categories["company_details"].fields
    assert set(policy.activities["phone"].categories) == {"call_data", "company_details", "case_details"}
    assert policy.activities["advertising_audiences"].role == "processor"
    assert policy.activities["bookkeeping"].categories["accounting_records"] == ("legal_obligation",)
    assert set(policy.activities) >= {
        "contact_form", "email", "phone", "newsletter", "website_visits", "tools_and_services",
        "job_applications", "customers", "bookkeeping",
    }
    assert {s.name for s in policy.sub_processors.values()} == {"Albacross", "G Suite"}
    assert "contact_form:case_details:consent" in policy.allowed_purposes()
    assert "contact_form:contact_details:consent" not in policy.allowed_purposes()


def test_two_year_rules(policy_path: Path) -> None:
    policy = load_policy(policy_path)
    d = compute_deadline(policy, activity="contact_form", basis="legitimate_interest", clock=date(2024, 2, 29), controller="self")
    assert d.deadline == date(2026, 2, 28) and d.violation is None


def test_bfl_counts_to_end_of_seventh_year_after_fiscal_year(policy_path: Path) -> None:
    policy = load_policy(policy_path)
    d = compute_deadline(policy, activity="bookkeeping", basis="legal_obligation", clock=date(2019, 3, 14), controller="self")
    assert d.deadline == date(2026, 12, 31)
    # A broken fiscal year ending 30 June: an invoice of 2019-08-01 belongs to the year ending 2020-06-30.
    d = compute_deadline(policy, activity="bookkeeping", basis="legal_obligation", clock=date(2019, 8, 1),
                         controller="self", fiscal_year_end_md="06-30")
    assert d.deadline == date(2027, 12, 31)
    assert fiscal_year_end(date(2020, 6, 30), "06-30") == date(2020, 6, 30)


def test_processor_data_follows_customer_instruction(policy_path: Path) -> None:
    policy = load_policy(policy_path)
    a = compute_deadline(policy, activity="advertising_audiences", basis="controller_instruction",
                         clock=date(2026, 1, 1), controller="kund-nordisk-handel")
    b = compute_deadline(policy, activity="advertising_audiences", basis="controller_instruction",
                         clock=date(2026, 1, 1), controller="kund-fastighetsbyran")
    assert a.deadline == date(2026, 4, 1)
    assert b.deadline == date(2027, 1, 1)
    unknown = compute_deadline(policy, activity="advertising_audiences", basis="controller_instruction",
                               clock=date(2026, 1, 1), controller="kund-okand")
    assert unknown.deadline is None and unknown.violation == "no_customer_instruction"


def test_running_contract_has_no_deadline_but_missing_clock_elsewhere_is_a_violation(policy_path: Path) -> None:
    policy = load_policy(policy_path)
    running = compute_deadline(policy, activity="customers", basis="contract", clock=None, controller="self")
    assert running.deadline is None and running.violation is None
    missing = compute_deadline(policy, activity="newsletter", basis="consent", clock=None, controller="self")
    assert missing.violation == "no_retention_clock"
    assert compute_deadline(policy, activity="newsletter", basis=None, clock=date(2026, 1, 1), controller="self").violation == "no_lawful_basis"


def _broken(tmp_path: Path, policy_path: Path, mutate) -> Path:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(policy_path.read_text())
    mutate(data)
    out = tmp_path / "policy.yaml"
    out.write_text(yaml.safe_dump(data, allow_unicode=True))
    return out


@pytest.mark.parametrize(
    ("mutate", "key", "problem"),
    [
        (lambda d: d["activities"]["email"]["categories"].update(case_details=["marketing"]),
         "activities.email.categories.case_details.0", "Input should be"),
        (lambda d: d["activities"]["email"]["categories"].update(health=["consent"]),
         "activities.email.categories.health", "not a category"),
        (lambda d: d["retention_rules"]["two_years"].update(period="two years"),
         "retention_rules.two_years.period", "ISO 8601"),
        (lambda d: d["lawful_bases"]["consent"].update(retention="forever"),
         "lawful_bases.consent.retention", "forever"),
        (lambda d: d["activities"]["newsletter"]["categories"].update(contact_details=["controller_instruction"]),
         "activities.newsletter.categories.contact_details", "does not fit role"),
        (lambda d: d["activities"]["phone"].pop("retention_clock"), "activities.phone.retention_clock", "Field required"),
        (lambda d: d["processor_customers"]["kund-nordisk-handel"].update(retention="90 dagar"),
         "processor_customers.kund-nordisk-handel.retention", "ISO 8601"),
    ],
)
def test_malformed_policy_names_file_key_and_problem(tmp_path, policy_path, mutate, key, problem) -> None:  # type: ignore[no-untyped-def]
    path = _broken(tmp_path, policy_path, mutate)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert err.value.file == str(path)
    assert err.value.key == key
    assert problem in str(err.value)


def test_policy_that_is_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("activities: [unclosed\n")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(path)
    with pytest.raises(PolicyError, match="cannot be read"):
        load_policy(tmp_path / "missing.yaml")
