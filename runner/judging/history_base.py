"""The regression rule, ``regression(peak) < 10%``: a case's repeats against a window of the base
branch's recorded values, judged with ``changes.compare_to_base``. The history comes in already
loaded (``HistoryBase``, read from the store by ``runner.history.base`` before judging); this
module reads no store.

A rule fails only where the test is significant **and** the change exceeds the bound (and the
noise floor); it is skipped, never passed, where the base has too few values; and it is not
judged where the store could not be read (the check then ends in error, exit 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from runner.judging.changes import compare_to_base
from runner.judging.verdicts import verdict
from runner.metrics import DEFAULT_COMMITS, HISTORIED, RUN_METRICS, Source
from runner.results import Case, Verdict
from runner.slafile.rules import Rule, parse_rule

MIN_BASE_VALUES = 5  # fewer base values than this: the rule is skipped
DEFAULT_BOUND = 0.10  # --fail-on-regression's bound


@dataclass(frozen=True)
class BaseWindow:
    """The base branch's recent values of one case's metric, in the head's environment (chosen
    by ``runner.history.base.window_of``, docs/history.md "The base window")."""

    values: tuple[float, ...]  # every repeat of the window's commits
    commits: int  # how many commits they come from
    # the change point the window starts at, where it cuts the window short, and why: a shift
    # the store accepted, or one the detector found
    since: str | None = None
    since_kind: Literal["accepted", "detected"] | None = None
    note: str = ""  # why there are few or none (another environment, ...)

    @property
    def starts(self) -> str:
        """``'since accepted 0a0a0a0a0a'``, ``'since the shift at 0a0a0a0a0a'``, or ``''``."""
        if self.since is None:
            return ""
        if self.since_kind == "accepted":
            return f"since accepted {self.since[:10]}"
        return f"since the shift at {self.since[:10]}"


@dataclass
class HistoryBase:
    """What the regression rules are judged against, loaded before judging: per (scenario,
    case label, metric) the base window. ``problem``: the store could not be read (no rule is
    judged). ``every_metric``: ``--fail-on-regression``'s bound, judged on every recorded
    metric of every case."""

    branch: str
    store: str
    windows: dict[tuple[str, str, str], BaseWindow] = field(default_factory=dict)
    problem: str | None = None
    every_metric: float | None = None
    commits: int = DEFAULT_COMMITS

    def window(self, scenario: str, case: str, metric: str) -> BaseWindow | None:
        return self.windows.get((scenario, case, metric))


def judge_regression(rule: Rule, case: Case, history: HistoryBase | None) -> Verdict:
    """``regression(peak) < 10%``: the relative change of the case's median against the base
    window's, failed only where significant and beyond the bound."""
    metric = rule.metric.of
    assert rule.metric.source is Source.HISTORY and metric is not None
    label = f"{case.label} {metric}"
    if history is None:
        return verdict(rule, None, skipped=True,
                       reason=f"skipped: no base history for {label} (0 values): no history "
                              "store (runner check --history URL)")
    if history.problem is not None:
        return verdict(rule, None, reason=f"not judged: {history.problem}")
    if case.error is not None:
        return verdict(rule, None, reason=f"not measured: {case.error}")
    stats = case.metrics.get(metric)
    if stats is None or not stats.values:
        return verdict(rule, None, reason=f"{metric} was not measured in this check")
    failures = "; ".join(dict.fromkeys(r.failure for r in case.runs if r.failure))
    if failures:
        return verdict(rule, None, reason=f"a run did not complete: {failures}")
    window = history.window(case.scenario, case.label, metric)
    values = window.values if window else ()
    if len(values) < MIN_BASE_VALUES:
        note = f"; {window.note}" if window and window.note else ""
        return verdict(rule, None, skipped=True, stat="median",
                       reason=f"skipped: no base history for {label} on {history.branch} "
                              f"({len(values)} values; {MIN_BASE_VALUES} needed){note}")
    assert window is not None
    kind = RUN_METRICS[metric].kind
    compared = compare_to_base(stats.values, values, threshold=rule.bound, kind=kind)
    since = f", {window.starts}" if window.since else ""
    reason = (f"{compared.message}; base: {history.branch}'s last {window.commits} commits "
              f"({len(values)} values{since})")
    return verdict(rule, compared.relative, passed=compared.verdict != "regression",
                   stat="median", reason=reason, approximate=case.approximate)


def every_metric_rules(case: Case, written: list[Rule], bound: float) -> list[Rule]:
    """``--fail-on-regression``: ``regression(M) < bound`` for every recorded metric of the
    case that a history holds and no written regression rule already judges."""
    judged = {r.metric.of for r in written if r.metric.source is Source.HISTORY}
    return [parse_rule(f"regression({name}) < {bound * 100:g}%")
            for name in HISTORIED
            if name not in judged and case.metrics.get(name) and case.metrics[name].values]


def judge_history(case: Case, rules: list[Rule], history: HistoryBase | None) -> list[Verdict]:
    """The verdicts of a case's regression rules, and with ``--fail-on-regression`` those of
    every other recorded metric."""
    written = [r for r in rules
               if r.metric.source is Source.HISTORY and r.applies_to(case.params)]
    found = [judge_regression(rule, case, history) for rule in written]
    if history is not None and history.every_metric is not None:
        found += [judge_regression(rule, case, history)
                  for rule in every_metric_rules(case, written, history.every_metric)]
    return found
