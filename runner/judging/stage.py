"""The judging stage, run once after the cases were measured: per case its statistics and the
verdicts of its rules; per scenario the scaling fits (with their outlook), leak trends and phase
summaries with the verdicts of the rules that need them, and the rules across matrix values
(``across``); and growth against a baseline (the
growth rules, the allocation sites that grew). ``judge`` judges the cases of an SLA file;
``judge_rules`` those measured without one (``runner.api.measure_callable``) the same way. The
final status is ``runner.judging.status``'s."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from runner.judging import across, leaks, phases, scaling, steps
from runner.judging.outlook import add_outlooks
from runner.judging.statistics import case_metrics
from runner.judging.verdicts import judge_case, skipped
from runner.metrics import Source
from runner.plan import case_rules, rules_for
from runner.results import Case, Results, ScenarioAnalysis, ScenarioResult, Selection
from runner.slafile.model import Scenario, Suite
from runner.slafile.rules import Rule

if TYPE_CHECKING:  # the baseline and history modules are imported where a check uses them
    from runner.judging.history_base import HistoryBase


def judge(results: Results, suite: Suite, baseline: Results | None = None,
          history: HistoryBase | None = None) -> None:
    """Fill every case's metrics and verdicts and ``results.scenarios`` from the runs alone
    (and the regression rules from ``history``, the base branch's values loaded before)."""
    _judge_cases(results, lambda case: case_rules(suite, case.scenario, case.params))
    measured = dict.fromkeys(c.scenario for c in results.cases)
    for name in measured:
        scenario = suite.scenarios[name]
        cases = [c for c in results.cases if c.scenario == name]
        rules = _scenario_rules(scenario, suite)
        results.scenarios.append(analyse_scenario(name, cases, rules, results.selection))
        for case in cases:
            for rule in rules:
                if rule.metric.source is Source.BASELINE and rule.applies_to(case.params):
                    from runner.judging.baseline import judge_growth

                    case.verdicts.append(judge_growth(rule, case, baseline))
            if history is not None or any(r.metric.source is Source.HISTORY for r in rules):
                from runner.judging.history_base import judge_history

                case.verdicts += judge_history(case, rules, history)
    if baseline is not None:  # without one no site grew: the analyses above list none
        from runner.judging.baseline import attach_grown_sites

        attach_grown_sites(results, baseline)
    if results.selection.only and not results.interrupted:
        for name, scenario in suite.scenarios.items():
            if name not in measured and name not in results.selection.only:
                why = f"{results.selection.describe()} left scenario {name!r} out"
                results.scenarios.append(ScenarioResult(scenario=name, verdicts=[
                    skipped(rule, why) for rule in _scenario_rules(scenario, suite)]))


def judge_rules(results: Results, rules: Sequence[Rule]) -> None:
    """Judge cases measured without an SLA file as ``judge`` judges a scenario's: run-level
    ``rules`` (with the implicit ones) on every case, then each scenario's analysis."""
    _judge_cases(results, lambda case: rules_for(rules, case.params))
    results.scenarios = [analyse_scenario(name, [c for c in results.cases if c.scenario == name],
                                          [])
                         for name in dict.fromkeys(c.scenario for c in results.cases)]


def _judge_cases(results: Results,
                 rules_of: Callable[[Case], tuple[list[Rule], list[Rule]]]) -> None:
    """Every case's statistics and the verdicts of its (written, implicit) rules."""
    results.scenarios = []
    for case in results.cases:
        case.metrics = case_metrics(case)
        written, implicit = rules_of(case)
        case.verdicts = [*judge_case(case, written, implicit),
                         *steps.judge_ratios(case, written)]


def analyse_scenario(name: str, cases: list[Case], rules: list[Rule],
                     selection: Selection | None = None) -> ScenarioResult:
    """A scenario's analysis and the verdicts of its fit, leak and across-values rules, from
    its cases (whose
    own verdicts are given already: the outlook's budget reads their peak bounds)."""
    findings = [leaks.find(c) for c in cases if any(r.kind == "leak" for r in c.runs)]
    fits = scaling.analysis(cases)
    add_outlooks(fits, cases)
    result = ScenarioResult(scenario=name, analysis=ScenarioAnalysis(
        scaling=fits, leaks=findings, phases=phases.analysis(cases)))
    for rule in rules:
        if rule.metric.source is Source.FIT:
            result.verdicts += scaling.judge(rule, cases, selection)
        elif rule.metric.source is Source.LEAK:
            result.verdicts += leaks.judge(rule, findings)
        elif rule.metric.source is Source.ACROSS:
            comparisons, verdicts = across.judge(rule, cases, selection)
            result.analysis.comparisons += comparisons
            result.verdicts += verdicts
    return result


def refit(results: Results) -> None:
    """Make again the scaling fits (and their outlooks) that hold no repeats: those of a results
    file older than schema 7, whose prediction intervals would rest on one value per size.
    Verdicts are left as they were judged."""
    for scenario in results.scenarios:
        stored = scenario.analysis.scaling
        if all(len(fit.repeats) == len(fit.sizes) for fit in stored):
            continue
        cases = [c for c in results.cases if c.scenario == scenario.scenario]
        fits = scaling.analysis(cases)
        add_outlooks(fits, cases)
        scenario.analysis.scaling = fits


def _scenario_rules(scenario: Scenario, suite: Suite) -> list[Rule]:
    """The scenario's rules, and the suite-wide ones it can measure: a suite-wide fit rule
    skips scenarios without sizes, a leak rule those without a leak entry point."""
    suite_rules = [r for r in suite.slas if scenario.cannot_measure(r.metric) is None
                   and scenario.cannot_compare(r) is None]
    return [*scenario.slas, *suite_rules]
