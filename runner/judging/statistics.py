"""Per-case metrics across repeats, each from the runs it may come from, read as the metric
registry (``runner/metrics.py``) declares: judging picks values, it derives no run figure.

Durations and kernel counters come only from untraced ("timed") runs; Python heap figures only
from the traced run, whose tracemalloc overhead would distort every other number.

Each metric's run-to-run noise (``Stats.noise``) is born here, in ``repeat_noise``: the
detector's noise model (``runner.judging.changes.noise``) over the repeats. Reports show it
beside the figure ("242 MiB ±0.6%"); they never compute it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable

from runner.metrics import NAMED_METRICS, PHASE_METRICS, RUN_METRICS, MetricDef, Source
from runner.results import Case, Run, Stats

RunValue = Callable[[Run], float | None]

# Each run metric's getter, by the kind of run it is read from (the registry's ``field``).
TIMED_VALUES: dict[str, RunValue] = {m.name: m.read for m in RUN_METRICS.values()
                                     if m.scope == "run" and m.source is Source.TIMED}
TRACED_VALUES: dict[str, RunValue] = {m.name: m.read for m in RUN_METRICS.values()
                                      if m.scope == "run" and m.source is Source.TRACED}
RUN_VALUES: dict[str, RunValue] = {**TIMED_VALUES, **TRACED_VALUES}


# A metric's values with the run each came from (None: the case itself, e.g. its size).
Series = list[tuple[Run | None, float]]
# The metrics that say whether a build completed: judged on every run, failed ones included.
COMPLETION_METRICS = tuple(m.name for m in RUN_METRICS.values() if m.every_run)


def _collect(runs: list[Run], getter: RunValue) -> Series:
    return [(run, float(value)) for run in runs if (value := getter(run)) is not None]


def case_series(case: Case) -> dict[str, Series]:
    """Every case metric's values, each with the run it was measured in."""
    timed = [r for r in case.runs if r.kind == "timed"]
    traced = [r for r in case.runs if r.kind == "traced"]
    # The leak run is a build too: it must complete, but its memory and time are not a build's.
    leak = [r for r in case.runs if r.kind == "leak"]
    series: dict[str, Series] = {}
    for name, getter in TIMED_VALUES.items():
        values = _collect(timed + leak if name in COMPLETION_METRICS else timed, getter)
        if values:
            series[name] = values
    for name, getter in TRACED_VALUES.items():
        values = _collect(traced, getter)
        if values:
            series[name] = values
    if case.size:
        size = case.size
        for metric in (m for m in RUN_METRICS.values() if m.scope == "case"):
            if metric.field is not None:
                series[metric.name] = [(None, float(getattr(case, metric.field)))]
            elif metric.per_size in series:
                series[metric.name] = [(run, value / size)
                                       for run, value in series[metric.per_size]]
    series.update(_phase_series(timed, traced))
    series.update(_step_series(timed, traced))
    series.update(_named_series(timed, traced))
    return series


def case_metrics(case: Case) -> dict[str, Stats]:
    return {name: metric_stats([value for _, value in values])
            for name, values in case_series(case).items()}


def metric_stats(values: list[float]) -> Stats:
    """A metric's statistics across repeats, with their noise."""
    stats = Stats.of(values)
    stats.noise = repeat_noise(values)
    return stats


def repeat_noise(values: list[float]) -> float | None:
    """The run-to-run noise of a metric's repeats: the MAD scaled to a standard deviation,
    relative to their median (0.006: ±0.6%); None with fewer than two repeats."""
    if len(values) < 2:
        return None
    from runner.judging.changes import noise  # the change detector's: none for one repeat

    relative = noise(values).relative
    return relative if math.isfinite(relative) else None  # a spread around a median of 0


def _phase_series(timed: list[Run], traced: list[Run]) -> dict[str, Series]:
    series: dict[str, Series] = defaultdict(list)
    # summed figures (durations) first: the order results files have always listed them in
    metrics = sorted(PHASE_METRICS.values(), key=lambda m: m.per_run != "sum")
    for runs, source in ((timed, Source.TIMED), (traced, Source.TRACED)):
        for run in runs:
            for metric in metrics:
                if metric.source is source:
                    _per_run(series, run, metric)
    return dict(series)


def _step_series(timed: list[Run], traced: list[Run]) -> dict[str, Series]:
    """A step scenario's figures per step, ``step(NAME).M``: each read from the step's own run
    as the run metric M is read from a run (timed figures from the timed runs' steps, heap
    figures from the traced run's). A step not run gives no value."""
    series: dict[str, Series] = defaultdict(list)
    for runs, getters in ((timed, TIMED_VALUES), (traced, TRACED_VALUES)):
        for run in runs:
            for step in run.steps:
                if step.run is None:
                    continue
                for name, getter in getters.items():
                    value = getter(step.run)
                    if value is not None:
                        series[f"step({step.name}).{name}"].append((step.run, float(value)))
    return dict(series)


def not_run_steps(case: Case, step: str, kinds: tuple[str, ...]) -> list[str]:
    """How the runs of ``kinds`` that did not run step ``step`` failed, in words."""
    said = []
    for run in case.runs:
        if run.kind in kinds and any(s.name == step and s.run is None for s in run.steps):
            said.append(f"step {step!r} was not run: {run.failure or 'a step before it failed'}")
    return said


def _named_series(timed: list[Run], traced: list[Run]) -> dict[str, Series]:
    """``disk(NAME)``, ``disk_files(NAME)``, ``cache(NAME)``: each run's figure per name."""
    series: dict[str, Series] = defaultdict(list)
    for metric in NAMED_METRICS.values():
        assert metric.field is not None
        for run in timed if metric.source is Source.TIMED else traced:
            for name, value in getattr(run, metric.field).items():
                series[f"{metric.name}({name})"].append((run, float(value)))
    return dict(series)


def _per_run(series: dict[str, Series], run: Run, metric: MetricDef) -> None:
    """A phase entered several times in one run: the sum or the largest of its entries, as the
    metric says."""
    combined: dict[str, float] = {}
    for phase in run.phases:
        value = metric.read(phase)
        if value is not None:
            before = combined.get(phase.name, 0.0)
            combined[phase.name] = before + value if metric.per_run == "sum" else max(before,
                                                                                      value)
    for name, value in combined.items():
        series[f"phase({name}).{metric.name}"].append((run, value))
