"""The HTML report's charts, drawn with matplotlib and returned as inline SVG text.

Imported only when an HTML report is asked for: matplotlib is an optional dependency. Figures
get an Agg canvas of their own, without pyplot, so the process's global backend is untouched.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from runner.metrics import FITTABLE, METRIC_TITLES
from runner.results import Case, Run, ScalingFit, Verdict
from runner.units import format_bytes

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

MIB = 1024.0**2
MAX_POINTS = 1500  # per line; longer timelines keep each bucket's min and max
COLOURS = {"peak": "#1f77b4", "cgroup": "#1f77b4", "rss_peak": "#ff7f0e", "anon": "#ff7f0e",
           "python_peak": "#2ca02c", "limit": "#d62728", "oom": "#d62728", "other": "#9aa5b1"}
PHASE_COLOURS = ("#fde7c8", "#dbeafe", "#e9d5ff", "#d1fae5", "#fee2e2", "#e0e7ff")
METRIC_LABELS = {metric: METRIC_TITLES[metric] for metric in FITTABLE}
_STYLE: dict[RcKeyType, Any] = {"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False,
          "axes.spines.right": False, "axes.grid": True, "grid.color": "#e5e7eb",
          "grid.linewidth": 0.6, "legend.frameon": False, "legend.fontsize": 8}


def to_svg(figure: Figure, prefix: str) -> str:
    """The figure as an inline ``<svg>`` element whose ids cannot clash with other figures."""
    buffer = io.StringIO()
    with matplotlib.rc_context({**_STYLE, "svg.hashsalt": prefix}):
        figure.savefig(buffer, format="svg", bbox_inches="tight",
                       metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    # Inline SVG in HTML needs no namespace declarations (and so names no external address).
    text = re.sub(r'\s+xmlns(?::\w+)?="[^"]*"', "", text, count=0)
    ids = set(re.findall(r'\sid="([^"]+)"', text))
    text = re.sub(r'(\sid=")([^"]+)"', lambda m: f'{m.group(1)}{prefix}-{m.group(2)}"', text)
    text = re.sub(r'(href="#|url\(#)([^")]+)',
                  lambda m: m.group(1) + (f"{prefix}-{m.group(2)}" if m.group(2) in ids
                                          else m.group(2)), text)
    return text.replace("<svg", f'<svg role="img" class="chart" id="{prefix}"', 1)


def _figure(width: float, height: float) -> tuple[Figure, Axes]:
    """A figure with an Agg canvas of its own; call inside ``rc_context(_STYLE)``."""
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _legend_below(axes: Axes) -> None:
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=3, fontsize=8)


def _thin(t: Sequence[float], values: Sequence[float]) -> tuple[list[float], list[float]]:
    """At most about MAX_POINTS points, keeping each bucket's extremes so peaks stay visible."""
    if len(t) <= MAX_POINTS:
        return list(t), list(values)
    size = math.ceil(len(t) / (MAX_POINTS / 2))
    out_t: list[float] = []
    out_v: list[float] = []
    for start in range(0, len(t), size):
        bucket = range(start, min(start + size, len(t)))
        finite = [i for i in bucket if not math.isnan(values[i])]
        if not finite:
            out_t.append(t[start])
            out_v.append(math.nan)
            continue
        low = min(finite, key=lambda i: values[i])
        high = max(finite, key=lambda i: values[i])
        for i in sorted({low, high}):
            out_t.append(t[i])
            out_v.append(values[i])
    return out_t, out_v


def oom_moment(run: Run) -> float | None:
    """When the OOM kill happened, estimated: the kernel gives a count, not a time, so this is
    the sample before the largest drop at or after the highest sample."""
    timeline = run.timeline
    if run.oom_kills == 0 or timeline is None or not timeline.t:
        return None
    usage = timeline.cgroup
    top = max(range(len(usage)), key=lambda i: usage[i])
    drops = [(usage[i] - usage[i + 1], i) for i in range(top, len(usage) - 1)]
    if not drops or max(drops)[0] <= 0:
        return timeline.t[top]
    return timeline.t[max(drops)[1]]


def _mib(values: Sequence[float | int | None]) -> list[float]:
    return [math.nan if v is None else v / MIB for v in values]


def timeline_chart(case: Case, run: Run, others: Sequence[Run], prefix: str) -> str:
    """Memory over time of ``run`` (the other runs in grey), its limit, phases and OOM kill."""
    with matplotlib.rc_context(_STYLE):
        return to_svg(_timeline(case, run, others), prefix)


def _timeline(case: Case, run: Run, others: Sequence[Run]) -> Figure:
    timeline = run.timeline
    assert timeline is not None
    figure, axes = _figure(7.6, 3.4)
    highest = max(timeline.cgroup, default=0) / MIB
    for other in others:
        if other.timeline is not None and other.timeline.t:
            xs, ys = _thin(other.timeline.t, _mib(other.timeline.cgroup))
            axes.plot(xs, ys, color=COLOURS["other"], linewidth=0.8, alpha=0.8,
                      label=f"cgroup, {other.kind} run {other.index}")
            highest = max(highest, max(other.timeline.cgroup, default=0) / MIB)
    xs, ys = _thin(timeline.t, _mib(timeline.cgroup))
    axes.plot(xs, ys, color=COLOURS["cgroup"], linewidth=1.8,
              label=f"cgroup, {run.kind} run {run.index} (anonymous + page cache)")
    if any(v is not None for v in timeline.anon):
        xs, ys = _thin(timeline.t[: len(timeline.anon)], _mib(timeline.anon))
        axes.plot(xs, ys, color=COLOURS["anon"], linewidth=1.2, label="anonymous")
    end = max(timeline.t[-1] if timeline.t else 0.0, run.duration)
    ceiling = highest * 1.18 or 1.0
    limit = run.limit or case.limit
    if limit:
        if limit / MIB <= highest * 3:
            axes.axhline(limit / MIB, color=COLOURS["limit"], linestyle="--", linewidth=1.3,
                         label=f"limit {format_bytes(limit)}")
            ceiling = max(ceiling, limit / MIB * 1.1)
        else:  # drawn to scale it would flatten the build's own curve
            axes.plot([], [], color=COLOURS["limit"], linestyle="--",
                      label=f"limit {format_bytes(limit)} (far above)")
    _phase_bands(axes, run, end, ceiling)
    moment = oom_moment(run)
    if moment is not None:
        axes.axvline(moment, color=COLOURS["oom"], linewidth=1.6,
                     label=f"OOM kill ({run.oom_kills}), estimated time")
        axes.plot([moment], [ceiling * 0.9], marker="X", markersize=9, color=COLOURS["oom"])
    axes.set_xlim(0, end * 1.01 or 1.0)
    axes.set_ylim(0, ceiling)
    axes.set_xlabel("seconds since the build started")
    axes.set_ylabel("MiB")
    _legend_below(axes)
    return figure


def _phase_bands(axes: Axes, run: Run, end: float, ceiling: float) -> None:
    for number, phase in enumerate(p for p in run.phases if p.depth == 0):
        stop = phase.end if phase.end is not None else end
        colour = PHASE_COLOURS[number % len(PHASE_COLOURS)]
        axes.axvspan(phase.start, stop, color=colour, alpha=0.75, linewidth=0, zorder=0,
                     hatch=None if phase.end is not None else "//")
        axes.text((phase.start + stop) / 2, ceiling * 0.985, phase.name, ha="center", va="top",
                  fontsize=8, color="#374151", clip_on=True)
    for phase in (p for p in run.phases if p.depth > 0):
        stop = phase.end if phase.end is not None else end
        axes.axvspan(phase.start, stop, ymax=0.04, color="#6b7280", alpha=0.5, linewidth=0)


def scaling_chart(cases: Sequence[Case], fits: Sequence[ScalingFit], verdicts: Sequence[Verdict],
                  prefix: str) -> str:
    """Memory against size: each run's value, the fitted lines (dashed past the largest size
    measured, with the analysis's prediction interval shaded) and the SLA bounds."""
    with matplotlib.rc_context(_STYLE):
        return to_svg(_scaling(cases, fits, verdicts), prefix)


def _scaling(cases: Sequence[Case], fits: Sequence[ScalingFit],
             verdicts: Sequence[Verdict]) -> Figure:
    figure, axes = _figure(7.6, 3.6)
    largest = float(max(c.size for c in cases if c.size is not None))
    highest = 0.0
    for metric in FITTABLE:
        xs: list[float] = []
        ys: list[float] = []
        for case in cases:
            stats = case.metrics.get(metric)
            if stats is not None and case.size is not None:
                xs += [float(case.size)] * len(stats.values)
                ys += _mib(stats.values)
        if xs:
            highest = max(highest, *ys)
            axes.scatter(xs, ys, s=20, color=COLOURS[metric], label=METRIC_LABELS[metric],
                         zorder=3)
    fits = [fit for fit in fits if fit.metric in FITTABLE]  # memory only: no disk(NAME)
    beyond = [p.size for f in fits for p in f.predictions if p.size > largest]
    # Far enough to show where the trend goes, near enough to keep the measured sizes readable.
    reach = min(max(beyond, default=largest * 2), largest * 4)
    for fit in fits:
        line = fit.line
        assert line is not None
        colour = COLOURS.get(fit.metric, "#111827")
        name = METRIC_LABELS.get(fit.metric, fit.metric) + (f" [{fit.label}]" if fit.label else "")
        axes.plot([0, largest], [line.at(0) / MIB, line.at(largest) / MIB], color=colour,
                  linewidth=1.2, label=f"fit {name}: {format_bytes(line.fixed)} + "
                                       f"{format_bytes(line.marginal)} per unit")
        axes.plot([largest, reach], [line.at(largest) / MIB, line.at(reach) / MIB],
                  color=colour, linewidth=1.2, linestyle="--")
        band = [p for p in fit.predictions if largest < p.size <= reach
                and p.low is not None and p.high is not None]
        if band:
            axes.fill_between([largest, *(p.size for p in band)],
                              [line.at(largest) / MIB, *((p.low or 0.0) / MIB for p in band)],
                              [line.at(largest) / MIB, *((p.high or 0.0) / MIB for p in band)],
                              color=colour, alpha=0.12, linewidth=0)
            highest = max(highest, *((p.high or 0.0) / MIB for p in band))
        highest = max(highest, line.at(reach) / MIB)
    bounds = sorted({(v.metric, v.op, v.bound) for v in verdicts
                     if v.metric in METRIC_LABELS and v.op in ("<", "<=")})
    for metric, op, bound in bounds:
        axes.axhline(bound / MIB, color=COLOURS[metric], linestyle=":", linewidth=1.5,
                     label=f"SLA {metric} {op} {format_bytes(bound)}")
        highest = max(highest, bound / MIB)
    for limit in sorted({c.limit for c in cases if c.limit}):
        if limit / MIB <= highest * 3:
            axes.axhline(limit / MIB, color=COLOURS["limit"], linestyle="--", linewidth=1.3,
                         label=f"limit {format_bytes(limit)}")
            highest = max(highest, limit / MIB)
    axes.set_xlim(0, (reach if fits else largest) * 1.04)
    axes.set_ylim(0, highest * 1.1 or 1.0)
    axes.set_xlabel(cases[0].size_parameter or "size")
    axes.set_ylabel("MiB")
    _legend_below(axes)
    return figure
