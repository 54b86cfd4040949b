"""Scaling: how a scenario's memory grows with its size parameter.

For peak, rss_peak and python_peak it fits memory = fixed + marginal x size by least squares
(with R^2) and the growth exponent k of memory = fixed + c x size^k, judges the fit rules
(``per_page``, ``fixed_overhead``, ``scaling_exponent``) per scenario and predicts memory at
sizes that were not measured. Only builds that completed count: a build killed at its limit
shows the limit, not what it needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.judging.regression import Line, PowerFit, fit_line, fit_loglog, fit_power
from runner.judging.statistics import TIMED_VALUES, TRACED_VALUES, RunValue
from runner.judging.verdicts import verdict
from runner.metrics import FITTABLE, Source
from runner.metrics import MIN_SIZES as MIN_SIZES  # defined with the metrics; re-exported
from runner.results import Case, Verdict
from runner.slafile.rules import Rule
from runner.units import format_bytes

# Below this growth across the measured sizes memory does not measurably depend on size.
FLAT_BYTES = 1 << 20
FLAT_FRACTION = 0.01

_SOURCES: dict[str, tuple[str, RunValue]] = {
    "peak": ("timed", TIMED_VALUES["peak"]),
    "rss_peak": ("timed", TIMED_VALUES["rss_peak"]),
    "python_peak": ("traced", TRACED_VALUES["python_peak"]),
}
Pick = Callable[[list[float]], float]


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


@dataclass
class Prediction:
    size: int
    value: float  # the linear fit
    low: float  # its 95% prediction interval (infinite with fewer than 3 sizes)
    high: float
    power_value: float | None  # the growth-exponent model, which differs when k is not ~1
    factor: float  # size / the largest measured size

    @property
    def extrapolated(self) -> bool:
        return self.factor > 1

    def to_dict(self) -> dict[str, object]:
        return {"size": self.size, "value": self.value, "low": _finite(self.low),
                "high": _finite(self.high), "power_value": self.power_value,
                "extrapolated": self.extrapolated, "factor": self.factor}


@dataclass
class ScalingFit:
    """One metric of one scenario (one combination of its other matrix axes) across sizes."""

    metric: str
    stat: str
    size_parameter: str
    params: dict[str, int | str]
    sizes: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    line: Line | None = None
    power: PowerFit | None = None
    loglog: Line | None = None
    flat: bool = False
    approximate: bool = False

    @property
    def problem(self) -> str | None:
        """Why the fit cannot be judged, or None."""
        if len(self.sizes) >= MIN_SIZES and self.line is not None:
            return None
        shown = ", ".join(map(str, self.sizes)) or "none"
        why = "; ".join(self.excluded)
        return (f"{self.metric} was measured at {len(self.sizes)} size(s) ({shown}); a fit needs "
                f"at least {MIN_SIZES}" + (f" ({why})" if why else ""))

    @property
    def exponent(self) -> float | None:
        if self.flat:
            return 0.0
        return None if self.power is None else self.power.exponent

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.params.items())

    def predict(self, size: int) -> Prediction:
        if self.line is None:
            raise ValueError(self.problem or "no fit")
        power = None if self.power is None or self.flat else self.power(size)
        half = self.line.interval(size)
        value = self.line(size)
        return Prediction(size, value, value - half, value + half, power,
                          size / max(self.sizes))

    def size_for(self, memory: float) -> float | None:
        """The size at which the linear fit reaches ``memory`` (None when it does not grow)."""
        if self.line is None or self.line.slope <= 0:
            return None
        return (memory - self.line.intercept) / self.line.slope

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            "metric": self.metric, "stat": self.stat, "size_parameter": self.size_parameter,
            "params": self.params, "sizes": self.sizes, "values": self.values,
            "excluded": self.excluded, "problem": self.problem, "approximate": self.approximate,
        }
        if self.line is not None:
            data.update(fixed=self.line.intercept, marginal=self.line.slope, r2=self.line.r2,
                        residual_sd=self.line.residual_sd)
        if self.power is not None:
            data.update(exponent=self.exponent, exponent_r2=self.power.r2, flat=self.flat)
        if self.loglog is not None:
            data.update(loglog_exponent=self.loglog.slope, loglog_r2=self.loglog.r2)
        if self.problem is None:
            data["predictions"] = [self.predict(s).to_dict()
                                   for s in prediction_sizes(self.sizes)]
        return data


def prediction_sizes(measured: list[int]) -> list[int]:
    """Round sizes (1-2-5 steps) from the smallest measured size up to 10x the largest, and
    10x the largest itself; none that was measured."""
    low, high = min(measured), 10 * max(measured)
    grid = sorted({m * 10**e for e in range(13) for m in (1, 2, 5)} | {high})
    return [s for s in grid if low <= s <= high and s not in measured]


def _values(case: Case, metric: str) -> tuple[list[float], str | None]:
    """The completed runs' values of a fittable metric, or why there are none."""
    if case.error is not None:
        return [], f"size {case.size} not measured"
    kind, getter = _SOURCES[metric]
    runs = [r for r in case.runs if r.kind == kind]
    failed = [r for r in runs if not r.completed]
    if failed:
        return [], f"size {case.size}: {len(failed)} of {len(runs)} {kind} run(s) did not complete"
    values = [float(v) for v in (getter(r) for r in runs) if v is not None]
    if not values:
        return [], f"size {case.size}: no {metric} measured"
    return values, None


def fits(cases: list[Case], metric: str, pick: Pick = median,
         stat: str = "median") -> list[ScalingFit]:
    """One fit per combination of the non-size parameters of a scenario's cases."""
    groups: dict[str, ScalingFit] = {}
    for case in cases:
        if case.size is None or case.size_parameter is None:
            continue
        params = {k: v for k, v in case.params.items() if k != case.size_parameter}
        key = repr(sorted(params.items()))
        group = groups.setdefault(key, ScalingFit(metric, stat, case.size_parameter, params))
        values, problem = _values(case, metric)
        if problem is not None:
            group.excluded.append(problem)
            continue
        group.sizes.append(case.size)
        group.values.append(pick(values))
        group.approximate = group.approximate or case.approximate
    for group in groups.values():
        _fit(group)
    return list(groups.values())


def _fit(group: ScalingFit) -> None:
    order = sorted(range(len(group.sizes)), key=lambda i: group.sizes[i])
    group.sizes = [group.sizes[i] for i in order]
    group.values = [group.values[i] for i in order]
    xs, ys = [float(s) for s in group.sizes], group.values
    if len(set(xs)) < 2:
        return
    group.line = fit_line(xs, ys)
    if all(x > 0 for x in xs):
        group.power = fit_power(xs, ys)
        if all(y > 0 for y in ys):
            group.loglog = fit_loglog(xs, ys)
    growth = abs(group.line.slope) * (xs[-1] - xs[0])
    group.flat = growth < max(FLAT_BYTES, FLAT_FRACTION * math.fsum(ys) / len(ys))


def judge(rule: Rule, cases: list[Case]) -> list[Verdict]:
    """Verdicts of one fit rule on one scenario: one per combination of its other axes."""
    metric = rule.metric
    if metric.source is not Source.FIT:
        raise ValueError(f"{rule.text!r} is not a fit rule")
    scoped = [c for c in cases if rule.applies_to(c.params)]
    if not any(c.size is not None for c in scoped):
        return [verdict(rule, None, reason="the scenario has no size parameter to fit across")]
    verdicts = []
    groups = fits(scoped, metric.of or "peak", rule.pick, rule.resolved_stat)
    for group in groups:
        scope = f" [{group.label}]" if len(groups) > 1 and group.label else ""
        if group.problem is not None:
            verdicts.append(verdict(rule, None, reason=group.problem + scope))
            continue
        assert group.line is not None
        value = {"per_page": group.line.slope, "fixed_overhead": group.line.intercept,
                 "scaling_exponent": group.exponent}[metric.name]
        verdicts.append(verdict(rule, value, approximate=group.approximate,
                                reason=_quality(group) + scope))
    return verdicts


def _quality(group: ScalingFit) -> str:
    assert group.line is not None
    text = f"fit of {len(group.sizes)} sizes, R² {group.line.r2:.3f}"
    if group.flat:
        text += f"; {group.metric} barely changes with size (< {format_bytes(FLAT_BYTES)})"
    return text


def analysis(cases: list[Case]) -> dict[str, dict[str, object]]:
    """Median-based fits of every fittable metric, for reports and predictions: by the other
    axes' values ("all" when the size is the only axis), then by metric."""
    groups: dict[str, dict[str, object]] = {}
    for metric in FITTABLE:
        for fit in fits(cases, metric):
            if fit.sizes or fit.excluded:
                groups.setdefault(fit.label or "all", {})[metric] = fit.to_dict()
    return groups


def stored_fits(analysis: Mapping[str, object]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(group, metric, fit) for each fit ``analysis`` above wrote into a scenario's results
    (``ScenarioResult.analysis``); the fit is ``ScalingFit.to_dict``'s mapping."""
    groups = analysis.get("scaling")
    if not isinstance(groups, Mapping):
        return
    for group, fits in groups.items():
        if isinstance(fits, Mapping):
            for metric, fit in fits.items():
                if isinstance(fit, Mapping):
                    yield str(group), str(metric), fit


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
