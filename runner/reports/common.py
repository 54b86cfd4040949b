"""What several reports share: verdict rows, value formatting, and matching against a baseline."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from runner.errors import EXIT_HOST, MemslaError
from runner.metrics import FITTABLE, parse_metric
from runner.results import Case, Results, Stats, Verdict
from runner.units import Kind, format_value


class ReportError(MemslaError):
    """A report cannot be produced on this host (a missing optional dependency): exit 3."""

    exit_code = EXIT_HOST


# The metrics every report shows for a case, in this order.
KEY_METRICS = ("peak", "rss_peak", "python_peak", "duration")
METRIC_TITLES = {"peak": "cgroup peak", "rss_peak": "rss peak", "python_peak": "python peak",
                 "duration": "duration"}


def metric_kind(metric: str) -> Kind:
    try:
        return parse_metric(metric).kind
    except (ValueError, KeyError):
        return Kind.NUMBER


def format_metric(metric: str, value: float | None, *, signed: bool = False) -> str:
    return format_value(metric_kind(metric), value, signed=signed)


def format_bound(verdict: Verdict) -> str:
    return f"{verdict.op} {format_metric(verdict.metric, verdict.bound)}"


def status_word(verdict: Verdict) -> str:
    if verdict.passed is None:
        return "not judged"
    return "pass" if verdict.passed else "FAIL"


@dataclass(frozen=True)
class VerdictRow:
    """One verdict with what it judged: a case, or a whole scenario (``case`` is None)."""

    scenario: str
    label: str
    verdict: Verdict
    case: Case | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.label, self.verdict.rule


def verdict_rows(results: Results) -> list[VerdictRow]:
    rows = [VerdictRow(case.scenario, case.label, verdict, case)
            for case in results.cases for verdict in case.verdicts]
    rows += [VerdictRow(s.scenario, s.scenario, verdict)
             for s in results.scenarios for verdict in s.verdicts]
    return rows


def describe_value(row: VerdictRow) -> str:
    """``108 MiB (max of 2 runs)``: the judged value and which statistic picked it."""
    verdict = row.verdict
    text = format_metric(verdict.metric, verdict.value)
    stats = row.case.metrics.get(verdict.metric) if row.case else None
    if stats is not None and stats.n > 1:
        text += f" ({verdict.stat} of {stats.n} runs)"
    return text


def failure_message(row: VerdictRow) -> str:
    verdict = row.verdict
    if verdict.passed is None:
        return f"{row.label}: {verdict.rule} not judged: {verdict.reason or 'no value'}"
    return (f"{row.label}: {verdict.metric} = {describe_value(row)}, "
            f"bound {format_bound(verdict)} ({verdict.rule})")


def summary_line(results: Results) -> str:
    verdicts = results.all_verdicts()
    failed = sum(1 for v in verdicts if v.passed is False)
    unknown = sum(1 for v in verdicts if v.passed is None)
    passed = sum(1 for v in verdicts if v.passed)
    line = (f"{results.status.upper()}: {passed} of {len(verdicts)} SLAs hold "
            f"({failed} broken, {unknown} not judged)")
    return line + (" - interrupted, results so far" if results.interrupted else "")


def median(case: Case, metric: str) -> float | None:
    stats = case.metrics.get(metric)
    return None if stats is None else stats.median


def pick(stats: Stats, stat: str) -> float:
    """The value of ``stat`` (a Verdict.stat) across the repeats."""
    if stat == "min":
        return stats.min
    if stat == "median":
        return stats.median
    if stat == "mean":
        return stats.mean
    return stats.max


def relative_change(new: float | None, old: float | None) -> float | None:
    if new is None or old is None or old == 0:
        return None
    return (new - old) / abs(old)


def format_change(new: float | None, old: float | None) -> str:
    change = relative_change(new, old)
    if change is None:
        return "-" if old is None or new is None else "new"
    return "±0%" if abs(change) < 0.0005 else f"{change * 100:+.1f}%"


class Baseline:
    """A baseline results file, indexed for lookups by case label and rule."""

    def __init__(self, results: Results) -> None:
        self.results = results
        self.cases = {case.label: case for case in results.cases}
        self.rows = {row.key: row for row in verdict_rows(results)}

    def value_for(self, row: VerdictRow) -> float | None:
        """The baseline's value of the same rule, else of the same metric and statistic."""
        old = self.rows.get(row.key)
        if old is not None and old.verdict.value is not None:
            return old.verdict.value
        case = self.cases.get(row.label)
        stats = case.metrics.get(row.verdict.metric) if case else None
        return None if stats is None else pick(stats, row.verdict.stat)

    def median(self, label: str, metric: str) -> float | None:
        case = self.cases.get(label)
        return None if case is None else median(case, metric)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


SLOPE_KEYS = ("slope", "per_page", "per_unit", "marginal")
INTERCEPT_KEYS = ("intercept", "fixed_overhead", "fixed")
EXPONENT_KEYS = ("exponent", "scaling_exponent", "k")


@dataclass(frozen=True)
class Fit:
    """memory = intercept + slope x size, as the scenario analysis found it."""

    metric: str
    slope: float
    intercept: float
    exponent: float | None = None

    def at(self, size: float) -> float:
        return self.intercept + self.slope * size


def fits_in(analysis: Mapping[str, object]) -> dict[str, Fit]:
    """The linear fits found in a ScenarioResult.analysis, whatever its exact layout.

    The analysis is written by another module whose key names may change, so this looks for
    any mapping with a slope-like and an intercept-like number, and takes the metric from the
    nearest enclosing key that names one (``peak`` when none does).
    """
    found: dict[str, Fit] = {}

    def visit(node: Mapping[str, object], metric: str, depth: int) -> None:
        slope = next((n for k in SLOPE_KEYS if (n := _number(node.get(k))) is not None), None)
        intercept = next((n for k in INTERCEPT_KEYS
                          if (n := _number(node.get(k))) is not None), None)
        named = node.get("metric")
        if isinstance(named, str) and named in FITTABLE:
            metric = named
        if slope is not None and intercept is not None and metric not in found:
            exponent = next((n for k in EXPONENT_KEYS
                             if (n := _number(node.get(k))) is not None), None)
            found[metric] = Fit(metric, slope, intercept, exponent)
        if depth >= 4:
            return
        for key, child in node.items():
            if isinstance(child, Mapping):
                inner = _metric_named(str(key)) or metric
                visit(child, inner, depth + 1)

    visit(analysis, "peak", 0)
    return found


def _metric_named(key: str) -> str | None:
    """``peak``, ``rss_peak`` or ``python_peak`` when a key names one, e.g. ``fit(rss_peak)``."""
    for name in sorted(FITTABLE, key=len, reverse=True):
        if key == name or key.endswith((f"({name})", f"_{name}", f".{name}")):
            return name
    return None
