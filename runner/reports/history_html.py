"""The history page (``runner history html``): one self-contained HTML file with one chart per
(case, metric) series over commits (every repeat a dot, each commit's median a line), the
environment breaks marked and said, the change points marked (a vertical line with their size
and p-value) and listed with links to their commits, accepted ones shown as accepted.

It renders what it is given (``runner.history.detection.SeriesFindings``: the series and the
shifts ``segment_shifts`` found on them); it opens no store. Charts are inline SVG drawn by
matplotlib (``memsla[html]``), as in the results page; the page makes no request of its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING, TextIO

from runner.metrics import METRIC_TITLES
from runner.reports.common import ReportError, format_metric, metric_kind
from runner.reports.html import CSS, anchor, missing_dependency
from runner.units import Kind, format_percent

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from runner.history.detection import SeriesFindings, Shift

ALERT, ACCEPTED, BREAK = "#b91c1c", "#15803d", "#6b7280"
EXTRA_CSS = """
tr.accepted td { color: var(--muted); } tr.alert td.size { color: var(--fail); font-weight: 600; }
p.break { color: var(--warn); margin: 2px 0; }
"""


def commit_link(sha: str, template: str | None) -> str:
    """The commit's short id, linked where a template (``.../commit/{sha}``) is given."""
    short = escape(sha[:10])
    if not template or len(sha) < 7:
        return f"<code>{short}</code>"
    target = escape(template.replace("{sha}", sha), quote=True)
    return f'<a href="{target}"><code>{short}</code></a>'


def change_words(metric: str, change: Shift) -> str:
    """``'+15.0% (200 MiB -> 230 MiB), p=2e-09'``."""
    size = format_percent(change.relative, signed=True)
    return (f"{size} ({format_metric(metric, change.before)} -> "
            f"{format_metric(metric, change.after)}), p={change.p_value:.2g}")


class HistoryPage:
    """The page for a list of series segments, in the order given (segments of one (scenario,
    case, metric) share one chart, in commit order)."""

    def render(self, findings: Sequence[SeriesFindings], out: TextIO, *,
               commit_url: str | None = None, source: str = "") -> None:
        problem = missing_dependency()
        if problem:
            raise ReportError(problem)
        out.write(page(findings, commit_url=commit_url, source=source))


def _grouped(findings: Sequence[SeriesFindings]) -> list[list[SeriesFindings]]:
    """The segments of each (scenario, case, metric), cases in first-seen order, each case's
    metrics in the registry's order (the key figures first)."""
    groups: dict[tuple[str, str, str], list[SeriesFindings]] = {}
    for found in findings:
        groups.setdefault(found.series.key, []).append(found)
    cases = list(dict.fromkeys((scenario, case) for scenario, case, _ in groups))
    order = list(METRIC_TITLES)

    def rank(key: tuple[str, str, str]) -> tuple[int, int, str]:
        metric = key[2]
        return (cases.index(key[:2]), order.index(metric) if metric in order else len(order),
                metric)

    return [groups[key] for key in sorted(groups, key=rank)]


def page(findings: Sequence[SeriesFindings], *, commit_url: str | None = None,
         source: str = "") -> str:
    groups = _grouped(findings)
    points = sum(len(f.series.points) for f in findings)
    alerts = sum(1 for f in findings for c in f.changes if not c.accepted)
    summary = (f"{len(groups)} series, {points} recorded points"
               + (f" from {source}" if source else "")
               + f"; {alerts} change point{'' if alerts == 1 else 's'} not accepted.")
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             "<title>memsla history</title>", f"<style>{CSS}{EXTRA_CSS}</style>", "</head>",
             "<body>", f'<header><h1>memsla history</h1><p class="summary">{escape(summary)}'
             "</p></header>", _change_table(groups, commit_url)]
    for number, group in enumerate(groups, start=1):
        parts.append(_series_section(group, commit_url, f"h{number}"))
    parts += ['<footer class="muted"><p>Each dot is one repeat of a check, the line the median '
              "of each commit's repeats. A series breaks where the environment it was measured "
              "in changed (dashed grey line): its values are never compared across it. Change "
              "points (solid lines) are the first commit of a new level, found by "
              "<code>runner history detect</code>'s detector (docs/detection.md).</p></footer>",
              "</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _title(found: SeriesFindings) -> str:
    metric = found.series.metric
    return f"{found.series.case} {METRIC_TITLES.get(metric, metric)}"


def _change_table(groups: list[list[SeriesFindings]], commit_url: str | None) -> str:
    rows = []
    for group in groups:
        for found in group:
            for change in found.changes:
                state = "accepted" if change.accepted else "alert"
                target = f"#series-{anchor(_title(found))}"
                rows.append(
                    f'<tr class="{state}"><td><a href="{target}">{escape(found.series.case)}'
                    f"</a></td><td>{escape(METRIC_TITLES.get(found.series.metric, ''))}</td>"
                    f"<td>{commit_link(change.commit, commit_url)}</td>"
                    f"<td>{escape(change.subject[:80])}</td>"
                    f'<td class="num size">{escape(change_words(found.series.metric, change))}'
                    f"</td><td>{state}</td></tr>")
    if not rows:
        return ('<section id="changes"><h2>Change points</h2><p>None: no series shifted its '
                "level.</p></section>")
    return ('<section id="changes"><h2>Change points</h2><table><thead><tr><th>case</th>'
            "<th>metric</th><th>first commit</th><th>subject</th><th class=num>size</th>"
            f"<th>state</th></tr></thead><tbody>{''.join(rows)}</tbody></table></section>")


def _series_section(group: list[SeriesFindings], commit_url: str | None, prefix: str) -> str:
    title = _title(group[0])
    parts = [f'<section id="series-{anchor(title)}"><h3>{escape(title)}</h3>']
    for found in group[1:]:
        first = found.series.points[0]
        sha = first.commit.sha if first.commit else first.check_id
        parts.append(f'<p class="break">The environment changed at {commit_link(sha, commit_url)}'
                     f": {escape('; '.join(found.series.broke))}. The series breaks there."
                     "</p>")
    svg = series_chart(group, prefix)
    changes = [c for found in group for c in found.changes]
    caption = (f"{sum(len(f.series.points) for f in group)} checks, "
               f"{len(changes)} change point{'' if len(changes) == 1 else 's'}.")
    parts.append(f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure></section>")
    return "".join(parts)


def _scale(kind: Kind) -> tuple[float, str]:
    if kind is Kind.BYTES:
        return 1024.0**2, "MiB"
    if kind is Kind.SECONDS:
        return 1.0, "s"
    return 1.0, ""


def series_chart(group: Sequence[SeriesFindings], prefix: str) -> str:
    """The segments of one series as one inline SVG chart."""
    import matplotlib

    from runner.reports import plots

    with matplotlib.rc_context(plots._STYLE):
        figure, axes = plots._figure(9.0, 3.2)
        _draw(axes, group)
        return plots.to_svg(figure, prefix)


def _draw(axes: Axes, group: Sequence[SeriesFindings]) -> None:
    metric = group[0].series.metric
    divisor, unit = _scale(metric_kind(metric))
    labels: list[str] = []
    start = 0
    top = -math.inf
    for number, found in enumerate(group):
        points = found.series.points
        xs = range(start, start + len(points))
        dots = [(x, v / divisor) for x, p in zip(xs, points, strict=True) for v in p.values]
        axes.scatter([d[0] for d in dots], [d[1] for d in dots], s=10, color="#93c5fd",
                     zorder=2, label="repeats" if number == 0 else None)
        axes.plot(list(xs), [p.median / divisor for p in points], color="#1f77b4",
                  linewidth=1.4, marker="o", markersize=3, zorder=3,
                  label="median" if number == 0 else None)
        top = max(top, *(d[1] for d in dots))
        if number:
            axes.axvline(start - 0.5, color=BREAK, linestyle="--", linewidth=1.2, zorder=1,
                         label="environment changed" if number == 1 else None)
        labels += [p.commit.short[:7] if p.commit else p.check_id[:7] for p in points]
        # a shift's index counts commits; the chart has a dot column per check
        column: dict[str, int] = {}
        for position, point in enumerate(points):
            column.setdefault(point.commit.sha if point.commit else point.check_id, position)
        for change in found.changes:
            x = start + column.get(change.commit, change.index) - 0.5
            colour = ACCEPTED if change.accepted else ALERT
            axes.axvline(x, color=colour, linewidth=1.4, zorder=1)
            size = format_percent(change.relative, signed=True)
            text = (f"{size}, p={change.p_value:.1g}"
                    + (" (accepted)" if change.accepted else ""))
            axes.annotate(text, (x, 1.0), xycoords=("data", "axes fraction"),
                          xytext=(3, -2), textcoords="offset points", va="top", ha="left",
                          fontsize=8, color=colour, fontweight="bold")
        start += len(points)
    step = max(1, math.ceil(len(labels) / 30))
    axes.set_xticks(range(0, len(labels), step), labels[::step], rotation=60, ha="right",
                    fontsize=7, family="monospace")
    axes.set_xlim(-0.7, max(len(labels) - 0.3, 0.7))
    if math.isfinite(top):
        low, high = axes.get_ylim()
        axes.set_ylim(low, high + (high - low) * 0.12)  # room for the change labels
    axes.set_ylabel(unit or METRIC_TITLES.get(metric, metric))
    axes.legend(loc="lower right", fontsize=7)
