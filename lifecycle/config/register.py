"""The sub-processor register check (Bilaga 2): every sub-processor has a purpose, a location
and a transfer mechanism that can be relied on today.

Data-driven: mechanisms and their validity live in config/transfer_mechanisms.yaml, so an
invalidated mechanism (the EU-US Privacy Shield since Schrems II) is a fact in a table, not a
name in the code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lifecycle.config.files import parse_model, read_yaml
from lifecycle.errors import RegisterError
from lifecycle.config.policy import Policy


class Mechanism(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    label: str
    article: str
    valid_from: date
    invalid_from: date | None = None
    invalidated_by: str = ""

    def valid_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.invalid_from is None or day < self.invalid_from)


class MechanismTable(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    version: Literal[1]
    mechanisms: dict[str, Mechanism] = Field(min_length=1)


def load_mechanisms(path: Path | str) -> MechanismTable:
    path = Path(path)
    return parse_model(MechanismTable, read_yaml(path, RegisterError), path, RegisterError)


@dataclass(frozen=True)
class RegisterFinding:
    sub_processor: str
    name: str
    location: str
    purpose: str
    mechanism: str
    valid: bool
    problem: str
    valid_alternatives: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_register(policy: Policy, mechanisms: MechanismTable, day: date) -> list[RegisterFinding]:
    """One line per sub-processor; ``valid`` False is a finding for the report."""
    alternatives = tuple(k for k, m in mechanisms.mechanisms.items() if m.valid_on(day) and k != "eu_eea")
    findings = []
    for key, sub in sorted(policy.sub_processors.items()):
        mechanism = mechanisms.mechanisms.get(sub.transfer_mechanism)
        if not sub.purpose_sv.strip() or not sub.location.strip():
            problem = "purpose or location missing"
        elif mechanism is None:
            problem = f"transfer mechanism {sub.transfer_mechanism!r} is not in the mechanism table"
        elif not mechanism.valid_on(day):
            problem = (f"{mechanism.label} cannot be relied on since {mechanism.invalid_from}"
                       f"{f' ({mechanism.invalidated_by})' if mechanism.invalidated_by else ''}")
        else:
            problem = ""
        findings.append(RegisterFinding(key, sub.name, sub.location, sub.purpose_sv, sub.transfer_mechanism,
                                        not problem, problem, () if not problem else alternatives))
    return findings
