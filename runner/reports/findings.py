"""Terminal tables of the scenario-level findings: scaling fits, leak trends and phases."""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from runner.judging import phases, scaling
from runner.metrics import FITTABLE
from runner.results import Case, Results
from runner.units import format_bytes, format_seconds


def singular(size_parameter: str) -> str:
    """'pages' -> 'page': the unit a marginal cost is per."""
    return size_parameter[:-1] if size_parameter.endswith("s") and len(size_parameter) > 1 \
        else size_parameter


def render(results: Results, console: Console) -> None:
    scaling_table(results, console)
    leak_table(results, console)
    phase_table(results, console)


def _by_scenario(results: Results) -> dict[str, list[Case]]:
    grouped: dict[str, list[Case]] = {}
    for case in results.cases:
        grouped.setdefault(case.scenario, []).append(case)
    return grouped


def scaling_table(results: Results, console: Console) -> None:
    table = Table(title="Scaling (median per size): memory = fixed + marginal x size",
                  title_justify="left")
    for column in ("scenario", "metric", "fixed", "marginal", "exponent", "R²", "sizes"):
        table.add_column(column, justify="left" if column in ("scenario", "metric") else "right")
    for name, cases in _by_scenario(results).items():
        for metric in FITTABLE:
            for fit in scaling.fits(cases, metric):
                if not fit.sizes and not fit.excluded:
                    continue
                label = escape(name + (f"[{fit.label}]" if fit.label else ""))
                if fit.problem is not None or fit.line is None:
                    table.add_row(label, metric, "-", "-", "-", "-",
                                  f"{len(fit.sizes)} (needs {scaling.MIN_SIZES})")
                    continue
                exponent = fit.exponent
                table.add_row(label, metric, format_bytes(fit.line.intercept),
                              f"{format_bytes(fit.line.slope)} / {singular(fit.size_parameter)}",
                              "flat" if fit.flat else f"{exponent:.2f}" if exponent else "-",
                              f"{fit.line.r2:.3f}",
                              f"{len(fit.sizes)}: {fit.sizes[0]}-{fit.sizes[-1]}")
    if table.row_count:
        console.print(table)


def _number(data: Mapping[str, object], key: str) -> float | None:
    value = data.get(key)
    return float(value) if isinstance(value, int | float) else None


def leak_table(results: Results, console: Console) -> None:
    table = Table(title="Leaks (repeated calls in one process; slope per call)",
                  title_justify="left")
    for column in ("case", "heap / build", "95% CI", "rss / build", "objects / build", "calls",
                   "top growing site"):
        table.add_column(column, justify="left" if column in ("case", "top growing site")
                         else "right")
    for scenario in results.scenarios:
        found = scenario.analysis.get("leak")
        if not isinstance(found, Mapping):
            continue
        for label, finding in found.items():
            if not isinstance(finding, Mapping):
                continue
            table.add_row(*_leak_row(str(label), finding))
    if table.row_count:
        console.print(table)


def _leak_row(label: str, finding: Mapping[str, object]) -> list[str]:
    heap, rss, objects = (finding.get(k) for k in ("heap", "rss", "objects"))
    record = finding.get("record")
    calls = record.get("calls") if isinstance(record, Mapping) else None
    sites = record.get("sites") if isinstance(record, Mapping) else None
    if not isinstance(heap, Mapping):
        return [escape(label), "-", "-", "-", "-", str(len(calls or [])) if isinstance(
            calls, list) else "-", escape(str(finding.get("problem") or ""))]
    per_build = _number(finding, "per_build")
    interval = f"{format_bytes(_number(heap, 'low'))} .. {format_bytes(_number(heap, 'high'))}"
    slope = format_bytes(per_build, signed=True)
    if not heap.get("significant"):
        slope = "none"
    rss_text = format_bytes(_number(rss, "slope"), signed=True) if isinstance(rss, Mapping) else "-"
    objects_text = f"{_number(objects, 'slope') or 0:+.1f}" if isinstance(objects, Mapping) else "-"
    top = "-"
    if isinstance(sites, list) and sites and isinstance(sites[0], Mapping):
        site = sites[0]
        top = (f"{site.get('file')}:{site.get('line')} "
               f"({format_bytes(_number(site, 'size_diff'), signed=True)}, "
               f"{_number(site, 'count_diff') or 0:+.0f} blocks)")
    count = str(len(calls)) if isinstance(calls, list) else "-"
    return [escape(label), slope, interval, rss_text, objects_text, count, escape(top)]


def phase_table(results: Results, console: Console) -> None:
    table = Table(title="Phases (heap peak: traced run; cgroup peak and duration: timed runs; "
                  "* uses the most memory)", title_justify="left")
    for column in ("case", "phase", "python peak", "cgroup peak", "duration"):
        table.add_column(column, justify="left" if column in ("case", "phase") else "right")
    for case in results.cases:
        rows = phases.phase_rows(case)
        top = phases.largest(rows)
        for row in rows:
            mark = " *" if top is not None and row is top[0] else ""
            table.add_row(escape(case.label), escape(row.name) + mark,
                          format_bytes(row.python_peak), format_bytes(row.peak),
                          format_seconds(row.duration))
    if table.row_count:
        console.print(table)
