"""Plain text for the Python API and the pytest plugin: one case's figures in a line, its broken
rules with their values and bounds, a scenario across its sizes, and the pytest summary table
(a reporter: ``ReportFormat.PYTEST_SUMMARY``). Figures are the worst across a case's repeats,
except in the table of sizes (medians)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TextIO

from runner.reports.common import metric_kind
from runner.results import Case, Results, ScalingFit
from runner.units import format_bytes, format_seconds, format_value


def _worst(case: Case, metric: str) -> float | None:
    return case.pick(metric, "max")


def describe(case: Case, baseline: int | None = None) -> str:
    """One line: ``peak 50.2 MiB (baseline 0.5 MiB), rss peak ..., under a 256 MiB limit``."""
    parts = [f"peak {format_bytes(_worst(case, 'peak'))}" + (
        f" (baseline {format_bytes(baseline)})" if baseline else ""),
        f"rss peak {format_bytes(_worst(case, 'rss_peak'))}"]
    python_peak = _worst(case, "python_peak")
    if python_peak is not None:
        parts.append(f"python peak {format_bytes(python_peak)}")
    allocated = _worst(case, "allocated")
    if allocated is not None:
        calls = _worst(case, "allocation_calls")
        parts.append(f"allocated {format_bytes(allocated)} in "
                     f"{None if calls is None else int(calls)} calls")
    parts.append(f"duration {format_seconds(_worst(case, 'duration'))}")
    oom_kills = int(_worst(case, "oom_kills") or 0)
    if oom_kills:
        parts.append(f"{oom_kills} OOM kill(s)")
    limit = f"a {format_bytes(case.limit)} limit" if case.limit else "no limit"
    text = ", ".join(parts) + f", under {limit}"
    return text + (" (approximate: no cgroup)" if case.approximate else "")


def explain_failures(case: Case) -> str:
    """Each failed rule with its value and bound, one per line."""
    lines = []
    if case.error:
        lines.append(f"not measured: {case.error}")
    for v in (v for v in case.verdicts if v.passed is False):
        kind = metric_kind(v.metric)
        line = (f"{v.rule}: measured {format_value(kind, v.value)} ({v.stat}), bound "
                f"{v.op} {format_value(kind, v.bound)}")
        if v.metric == "oom_kills" and case.limit:
            line += (f": the kernel OOM-killed a process at the {format_bytes(case.limit)} "
                     f"limit (peak {format_bytes(_worst(case, 'peak'))})")
        lines.append(line + (" (approximate)" if v.approximate else ""))
    return "\n".join(lines)


class SizeFigures(Protocol):
    """One size's medians (``runner.api.SizeRow``)."""

    @property
    def size(self) -> int: ...

    @property
    def peak(self) -> float | None: ...

    @property
    def rss_peak(self) -> float | None: ...

    @property
    def peak_per_page(self) -> float | None: ...

    @property
    def duration(self) -> float | None: ...


def size_table(size_parameter: str, rows: Sequence[SizeFigures], fit: ScalingFit | None) -> str:
    """A scenario across its sizes, one row each, then the peak's fit (or why there is none)."""
    unit = size_parameter
    lines = [f"{unit:>10} {'peak':>11} {'rss peak':>11} {'peak/' + unit:>12} "
             f"{'duration':>9}"]
    for row in rows:
        lines.append(f"{row.size:>10,} {format_bytes(row.peak):>11} "
                     f"{format_bytes(row.rss_peak):>11} {format_bytes(row.peak_per_page):>12} "
                     f"{format_seconds(row.duration):>9}")
    if fit is not None and fit.line is not None and fit.problem is None:
        lines.append(f"peak = {format_bytes(fit.line.fixed)} + "
                     f"{format_bytes(fit.line.marginal)} x {unit} (R² {fit.line.r2:.3f})"
                     + (f", exponent {fit.exponent:.2f}" if fit.exponent is not None else ""))
    elif fit is not None and fit.problem:
        lines.append(f"no fit: {fit.problem}")
    return "\n".join(lines)


def summary_lines(results: Results) -> list[str]:
    """The pytest summary: one row per measurement, the worst figure across its repeats."""
    rows = [("test", "limit", "peak", "rss peak", "duration", "oom", "verdict")]
    for case in results.cases:
        failed = [v for v in case.verdicts if v.passed is False]
        verdict = "FAIL: " + ", ".join(v.rule for v in failed) if failed else "pass"
        rows.append((case.label, format_bytes(case.limit) if case.limit else "none",
                     format_bytes(_worst(case, "peak")), format_bytes(_worst(case, "rss_peak")),
                     format_seconds(_worst(case, "duration")),
                     str(int(_worst(case, "oom_kills") or 0)),
                     verdict + (" (approx.)" if case.approximate else "")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) if i in (0, 6) else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
             for row in rows]
    host = results.host
    lines.append(f"backend: {host.backend} ({host.backend_reason})")
    if host.harness_baseline:
        lines.append(f"fork baseline: an empty callable measured the same way peaks at "
                     f"{format_bytes(host.harness_baseline)}; a callable's figures include it")
    if any(case.approximate for case in results.cases):
        lines.append("approximate: no cgroup here; memory sampled from outside, no hard limit")
    return lines


class PytestSummary:
    """The table the pytest plugin prints at the end of a session."""

    def render(self, results: Results, out: TextIO, *, baseline: Results | None = None) -> None:
        out.write("\n".join(summary_lines(results)) + "\n")
