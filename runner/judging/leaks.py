"""Leaks: is memory retained from one build to the next when a build runs repeatedly in one
process, how much per build, and where was it allocated.

The judged figure is the Theil-Sen slope of the Python heap left after each measured call (and a
full collection) over the call number: robust to a single noisy call, unlike the last delta. It
counts only when the Mann-Kendall/Sen 95% interval is above zero; a slope whose interval spans
zero is "no growth" when the whole interval satisfies the rule, and "too noisy to tell"
otherwise. RSS and object counts get the same trend for the report: RSS also sees leaks outside
Python's allocator, but its steps (arenas, fragmentation) make it too coarse to judge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runner.judging.regression import Trend, theil_sen
from runner.judging.verdicts import verdict
from runner.metrics import Source
from runner.results import Case, LeakRecord, Verdict
from runner.slafile.rules import Rule
from runner.units import format_bytes

MIN_CALLS = 3
STAT = "slope"  # a trend over calls, not a statistic across repeats


@dataclass
class LeakFinding:
    case: str
    params: dict[str, int | str]
    record: LeakRecord | None
    heap: Trend | None = None
    rss: Trend | None = None
    objects: Trend | None = None
    problem: str | None = None  # why there is no heap trend to judge
    approximate: bool = False

    @property
    def per_build(self) -> float | None:
        """Bytes retained per build: the heap slope when growth is established, else 0."""
        if self.heap is None:
            return None
        return self.heap.slope if self.heap.significant else 0.0

    def to_dict(self) -> dict[str, Any]:
        def trend(t: Trend | None) -> dict[str, Any] | None:
            return None if t is None else {
                "slope": t.slope, "low": t.low, "high": t.high, "p_increase": t.p_increase,
                "significant": t.significant, "n": t.n}

        return {"case": self.case, "params": self.params, "per_build": self.per_build,
                "heap": trend(self.heap), "rss": trend(self.rss), "objects": trend(self.objects),
                "problem": self.problem,
                "record": None if self.record is None else self.record.model_dump()}


def find(case: Case) -> LeakFinding:
    """Trends of one case's leak run."""
    run = next((r for r in case.runs if r.kind == "leak"), None)
    record = run.leak if run is not None else None
    finding = LeakFinding(case.label, dict(case.params), record, approximate=case.approximate)
    if record is None:
        tail = run.stderr_tail.strip().splitlines()[-1:] if run else []
        finding.problem = "the leak driver did not start" + (f": {tail[0]}" if tail else "")
        return finding
    measured = record.measured
    if len(measured) < MIN_CALLS:
        why = record.error or ("the run was killed" if run and not run.completed else "")
        finding.problem = (f"{len(measured)} measured call(s); a trend needs {MIN_CALLS}"
                           + (f" ({why})" if why else ""))
        return finding
    xs = [float(c.index) for c in measured]
    finding.heap = theil_sen(xs, [float(c.traced) for c in measured])
    rss = [c.rss for c in measured]
    if all(v is not None for v in rss):
        finding.rss = theil_sen(xs, [float(v or 0) for v in rss])
    finding.objects = theil_sen(xs, [float(c.objects) for c in measured])
    return finding


def judge(rule: Rule, findings: list[LeakFinding]) -> list[Verdict]:
    if rule.metric.source is not Source.LEAK:
        raise ValueError(f"{rule.text!r} is not a leak rule")
    scoped = [f for f in findings if rule.applies_to(f.params)]
    if not scoped:
        return [verdict(rule, None, stat=STAT, reason="no leak run was measured")]
    verdicts = []
    for finding in scoped:
        scope = f" [{finding.case}]" if len(scoped) > 1 else ""
        heap, value = finding.heap, finding.per_build
        if heap is None or value is None:
            verdicts.append(verdict(rule, None, stat=STAT,
                                    reason=(finding.problem or "no trend") + scope))
            continue
        interval = f"[{format_bytes(heap.low)}, {format_bytes(heap.high)}]"
        if heap.significant:
            reason = f"heap grows {format_bytes(heap.slope)}/build, 95% CI {interval}"
            verdicts.append(verdict(rule, value, reason=reason + scope, stat=STAT,
                                    approximate=finding.approximate))
        elif rule.holds(heap.low) and rule.holds(heap.high):
            reason = f"no significant growth (slope 95% CI {interval})"
            verdicts.append(verdict(rule, value, reason=reason + scope, stat=STAT,
                                    approximate=finding.approximate))
        else:
            verdicts.append(verdict(rule, None, stat=STAT, reason=(
                f"too noisy to tell: the slope's 95% CI {interval} straddles the bound; "
                f"use more calls") + scope))
    return verdicts
