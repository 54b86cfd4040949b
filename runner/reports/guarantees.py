"""The written guarantees: a check's stored analysis as a markdown page a team puts in its docs.

Per scenario, backend and swept value (every matrix parameter but the size): what each measured
size used (median and range over the repeats), the scaling fit with its exponent and the honest
prediction intervals the judging stage stored, the largest size whose 95% upper bound stays
under each limit, the smallest limit each size needs, and the disk and cache figures; with the
date the check ran and the commit of the SLA file's repository.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from runner.judging import scaling
from runner.metrics import NAMED_METRICS, params_label
from runner.reports.markdown import cell
from runner.results import Case, Results, ScalingFit
from runner.units import format_bytes

MiB, GiB = 1 << 20, 1 << 30
# Round limits the page answers for besides the scenario's own limit and peak bounds.
ROUND_LIMITS = (256 * MiB, 512 * MiB, 1 * GiB, 2 * GiB, 4 * GiB, 8 * GiB)
# Predictions past this factor of the largest measured size say so.
FAR = 2.0
# How far past the largest measured size the page looks for a limit's largest size.
REACH = 1000


class Guarantees:
    """``--guarantees PATH``: the page, in markdown."""

    def render(self, results: Results, out: TextIO, *, baseline: Results | None = None) -> None:
        out.write("\n".join(page(results)) + "\n")


def page(results: Results) -> list[str]:
    host = results.host
    lines = ["# Memory guarantees", "",
             f"Measured on {results.created[:10]} ({results.created}) with memsla "
             f"{results.memsla_version}, {_commit(results.sla_file)}, on {host.os}, "
             f"{host.cpus} CPUs, {format_bytes(host.memory_total)} of memory, Python "
             f"{host.python}, cgroup v{host.cgroup_version or '-'}.", "",
             "Memory is the build's **cgroup peak**: everything charged to the build, the page "
             "cache of the files it writes included (an RSS figure without it is given beside "
             "it). A measured range is the lowest and highest of the repeats. A predicted "
             "figure is the scaling fit's, with a 95% prediction interval that holds the "
             "repeats' run-to-run noise and both the line's and the growth model's value "
             "(docs/measurements.md); past 2x the largest measured size it assumes the trend "
             "continues, which the measurements cannot show.", ""]
    for scenario in dict.fromkeys(c.scenario for c in results.cases):
        cases = [c for c in results.cases if c.scenario == scenario]
        stored = results.scenario(scenario)
        fits = stored.analysis.scaling if stored else []
        groups: dict[str, list[Case]] = {}
        for case in cases:
            params = {k: v for k, v in case.params.items() if k != case.size_parameter}
            groups.setdefault(f"{case.backend}|{params_label(params)}", []).append(case)
        for key, group in groups.items():
            backend, label = key.split("|", 1)
            fit = next((f for f in fits if f.metric == "peak" and f.label == label), None)
            lines += _section(scenario, backend, label, group, fit, fits)
    return lines


def _commit(sla_file: str) -> str:
    from runner.history.commit import commit_of

    path = Path(sla_file)
    found = commit_of(path) if path.exists() else None
    if found is None:
        return "outside a git repository (no commit)"
    return f"commit `{found.sha[:12]}`" + (" with uncommitted changes" if found.dirty else "")


def _section(scenario: str, backend: str, label: str, cases: list[Case],
             fit: ScalingFit | None, fits: list[ScalingFit]) -> list[str]:
    title = f"{scenario} [{label}]" if label else scenario
    unit = cases[0].size_parameter or "size"
    lines = [f"## {title} on the {backend} backend", ""]
    sized = sorted((c for c in cases if c.error is None and "peak" in c.metrics),
                   key=lambda c: c.size or 0)
    for case in sized:
        peak = case.metrics["peak"]
        what = f"building {case.size:,} {unit}" if case.size is not None else "a build"
        rss = case.metrics.get("rss_peak")
        lines.append(f"- {what[0].upper()}{what[1:]} uses **{format_bytes(peak.median)}** "
                     f"(measured: {_range(peak.values)} over {len(peak.values)} "
                     f"build{'s' if len(peak.values) != 1 else ''}"
                     + (f"; RSS {format_bytes(rss.median)}" if rss else "") + ").")
    for case in cases:
        if case.error is not None:
            lines.append(f"- {case.label}: not measured ({case.error}).")
    lines.append("")
    if fit is not None and fit.line is not None and fit.problem is None:
        lines += _growth(fit, unit)
    elif fit is not None and fit.problem:
        lines += [f"No scaling statement: {fit.problem}.", ""]
    lines += _limits(fit, sized, unit, cases)
    lines += _cache(sized, fits, label, unit)
    return lines


def _range(values: list[float]) -> str:
    low, high = min(values), max(values)
    return format_bytes(low) if format_bytes(low) == format_bytes(high) else (
        f"{format_bytes(low)} to {format_bytes(high)}")


def _growth(fit: ScalingFit, unit: str) -> list[str]:
    assert fit.line is not None
    largest = max(fit.sizes)
    sizes = ", ".join(f"{s:,}" for s in fit.sizes)
    lines = [f"Peak memory = {format_bytes(fit.line.fixed)} + "
             f"{format_bytes(fit.line.marginal)} x {unit} (R² {fit.line.r2:.4f}, fitted over "
             f"{sizes} {unit}, every repeat)."]
    exponent = fit.exponent
    if exponent is not None:
        shape = ("linear" if scaling.linear(fit) else
                 "faster than linear" if exponent > 1 else "slower than linear")
        lines[-1] += f" Above the fixed overhead it grows as {unit}^{exponent:.2f} ({shape})."
    ahead = [p for p in fit.predictions if p.size > largest][:4]
    if ahead:
        lines += ["", f"| {unit} | expected peak | 95% interval | how far |", "|--:|--:|--:|---|"]
        for p in ahead:
            far = (f"{p.factor:,.1f}x the largest measured"
                   + (": beyond 2x, trust it less" if p.beyond_twice else ""))
            lines.append(f"| {p.size:,} | {format_bytes(scaling.expected(fit, p.size))} | "
                         f"{_interval(p.low, p.high)} | {far} |")
    return [*lines, ""]


def _interval(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "unbounded"
    return f"{format_bytes(max(low, 0.0))} to {format_bytes(high)}"


def _limits(fit: ScalingFit | None, sized: list[Case], unit: str,
            cases: list[Case]) -> list[str]:
    """The largest size under each limit (from the fit's 95% upper bound) and the smallest
    limit each size needs (measured: the highest repeat; predicted: the upper bound)."""
    lines: list[str] = []
    usable = fit is not None and fit.line is not None and fit.problem is None
    own = sorted({c.limit for c in cases if c.limit} | {
        int(v.bound) for c in cases for v in c.verdicts if v.metric == "peak" and v.op in "<="})
    if usable:
        assert fit is not None and fit.line is not None
        largest = max(fit.sizes)
        lines += [f"| limit | largest {unit} under it (95% upper bound) |", "|--:|--:|"]
        lowest = fit.line.at(0)
        for limit in sorted(set(own) | {x for x in ROUND_LIMITS if x > lowest}):
            reach = _largest_under(fit, limit)
            if reach is None:
                text = "none: the smallest size's upper bound is above it"
            elif reach >= REACH * largest:
                text = f"more than {REACH * largest:,}"
            else:
                text = f"{reach:,}" + (f" ({reach / largest:,.1f}x the largest measured: "
                                       "extrapolated" + (", beyond 2x" if reach > FAR * largest
                                                         else "") + ")"
                                       if reach > largest else "")
            lines.append(f"| {format_bytes(limit)} | {text} |")
        lines.append("")
    lines += [f"| {unit} | smallest limit | from |", "|--:|--:|---|"]
    for case in sized:
        peak = case.metrics["peak"]
        lines.append(f"| {case.size if case.size is None else f'{case.size:,}'} | "
                     f"{format_bytes(max(peak.values))} | measured: the highest of "
                     f"{len(peak.values)} |")
    if usable:
        assert fit is not None
        for p in [p for p in fit.predictions if p.size > max(fit.sizes)][:3]:
            lines.append(f"| {p.size:,} | {format_bytes(p.high)} | predicted: the 95% upper "
                         f"bound ({p.factor:,.1f}x the largest measured) |")
    lines += ["", "A limit needs headroom above these: the kernel reclaims page cache before "
                  "it kills a build, but not anonymous memory.", ""]
    return lines


def _largest_under(fit: ScalingFit, limit: float) -> int | None:
    """The largest size whose 95% upper bound is at most ``limit`` (None: not even size 1)."""
    def fits_under(size: int) -> bool:
        high = scaling.predict(fit, size).high
        return high is not None and high <= limit

    if not fits_under(1):
        return None
    low, high = 1, REACH * max(fit.sizes)
    if fits_under(high):
        return high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits_under(middle) else (low, middle)
    return low


def _cache(cases: list[Case], fits: list[ScalingFit], label: str, unit: str) -> list[str]:
    keys = sorted({k for c in cases for k in c.metrics
                   if k.split("(", 1)[0] in NAMED_METRICS and k.endswith(")")})
    if not keys:
        return ["No disk or cache figures were measured (declare `disk:` folders and "
                "`cache_sites:` in the scenario).", ""]
    lines = [f"| {unit} | " + " | ".join(keys) + " |", "|--:|" + "--:|" * len(keys)]
    for case in cases:
        cells = []
        for key in keys:
            stats = case.metrics.get(key)
            count = key.startswith("disk_files(")
            cells.append("-" if stats is None else
                         f"{max(stats.values):,.0f}" if count else format_bytes(max(stats.values)))
        lines.append(f"| {case.size if case.size is None else f'{case.size:,}'} | "
                     + " | ".join(cell(c) for c in cells) + " |")
    lines += ["", "The cache bound is the highest of the repeats (bytes and files a folder "
                  "held after the build; heap held by the named cache sites at the peak)."]
    for fit in fits:
        if fit.metric.startswith("disk(") and fit.label == label and fit.line is not None \
                and fit.problem is None:
            lines.append(f"{fit.metric} grows as {format_bytes(fit.line.fixed)} + "
                         f"{format_bytes(fit.line.marginal)} x {unit} (R² {fit.line.r2:.4f}).")
    return [*lines, ""]
