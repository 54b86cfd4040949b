"""Outlook: what each scaling fit says beyond the measured sizes, worked out once by the judging
stage so reports only read it: the memory expected at a round size past the largest measured,
and the size at which the scenario's budget (its limit, else its tightest peak bound) runs out."""

from __future__ import annotations

import math
from typing import Literal

from runner.judging import scaling
from runner.metrics import FITTABLE
from runner.results import Case, Outlook, ScalingFit

Budget = tuple[float, Literal["limit", "peak bound"]]


def budget(cases: list[Case]) -> Budget | None:
    """The memory the scenario must stay under: its limit, else its tightest peak bound (read
    from the cases' verdicts: judge them first)."""
    limits = [c.limit for c in cases if c.limit]
    if limits:
        return float(min(limits)), "limit"
    bounds = [v.bound for c in cases for v in c.verdicts if v.metric == "peak" and v.op in "<="]
    return (min(bounds), "peak bound") if bounds else None


def outlook(fit: ScalingFit, within: Budget | None) -> Outlook | None:
    """The fit's outlook (None where the fit has a problem or no line)."""
    if fit.problem is not None or fit.line is None or not fit.sizes:
        return None
    largest = max(fit.sizes)
    target = 10 ** math.ceil(math.log10(10 * largest))
    at = scaling.predict(fit, target)
    found = Outlook(size=target, expected=scaling.expected(fit, target),
                    linear=scaling.linear(fit), low=at.low, high=at.high,
                    beyond_twice=at.beyond_twice)
    if within is not None:
        memory, kind = within
        found.budget, found.budget_kind = memory, kind
        found.holds_up_to = scaling.size_at(fit, memory)
    return found


def add_outlooks(fits: list[ScalingFit], cases: list[Case]) -> None:
    """Store each fit's outlook under the budget of ``cases`` (judged already)."""
    within = budget(cases)
    for fit in fits:  # a folder's bytes have no memory budget to run out of
        fit.outlook = outlook(fit, within if fit.metric in FITTABLE else None)
