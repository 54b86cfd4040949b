"""``runner check --explain``: what the measurements guarantee, in sentences, per scenario.

Every sentence comes from a fit or a trend and says how far it reaches: sizes beyond the
measured ones are called extrapolations, and a fit from too few sizes says nothing.
"""

from __future__ import annotations

import math
from typing import TextIO

from rich.console import Console
from rich.markup import escape

from runner.reports.terminal import console_for
from runner.results import Case, CasePhases, LeakFinding, Outlook, Results, ScenarioAnalysis
from runner.units import format_bytes


class Explanation:
    """``--explain``: sentences per scenario, from the fits, trends and phases the judging
    stage stored."""

    def render(self, results: Results, out: TextIO, *, baseline: Results | None = None) -> None:
        _render(results, console_for(out))


def _render(results: Results, console: Console) -> None:
    console.print("[bold]What the measurements say[/]")
    for name, lines in explain(results).items():
        console.print(f"[bold]{escape(name)}[/]")
        for line in lines:
            console.print(f"  {escape(line)}")


def explain(results: Results) -> dict[str, list[str]]:
    """Sentences per scenario, in the order the scenarios ran."""
    out: dict[str, list[str]] = {}
    for name in dict.fromkeys(c.scenario for c in results.cases):
        cases = [c for c in results.cases if c.scenario == name]
        scenario = results.scenario(name)
        analysis = scenario.analysis if scenario is not None else ScenarioAnalysis()
        lines = _scaling(analysis)
        lines += _leaks(analysis.leaks)
        lines += _phases(cases, analysis)
        out[name] = lines or ["nothing to explain: no size parameter, leak run or phases"]
    return out


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _about(value: float) -> str:
    """Three significant figures: an estimate, not a count."""
    digits = max(0, math.floor(math.log10(abs(value))) - 2) if value else 0
    return _count(round(value, -digits))


def _scaling(analysis: ScenarioAnalysis) -> list[str]:
    lines: list[str] = []
    for fit in analysis.fits("peak"):
        scope = f" ({fit.label})" if fit.label else ""
        if fit.problem is not None or fit.line is None:
            lines.append(f"no scaling statement{scope}: {fit.problem}")
            continue
        unit, largest = fit.size_parameter, max(fit.sizes)
        line, outlook = fit.line, fit.outlook
        lines.append(
            f"N {unit} use about {format_bytes(line.fixed)} + "
            f"{format_bytes(line.marginal)}·N of cgroup peak{scope} (R² {line.r2:.3f}, measured "
            f"at {_count(min(fit.sizes))}-{_count(largest)} {unit}).")
        if fit.flat:
            lines.append(f"peak does not measurably depend on {unit}.")
        elif fit.exponent is not None:
            shape = ("linear" if outlook is None or outlook.linear else
                     "faster than linear: budget with care" if fit.exponent > 1 else
                     "slower than linear")
            lines.append(f"above the fixed overhead, peak grows as O(N^{fit.exponent:.2f}) "
                         f"({shape}).")
        if outlook is not None:
            lines.append(_reach(outlook, unit, largest))
        for other, what in (("python_peak", "the Python heap"), ("rss_peak", "RSS")):
            extra = next((f for f in analysis.fits(other)
                          if f.params == fit.params and f.problem is None and f.line), None)
            if extra is not None and extra.line is not None:
                lines.append(f"{what}: about {format_bytes(extra.line.fixed)} + "
                             f"{format_bytes(extra.line.marginal)}·N (R² {extra.line.r2:.3f}).")
    return lines


def _reach(outlook: Outlook, unit: str, largest: int) -> str:
    """What the fit expects past the measured sizes, and how far the budget reaches."""
    target = outlook.size
    interval = ("" if outlook.low is None or outlook.high is None else
                f", 95% interval {format_bytes(max(outlook.low, 0.0))}-"
                f"{format_bytes(outlook.high)}")
    far = ", more than 2x: trust it less" if outlook.beyond_twice else ""
    sentence = (f"{_count(target)} {unit} would need about {format_bytes(outlook.expected)}"
                f"{interval} (extrapolated {target / largest:,.0f}x beyond {_count(largest)} "
                f"{unit}{far})")
    fits_up_to = outlook.holds_up_to
    if outlook.budget is not None and fits_up_to is not None and fits_up_to > 0:
        sentence += (f"; the {format_bytes(outlook.budget)} {outlook.budget_kind} holds up to "
                     f"about {_about(fits_up_to)} {unit}")
        if fits_up_to > largest:
            sentence += " (extrapolated)"
    return sentence + "."


def _leaks(findings: list[LeakFinding]) -> list[str]:
    lines = []
    for finding in findings:
        label, heap = finding.case, finding.heap
        if heap is None:
            lines.append(f"leak check of {label}: {finding.problem}")
            continue
        interval = f"{format_bytes(heap.low)}-{format_bytes(heap.high)}"
        if heap.significant:
            text = (f"{label}: each build retains about {format_bytes(heap.slope)} of Python "
                    f"heap (95% CI {interval} over {heap.n} calls)")
            sites = finding.record.sites if finding.record is not None else []
            if sites:
                site = sites[0]
                text += (f", mostly at {site.file}:{site.line} "
                         f"({format_bytes(site.size_diff, signed=True)}, "
                         f"{site.count_diff:+d} blocks)")
            lines.append(text + ".")
        else:
            lines.append(f"{label}: no build-to-build growth of the Python heap (95% CI "
                         f"{format_bytes(heap.low)} to {format_bytes(heap.high)} per build over "
                         f"{heap.n} calls).")
    return lines


def _phases(cases: list[Case], analysis: ScenarioAnalysis) -> list[str]:
    """Which phase uses the most memory: one sentence when it is the same phase in every case
    (with the numbers of the largest case), else one per case."""
    found: list[tuple[Case, CasePhases]] = []
    for case in sorted(cases, key=lambda c: c.size or 0, reverse=True):
        summary = analysis.phases_of(case.label)
        if summary is not None and summary.top is not None and len(summary.phases) > 1:
            found.append((case, summary))
    if not found:
        return []
    if len({summary.largest for _, summary in found}) == 1 and len(found) > 1:
        found = found[:1]
        where = f"in every case (at {found[0][0].label}: "
    else:
        where = "("
    lines = []
    for case, summary in found:
        row, metric = summary.top, summary.largest_by or "peak"
        assert row is not None
        what = {"peak": "cgroup peak", "python_peak": "heap peak", "growth": "it added",
                "python_growth": "it added to the heap"}[metric]
        others = ", ".join(f"{r.name} {format_bytes(getattr(r, metric))}"
                           for r in summary.phases
                           if r is not row and getattr(r, metric) is not None)
        prefix = "" if where != "(" else f"{case.label}: "
        lines.append(f"{prefix}phase {row.name} uses the most memory {where}{what} "
                     f"{format_bytes(getattr(row, metric))}; {others}).")
    return lines
