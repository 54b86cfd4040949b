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
    if new is None or old is None:
        return "-"
    if old == 0:
        return "±0%" if new == 0 else "was 0"
    change = (new - old) / abs(old)
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


SLOPE_KEYS = ("marginal", "slope", "per_page", "per_unit")
INTERCEPT_KEYS = ("fixed", "intercept", "fixed_overhead")
EXPONENT_KEYS = ("exponent", "scaling_exponent")


@dataclass(frozen=True)
class Prediction:
    size: float
    value: float
    low: float | None = None  # the prediction interval, where the analysis gives one
    high: float | None = None


@dataclass(frozen=True)
class Fit:
    """memory = intercept + slope x size, as the scenario analysis found it."""

    metric: str
    slope: float
    intercept: float
    exponent: float | None = None
    label: str = ""  # the scenario's other matrix values this fit is for, if any
    predictions: tuple[Prediction, ...] = ()

    def at(self, size: float) -> float:
        return self.intercept + self.slope * size


def _first(node: Mapping[str, object], keys: tuple[str, ...]) -> float | None:
    return next((n for k in keys if (n := _number(node.get(k))) is not None), None)


def _predictions(node: Mapping[str, object]) -> tuple[Prediction, ...]:
    raw = node.get("predictions")
    if not isinstance(raw, list):
        return ()
    found = []
    for item in raw:
        if isinstance(item, Mapping):
            size, value = _number(item.get("size")), _number(item.get("value"))
            if size is not None and value is not None:
                found.append(Prediction(size, value, _number(item.get("low")),
                                        _number(item.get("high"))))
    return tuple(sorted(found, key=lambda p: p.size))


def fits_in(analysis: object) -> list[Fit]:
    """The linear fits found in a ScenarioResult.analysis, whatever its exact layout.

    The analysis is written by another module whose key names may change, so this looks (in
    mappings and lists, a few levels deep) for any mapping with a slope-like and an
    intercept-like number, and takes the metric from its ``metric`` key or the nearest
    enclosing key that names one (``peak`` when none does).
    """
    found: list[Fit] = []

    def visit(node: object, metric: str, depth: int) -> None:
        if isinstance(node, list) and depth < 5:
            for item in node:
                visit(item, metric, depth + 1)
            return
        if not isinstance(node, Mapping):
            return
        named = node.get("metric")
        if isinstance(named, str) and named in FITTABLE:
            metric = named
        slope, intercept = _first(node, SLOPE_KEYS), _first(node, INTERCEPT_KEYS)
        if slope is not None and intercept is not None:
            params = node.get("params")
            label = (", ".join(f"{k}={v}" for k, v in params.items())
                     if isinstance(params, Mapping) else "")
            found.append(Fit(metric, slope, intercept, _first(node, EXPONENT_KEYS), label,
                             _predictions(node)))
            return
        if depth >= 5:
            return
        for key, child in node.items():
            visit(child, _metric_named(str(key)) or metric, depth + 1)

    # Other analyses (leak slopes, say) have slopes too: look only at the scaling part if any.
    if isinstance(analysis, Mapping):
        scaling = [v for k, v in analysis.items() if "scal" in str(k) or "fit" in str(k)]
        if scaling:
            analysis = scaling
    visit(analysis, "peak", 0)
    return found


def _metric_named(key: str) -> str | None:
    """``peak``, ``rss_peak`` or ``python_peak`` when a key names one, e.g. ``fit(rss_peak)``."""
    for name in sorted(FITTABLE, key=len, reverse=True):
        if key == name or key.endswith((f"({name})", f"_{name}", f".{name}")):
            return name
    return None
