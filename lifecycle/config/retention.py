"""Deadlines: a function of the record's data and the policy's rules, never of the clock.

deadline = rule(activity, lawful basis, role, controller instruction) applied to the record's
retention clock. A record is expired on a logical date D when its deadline < D: the deadline
is the last day the data may be held.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from dateutil.relativedelta import relativedelta

from lifecycle.config.durations import parse_duration
from lifecycle.config.policy import CUSTOMER_INSTRUCTION, Policy


@dataclass(frozen=True)
class Deadline:
    """Outcome of applying a rule: a date, an open period (None, None) or a violation."""

    deadline: date | None
    violation: str | None = None


@lru_cache(maxsize=256)
def _duration(text: str) -> relativedelta:
    return parse_duration(text)


def fiscal_year_end(day: date, month_day: str) -> date:
    """The end of the fiscal year that ``day`` belongs to (fiscal years end on MM-DD)."""
    month, dom = (int(part) for part in month_day.split("-"))
    end = _clamped(day.year, month, dom)
    return end if day <= end else _clamped(day.year + 1, month, dom)


def _clamped(year: int, month: int, dom: int) -> date:
    # 02-29 and friends: the last valid day of that month.
    for d in (dom, 30, 29, 28):
        try:
            return date(year, month, min(dom, d))
        except ValueError:
            continue
    raise ValueError(f"no valid date for {year}-{month}-{dom}")


def compute_deadline(
    policy: Policy,
    *,
    activity: str,
    basis: str | None,
    clock: date | None,
    controller: str,
    fiscal_year_end_md: str = "12-31",
) -> Deadline:
    activity_def = policy.activities[activity]
    if basis is None:
        return Deadline(None, "no_lawful_basis")
    basis_def = policy.lawful_bases.get(basis)  # type: ignore[call-overload]
    if basis_def is None:
        return Deadline(None, "unknown_lawful_basis")
    if clock is None:
        empty = policy.retention_clocks[activity_def.retention_clock].empty_means
        return Deadline(None, None if empty == "running" else "no_retention_clock")
    if basis_def.retention == CUSTOMER_INSTRUCTION:
        customer = policy.processor_customers.get(controller)
        if customer is None:
            return Deadline(None, "no_customer_instruction")
        return Deadline(clock + _duration(customer.retention))
    rule = policy.retention_rules[basis_def.retention]
    period = _duration(rule.period)
    if rule.counting == "end_of_calendar_year_after_fiscal_year_end":
        # BFL 7 kap. 2 §: to the end of the 7th calendar year after the fiscal year ended.
        fy_end = fiscal_year_end(clock, fiscal_year_end_md)
        return Deadline(date(fy_end.year + period.years, 12, 31))
    return Deadline(clock + period)
