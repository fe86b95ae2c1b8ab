from pathlib import Path

import pytest
import yaml

from lifecycle.config.catalog import load_catalog
from lifecycle.errors import CatalogError, UnknownSourceError
from lifecycle.config.policy import load_policy


def test_demo_catalog_loads_and_is_consistent(policy_path: Path, catalog_path: Path) -> None:
    catalog = load_catalog(catalog_path, load_policy(policy_path))
    invoices = catalog.source("invoices")
    assert invoices.basis_spec("accounting_records") == "legal_obligation"
    assert invoices.basis_spec("contact_details") == "contract"
    assert catalog.source("ad_audiences").controller_column == "customer_id"
    assert catalog.source("contact_form_submissions").batch_size == 1000  # from defaults
    with pytest.raises(UnknownSourceError, match="unknown source 'crm'"):
        catalog.source("crm")


def _write(tmp_path: Path, catalog_path: Path, mutate) -> Path:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(catalog_path.read_text())
    mutate(data["sources"])
    out = tmp_path / "catalog.yaml"
    out.write_text(yaml.safe_dump(data, allow_unicode=True))
    return out


@pytest.mark.parametrize(
    ("mutate", "key", "problem"),
    [
        # A category the policy does not list for the activity (Bilaga 1): call data in the newsletter.
        (lambda s: s["newsletter_subscribers"]["columns"].update(phone="call_data"),
         "sources.newsletter_subscribers.columns.phone", "not one the policy allows for activity 'newsletter'"),
        # A basis the policy does not allow: consent for contact details of the contact form.
        (lambda s: s["contact_form_submissions"].update(lawful_basis="consent"),
         "sources.contact_form_submissions.lawful_basis", "basis 'consent' is not one the policy allows"),
        (lambda s: s["phone_calls"].pop("retention_clock"), "sources.phone_calls.retention_clock", "Field required"),
        (lambda s: s["tool_users"].update(activity="crm"), "sources.tool_users.activity", "not an activity"),
        (lambda s: s["tool_users"].update(table="tool_users; DROP TABLE customers"),
         "sources.tool_users.table", "not a plain SQL identifier"),
        (lambda s: s["tool_users"]["columns"].update({"name) --": "contact_details"}),
         "sources.tool_users.columns", "not a plain SQL identifier"),
        (lambda s: s["tool_users"].update(on_expiry="shred"), "sources.tool_users.on_expiry", "Input should be"),
        (lambda s: s["ad_audiences"].pop("controller_column"), "sources.ad_audiences.controller_column", "processor-role"),
        (lambda s: s["customers"]["subject"].update(email="e_mail"), "sources.customers", "not under columns"),
    ],
)
def test_bad_catalog_names_source_and_column(tmp_path, policy_path, catalog_path, mutate, key, problem) -> None:  # type: ignore[no-untyped-def]
    path = _write(tmp_path, catalog_path, mutate)
    with pytest.raises(CatalogError) as err:
        load_catalog(path, load_policy(policy_path))
    assert err.value.key == key, str(err.value)
    assert problem in str(err.value)
    assert str(path) in str(err.value)

