"""Ratios of two steps' figures in each run of a step scenario: ``step(incremental).peak /
step(full).peak < 0.5``, judged per case like a run metric (the rule's statistic across the
repeats, a run that did not complete never making a pass)."""

from __future__ import annotations

from runner.judging.statistics import RUN_VALUES, Series, not_run_steps
from runner.judging.verdicts import judge_points, verdict
from runner.metrics import Source
from runner.results import Case, Run, Verdict
from runner.slafile.rules import Rule


def ratio_series(case: Case, rule: Rule) -> Series:
    """The rule's ratio in each run that ran both steps: numerator / denominator of the same
    run (the timed runs; the traced run for heap figures), with the step run that failed, if
    one did, as the run the value comes from."""
    assert rule.over is not None
    kind = "traced" if rule.metric.source is Source.TRACED else "timed"
    top_of, bottom_of = RUN_VALUES[rule.metric.name], RUN_VALUES[rule.over.name]
    series: Series = []
    for run in (r for r in case.runs if r.kind == kind):
        steps = {step.name: step.run for step in run.steps}
        top, bottom = steps.get(rule.metric.step or ""), steps.get(rule.over.step or "")
        if top is None or bottom is None:
            continue
        numerator, denominator = top_of(top), bottom_of(bottom)
        if numerator is None or not denominator:
            continue
        failed: Run = next((r for r in (top, bottom) if not r.completed), top)
        series.append((failed, numerator / denominator))
    return series


def judge_ratios(case: Case, rules: list[Rule]) -> list[Verdict]:
    """The verdicts of the case's step-ratio rules; not judged where a run did not reach a
    step or the case was not measured."""
    verdicts = []
    for rule in rules:
        over = rule.over
        if over is None:
            continue
        kinds = ("traced",) if rule.metric.source is Source.TRACED else ("timed",)
        missed = [*not_run_steps(case, rule.metric.step or "", kinds),
                  *not_run_steps(case, over.step or "", kinds)]
        points = ratio_series(case, rule)
        if case.error is not None:
            judged = verdict(rule, None, reason=f"not measured: {case.error}")
        elif missed:
            judged = verdict(rule, None, reason="; ".join(dict.fromkeys(missed)))
        elif not points:
            judged = verdict(rule, None, reason=f"no run measured both {rule.metric.key} and "
                             f"{over.key}")
        else:
            judged = judge_points(rule, points, approximate=case.approximate)
        verdicts.append(judged.model_copy(update={"metric": rule.metric_key}))
    return verdicts
