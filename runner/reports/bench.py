"""Benchmark-tracker JSON: github-action-benchmark's customSmallerIsBetter and Bencher's BMF.

Both take the median across the timed runs (the one traced run for Python heap figures) of every
metric where smaller is better; exit codes, OOM kill counts and sizes are verdicts, not trends.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO

from runner.reports.common import metric_kind
from runner.results import Results, Stats
from runner.units import Kind

NOT_TRENDS = ("exit_code", "oom_kills", "pages")
# customSmallerIsBetter shows the number with a free-text unit: use readable ones.
DISPLAY_UNITS: dict[Kind, tuple[str, float]] = {
    Kind.BYTES: ("MiB", 1024.0**2), Kind.SECONDS: ("s", 1.0), Kind.COUNT: ("", 1.0),
    Kind.RATIO: ("", 1.0), Kind.NUMBER: ("", 1.0),
}


@dataclass(frozen=True)
class Point:
    benchmark: str  # the case label, or the scenario for fit metrics
    metric: str
    kind: Kind
    value: float
    stats: Stats | None = None  # across repeats; None for a scenario's fitted value
    note: str = ""


def points(results: Results) -> Iterator[Point]:
    for case in results.cases:
        note = f"backend {case.backend}" + (", approximate" if case.approximate else "")
        for metric, stats in case.metrics.items():
            if metric in NOT_TRENDS:
                continue
            yield Point(case.label, metric, metric_kind(metric), stats.median, stats, note)
    for scenario in results.scenarios:
        for verdict in scenario.verdicts:
            if verdict.value is not None:
                yield Point(scenario.scenario, verdict.metric, metric_kind(verdict.metric),
                            verdict.value, note="fitted across sizes")


def _round(value: float) -> float:
    return float(f"{value:.6g}")


class CustomSmallerIsBetter:
    """``[{"name", "unit", "value", "range", "extra"}]`` for
    benchmark-action/github-action-benchmark with ``tool: customSmallerIsBetter``."""

    def render(self, results: Results, out: TextIO, *, baseline: Results | None = None) -> None:
        entries: list[dict[str, object]] = []
        for point in points(results):
            unit, scale = DISPLAY_UNITS[point.kind]
            entry: dict[str, object] = {"name": f"{point.benchmark} {point.metric}",
                                        "unit": unit, "value": _round(point.value / scale)}
            if point.stats is not None and point.stats.n > 1:
                entry["range"] = f"± {_round(point.stats.stdev / scale)}"
            extra = [point.note] if point.note else []
            if point.stats is not None:
                extra.append(f"median of {point.stats.n}; min {_round(point.stats.min / scale)}"
                             f", max {_round(point.stats.max / scale)}")
            if extra:
                entry["extra"] = "\n".join(extra)
            entries.append(entry)
        json.dump(entries, out, indent=1, ensure_ascii=False)
        out.write("\n")


def measure_slug(metric: str) -> str:
    """``phase(render).python_peak`` -> ``phase-render-python-peak``: a Bencher measure slug."""
    return re.sub(r"[^a-z0-9]+", "-", metric.lower()).strip("-")[:64]


class BencherMetricFormat:
    """``{"<benchmark>": {"<measure>": {"value", "lower_value", "upper_value"}}}`` for
    ``bencher run --adapter json``; values in bytes and seconds."""

    def render(self, results: Results, out: TextIO, *, baseline: Results | None = None) -> None:
        document: dict[str, dict[str, dict[str, float]]] = {}
        for point in points(results):
            metric: dict[str, float] = {"value": point.value}
            if point.stats is not None and point.stats.n > 1:
                metric["lower_value"] = point.stats.min
                metric["upper_value"] = point.stats.max
            document.setdefault(point.benchmark, {})[measure_slug(point.metric)] = metric
        json.dump(document, out, indent=1)
        out.write("\n")
