"""The sub-processor register check, driven by the mechanism table."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from lifecycle.config.policy import load_policy
from lifecycle.config.register import RegisterError, check_register, load_mechanisms

ROOT = Path(__file__).resolve().parents[1]


def test_privacy_shield_is_a_finding_today_and_eu_eea_is_not() -> None:
    policy = load_policy(ROOT / "config" / "policy.yaml")
    mechanisms = load_mechanisms(ROOT / "config" / "transfer_mechanisms.yaml")
    findings = {f.sub_processor: f for f in check_register(policy, mechanisms, date(2026, 11, 25))}
    assert findings["albacross"].valid is True and findings["albacross"].problem == ""
    g_suite = findings["g_suite"]
    assert g_suite.valid is False
    assert "2020-07-16" in g_suite.problem and "Schrems II" in g_suite.problem
    assert {"eu_us_data_privacy_framework", "standard_contractual_clauses"} <= set(g_suite.valid_alternatives)
    assert "privacy_shield" not in g_suite.valid_alternatives


def test_validity_is_a_function_of_the_date() -> None:
    policy = load_policy(ROOT / "config" / "policy.yaml")
    mechanisms = load_mechanisms(ROOT / "config" / "transfer_mechanisms.yaml")
    before = {f.sub_processor: f for f in check_register(policy, mechanisms, date(2020, 7, 15))}
    assert before["g_suite"].valid is True  # the day before the CJEU judgment


def test_unknown_mechanism_and_malformed_table(tmp_path: Path) -> None:
    policy = load_policy(ROOT / "config" / "policy.yaml")
    table = tmp_path / "mechanisms.yaml"
    table.write_text("version: 1\nmechanisms:\n  eu_eea: {label: EU, article: x, valid_from: 2018-05-25}\n")
    findings = {f.sub_processor: f for f in check_register(policy, load_mechanisms(table), date(2026, 11, 25))}
    assert "not in the mechanism table" in findings["g_suite"].problem
    table.write_text("version: 1\nmechanisms:\n  eu_eea: {label: EU, valid_from: someday}\n")
    with pytest.raises(RegisterError, match="mechanisms.eu_eea"):
        load_mechanisms(table)
