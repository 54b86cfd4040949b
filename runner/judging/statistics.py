"""Per-case metrics across repeats, each from the runs it may come from.

Durations and kernel counters come only from untraced ("timed") runs; Python heap figures only
from the traced run, whose tracemalloc overhead would distort every other number.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from runner.results import Case, Run, Stats

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
}


def _collect(runs: list[Run], getter: RunValue) -> list[float]:
    return [float(v) for v in (getter(r) for r in runs) if v is not None]


def case_metrics(case: Case) -> dict[str, Stats]:
    timed = [r for r in case.runs if r.kind == "timed"]
    traced = [r for r in case.runs if r.kind == "traced"]
    metrics: dict[str, Stats] = {}
    # The leak run is a build too: it must complete, but its memory and time are not a build's.
    leak = [r for r in case.runs if r.kind == "leak"]
    for name, getter in TIMED_VALUES.items():
        values = _collect(timed + leak if name in ("exit_code", "oom_kills") else timed, getter)
        if values:
            metrics[name] = Stats.of(values)
    for name, getter in TRACED_VALUES.items():
        values = _collect(traced, getter)
        if values:
            metrics[name] = Stats.of(values)
    if case.size:
        metrics["pages"] = Stats.of([float(case.size)])
        for name, base in (("peak_per_page", "peak"), ("rss_per_page", "rss_peak")):
            if base in metrics:
                metrics[name] = Stats.of([v / case.size for v in metrics[base].values])
    metrics.update(_phase_metrics(timed, traced))
    return metrics


def _phase_metrics(timed: list[Run], traced: list[Run]) -> dict[str, Stats]:
    series: dict[str, list[float]] = defaultdict(list)
    for run in timed:
        durations: dict[str, float] = defaultdict(float)
        peaks: dict[str, int] = {}
        for phase in run.phases:
            if phase.duration is not None:
                durations[phase.name] += phase.duration
            if phase.cgroup_peak is not None:
                peaks[phase.name] = max(peaks.get(phase.name, 0), phase.cgroup_peak)
        for name, value in durations.items():
            series[f"phase({name}).duration"].append(value)
        for name, peak in peaks.items():
            series[f"phase({name}).peak"].append(float(peak))
    for run in traced:
        heap: dict[str, int] = {}
        for phase in run.phases:
            if phase.python_peak is not None:
                heap[phase.name] = max(heap.get(phase.name, 0), phase.python_peak)
        for name, peak in heap.items():
            series[f"phase({name}).python_peak"].append(float(peak))
    return {key: Stats.of(values) for key, values in series.items()}
