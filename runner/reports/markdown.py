"""Markdown: the verdict table (with deltas against a baseline) for a pull-request comment.

The comment starts with MARKER, a hidden HTML comment, so a workflow can find and update the one
comment memsla left on a pull request instead of adding a new one per push. The GitHub job
summary (``github.py``) uses the same tables without the marker.
"""

from __future__ import annotations

import re
from typing import TextIO

from runner.judging.baseline import context_differences
from runner.metrics import (
    KEY_METRICS,
    METRIC_TITLES,
    RUN_METRICS,
    TRACKER_METRICS,
    Source,
)
from runner.reports.common import (
    STEP_COLUMNS,
    Baseline,
    VerdictRow,
    describe_value,
    format_bound,
    format_change,
    format_metric,
    format_noise,
    grown_sites,
    named_columns,
    relative_change,
    status_word,
    step_rows,
    summary_line,
    traced_sizes,
    untraced,
    verdict_rows,
    verdict_text,
    with_noise,
)
from runner.results import HistoryChange, HistoryOutlook, Results
from runner.units import format_bytes

MARKER = "<!-- memsla-report -->"
ICONS = {"pass": "✅", "FAIL": "❌", "not judged": "⚠️", "skipped": "⏭️"}
STATUS_ICONS = {"pass": "✅", "fail": "❌", "error": "⚠️", "interrupted": "⏸️", "running": "⏳",
                "measured": "📏"}
# A change against the baseline at least this large is called out with an arrow.
NOTABLE_CHANGE = 0.05

_SPECIAL = re.compile(r"([\\`*_\[\]<>|#!])")


def cell(text: str) -> str:
    """Text safe inside a GitHub-flavoured markdown table cell."""
    return _SPECIAL.sub(r"\\\1", text).replace("\n", " ")


def code(text: str) -> str:
    """Inline code inside a table cell: a pipe would still end the cell, so it is escaped."""
    return "`" + text.replace("`", "'").replace("|", "\\|").replace("\n", " ") + "`"


def _change_cell(new: float | None, old: float | None) -> str:
    text = format_change(new, old)
    change = relative_change(new, old)
    if change is not None and abs(change) >= NOTABLE_CHANGE:
        text = ("🔺 " if change > 0 else "🔻 ") + text
    return text


def _order(row: VerdictRow) -> int:
    return {"FAIL": 0, "not judged": 1, "pass": 2, "skipped": 3}[status_word(row.verdict)]


def verdict_table(results: Results, baseline: Results | None) -> list[str]:
    """Every written rule, and implicit ones that did not pass; broken ones first."""
    base = Baseline(baseline) if baseline else None
    rows = [r for r in verdict_rows(results) if not r.verdict.implicit or not r.verdict.passed]
    rows.sort(key=_order)  # stable: keeps the case order within each status
    header = ["", "case", "rule", "value", "bound"]
    if base:
        header += ["baseline", "change"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        verdict = row.verdict
        word = status_word(verdict)
        value = describe_value(row) if verdict.passed is not None else verdict_text(verdict)
        if verdict.passed is False and verdict.reason:
            value += f" - {verdict.reason}"
        if verdict.approximate:
            value += " (approx.)"
        cells = [ICONS[word] + (" **FAIL**" if word == "FAIL" else ""), cell(row.label),
                 code(verdict.rule), cell(value), cell(format_bound(verdict))]
        if base:
            old = base.value_for(row)
            cells += [cell(format_metric(verdict.metric, old)),
                      cell(_change_cell(verdict.value, old))]
        lines.append("| " + " | ".join(cells) + " |")
    hidden = sum(1 for r in verdict_rows(results) if r.verdict.implicit and r.verdict.passed)
    if hidden:
        lines += ["", f"<sub>{hidden} implicit checks passed (the build exits 0, no OOM "
                      "kill) and are not listed.</sub>"]
    return lines


def measured_table(results: Results, baseline: Results | None) -> list[str]:
    """The key metrics of each case (medians), with the baseline's and the change."""
    base = Baseline(baseline) if baseline else None
    header = ["case"]
    shown = [*KEY_METRICS, *(m for m in TRACKER_METRICS
                             if any(m in case.metrics for case in results.cases)),
             *named_columns(results)]
    for metric in shown:
        header += [METRIC_TITLES.get(metric, metric)] + (["change"] if base else [])
    lines = ["| " + " | ".join(header) + " |", "|---|" + "--:|" * (len(header) - 1)]
    for case in results.cases:
        cells = [cell(case.label + (" (approx.)" if case.approximate else ""))]
        for metric in shown:
            new, figure = case.pick(metric), with_noise(metric, case.metrics.get(metric))
            known = RUN_METRICS.get(metric)
            if new is None and untraced(case) and known and known.source is Source.TRACED:
                figure = "not traced"
            if base:
                old = base.median(case.label, metric)
                cells.append(cell(figure) if old is None else
                             cell(f"{figure} (was {format_metric(metric, old)})"))
                cells.append(cell(_change_cell(new, old)))
            else:
                cells.append(cell(figure))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def step_table(results: Results) -> list[str]:
    """Each step of the step scenarios: its own figures (medians), and the runs it missed."""
    rows = step_rows(results)
    if not rows:
        return []
    header = ["case", "step", *(METRIC_TITLES[m] for m in STEP_COLUMNS), "not run"]
    lines = ["<details><summary>Steps (each its own cgroup reading)</summary>", "",
             "| " + " | ".join(header) + " |", "|---|---|" + "--:|" * (len(header) - 2)]
    lines += ["| " + " | ".join([cell(row.case), cell(row.step), *map(cell, row.figures),
                                 f"{row.not_run} of {row.runs}" if row.not_run else "-"]) + " |"
              for row in rows]
    return [*lines, "", "</details>", ""]


def headline(results: Results) -> str:
    status, _, rest = summary_line(results).partition(": ")
    return f"{STATUS_ICONS[results.status]} memsla {status}: {rest}"


def footer(results: Results, baseline: Results | None) -> str:
    host = results.host
    text = (f"{cell(results.sla_file)} · backend {cell(host.backend)} · cgroup "
            f"v{host.cgroup_version or '-'} · {cell(host.os)} · {host.cpus} CPUs · memsla "
            f"{cell(results.memsla_version)} · {cell(results.created)}")
    if baseline is not None:
        text += f" · baseline from {cell(baseline.created)}"
    return f"<sub>{text}</sub>"


def body(results: Results, baseline: Results | None, *, level: int = 2) -> list[str]:
    lines = [f"{'#' * level} {headline(results)}", ""]
    if baseline is None:
        lines += ["No baseline: values without deltas.", ""]
    else:
        lines += [f"> **Not measured alike:** {cell(note)}" for note in
                  context_differences(baseline, results)]
        if lines and lines[-1].startswith("> "):
            lines.append("")
    lines += verdict_table(results, baseline)
    errors = [case for case in results.cases if case.error]
    if errors:
        lines += ["", "**Not measured:**", ""]
        lines += [f"- {cell(case.label)}: {cell(case.error or '')}" for case in errors]
    lines += ["", "<details><summary>Measured (median of timed runs ± their run-to-run noise; "
              "heap from the traced run)</summary>", "", *measured_table(results, baseline), "",
              *(f"{cell(line)}  " for line in traced_sizes(results)), "</details>", ""]
    lines += step_table(results)
    if results.history is not None:
        lines += [*history_section(results.history, level=level + 1), ""]
    grown = grown_sites(results) if baseline is not None else []
    if grown:
        lines += ["<details><summary>Allocation sites that grew at the heap's peak (traced run)"
                  "</summary>", "", "| case | site | function | base | head | grew |",
                  "|---|---|---|--:|--:|--:|"]
        lines += [f"| {cell(c.label)} | `{cell(short_path(c.file))}:{c.line}` | "
                  f"{cell(c.function or '')} | {format_bytes(c.base) if c.base else '-'} | "
                  f"{format_bytes(c.head)} | +{format_bytes(c.grown)} |" for c in grown]
        lines += ["", "</details>", ""]
    lines.append(footer(results, baseline))
    return lines


def history_section(outlook: HistoryOutlook, *, level: int = 3) -> list[str]:
    """"Memory over time": each case's key metrics against the base line's recent commits (in
    the same environment) with their noise, and the change points on that line."""
    line = f"`{outlook.branch}`" if outlook.branch else "the history"
    lines = [f"{'#' * level} Memory over time", "",
             f"This commit against the median of the last {outlook.window} commits of {line} "
             "since its newest change point, measured alike (the regression rule's base; "
             f"{outlook.checks} "
             f"check{'' if outlook.checks == 1 else 's'} in {code(outlook.store)}); ± is the "
             "run-to-run noise.", ""]
    if not outlook.figures:
        return [*lines, "No key metric was measured."]
    lines += ["| case | metric | this commit | base | change | change points |",
              "|---|---|--:|--:|--:|---|"]
    for figure in outlook.figures:
        head = _with_noise(figure.metric, figure.head, figure.head_noise)
        if figure.base is None:
            base = "no history" + (" in this environment" if figure.environment_changed else "")
            change = "-"
        else:
            since = f" since {figure.base_since[:10]}" if figure.base_since else ""
            base = (f"{_with_noise(figure.metric, figure.base, figure.base_noise)} "
                    f"({figure.base_commits} commit{'' if figure.base_commits == 1 else 's'}"
                    f"{since})")
            change = _change_cell(figure.head, figure.base)
        notes = [_change_words(figure.metric, c) for c in figure.changes]
        if figure.environment_changed:
            notes.append("environment changed: " + "; ".join(figure.environment_changed))
        lines.append("| " + " | ".join([cell(figure.case), cell(METRIC_TITLES[figure.metric]),
                                         cell(head), cell(base), cell(change),
                                         cell(" · ".join(notes)) or "none"]) + " |")
    return lines


def _with_noise(metric: str, value: float, noise: float | None) -> str:
    text = format_noise(noise)
    return format_metric(metric, value) + (f" {text}" if text else "")


def _change_words(metric: str, change: HistoryChange) -> str:
    """``abc1234567 +15.0% (200 MiB -> 230 MiB), p=2e-09``; ``(accepted)`` where it is."""
    words = (f"{change.commit[:10]} {change.relative * 100:+.1f}% "
             f"({format_metric(metric, change.before)} -> {format_metric(metric, change.after)}),"
             f" p={change.p_value:.2g}")
    return words + (" (accepted)" if change.accepted else "")


def short_path(path: str) -> str:
    for marker in ("/site-packages/", "/dist-packages/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path.rsplit("/", 1)[-1]


class PullRequestComment:
    def render(self, results: Results, out: TextIO, *, baseline: Results | None = None) -> None:
        out.write("\n".join([MARKER, *body(results, baseline)]) + "\n")
