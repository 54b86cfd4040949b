"""The text of the analysis commands on a rich console: ``runner compare``'s table of changes
and of the allocation sites that grew, ``runner predict``'s predictions and ``runner
capacity``'s runs. They render what ``runner.judging`` and ``runner.capacity`` worked out."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from runner.capacity import Search
from runner.judging.baseline import Comparison, Tolerance
from runner.metrics import case_label, parse_metric
from runner.results import GrownSite, Prediction, ScalingFit
from runner.units import format_bytes, format_value


def render_changes(console: Console, comparison: Comparison, title: str, *,
                   tolerances: list[Tolerance], differences: list[str],
                   grown: list[GrownSite]) -> None:
    """Each change (only the toleranced metrics' where tolerances are given), what differs
    between the two sides besides the code, what is on one side only, the sites that grew and
    the count of exceeded tolerances."""
    shown = {t.metric for t in tolerances}
    table = Table(title=title, title_justify="left")
    for column in ("case", "metric", "base", "head", "change", "%", "tolerance", ""):
        table.add_column(column, justify="left" if column in ("case", "metric", "")
                         else "right")
    for change in comparison.changes:
        if shown and change.metric not in shown:
            continue
        kind = parse_metric(change.metric).kind
        relative = change.relative
        mark = "" if change.tolerance is None else (
            "[bold red]EXCEEDED[/]" if change.exceeded else "[green]ok[/]")
        table.add_row(escape(change.label), escape(change.metric),
                      format_value(kind, change.base), format_value(kind, change.head),
                      format_value(kind, change.absolute, signed=True),
                      "-" if relative is None else f"{relative * 100:+.1f}%",
                      escape(change.tolerance.text.split(":", 1)[1].strip())
                      if change.tolerance else "", mark)
    console.print(table)
    for line in differences:
        console.print(f"[yellow]not alike: {escape(line)}[/]")
    for line in comparison.missing:
        console.print(f"[yellow]{escape(line)}[/]")
    if grown:
        sites = Table(title="Allocation sites that grew at the heap's peak (traced run)",
                      title_justify="left")
        for column in ("case", "site", "function", "base", "head", "grew"):
            sites.add_column(column, justify="right" if column in ("base", "head", "grew")
                             else "left")
        for site in grown:
            sites.add_row(escape(site.label), escape(f"{site.file}:{site.line}"),
                          escape(site.function or ""),
                          format_bytes(site.base) if site.base else "-",
                          format_bytes(site.head), "+" + format_bytes(site.grown))
        console.print(sites)
    judged = sum(1 for c in comparison.changes if c.tolerance is not None)
    console.print(f"{len(comparison.exceeded)} of {judged} toleranced changes exceeded"
                  if judged else "no tolerances given: changes reported only")


def prediction_lines(scenario: str, fit: ScalingFit, p: Prediction, *, linear: bool
                     ) -> list[str]:
    """The prediction ``p`` of ``fit`` in sentences: the value and its interval, whether it is
    an extrapolation, the fit it comes from, and the growth model's value where growth is not
    ``linear`` (``runner.judging.scaling.linear``)."""
    assert fit.line is not None
    unit, size = fit.size_parameter, p.size
    largest = max(fit.sizes)
    low, high = max(p.low or 0.0, 0.0), p.high  # bounded: a fit without a problem has 3 sizes
    lines = [f"{case_label(scenario, fit.params)}: expected {fit.metric} at {size:,} {unit}: "
             f"{format_bytes(p.value)} (95% prediction interval {format_bytes(low)} to "
             f"{format_bytes(high)})"]
    if p.extrapolated:
        far = (" (beyond 2x the largest measured size: the interval assumes the model holds "
               "that far)") if p.beyond_twice else ""
        lines.append(f"  EXTRAPOLATION: {p.factor:,.1f}x the largest measured size ({largest:,} "
                     f"{unit}); it assumes the measured trend continues{far}")
    elif size < min(fit.sizes):
        lines.append(f"  EXTRAPOLATION below the smallest measured size ({min(fit.sizes):,})")
    else:
        lines.append("  interpolated between measured sizes")
    lines.append(f"  fit of {len(fit.sizes)} sizes ({', '.join(f'{s:,}' for s in fit.sizes)}): "
                 f"{format_bytes(fit.line.fixed)} + {format_bytes(fit.line.marginal)} x {unit}, "
                 f"R² {fit.line.r2:.4f}; the interval holds the repeats' noise and both the "
                 f"line's and the growth model's value")
    exponent = fit.exponent
    if p.power_value is not None and exponent is not None and not linear:
        lines.append(f"  memory grows as {unit}^{exponent:.2f}, not linearly: with that "
                     f"model, {format_bytes(p.power_value)}")
    return lines


def render_probes(console: Console, search: Search, what: str, *, is_limit: bool) -> None:
    """A capacity search's runs, in the order they ran, and how each ended."""
    table = Table(title=f"runs ({len(search.probes)})", title_justify="left")
    for column in (what, "result"):
        table.add_column(column)
    for probe in search.probes:
        value = format_bytes(probe.value) if is_limit else f"{probe.value:,}"
        table.add_row(value, ("[green]" if probe.ok else "[red]") + escape(probe.detail) + "[/]")
    console.print(table)
