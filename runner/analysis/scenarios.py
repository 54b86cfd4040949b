"""The scenario-level analysis after all cases ran: scaling fits, leak trends, phase summaries
and baseline growth, with the verdicts of the rules that need them (``Session._analyse``)."""

from __future__ import annotations

from collections.abc import Mapping

from runner.analysis import compare, leaks, phases, scaling
from runner.metrics import Source
from runner.probe.leakrun import LeakRecord
from runner.results import Case, Results, ScenarioResult
from runner.spec.model import Scenario, Suite
from runner.spec.rules import Rule


def analyse(results: Results, suite: Suite, leak_records: Mapping[str, LeakRecord | None],
            baseline: Results | None = None) -> None:
    """Fill ``results.scenarios`` and add the baseline verdicts to each case."""
    for name in dict.fromkeys(c.scenario for c in results.cases):
        scenario = suite.scenarios[name]
        cases = [c for c in results.cases if c.scenario == name]
        rules = _scenario_rules(scenario, suite)
        results.scenarios.append(analyse_scenario(name, cases, rules, leak_records))
        for case in cases:
            for rule in rules:
                if rule.metric.source is Source.BASELINE and rule.applies_to(case.params):
                    case.verdicts.append(compare.judge_growth(rule, case, baseline))


def analyse_scenario(name: str, cases: list[Case], rules: list[Rule],
                     leak_records: Mapping[str, LeakRecord | None]) -> ScenarioResult:
    result = ScenarioResult(scenario=name)
    if any(c.size is not None for c in cases):
        result.analysis["scaling"] = scaling.analysis(cases)
    phase_summary = phases.analysis(cases)
    if phase_summary:
        result.analysis["phases"] = phase_summary
    findings = [leaks.find(c, leak_records.get(c.label)) for c in cases
                if any(r.kind == "leak" for r in c.runs)]
    if findings:
        result.analysis["leak"] = {f.case: f.to_dict() for f in findings}
    for rule in rules:
        if rule.metric.source is Source.FIT:
            result.verdicts += scaling.judge(rule, cases)
        elif rule.metric.source is Source.LEAK:
            result.verdicts += leaks.judge(rule, findings)
    return result


def _scenario_rules(scenario: Scenario, suite: Suite) -> list[Rule]:
    """The scenario's rules, and the suite-wide ones it can measure: a suite-wide fit rule
    skips scenarios without sizes, a leak rule those without a leak entry point."""
    suite_rules = [r for r in suite.slas if scenario.cannot_measure(r.metric) is None]
    return [*scenario.slas, *suite_rules]
