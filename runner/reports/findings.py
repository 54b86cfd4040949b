"""Terminal tables of the scenario-level findings the judging stage stored: scaling fits, leak
trends, phases and steps."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from runner.metrics import METRIC_TITLES, MIN_SIZES, case_label
from runner.reports.common import STEP_COLUMNS, step_rows
from runner.results import LeakFinding, Results
from runner.units import format_bytes, format_seconds


def singular(size_parameter: str) -> str:
    """'pages' -> 'page': the unit a marginal cost is per."""
    return size_parameter[:-1] if size_parameter.endswith("s") and len(size_parameter) > 1 \
        else size_parameter


def render(results: Results, console: Console) -> None:
    scaling_table(results, console)
    leak_table(results, console)
    phase_table(results, console)
    step_table(results, console)


def scaling_table(results: Results, console: Console) -> None:
    table = Table(title="Scaling (median per size): memory = fixed + marginal x size",
                  title_justify="left")
    for column in ("scenario", "metric", "fixed", "marginal", "exponent", "R²", "sizes"):
        table.add_column(column, justify="left" if column in ("scenario", "metric") else "right")
    for scenario in results.scenarios:
        for fit in scenario.analysis.scaling:
            label = escape(case_label(scenario.scenario, fit.params))
            if fit.problem is not None or fit.line is None:
                table.add_row(label, fit.metric, "-", "-", "-", "-",
                              f"{len(fit.sizes)} (needs {MIN_SIZES})")
                continue
            exponent = fit.exponent
            table.add_row(label, fit.metric, format_bytes(fit.line.fixed),
                          f"{format_bytes(fit.line.marginal)} / {singular(fit.size_parameter)}",
                          "flat" if fit.flat else f"{exponent:.2f}" if exponent else "-",
                          f"{fit.line.r2:.3f}",
                          f"{len(fit.sizes)}: {fit.sizes[0]}-{fit.sizes[-1]}")
    if table.row_count:
        console.print(table)


def leak_table(results: Results, console: Console) -> None:
    table = Table(title="Leaks (repeated calls in one process; slope per call)",
                  title_justify="left")
    for column in ("case", "heap / build", "95% CI", "rss / build", "objects / build", "calls",
                   "top growing site"):
        table.add_column(column, justify="left" if column in ("case", "top growing site")
                         else "right")
    for scenario in results.scenarios:
        for finding in scenario.analysis.leaks:
            table.add_row(*_leak_row(finding))
    if table.row_count:
        console.print(table)


def _leak_row(finding: LeakFinding) -> list[str]:
    heap, record = finding.heap, finding.record
    count = "-" if record is None else str(len(record.calls))
    if heap is None:
        return [escape(finding.case), "-", "-", "-", "-", count, escape(finding.problem or "")]
    interval = f"{format_bytes(heap.low)} .. {format_bytes(heap.high)}"
    slope = format_bytes(finding.per_build, signed=True) if heap.significant else "none"
    rss = "-" if finding.rss is None else format_bytes(finding.rss.slope, signed=True)
    objects = "-" if finding.objects is None else f"{finding.objects.slope:+.1f}"
    top = "-"
    if record is not None and record.sites:
        site = record.sites[0]
        top = (f"{site.file}:{site.line} ({format_bytes(site.size_diff, signed=True)}, "
               f"{site.count_diff:+.0f} blocks)")
    return [escape(finding.case), slope, interval, rss, objects, count, escape(top)]


def phase_table(results: Results, console: Console) -> None:
    table = Table(title="Phases (heap: traced run; cgroup and duration: timed runs; growth: "
                  "own peak minus the figure at entry; * added the most memory)",
                  title_justify="left")
    for column in ("case", "phase", "python peak", "python growth", "cgroup peak", "growth",
                   "duration"):
        table.add_column(column, justify="left" if column in ("case", "phase") else "right")
    for scenario in results.scenarios:
        for summary in scenario.analysis.phases:
            for row in summary.phases:
                mark = " *" if row.name == summary.largest else ""
                table.add_row(escape(summary.case), escape(row.name) + mark,
                              format_bytes(row.python_peak), format_bytes(row.python_growth),
                              format_bytes(row.peak), format_bytes(row.growth),
                              format_seconds(row.duration))
    if table.row_count:
        console.print(table)


def step_table(results: Results, console: Console) -> None:
    table = Table(title="Steps (each its own cgroup reading; median of timed runs, heap from the "
                  "traced run)", title_justify="left")
    for column in ("case", "step", *(METRIC_TITLES[m] for m in STEP_COLUMNS), "not run"):
        table.add_column(column, justify="left" if column in ("case", "step") else "right")
    for row in step_rows(results):
        table.add_row(escape(row.case), escape(row.step), *row.figures,
                      f"{row.not_run} of {row.runs}" if row.not_run else "-")
    if table.row_count:
        console.print(table)
