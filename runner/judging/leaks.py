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

from runner.judging.regression import Trend, theil_sen
from runner.judging.verdicts import verdict
from runner.metrics import Source
from runner.results import Case, LeakFinding, LeakTrend, Verdict
from runner.slafile.rules import Rule
from runner.units import format_bytes

MIN_CALLS = 3
STAT = "slope"  # a trend over calls, not a statistic across repeats


def _trend(xs: list[float], ys: list[float]) -> LeakTrend:
    trend: Trend = theil_sen(xs, ys)
    return LeakTrend(slope=trend.slope, low=trend.low, high=trend.high,
                     p_increase=trend.p_increase, significant=trend.significant, n=trend.n)


def find(case: Case) -> LeakFinding:
    """Trends of one case's leak run."""
    run = next((r for r in case.runs if r.kind == "leak"), None)
    record = run.leak if run is not None else None
    finding = LeakFinding(case=case.label, params=dict(case.params), record=record,
                          approximate=case.approximate)
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
    heap = finding.heap = _trend(xs, [float(c.traced) for c in measured])
    # Bytes retained per build: the heap slope when growth is established, else 0.
    finding.per_build = heap.slope if heap.significant else 0.0
    rss = [c.rss for c in measured]
    if all(v is not None for v in rss):
        finding.rss = _trend(xs, [float(v or 0) for v in rss])
    finding.objects = _trend(xs, [float(c.objects) for c in measured])
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
