"""Capacity: the largest size that builds under a memory limit, and the smallest limit a size
builds under, each found by bisection on real runs (one untraced run per probe, judged by
``runner.judging.probes``).

Both searches bracket the answer first (doubling or halving from a first guess), then bisect
until the bracket is no wider than the resolution; the answer is the passing end, so the truth
lies within one final step of it (for a build whose memory does not vary between runs).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from runner.errors import HostError, UsageError
from runner.execute import Executor
from runner.judging.probes import Probe, probe_outcome
from runner.plan import CasePlan, with_size
from runner.slafile.model import MIN_LIMIT

PAGE = 4096
MIN_LIMIT_STEP = 1 << 20
MAX_PROBES = 40


@dataclass
class Search:
    good: int | None  # the passing end of the bracket: the answer
    bad: int | None
    probes: list[Probe] = field(default_factory=list)

    @property
    def step(self) -> int | None:
        return None if self.good is None or self.bad is None else abs(self.bad - self.good)


def bisect(test: Callable[[int], Probe], start: int, *, good_low: bool,
           resolution: Callable[[int], int], lowest: int, highest: int) -> Search:
    """Find the edge between passing and failing values of a monotone test.

    ``good_low``: small values pass (sizes); otherwise large values pass (limits).
    """
    search = Search(None, None)

    def run(value: int) -> bool:
        probe = test(value)
        search.probes.append(probe)
        if len(search.probes) > MAX_PROBES:
            raise HostError(f"no answer after {MAX_PROBES} runs; is the build deterministic?")
        if probe.ok:
            search.good = value
        else:
            search.bad = value
        return probe.ok

    def toward(value: int, bad_side: bool) -> int:
        up = bad_side == good_low
        return min(highest, value * 2) if up else max(lowest, value // 2)

    value = min(highest, max(lowest, start))
    ok = run(value)
    while (search.bad if ok else search.good) is None:
        following = toward(value, bad_side=ok)
        if following == value:  # reached lowest/highest without crossing the edge
            return search
        value = following
        if run(value) != ok:
            break
    assert search.good is not None and search.bad is not None
    while abs(search.bad - search.good) > resolution(search.good):
        run((search.good + search.bad) // 2)
    return search


def measurement_plan(plan: CasePlan, *, limit: int | None, size: int | None = None) -> CasePlan:
    """One untraced run of the build command, at ``size`` and under ``limit``."""
    if plan.scenario.command is None:
        raise UsageError(f"scenario {plan.scenario_name!r} has no command to build")
    scenario = plan.scenario.model_copy(update={"leak": None})
    settings = plan.settings.model_copy(
        update={"repeats": 1, "warmup": 0, "tracker": "none", "limit": limit})
    plan = replace(plan, scenario=scenario, settings=settings)
    return with_size(plan, size) if size is not None else plan


def largest_size(executor: Executor, plan: CasePlan, limit: int, guess: int, *, hard: bool,
                 precision: float = 0.02) -> Search:
    """The largest size that builds under ``limit``."""
    def test(size: int) -> Probe:
        probe = probe_outcome(
            executor.run_case(measurement_plan(plan, limit=limit, size=size)), limit, hard)
        probe.value = size
        return probe

    return bisect(test, guess, good_low=True, lowest=1, highest=10**9,
                  resolution=lambda good: max(1, math.floor(good * precision)))


def smallest_limit(executor: Executor, plan: CasePlan, *, highest: int,
                   precision: float = 0.01) -> tuple[Search, Probe]:
    """The smallest hard limit under which ``plan`` builds; also returns the unlimited run."""
    free = probe_outcome(executor.run_case(measurement_plan(plan, limit=None)), None, True)
    if not free.ok or not free.peak:
        raise HostError(f"the build does not complete even without a limit ({free.detail})")

    def test(limit: int) -> Probe:
        probe = probe_outcome(executor.run_case(measurement_plan(plan, limit=limit)), limit, True)
        probe.value = limit
        return probe

    start = -(-free.peak // PAGE) * PAGE  # the kernel counts whole pages
    search = bisect(test, max(start, MIN_LIMIT), good_low=False, lowest=MIN_LIMIT,
                    highest=highest,
                    resolution=lambda good: max(MIN_LIMIT_STEP, math.floor(good * precision)))
    return search, free
