"""Scaling: how a scenario's memory grows with its size parameter.

For peak, rss_peak and python_peak it fits memory = fixed + marginal x size by least squares
(with R^2) and the growth exponent k of memory = fixed + c x size^k, judges the fit rules
(``per_page``, ``fixed_overhead``, ``scaling_exponent``) per scenario and predicts memory at
sizes that were not measured. Only builds that completed count: a build killed at its limit
shows the limit, not what it needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from runner.judging.regression import (
    PowerFit,
    fit_line,
    fit_loglog,
    fit_power,
    repeats_interval,
)
from runner.judging.statistics import RUN_VALUES
from runner.judging.verdicts import skipped, verdict
from runner.metrics import FITTABLE, MIN_SIZES, NAMED_METRICS, RUN_METRICS, Source, pick
from runner.results import (
    Case,
    GrowthFit,
    LineFit,
    LogLogFit,
    Prediction,
    Run,
    ScalingFit,
    Selection,
    Verdict,
)
from runner.slafile.rules import Rule
from runner.units import format_bytes

# Below this growth across the measured sizes memory does not measurably depend on size.
FLAT_BYTES = 1 << 20
FLAT_FRACTION = 0.01
# |k - 1| within which the line is the model to extrapolate with, not the growth model.
LINEAR_TOLERANCE = 0.1

Pick = Callable[[list[float]], float]


def prediction_sizes(measured: list[int]) -> list[int]:
    """Round sizes (1-2-5 steps) from the smallest measured size up to 10x the largest, and
    10x the largest itself; none that was measured."""
    low, high = min(measured), 10 * max(measured)
    grid = sorted({m * 10**e for e in range(13) for m in (1, 2, 5)} | {high})
    return [s for s in grid if low <= s <= high and s not in measured]


def _getter(metric: str) -> tuple[str, Callable[[Run], float | None]]:
    """The kind of run a fittable metric is read from, and its getter: a registry run metric
    (``peak``) or a named disk figure (``disk(output)``)."""
    if metric in RUN_VALUES:
        return RUN_METRICS[metric].source.value, RUN_VALUES[metric]  # timed or traced runs
    kind, name = metric[:-1].split("(", 1)
    field = NAMED_METRICS[kind].field
    assert field is not None

    def named(run: Run) -> float | None:
        value = getattr(run, field).get(name)
        return None if value is None else float(value)

    return NAMED_METRICS[kind].source.value, named


def _values(case: Case, metric: str) -> tuple[list[float], str | None]:
    """The completed runs' values of a fittable metric, or why there are none."""
    if case.error is not None:
        return [], f"size {case.size} not measured"
    kind, getter = _getter(metric)
    runs = [r for r in case.runs if r.kind == kind]
    failed = [r for r in runs if not r.completed]
    if failed:
        return [], f"size {case.size}: {len(failed)} of {len(runs)} {kind} run(s) did not complete"
    values = [float(v) for v in (getter(r) for r in runs) if v is not None]
    if not values:
        return [], f"size {case.size}: no {metric} measured"
    return values, None


def fits(cases: list[Case], metric: str, stat: str = "median",
         choose: Pick | None = None) -> list[ScalingFit]:
    """One fit per combination of the non-size parameters of a scenario's cases; each size's
    value is ``stat`` of its repeats (``choose`` picks it where the statistic needs a rule)."""
    groups: dict[str, ScalingFit] = {}
    for case in cases:
        if case.size is None or case.size_parameter is None:
            continue
        params = {k: v for k, v in case.params.items() if k != case.size_parameter}
        key = repr(sorted(params.items()))
        group = groups.setdefault(key, ScalingFit(metric=metric, stat=stat,
                                                  size_parameter=case.size_parameter,
                                                  params=params))
        values, problem = _values(case, metric)
        if problem is not None:
            group.excluded.append(problem)
            continue
        group.sizes.append(case.size)
        group.repeats.append(values)
        group.values.append(choose(values) if choose else pick(values, stat))
        group.approximate = group.approximate or case.approximate
    for group in groups.values():
        _fit(group)
    return list(groups.values())


def _fit(group: ScalingFit) -> None:
    order = sorted(range(len(group.sizes)), key=lambda i: group.sizes[i])
    group.sizes = [group.sizes[i] for i in order]
    group.values = [group.values[i] for i in order]
    if len(group.repeats) == len(order):
        group.repeats = [group.repeats[i] for i in order]
    xs, ys = [float(s) for s in group.sizes], group.values
    if len(set(xs)) >= 2:
        line = fit_line(xs, ys)
        group.line = LineFit(fixed=line.intercept, marginal=line.slope, r2=line.r2,
                             residual_sd=line.residual_sd)
        if all(x > 0 for x in xs):
            power = fit_power(xs, ys)
            group.growth = GrowthFit(exponent=power.exponent, r2=power.r2, fixed=power.fixed,
                                     coefficient=power.coefficient)
            if all(y > 0 for y in ys):
                loglog = fit_loglog(xs, ys)
                group.loglog = LogLogFit(exponent=loglog.slope, r2=loglog.r2)
        growth = abs(line.slope) * (xs[-1] - xs[0])
        group.flat = growth < max(FLAT_BYTES, FLAT_FRACTION * math.fsum(ys) / len(ys))
    if len(group.sizes) >= MIN_SIZES and group.line is not None:
        group.predictions = [predict(group, s) for s in prediction_sizes(group.sizes)]
        return
    shown = ", ".join(map(str, group.sizes)) or "none"
    why = "; ".join(group.excluded)
    group.problem = (f"{group.metric} was measured at {len(group.sizes)} size(s) ({shown}); a "
                     f"fit needs at least {MIN_SIZES}" + (f" ({why})" if why else ""))


def predict(fit: ScalingFit, size: int) -> Prediction:
    """The fitted memory at ``size`` with a 95% prediction interval that holds the run-to-run
    noise and the model's error; the same for a fit just made and one read from a results file.

    The value is the line through each size's statistic. The interval is
    ``regression.repeats_interval`` (a line through every repeat, its t quantile, the repeats'
    relative noise at the predicted memory) around both the line's value and the growth model's:
    three sizes cannot tell a line from a mild curve, so where the two models part the interval
    spans both. A file without repeats (version 6 and older) has one value per size.
    """
    if fit.line is None:
        raise ValueError(fit.problem or "no fit")
    growth = fit.growth
    power = None
    if (growth is not None and not fit.flat and growth.fixed is not None
            and growth.coefficient is not None):
        power = PowerFit(growth.fixed, growth.coefficient, growth.exponent, growth.r2)(size)
    value = fit.line.at(size)
    repeats = fit.repeats if len(fit.repeats) == len(fit.sizes) else [[v] for v in fit.values]
    half = repeats_interval([(float(s), r) for s, r in zip(fit.sizes, repeats, strict=True)],
                            size, value)
    models = [value] if power is None else [value, power]
    factor = size / max(fit.sizes)
    return Prediction(size=size, value=value, low=_finite(min(models) - half),
                      high=_finite(max(models) + half), power_value=power, factor=factor,
                      beyond_twice=factor > 2)


def linear(fit: ScalingFit) -> bool:
    """The line is the model to extrapolate with: the growth exponent is unknown or within
    LINEAR_TOLERANCE of 1."""
    return fit.exponent is None or abs(fit.exponent - 1) <= LINEAR_TOLERANCE


def expected(fit: ScalingFit, size: int) -> float:
    """The memory the better model expects at ``size``: the growth model's where growth is not
    linear, else the line's."""
    prediction = predict(fit, size)
    if prediction.power_value is not None and not linear(fit):
        return prediction.power_value
    return prediction.value


def size_for(fit: ScalingFit, memory: float) -> float | None:
    """The size at which the line reaches ``memory`` (None when it does not grow)."""
    if fit.line is None or fit.line.marginal <= 0:
        return None
    return (memory - fit.line.fixed) / fit.line.marginal


def size_at(fit: ScalingFit, memory: float) -> float | None:
    """The size at which the better model (see ``expected``) reaches ``memory``."""
    growth = fit.growth
    if growth is None or growth.fixed is None or growth.coefficient is None or linear(fit):
        return size_for(fit, memory)
    if growth.coefficient <= 0 or memory <= growth.fixed:
        return None
    return float(((memory - growth.fixed) / growth.coefficient) ** (1 / growth.exponent))


def judge(rule: Rule, cases: list[Case], selection: Selection | None = None) -> list[Verdict]:
    """Verdicts of one fit rule on one scenario: one per combination of its other axes. Where
    the selection (--size) left fewer sizes than a fit needs, the rule is skipped, not failed
    to judge."""
    metric = rule.metric
    if metric.source is not Source.FIT:
        raise ValueError(f"{rule.text!r} is not a fit rule")
    scoped = [c for c in cases if rule.applies_to(c.params)]
    if not any(c.size is not None for c in scoped):
        return [verdict(rule, None, reason="the scenario has no size parameter to fit across")]
    verdicts = []
    groups = fits(scoped, metric.of or "peak", rule.resolved_stat, rule.pick)
    for group in groups:
        scope = f" [{group.label}]" if len(groups) > 1 and group.label else ""
        selected = len(group.sizes) + len(group.excluded)
        if selection is not None and selection.sizes and selected < MIN_SIZES:
            verdicts.append(skipped(rule, f"{selection.describe()} leaves {selected} size(s); "
                                          f"a fit needs {MIN_SIZES}{scope}"))
            continue
        if group.problem is not None or group.line is None:
            verdicts.append(verdict(rule, None, reason=(group.problem or "no fit") + scope))
            continue
        value = {"per_page": group.line.marginal, "fixed_overhead": group.line.fixed,
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


def analysis(cases: list[Case]) -> list[ScalingFit]:
    """Median-based fits of every fittable metric, for reports and predictions: by metric, then
    by the other axes' values; only groups that had a size measured or excluded. The disk
    figures a scenario names (``disk(output)``) are fitted too, after the memory metrics."""
    named = sorted({f"disk({name})" for case in cases for run in case.runs for name in run.disk})
    return [fit for metric in (*FITTABLE, *named) for fit in fits(cases, metric)
            if fit.sizes or fit.excluded]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
