"""Judging rules against a case's metrics: the value the rule's statistic picks, and why."""

from __future__ import annotations

from runner.judging.statistics import COMPLETION_METRICS, Series, case_series, not_run_steps
from runner.metrics import RUN_METRICS, TRACKER_METRICS, Source
from runner.results import Case, Verdict
from runner.slafile.rules import Rule

CASE_SOURCES = (Source.TIMED, Source.TRACED)


def verdict(rule: Rule, value: float | None, *, passed: bool | None = None, reason: str = "",
            implicit: bool = False, approximate: bool = False, stat: str | None = None,
            skipped: bool = False) -> Verdict:
    if passed is None and value is not None and not skipped:
        passed = rule.holds(value)
    return Verdict(rule=rule.text, metric=rule.metric.key, op=rule.op, bound=rule.bound,
                   stat=stat or rule.resolved_stat, value=value, passed=passed, reason=reason,
                   implicit=implicit, file=rule.file, line=rule.line, approximate=approximate,
                   skipped=skipped)


def skipped(rule: Rule, why: str) -> Verdict:
    """A rule the selection (--only, --size) left out: listed, neither held nor broken."""
    return verdict(rule, None, reason=f"skipped: {why}", skipped=True)


def judge_case(case: Case, rules: list[Rule], implicit: list[Rule]) -> list[Verdict]:
    """Verdicts of the run-level rules; fit, leak and baseline rules are judged elsewhere."""
    series = case_series(case)
    verdicts = []
    # a build that changed its memory limit was not measured under the limit: no rule of the
    # case can pass (runner.measure.assemble says how the limit did not hold)
    unheld = next((run.limit_changed for run in case.runs if run.limit_changed), None)
    for rule, is_implicit in [*((r, False) for r in rules), *((r, True) for r in implicit)]:
        if rule.metric.source not in CASE_SOURCES or rule.over is not None:
            continue  # a ratio of two steps: judging.steps
        points = series.get(rule.metric.key)
        if case.error is not None:
            verdicts.append(verdict(rule, None, reason=f"not measured: {case.error}",
                                    implicit=is_implicit))
        elif unheld is not None:
            verdicts.append(verdict(rule, None, reason=unheld, implicit=is_implicit))
        elif rule.metric.step is not None and (missed := not_run_steps(
                case, rule.metric.step,
                ("traced",) if rule.metric.source is Source.TRACED else ("timed",))):
            # a step some repeat never reached was not measured there: the case cannot pass
            verdicts.append(verdict(rule, None, reason="; ".join(missed), implicit=is_implicit))
        elif not points:
            verdicts.append(verdict(rule, None, reason=_missing_reason(case, rule),
                                    implicit=is_implicit))
        else:
            judged = judge_points(rule, points, approximate=case.approximate)
            verdicts.append(judged.model_copy(update={"implicit": is_implicit}))
    return verdicts


def judge_points(rule: Rule, points: Series, *, approximate: bool) -> Verdict:
    """A rule on values some of which may come from runs that did not complete.

    A run that did not complete (non-zero exit, signal, timeout, OOM kill) never makes a pass:
    its figures are what it reached before it died, not what the build needs. The rule fails
    where a figure already proves it broken (a completed run's value, or an upper bound that a
    dead run's value exceeded: the build needed at least that much); otherwise it is not judged,
    and says which run failed and how. ``exit_code`` and ``oom_kills`` are about completion
    itself and are judged on every run, with the failure as the reason.
    """
    failures = [run.failure for run, _ in points if run is not None and run.failure]
    reason = "; ".join(dict.fromkeys(f for f in failures if f))
    if rule.metric.name in COMPLETION_METRICS or not failures:
        value = rule.pick([v for _, v in points])
        return verdict(rule, value, approximate=approximate,
                       reason=reason if not rule.holds(value) else "")
    upper = rule.op in ("<", "<=")
    proven = [v for run, v in points if not rule.holds(v)
              and (run is None or run.completed or upper)]
    if proven:
        return verdict(rule, rule.pick(proven), passed=False, approximate=approximate,
                       reason=f"{reason}; the value it reached already breaks the bound")
    return verdict(rule, None, reason=f"a run did not complete: {reason}")


def _missing_reason(case: Case, rule: Rule) -> str:
    metric = rule.metric
    if metric.source is Source.TRACED and not any(r.kind == "traced" for r in case.runs):
        if case.trace and case.trace.startswith("not traced"):
            return f"not measured: this size was {case.trace}"
        return "no traced run: set tracker: tracemalloc (or memray) for this scenario"
    failed = next((r.tracker_error for r in case.runs if r.tracker_error), None)
    if metric.source is Source.TRACED and failed:
        return f"error: {failed}"
    if metric.name in TRACKER_METRICS and metric.phase is None:
        return (f"{metric.name} is counted by memray only (tracemalloc sees the heap, not the "
                "calls that made it): set tracker: memray")
    memray = any(h.tracker == "memray" for r in case.runs for h in r.python)
    if metric.source is Source.TRACED and metric.phase is not None and memray:
        return (f"{metric.key}: under tracker: memray phases have no heap figures (memray's "
                "high-water mark cannot be reset at a phase's start); use tracker: tracemalloc")
    if metric.source is Source.TRACED:
        return "the traced run reported no Python heap: is the command a Python program?"
    if metric.step is not None:
        seen = list(dict.fromkeys(s.name for r in case.runs for s in r.steps))
        return f"no step {metric.step!r} was measured (steps: {', '.join(seen) or 'none'})"
    if metric.phase is not None:
        seen = sorted({p.name for r in case.runs for p in r.phases})
        if metric.name == "peak" and seen:
            return (f"phase {metric.phase!r} has no cgroup peak: this host does not let the "
                    "build reset its cgroup's peak")
        return f"no phase {metric.phase!r} was recorded (phases seen: {', '.join(seen) or 'none'})"
    if metric.name in RUN_METRICS and RUN_METRICS[metric.name].scope == "case":
        return "the scenario has no size parameter"
    return f"the backend {case.backend!r} does not measure {metric.key}"
