"""The analysis subcommands: predict, compare and capacity (see each class's docstring)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from runner import backends, capacity
from runner.cli.progress import RichProgress, terminal_console
from runner.cli.report_commands import read_results
from runner.errors import EXIT_OK, EXIT_SLA_FAILED, HostError, UsageError
from runner.execute import Executor
from runner.judging import compare, scaling
from runner.metrics import FITTABLE, case_label, parse_metric
from runner.plan import CasePlan, with_size
from runner.results import Results, ScalingFit
from runner.units import UnitError, format_bytes, format_value, parse_bytes, parse_ratio


class PredictCommand:
    """Predict memory at an unmeasured size from the scenario's fit across its sizes.

    SOURCE is a results file (--json of runner check) or an SLA file, whose scenario is then
    measured first. Beyond the largest measured size the answer is an extrapolation, and says so.
    """

    name = "predict"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("source", type=Path, help="results .json or SLA file")
        parser.add_argument("scenario", help="the scenario to predict")
        parser.add_argument("--size", type=int, action="append", required=True, metavar="N",
                            help="the size to predict at (repeatable)")
        parser.add_argument("--metric", choices=FITTABLE, default="peak")

    def run(self, args: argparse.Namespace) -> int:
        console = terminal_console()
        results = _results_for(args.source, args.scenario, console)
        cases = [c for c in results.cases if c.scenario == args.scenario]
        if not cases:
            known = ", ".join(dict.fromkeys(c.scenario for c in results.cases)) or "none"
            raise UsageError(f"no scenario {args.scenario!r} in {args.source} (it has {known})")
        if not any(c.size is not None for c in cases):
            raise UsageError(f"scenario {args.scenario!r} has no size parameter to predict along")
        scenario = results.scenario(args.scenario)
        groups = scenario.analysis.fits(args.metric) if scenario is not None else []
        if not groups:
            raise UsageError(f"{args.source} holds no {args.metric} fit of {args.scenario!r}: "
                             "write the results with 'runner check --json'")
        for fit in groups:
            if fit.problem is not None or fit.line is None:
                raise UsageError(f"cannot predict {args.scenario}: {fit.problem}")
            for size in args.size:
                for line in prediction_lines(args.scenario, fit, size):
                    console.print(escape(line))
        return EXIT_OK


def prediction_lines(scenario: str, fit: ScalingFit, size: int) -> list[str]:
    assert fit.line is not None
    p = scaling.predict(fit, size)
    unit = fit.size_parameter
    largest = max(fit.sizes)
    low, high = max(p.low or 0.0, 0.0), p.high  # bounded: a fit without a problem has 3 sizes
    lines = [f"{case_label(scenario, fit.params)}: expected {fit.metric} at {size:,} {unit}: "
             f"{format_bytes(p.value)} (95% prediction interval {format_bytes(low)} to "
             f"{format_bytes(high)})"]
    if p.extrapolated:
        lines.append(f"  EXTRAPOLATION: {p.factor:,.1f}x the largest measured size ({largest:,} "
                     f"{unit}); it assumes the measured trend continues")
    elif size < min(fit.sizes):
        lines.append(f"  EXTRAPOLATION below the smallest measured size ({min(fit.sizes):,})")
    else:
        lines.append("  interpolated between measured sizes")
    lines.append(f"  fit of {len(fit.sizes)} sizes ({', '.join(f'{s:,}' for s in fit.sizes)}): "
                 f"{format_bytes(fit.line.fixed)} + {format_bytes(fit.line.marginal)} x {unit}, "
                 f"R² {fit.line.r2:.4f}")
    exponent = fit.exponent
    if p.power_value is not None and exponent is not None and not scaling.linear(fit):
        lines.append(f"  memory grows as {unit}^{exponent:.2f}, not linearly: with that "
                     f"model, {format_bytes(p.power_value)}")
    return lines


def _results_for(source: Path, scenario: str, console: Console) -> Results:
    if source.suffix == ".json":
        return read_results(source)
    from runner.session import Session

    return Session(source, progress=RichProgress(console)).check(only=[scenario])


class CompareCommand:
    """Compare two results files: each metric's change per scenario and size, and each
    scaling fit's (per_page, fixed_overhead, scaling_exponent) per scenario.

    Prints the change in percent and in absolute terms; exits 1 when a change exceeds its
    --tolerance (e.g. 'peak: 10% + 8MiB'). Cases on one side only are listed, not errors.
    """

    name = "compare"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("base", type=Path, help="the baseline results .json")
        parser.add_argument("head", type=Path, help="the results .json to judge")
        parser.add_argument("--tolerance", action="append", default=[], metavar="RULE",
                            help="'METRIC: 10%% + 8MiB': allowed growth (repeatable)")
        parser.add_argument("--stat", choices=["median", "min", "max", "mean"],
                            default="median", help="statistic across repeats to compare")

    def run(self, args: argparse.Namespace) -> int:
        try:
            tolerances = [compare.parse_tolerance(t) for t in args.tolerance]
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        base, head = read_results(args.base), read_results(args.head)
        result = compare.compare(base, head, tolerances, args.stat)
        console = terminal_console()
        shown = {t.metric for t in tolerances}
        table = Table(title=f"{args.head} against {args.base} ({args.stat} of repeats)",
                      title_justify="left")
        for column in ("case", "metric", "base", "head", "change", "%", "tolerance", ""):
            table.add_column(column, justify="left" if column in ("case", "metric", "")
                             else "right")
        for change in result.changes:
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
        for line in compare.context_differences(base, head):
            console.print(f"[yellow]not alike: {escape(line)}[/]")
        for line in result.missing:
            console.print(f"[yellow]{escape(line)}[/]")
        grown = compare.grown_sites(base, head)
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
        exceeded = result.exceeded
        judged = sum(1 for c in result.changes if c.tolerance is not None)
        console.print(f"{len(exceeded)} of {judged} toleranced changes exceeded"
                      if judged else "no tolerances given: changes reported only")
        return EXIT_SLA_FAILED if exceeded else EXIT_OK


class CapacityCommand:
    """Find the largest size that builds under a limit, or the smallest limit a size needs.

    Bisection with real runs (one untraced run each): --limit searches the size parameter,
    --min-limit the hard limit (cgroup or docker backend only).
    """

    name = "capacity"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("sla_file", type=Path)
        parser.add_argument("scenario")
        mode = parser.add_mutually_exclusive_group(required=True)
        mode.add_argument("--limit", metavar="SIZE", help="find the largest size under this")
        mode.add_argument("--min-limit", action="store_true",
                          help="find the smallest limit at which the build completes")
        parser.add_argument("--size", type=int, metavar="N",
                            help="--min-limit: the size to build (default: the largest measured)")
        parser.add_argument("--results", type=Path, metavar="JSON",
                            help="earlier results: their fit is the first guess")
        parser.add_argument("--precision", default="2%",
                            help="stop when the bracket is this narrow (default 2%%)")
        parser.add_argument("--backend", choices=backends.choices())
        parser.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                            help="pick the case of other matrix axes (repeatable)")

    def run(self, args: argparse.Namespace) -> int:
        from runner.session import Session

        try:
            precision = parse_ratio(args.precision)
            limit = parse_bytes(args.limit) if args.limit else None
        except UnitError as exc:
            raise UsageError(str(exc)) from None
        console = terminal_console()
        session = Session(args.sla_file, progress=RichProgress(console))
        if any("=" not in w for w in args.where):
            raise UsageError("--where takes KEY=VALUE, e.g. --where theme=dark")
        wanted = dict(w.split("=", 1) for w in args.where)
        plans = [p for p in session.resolve_backends(
                     session.plan(only=[args.scenario], backend=args.backend))
                 if all(str(p.params.get(k)) == v for k, v in wanted.items())]
        if not plans:
            raise UsageError(f"no case of {args.scenario!r} has {', '.join(args.where)}")
        plan = max(plans, key=lambda p: p.size or 0)
        try:
            backend = session.backend_for(plan.settings.backend, plan.settings.image)
            executor = session.executor()
            if args.min_limit:
                if not backend.hard_limit:
                    raise HostError(f"--min-limit needs a backend with a hard memory limit; "
                                    f"{backend.name!r} has none (use cgroup or docker)")
                return self._min_limit(args, executor, plan, precision, console)
            assert limit is not None
            return self._largest(args, executor, plan, limit, precision, backend.hard_limit,
                                 console)
        finally:
            session.close()

    def _largest(self, args: argparse.Namespace, executor: Executor, plan: CasePlan,
                 limit: int, precision: float, hard: bool, console: Console) -> int:
        if plan.size_parameter is None:
            raise UsageError(f"scenario {args.scenario!r} has no size parameter")
        guess, source = plan.size or 1, "the largest size in the matrix"
        if args.results:
            scenario = read_results(args.results).scenario(args.scenario)
            fits = scenario.analysis.fits("peak") if scenario is not None else []
            fit = next((f for f in fits if f.problem is None), None)
            at = scaling.size_for(fit, limit) if fit is not None else None
            if at is not None and at >= 1:
                guess, source = int(at), f"the fit of {args.results}"
        console.print(f"searching the largest {plan.size_parameter} under "
                      f"{format_bytes(limit)}, starting at {guess:,} ({source})")
        search = capacity.largest_size(executor, plan, limit, guess, hard=hard,
                                       precision=precision)
        _print_probes(console, search, plan.size_parameter, is_limit=False)
        if search.good is None:
            console.print(f"[red]even {plan.size_parameter}=1 does not build under "
                          f"{format_bytes(limit)}[/]")
            return EXIT_SLA_FAILED
        if search.bad is None:
            console.print(f"{search.good:,} {plan.size_parameter} build; no size up to the "
                          "search's cap failed")
            return EXIT_OK
        console.print(f"[bold]largest {plan.size_parameter} under {format_bytes(limit)}: "
                      f"{search.good:,}[/] ({search.bad:,} did not build)"
                      + ("" if hard else " [yellow](approx.: no hard limit)[/]"))
        return EXIT_OK

    def _min_limit(self, args: argparse.Namespace, executor: Executor, plan: CasePlan,
                   precision: float, console: Console) -> int:
        import psutil

        if args.size is not None:
            plan = with_size(plan, args.size)
        console.print(f"searching the smallest limit for {escape(plan.label)}")
        search, free = capacity.smallest_limit(
            executor, plan, highest=psutil.virtual_memory().total, precision=precision)
        _print_probes(console, search, "limit", is_limit=True)
        if search.good is None:
            raise HostError("the build did not complete under any limit up to the host's memory")
        failed = f" ({format_bytes(search.bad)} did not)" if search.bad is not None else ""
        console.print(f"[bold]smallest limit for {escape(plan.label)}: "
                      f"{format_bytes(search.good)}[/]{failed}; unlimited peak "
                      f"{format_bytes(free.peak)}")
        return EXIT_OK


def _print_probes(console: Console, search: capacity.Search, what: str, *,
                  is_limit: bool) -> None:
    table = Table(title=f"runs ({len(search.probes)})", title_justify="left")
    for column in (what, "result"):
        table.add_column(column)
    for probe in search.probes:
        value = format_bytes(probe.value) if is_limit else f"{probe.value:,}"
        table.add_row(value, ("[green]" if probe.ok else "[red]") + escape(probe.detail) + "[/]")
    console.print(table)


ANALYSIS_COMMANDS = (PredictCommand, CompareCommand, CapacityCommand)
