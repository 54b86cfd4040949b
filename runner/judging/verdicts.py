"""Judging rules against a case's metrics: the value the rule's statistic picks, and why."""

from __future__ import annotations

from runner.metrics import Source
from runner.results import Case, Verdict
from runner.slafile.rules import Rule

CASE_SOURCES = (Source.TIMED, Source.TRACED)


def verdict(rule: Rule, value: float | None, *, passed: bool | None = None, reason: str = "",
            implicit: bool = False, approximate: bool = False, stat: str | None = None) -> Verdict:
    if passed is None and value is not None:
        passed = rule.holds(value)
    return Verdict(rule=rule.text, metric=rule.metric.key, op=rule.op, bound=rule.bound,
                   stat=stat or rule.resolved_stat, value=value, passed=passed, reason=reason,
                   implicit=implicit, file=rule.file, line=rule.line, approximate=approximate)


def judge_case(case: Case, rules: list[Rule], implicit: list[Rule]) -> list[Verdict]:
    """Verdicts of the run-level rules; fit, leak and baseline rules are judged elsewhere."""
    verdicts = []
    # a build that changed its memory limit was not measured under the limit: no rule of the
    # case can pass (runner.measure.assemble says how the limit did not hold)
    unheld = next((run.limit_changed for run in case.runs if run.limit_changed), None)
    for rule, is_implicit in [*((r, False) for r in rules), *((r, True) for r in implicit)]:
        if rule.metric.source not in CASE_SOURCES:
            continue
        stats = case.metrics.get(rule.metric.key)
        if case.error is not None:
            verdicts.append(verdict(rule, None, reason=f"not measured: {case.error}",
                                    implicit=is_implicit))
        elif unheld is not None:
            verdicts.append(verdict(rule, None, reason=unheld, implicit=is_implicit))
        elif stats is None:
            verdicts.append(verdict(rule, None, reason=_missing_reason(case, rule),
                                    implicit=is_implicit))
        else:
            verdicts.append(verdict(rule, rule.pick(stats.values), implicit=is_implicit,
                                    approximate=case.approximate))
    return verdicts


def _missing_reason(case: Case, rule: Rule) -> str:
    metric = rule.metric
    if metric.source is Source.TRACED and not any(r.kind == "traced" for r in case.runs):
        return "no traced run: set tracker: tracemalloc for this scenario"
    if metric.source is Source.TRACED:
        return "the traced run reported no Python heap: is the command a Python program?"
    if metric.phase is not None:
        seen = sorted({p.name for r in case.runs for p in r.phases})
        if metric.name == "peak" and seen:
            return (f"phase {metric.phase!r} has no cgroup peak: this host does not let the "
                    "build reset its cgroup's peak")
        return f"no phase {metric.phase!r} was recorded (phases seen: {', '.join(seen) or 'none'})"
    if metric.name in ("pages", "peak_per_page", "rss_per_page"):
        return "the scenario has no size parameter"
    return f"the backend {case.backend!r} does not measure {metric.key}"
