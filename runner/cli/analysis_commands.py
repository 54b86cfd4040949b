"""The analysis subcommands: predict, compare and capacity (see each class's docstring)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from runner import backends
from runner.cli.progress import RichProgress, terminal_console
from runner.cli.report_commands import read_results
from runner.errors import EXIT_OK, EXIT_SLA_FAILED, HostError, UsageError
from runner.metrics import FITTABLE, STATISTICS
from runner.units import UnitError, format_bytes, parse_bytes, parse_ratio

if TYPE_CHECKING:  # imported where used: the parser (--help, --version) stays light
    from rich.console import Console

    from runner.execute import Executor
    from runner.plan import CasePlan
    from runner.results import Results


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
        from rich.markup import escape

        from runner.judging import scaling
        from runner.reports.analysis import prediction_lines

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
                for line in prediction_lines(args.scenario, fit, scaling.predict(fit, size),
                                             linear=scaling.linear(fit)):
                    console.print(escape(line))
        return EXIT_OK


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
        parser.add_argument("--stat", choices=STATISTICS,
                            default="median", help="statistic across repeats to compare")

    def run(self, args: argparse.Namespace) -> int:
        from runner.judging import baseline
        from runner.reports.analysis import render_changes

        try:
            tolerances = [baseline.parse_tolerance(t) for t in args.tolerance]
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        base, head = read_results(args.base), read_results(args.head)
        comparison = baseline.changes(base, head, tolerances, args.stat)
        render_changes(terminal_console(), comparison,
                       f"{args.head} against {args.base} ({args.stat} of repeats)",
                       tolerances=tolerances,
                       differences=baseline.context_differences(base, head),
                       grown=baseline.grown_sites(base, head))
        return EXIT_SLA_FAILED if comparison.exceeded else EXIT_OK


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
        from runner.slafile.model import limit_problem

        try:
            precision = parse_ratio(args.precision)
            limit = parse_bytes(args.limit) if args.limit else None
        except UnitError as exc:
            raise UsageError(str(exc)) from None
        problem = limit_problem(limit) if limit is not None else None
        if problem:
            raise UsageError(f"--limit {args.limit}: {problem}")
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
        from runner import capacity
        from runner.judging import scaling
        from runner.reports.analysis import render_probes

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
        render_probes(console, search, plan.size_parameter, is_limit=False)
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
        from rich.markup import escape

        from runner import capacity
        from runner.plan import with_size
        from runner.reports.analysis import render_probes

        if args.size is not None:
            plan = with_size(plan, args.size)
        console.print(f"searching the smallest limit for {escape(plan.label)}")
        search, free = capacity.smallest_limit(
            executor, plan, highest=psutil.virtual_memory().total, precision=precision)
        render_probes(console, search, "limit", is_limit=True)
        if search.good is None:
            raise HostError("the build did not complete under any limit up to the host's memory")
        failed = f" ({format_bytes(search.bad)} did not)" if search.bad is not None else ""
        console.print(f"[bold]smallest limit for {escape(plan.label)}: "
                      f"{format_bytes(search.good)}[/]{failed}; unlimited peak "
                      f"{format_bytes(free.peak)}")
        return EXIT_OK


ANALYSIS_COMMANDS = (PredictCommand, CompareCommand, CapacityCommand)
