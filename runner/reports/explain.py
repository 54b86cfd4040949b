"""``runner check --explain``: what the measurements guarantee, in sentences, per scenario.

Every sentence comes from a fit or a trend and says how far it reaches: sizes beyond the
measured ones are called extrapolations, and a fit from too few sizes says nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from rich.console import Console
from rich.markup import escape

from runner.judging import phases, scaling
from runner.results import Case, Results
from runner.units import format_bytes

LINEAR_TOLERANCE = 0.1  # |k - 1| within which the linear fit is the model to extrapolate with


def render(results: Results, console: Console) -> None:
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
        lines = _scaling(cases, _budget(results, cases))
        scenario = next((s for s in results.scenarios if s.scenario == name), None)
        if scenario is not None:
            lines += _leaks(scenario.analysis.get("leak"))
        lines += _phases(cases)
        out[name] = lines or ["nothing to explain: no size parameter, leak run or phases"]
    return out


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _about(value: float) -> str:
    """Three significant figures: an estimate, not a count."""
    digits = max(0, math.floor(math.log10(abs(value))) - 2) if value else 0
    return _count(round(value, -digits))


def _budget(results: Results, cases: list[Case]) -> tuple[float, str] | None:
    """The memory the scenario must stay under: its limit, else its tightest peak bound."""
    limits = [c.limit for c in cases if c.limit]
    if limits:
        return float(min(limits)), "limit"
    bounds = [v.bound for c in cases for v in c.verdicts if v.metric == "peak" and v.op in "<="]
    return (min(bounds), "peak bound") if bounds else None


def size_at(fit: scaling.ScalingFit, memory: float) -> float | None:
    """The size at which the fitted model reaches ``memory``."""
    power = fit.power
    if power is None or fit.exponent is None or abs(fit.exponent - 1) <= LINEAR_TOLERANCE:
        return fit.size_for(memory)
    if power.coefficient <= 0 or memory <= power.fixed:
        return None
    return float(((memory - power.fixed) / power.coefficient) ** (1 / power.exponent))


def _scaling(cases: list[Case], budget: tuple[float, str] | None) -> list[str]:
    lines: list[str] = []
    for fit in scaling.fits(cases, "peak"):
        scope = f" ({fit.label})" if fit.label else ""
        if fit.problem is not None or fit.line is None:
            if fit.sizes or fit.excluded:
                lines.append(f"no scaling statement{scope}: {fit.problem}")
            continue
        unit, largest = fit.size_parameter, max(fit.sizes)
        line = fit.line
        lines.append(
            f"N {unit} use about {format_bytes(line.intercept)} + "
            f"{format_bytes(line.slope)}·N of cgroup peak{scope} (R² {line.r2:.3f}, measured at "
            f"{_count(min(fit.sizes))}-{_count(largest)} {unit}).")
        if fit.flat:
            lines.append(f"peak does not measurably depend on {unit}.")
        elif fit.exponent is not None:
            shape = ("linear" if abs(fit.exponent - 1) <= LINEAR_TOLERANCE else
                     "faster than linear: budget with care" if fit.exponent > 1 else
                     "slower than linear")
            lines.append(f"above the fixed overhead, peak grows as O(N^{fit.exponent:.2f}) "
                         f"({shape}).")
        target = 10 ** math.ceil(math.log10(10 * largest))
        expected = _model_at(fit, target)
        sentence = (f"{_count(target)} {unit} would need about {format_bytes(expected)} "
                    f"(extrapolated {target / largest:,.0f}x beyond {_count(largest)} {unit})")
        if budget is not None:
            memory, what = budget
            fits_up_to = size_at(fit, memory)
            if fits_up_to is not None and fits_up_to > 0:
                sentence += (f"; the {format_bytes(memory)} {what} holds up to about "
                             f"{_about(fits_up_to)} {unit}")
                if fits_up_to > largest:
                    sentence += " (extrapolated)"
        lines.append(sentence + ".")
        for other, what in (("python_peak", "the Python heap"), ("rss_peak", "RSS")):
            extra = next((f for f in scaling.fits(cases, other)
                          if f.params == fit.params and f.problem is None and f.line), None)
            if extra is not None and extra.line is not None:
                lines.append(f"{what}: about {format_bytes(extra.line.intercept)} + "
                             f"{format_bytes(extra.line.slope)}·N (R² {extra.line.r2:.3f}).")
    return lines


def _model_at(fit: scaling.ScalingFit, size: int) -> float:
    prediction = fit.predict(size)
    exponent = fit.exponent
    if (prediction.power_value is not None and exponent is not None
            and abs(exponent - 1) > LINEAR_TOLERANCE):
        return prediction.power_value
    return prediction.value


def _leaks(found: object) -> list[str]:
    if not isinstance(found, Mapping):
        return []
    lines = []
    for label, finding in found.items():
        if not isinstance(finding, Mapping):
            continue
        heap = finding.get("heap")
        if not isinstance(heap, Mapping):
            lines.append(f"leak check of {label}: {finding.get('problem')}")
            continue
        low, high, slope = (float(heap.get(k) or 0) for k in ("low", "high", "slope"))
        calls = heap.get("n")
        if heap.get("significant"):
            text = (f"{label}: each build retains about {format_bytes(slope)} of Python heap "
                    f"(95% CI {format_bytes(low)}-{format_bytes(high)} over {calls} calls)")
            record = finding.get("record")
            sites = record.get("sites") if isinstance(record, Mapping) else None
            if isinstance(sites, list) and sites and isinstance(sites[0], Mapping):
                site = sites[0]
                text += (f", mostly at {site.get('file')}:{site.get('line')} "
                         f"({format_bytes(float(site.get('size_diff') or 0), signed=True)}, "
                         f"{int(site.get('count_diff') or 0):+d} blocks)")
            lines.append(text + ".")
        else:
            lines.append(f"{label}: no build-to-build growth of the Python heap (95% CI "
                         f"{format_bytes(low)} to {format_bytes(high)} per build over "
                         f"{calls} calls).")
    return lines


def _phases(cases: list[Case]) -> list[str]:
    """Which phase uses the most memory: one sentence when it is the same phase in every case
    (with the numbers of the largest case), else one per case."""
    found = []
    for case in sorted(cases, key=lambda c: c.size or 0, reverse=True):
        rows = phases.phase_rows(case)
        top = phases.largest(rows)
        if top is not None and len(rows) > 1:
            found.append((case, rows, *top))
    if not found:
        return []
    if len({row.name for _, _, row, _ in found}) == 1 and len(found) > 1:
        found = found[:1]
        where = f"in every case (at {found[0][0].label}: "
    else:
        where = "("
    lines = []
    for case, rows, row, metric in found:
        what = "cgroup peak" if metric == "peak" else "heap peak"
        others = ", ".join(f"{r.name} {format_bytes(getattr(r, metric))}"
                           for r in rows if r is not row and getattr(r, metric) is not None)
        prefix = "" if where != "(" else f"{case.label}: "
        lines.append(f"{prefix}phase {row.name} uses the most memory {where}{what} "
                     f"{format_bytes(getattr(row, metric))}; {others}).")
    return lines
