"""The terminal table: scenario x size x SLA with the measured value next to the bound."""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from runner.metrics import METRIC_TITLES, TRACKER_METRICS
from runner.reports import findings
from runner.reports.common import (
    format_bound,
    format_metric,
    named_columns,
    tally,
    traced_sizes,
    untraced,
    verdict_text,
    with_noise,
)
from runner.results import Case, Results, Verdict
from runner.units import format_bytes


def verdict_cells(verdict: Verdict) -> tuple[str, str, str]:
    value = format_metric(verdict.metric, verdict.value)
    bound = format_bound(verdict)
    text = verdict_text(verdict)
    word, _, rest = text.partition(":")
    colour = {"pass": "green", "FAIL": "bold red", "not judged": "yellow", "skipped": "dim"}
    status = f"[{colour[word]}]{escape(word)}{':' if rest else ''}[/]{escape(rest)}"
    if verdict.approximate:
        status += " [yellow](approx.)[/]"
    return value, bound, status


def console_for(out: TextIO) -> Console:
    """A rich console on ``out``: wide enough in CI logs (not a terminal) that tables do not
    wrap."""
    console = Console(file=out)
    return console if console.is_terminal else Console(file=out, width=160)


class TerminalTable:
    """What ``runner check`` prints: the measured figures, the findings, every verdict, the
    cases not measured, the runs' notes and the status."""

    def render(self, results: Results, out: TextIO, *, baseline: Results | None = None) -> None:
        _render(results, console_for(out))


def _render(results: Results, console: Console) -> None:
    measured = Table(title="Measured (median of timed runs ± their run-to-run noise; heap from "
                           "the traced run)", title_justify="left")
    extra = [m for m in TRACKER_METRICS if any(m in case.metrics for case in results.cases)]
    extra += named_columns(results)
    for column in ("case", "backend", "limit", "cgroup peak", "rss peak", "python peak",
                   "duration", "oom", "runs", *(METRIC_TITLES.get(m, m) for m in extra)):
        measured.add_column(column, justify="left" if column in ("case", "backend") else "right")
    for case in results.cases:
        measured.add_row(*_measured_row(case),
                         *(format_metric(m, case.pick(m)) for m in extra))
    console.print(measured)
    findings.render(results, console)
    table = Table(title="SLAs", title_justify="left")
    for column in ("case", "rule", "stat", "value", "bound", "verdict"):
        table.add_column(column, justify="right" if column in ("value", "bound") else "left")
    for case in results.cases:
        for verdict in case.verdicts:
            rule = escape(verdict.rule) + (" (implicit)" if verdict.implicit else "")
            table.add_row(escape(case.label), rule, verdict.stat, *verdict_cells(verdict))
    for scenario in results.scenarios:
        for verdict in scenario.verdicts:
            table.add_row(escape(scenario.scenario), escape(verdict.rule), verdict.stat,
                          *verdict_cells(verdict))
    console.print(table)
    for line in traced_sizes(results):
        console.print(escape(line))
    for case in results.cases:
        if case.error:
            console.print(f"[bold red]{escape(case.label)}: not measured:[/] {escape(case.error)}")
        for run in case.runs:
            for note in dict.fromkeys(run.notes):
                console.print(f"[yellow]{escape(case.label)}: {escape(note)}[/]")
    console.print(_summary(results))


def _measured_row(case: Case) -> list[str]:
    oom = case.metrics.get("oom_kills")
    return [escape(case.label), case.backend + (" (approx.)" if case.approximate else ""),
            format_bytes(case.limit) if case.limit else "none",
            *(with_noise(m, case.metrics.get(m)) if m != "python_peak" or not untraced(case)
              else "not traced" for m in ("peak", "rss_peak", "python_peak", "duration")),
            "-" if oom is None else f"{oom.max:.0f}", str(len(case.runs))]


def _summary(results: Results) -> str:
    colour = {"pass": "green", "fail": "red", "error": "red", "interrupted": "yellow",
              "running": "yellow", "measured": "yellow"}
    line = f"[bold {colour[results.status]}]{results.status.upper()}[/] - {tally(results)}"
    line += " (interrupted: results so far)" if results.interrupted else ""
    if results.status == "running":
        line += " (the check never ended: its runner was killed, or is still running)"
    return "\n".join([line, *(f"  {escape(problem)}" for problem in results.problems)])
