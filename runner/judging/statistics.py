"""Per-case metrics across repeats, each from the runs it may come from.

Durations and kernel counters come only from untraced ("timed") runs; Python heap figures only
from the traced run, whose tracemalloc overhead would distort every other number.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from runner.results import Case, PhaseResult, Run, Stats

RunValue = Callable[[Run], float | None]

TIMED_VALUES: dict[str, RunValue] = {
    "peak": lambda r: r.cgroup_peak,
    "rss_peak": lambda r: r.rss_peak,
    "oom_kills": lambda r: r.oom_kills,
    "exit_code": lambda r: r.exit_code,
    "duration": lambda r: r.duration,
    "cpu_time": lambda r: r.cpu_time,
}
TRACED_VALUES: dict[str, RunValue] = {
    "python_peak": lambda r: r.python_peak,
    "python_final": lambda r: max((p.final for p in r.python if p.final is not None),
                                  default=None),
    "allocations": lambda r: sum(p.blocks for p in r.python if p.blocks is not None)
    if any(p.blocks is not None for p in r.python) else None,
    "allocated": lambda r: sum(p.allocated for p in r.python if p.allocated is not None)
    if any(p.allocated is not None for p in r.python) else None,
    "allocation_calls": lambda r: sum(p.allocation_calls for p in r.python
                                      if p.allocation_calls is not None)
    if any(p.allocation_calls is not None for p in r.python) else None,
}


# A metric's values with the run each came from (None: the case itself, e.g. its size).
Series = list[tuple[Run | None, float]]
# The metrics that say whether a build completed: judged on every run, failed ones included.
COMPLETION_METRICS = ("exit_code", "oom_kills")


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
        series["pages"] = [(None, float(case.size))]
        for name, base in (("peak_per_page", "peak"), ("rss_per_page", "rss_peak")):
            if base in series:
                series[name] = [(run, value / case.size) for run, value in series[base]]
    series.update(_phase_series(timed, traced))
    return series


def case_metrics(case: Case) -> dict[str, Stats]:
    return {name: Stats.of([value for _, value in values])
            for name, values in case_series(case).items()}


def _phase_series(timed: list[Run], traced: list[Run]) -> dict[str, Series]:
    series: dict[str, Series] = defaultdict(list)
    for run in timed:
        durations: dict[str, float] = defaultdict(float)
        for phase in run.phases:
            if phase.duration is not None:
                durations[phase.name] += phase.duration
        for name, value in durations.items():
            series[f"phase({name}).duration"].append((run, value))
        _largest_per_run(series, run, "peak", lambda p: p.cgroup_peak)
        _largest_per_run(series, run, "growth", lambda p: p.cgroup_growth)
    for run in traced:
        _largest_per_run(series, run, "python_peak", lambda p: p.python_peak)
        _largest_per_run(series, run, "python_growth", lambda p: p.python_growth)
    return dict(series)


def _largest_per_run(series: dict[str, Series], run: Run, metric: str,
                     figure: Callable[[PhaseResult], int | None]) -> None:
    """A phase entered several times in one run: the largest of its entries."""
    largest: dict[str, int] = {}
    for phase in run.phases:
        value = figure(phase)
        if value is not None:
            largest[phase.name] = max(largest.get(phase.name, 0), value)
    for name, value in largest.items():
        series[f"phase({name}).{metric}"].append((run, float(value)))
