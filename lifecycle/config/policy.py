"""The privacy policy as code: activities, categories, lawful bases, retention, roles.

Loaded from a YAML file (config/policy.yaml) and validated on load: structure by pydantic,
cross-references (a basis naming an unknown retention rule, an activity naming an unknown
category, ...) by ``_check_references``. Errors name the file, the key and the problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lifecycle.config.files import parse_model, read_yaml
from lifecycle.config.durations import parse_duration
from lifecycle.errors import PolicyError

LawfulBasis = Literal[
    "consent", "contract", "legitimate_interest", "legal_obligation", "controller_instruction"
]
Role = Literal["controller", "processor"]
Counting = Literal["from_clock", "end_of_calendar_year_after_fiscal_year_end"]
ClockKind = Literal["collected", "last_interaction", "contract_end", "fiscal_year"]

CUSTOMER_INSTRUCTION = "customer_instruction"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _iso_duration(value: str) -> str:
    parse_duration(value)  # raises ValueError with a readable message
    return value


class Controller(_Frozen):
    name: str
    org_number: str
    address: str
    requests_to: str
    policy_ref: str = ""


class RetentionRule(_Frozen):
    period: str
    counting: Counting = "from_clock"
    law: str = ""
    policy_ref: str = ""

    _check_period = field_validator("period")(_iso_duration)


class BasisDefinition(_Frozen):
    label_sv: str
    article: str
    retention: str  # a retention_rules key, or "customer_instruction"


class Category(_Frozen):
    label_sv: str
    fields: tuple[str, ...] = Field(min_length=1)
    free_text: bool = False
    policy_ref: str = ""


class RetentionClock(_Frozen):
    description: str
    empty_means: Literal["violation", "running"] = "violation"


class Activity(_Frozen):
    label_sv: str
    role: Role
    retention_clock: ClockKind
    policy_ref: str = ""
    # Who the data is about (Art. 30(1)(c)), in the policy's words; empty: the activity's people.
    data_subjects_sv: str = ""
    direct_marketing: bool = False
    aggregate_only: bool = False
    sub_processors: tuple[str, ...] = ()
    categories: dict[str, tuple[LawfulBasis, ...]] = Field(min_length=1)


class ProcessorCustomer(_Frozen):
    name: str
    retention: str
    instruction_ref: str = ""

    _check_retention = field_validator("retention")(_iso_duration)


class SubProcessor(_Frozen):
    name: str
    purpose_sv: str
    location: str
    transfer_mechanism: str


class Policy(_Frozen):
    version: Literal[1]
    controller: Controller
    retention_rules: dict[str, RetentionRule] = Field(min_length=1)
    lawful_bases: dict[LawfulBasis, BasisDefinition] = Field(min_length=1)
    categories: dict[str, Category] = Field(min_length=1)
    retention_clocks: dict[ClockKind, RetentionClock]
    activities: dict[str, Activity] = Field(min_length=1)
    processor_customers: dict[str, ProcessorCustomer] = {}
    sub_processors: dict[str, SubProcessor] = {}

    def allowed_purposes(self) -> list[str]:
        """Every allowed ``activity:category:basis`` combination (Bilaga 1)."""
        return sorted(
            f"{activity_name}:{category}:{basis}"
            for activity_name, activity in self.activities.items()
            for category, bases in activity.categories.items()
            for basis in bases
        )


def load_policy(path: Path | str) -> Policy:
    path = Path(path)
    policy = parse_model(Policy, read_yaml(path, PolicyError), path, PolicyError)
    _check_references(policy, str(path))
    return policy


def _check_references(policy: Policy, file: str) -> None:
    for basis, definition in policy.lawful_bases.items():
        if definition.retention != CUSTOMER_INSTRUCTION and definition.retention not in policy.retention_rules:
            raise PolicyError(
                file,
                f"lawful_bases.{basis}.retention",
                f"names retention rule {definition.retention!r}, which retention_rules does not define",
            )
    for name, activity in policy.activities.items():
        key = f"activities.{name}"
        if activity.retention_clock not in policy.retention_clocks:
            raise PolicyError(file, f"{key}.retention_clock", "is not defined under retention_clocks")
        for category, bases in activity.categories.items():
            if category not in policy.categories:
                raise PolicyError(file, f"{key}.categories.{category}", "is not a category defined under categories")
            if not bases:
                raise PolicyError(file, f"{key}.categories.{category}", "lists no lawful basis")
            for basis in bases:
                if basis not in policy.lawful_bases:
                    raise PolicyError(file, f"{key}.categories.{category}", f"basis {basis!r} is not defined under lawful_bases")
                is_instruction = policy.lawful_bases[basis].retention == CUSTOMER_INSTRUCTION
                if is_instruction != (activity.role == "processor"):
                    raise PolicyError(
                        file,
                        f"{key}.categories.{category}",
                        f"basis {basis!r} does not fit role {activity.role!r}: processor-role data rests on the "
                        "customer's instruction, controller-role data on a basis of art. 6",
                    )
        for sub in activity.sub_processors:
            if sub not in policy.sub_processors:
                raise PolicyError(file, f"{key}.sub_processors", f"{sub!r} is not defined under sub_processors")
