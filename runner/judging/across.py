"""Rules across matrix values: ``peak(parallel=true) / peak(parallel=false) < 1.3`` or
``duration(py=3.13) <= duration(py=3.11)`` judged on each pair of a scenario's cases that the
two sides name, every other matrix parameter the same (a scenario with ``pages: [500, 1000]``
gives one verdict per ``pages`` value). Each side's value is the case's statistic of its
repeats; ``worst`` (the default) takes the one that is worse for the bound on each side: for
an upper bound the left side's largest and the right side's smallest. A side whose case failed
(an error, a run that did not complete) leaves the pair not judged: never passed.
"""

from __future__ import annotations

from runner.judging.statistics import case_series
from runner.judging.verdicts import skipped, verdict
from runner.metrics import Across, MetricRef, Selector, pick
from runner.results import Case, Comparison, Selection, Verdict
from runner.slafile.rules import Rule
from runner.units import format_value


def judge(rule: Rule, cases: list[Case], selection: Selection | None = None
          ) -> tuple[list[Comparison], list[Verdict]]:
    """The comparisons and verdicts of one rule across matrix values on one scenario."""
    across = rule.metric.across
    if across is None:
        raise ValueError(f"{rule.text!r} is not a rule across matrix values")
    pairs: dict[str, dict[str, Case]] = {}  # the other parameters -> side -> case
    shared: dict[str, dict[str, int | str]] = {}
    for case in cases:
        if not rule.applies_to(case.params):
            continue
        side = _side_of(across, case.params)
        if side is None:
            continue
        other = {k: v for k, v in case.params.items() if k not in across.keys}
        key = repr(sorted(other.items()))
        shared[key] = other
        pairs.setdefault(key, {})[side] = case
    narrowed = selection is not None and selection.narrowed
    if not pairs:
        why = "neither side's case was measured"
        return [], [skipped(rule, f"{selection.describe()} left {why}") if narrowed and selection
                    else verdict(rule, None, reason=why)]
    comparisons, verdicts = [], []
    for key, found in pairs.items():
        comparison = _compare(rule, across, shared[key], found.get("left"), found.get("right"))
        comparisons.append(comparison)
        scope = _scope(shared[key], len(pairs))
        if ("left" not in found or "right" not in found) and narrowed and selection is not None:
            verdicts.append(skipped(rule, f"{selection.describe()} left a side out{scope}"))
            continue
        approximate = any(c.approximate for c in found.values())
        verdicts.append(verdict(rule, comparison.value, passed=comparison.passed,
                                reason=comparison.reason + scope, approximate=approximate,
                                stat=_stats_text(comparison)))
    return comparisons, verdicts


def stats_for(rule: Rule) -> tuple[str, str]:
    """The statistic of the repeats each side takes: ``worst`` is the one worse for the bound
    (the ratio and the difference grow with the left side and shrink with the right)."""
    if rule.stat != "worst":
        return rule.stat, rule.stat
    if rule.op in ("<", "<="):
        return "max", "min"
    if rule.op in (">", ">="):
        return "min", "max"
    return "median", "median"


def _side_of(across: Across, params: dict[str, int | str]) -> str | None:
    for name, side in (("left", across.left), ("right", across.right)):
        if all(str(params.get(key)) == value for key, value in side):
            return name
    return None


def _compare(rule: Rule, across: Across, params: dict[str, int | str], left: Case | None,
             right: Case | None) -> Comparison:
    left_stat, right_stat = stats_for(rule)
    base = MetricRef(rule.metric.name)
    comparison = Comparison(rule=rule.text, metric=base.key, form=across.form, params=params,
                            left=left.label if left else _label(across.left),
                            right=right.label if right else _label(across.right),
                            left_stat=left_stat, right_stat=right_stat)
    problems = []
    for case, side, stat, field in ((left, across.left, left_stat, "left_value"),
                                    (right, across.right, right_stat, "right_value")):
        value, problem = _side_value(case, base, stat)
        if problem is not None:
            problems.append(f"{across.side_text(base.name, side)} not judged: {problem}")
        setattr(comparison, field, value)
    comparison.reason = _both(base, across, comparison)
    if problems:
        comparison.reason = "; ".join(problems) + (f" ({comparison.reason})"
                                                   if comparison.reason else "")
        return comparison
    assert comparison.left_value is not None and comparison.right_value is not None
    if across.form == "ratio":
        if comparison.right_value == 0:
            comparison.reason = f"{comparison.reason}: the right side is 0, no ratio"
            return comparison
        comparison.value = comparison.left_value / comparison.right_value
    else:
        comparison.value = comparison.left_value - comparison.right_value
    comparison.passed = rule.holds(comparison.value)
    return comparison


def _side_value(case: Case | None, metric: MetricRef, stat: str
                ) -> tuple[float | None, str | None]:
    """One side's statistic, or why it has none: only completed runs make a value."""
    if case is None:
        return None, "its case was not measured"
    if case.error is not None:  # its whole error is listed with the case
        first = case.error.splitlines()[0].split("; the end of its output")[0]
        return None, f"{case.label} was not measured: {first}"
    points = case_series(case).get(metric.key, [])
    failures = [run.failure for run, _ in points if run is not None and run.failure]
    if failures:
        return None, f"{case.label}: a run did not complete: {failures[0]}"
    if not points:
        return None, f"{case.label} has no {metric.key}"
    return pick([value for _, value in points], stat), None


def _both(metric: MetricRef, across: Across, comparison: Comparison) -> str:
    """Both sides' values as the reports show them."""
    def side(selector: Selector, value: float | None, stat: str) -> str:
        shown = format_value(metric.kind, value) if value is not None else "-"
        return f"{across.side_text(metric.name, selector)} = {shown} ({stat})"

    if comparison.left_value is None and comparison.right_value is None:
        return ""
    return (side(across.left, comparison.left_value, comparison.left_stat) + ", "
            + side(across.right, comparison.right_value, comparison.right_stat))


def _label(side: Selector) -> str:
    return ", ".join(f"{k}={v}" for k, v in side)


def _scope(params: dict[str, int | str], groups: int) -> str:
    if not params or groups < 2:
        return ""
    return " [" + ", ".join(f"{k}={v}" for k, v in params.items()) + "]"


def _stats_text(comparison: Comparison) -> str:
    if comparison.left_stat == comparison.right_stat:
        return comparison.left_stat
    return f"{comparison.left_stat}/{comparison.right_stat}"
