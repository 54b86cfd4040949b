"""The subcommands. Each is a class: its docstring is its help, ``prepare_parser`` its options,
``run`` its work; the return value is the exit code."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from runner import __version__, backends
from runner.cli.analysis_commands import ANALYSIS_COMMANDS
from runner.cli.history_commands import HistoryCommand
from runner.cli.progress import RichProgress, terminal_console
from runner.cli.report_commands import (
    Outputs,
    ReportCommand,
    add_output_arguments,
    read_results,
)
from runner.errors import (
    EXIT_HOST,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SLA_FAILED,
    HostError,
    MemslaError,
    UsageError,
)
from runner.history.recording import (
    add_history_argument,
    add_regression_arguments,
    check_history,
    record_after,
)
from runner.units import UnitError, parse_bytes

if TYPE_CHECKING:  # imported where used: the parser (--help, --version) stays light
    from rich.console import Console

    from runner.results import Results


class Command(Protocol):
    name: str

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def exit_code_for(results: Results) -> int:
    """0 for a pass (or a shard measured with nothing broken, which only ``runner merge``
    judges as a whole), 1 for a broken SLA, 3 for no verdict, 130 when interrupted."""
    if results.interrupted:
        return EXIT_INTERRUPTED
    return {"pass": EXIT_OK, "measured": EXIT_OK, "fail": EXIT_SLA_FAILED}.get(
        results.status, EXIT_HOST)


class CheckCommand:
    """Run every scenario of an SLA file and judge its SLAs.

    Exit 0 when every SLA holds, 1 when one fails, 2 for bad input, 3 when the host could not
    measure, 130 when interrupted (the results measured so far are still written).
    """

    name = "check"

    def __init__(self) -> None:
        self.session: Any = None  # the check's Session, once made

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("sla_file", type=Path, help="the SLA file, e.g. sla.yaml")
        parser.add_argument("--backend", choices=backends.choices(),
                            help="override the file's backend")
        parser.add_argument("--only", action="append", metavar="SCENARIO",
                            help="run only this scenario (repeatable)")
        parser.add_argument("--size", action="append", type=int, metavar="N",
                            help="run only this value of the size parameter (repeatable)")
        parser.add_argument("--repeats", type=int, help="override the number of timed runs")
        parser.add_argument("--json", type=Path, metavar="PATH", help="write the full results")
        parser.add_argument("--keep-outputs", action="store_true",
                            help="keep each run's output, logs and probe files")
        parser.add_argument("--baseline", type=Path, metavar="BASE.json",
                            help="earlier results: judges <metric>_growth rules, reports deltas")
        parser.add_argument("--explain", action="store_true",
                            help="say in sentences what the fits and trends guarantee")
        together = parser.add_argument_group("faster suites")
        together.add_argument("--jobs", default="1", metavar="N|auto",
                              help="run up to N independent cases at once, each on CPUs of its "
                                   "own, while their limits fit the memory budget (default 1; "
                                   "auto: from the CPUs and memory)")
        together.add_argument("--memory-budget", metavar="SIZE",
                              help="--jobs: the sum of limits that may run at once (default: "
                                   "the host's available memory less 512 MiB)")
        together.add_argument("--shard", metavar="K/N",
                              help="measure only the K-th of N shares of the cases; join the "
                                   "shards with 'runner merge'")
        together.add_argument("--shard-costs", type=Path, metavar="PREVIOUS.json",
                              help="--shard: balance the shares by the durations in these "
                                   "earlier results")
        add_output_arguments(parser)  # last: it skips --baseline if defined above
        add_history_argument(parser)
        add_regression_arguments(parser)

    def run(self, args: argparse.Namespace) -> int:
        from runner.session import Session

        jobs = parse_jobs(args.jobs)
        try:
            budget = parse_bytes(args.memory_budget) if args.memory_budget else None
        except UnitError as exc:
            raise UsageError(f"--memory-budget: {exc}") from None
        shard: tuple[int, int] | None = None
        if args.shard:
            from runner.shards import parse_shard

            shard = parse_shard(args.shard)
        if args.shard_costs and shard is None:
            raise UsageError("--shard-costs balances shards: give --shard K/N too")
        costs = read_results(args.shard_costs, "--shard-costs") if args.shard_costs else None
        console = terminal_console()
        outputs = Outputs.from_args(args)
        check_history(args)
        session = self.session = Session(args.sla_file, progress=RichProgress(console))
        session.baseline = outputs.load_baseline()
        if args.history or args.fail_on_regression:  # else nothing asks for the history
            from runner.history.base import base_loader

            session.history = base_loader(args, session.suite, args.sla_file)
        results = session.check(backend=args.backend, only=args.only, sizes=args.size,
                                repeats=args.repeats, keep_outputs=args.keep_outputs,
                                json_path=args.json, jobs=jobs, memory_budget=budget,
                                shard=shard, shard_costs=costs,
                                shard_costs_from=str(args.shard_costs) if costs else None)
        return show_and_write(results, args, outputs, console)

    def interrupted(self, args: argparse.Namespace) -> None:
        """Interrupted before the check began (or as it began): with --json, the results file
        says so, with no case and never a pass. A check that began writes its own."""
        from runner.session import header, sla_digest

        if not args.json or (self.session is not None and self.session.wrote_results):
            return
        try:
            digest = sla_digest(args.sla_file)
        except OSError:
            digest = None
        results = header(args.sla_file, digest, args.backend, args.only, args.size)
        results.interrupted, results.status = True, "interrupted"
        results.problems.append("interrupted before the first case began: nothing was measured")
        try:
            results.write(args.json)
        except OSError as exc:
            print(f"runner: cannot write {args.json}: {exc.strerror or exc}", file=sys.stderr)


def show_and_write(results: Results, args: argparse.Namespace, outputs: Outputs,
                   console: Console) -> int:
    """The terminal table (and --explain), the results file's path, every asked-for report;
    returns the exit code the results earn. Shared by check and merge."""
    from runner.reports.interface import REPORTERS, ReportFormat

    REPORTERS[ReportFormat.TERMINAL].render(results, sys.stdout)
    if args.explain:
        REPORTERS[ReportFormat.EXPLAIN].render(results, sys.stdout)
    if args.json:
        console.print(f"results: {args.json}")
    if getattr(args, "history", None):  # "Memory over time" in the reports
        from runner.history.outlook import attach_history

        attach_history(results, args, say=console.print)
    outputs.write(results, stdout=sys.stdout, say=console.print)
    return record_after(results, args, exit_code_for(results), say=console.print)


def parse_jobs(text: str) -> int | Literal["auto"]:
    if text == "auto":
        return "auto"
    try:
        jobs = int(text)
    except ValueError:
        raise UsageError(f"--jobs takes a number or auto, not {text!r}") from None
    if jobs < 1:
        raise UsageError(f"--jobs {jobs}: give at least 1, or auto")
    return jobs


class MergeCommand:
    """Merge the results of the shards of one check into one results file and judge it.

    Takes every shard's --json file (runner check --shard K/N); judges the scenarios again as
    one run would (fits across sizes measured on different shards, growth against --baseline)
    and writes the same reports as runner check. Refuses (exit 2) shards of different SLA
    files, memsla versions, backends or kinds of host, and shards that overlap, are missing or
    did not end. Exits like runner check: 0 pass, 1 an SLA failed, 3 a case was not measured.
    """

    name = "merge"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("shards", type=Path, nargs="+", metavar="SHARD.json",
                            help="the results file of every shard")
        parser.add_argument("--json", type=Path, metavar="PATH",
                            help="write the merged results")
        parser.add_argument("--sla", type=Path, metavar="SLA_FILE",
                            help="the SLA file the shards name, where it is elsewhere here")
        parser.add_argument("--explain", action="store_true",
                            help="say in sentences what the fits and trends guarantee")
        add_output_arguments(parser)
        add_history_argument(parser)

    def run(self, args: argparse.Namespace) -> int:
        from runner.merge import merge

        outputs = Outputs.from_args(args)
        check_history(args)
        parts = [(str(path), read_results(path, "shard results")) for path in args.shards]
        results = merge(parts, args.sla, outputs.load_baseline())
        if args.json:
            results.write(args.json)
        return show_and_write(results, args, outputs, terminal_console())


class DoctorCommand:
    """Say what this host can measure (cgroup version, writable or not, Docker) and how to fix
    what is missing."""

    name = "doctor"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        pass

    def run(self, args: argparse.Namespace) -> int:
        from rich.console import Console

        from runner.cli.doctor import doctor_checks

        console = Console()
        for check in doctor_checks():
            mark = "[green]ok[/]  " if check.ok else "[red]no[/]  "
            console.print(f"{mark}{check.name}: {check.detail}")
            if check.fix and not check.ok:
                console.print(f"      fix: {check.fix}")
        try:
            backend, reason = backends.select()
        except HostError as exc:
            console.print(f"[red]no backend can run builds here:[/] {exc}")
            return EXIT_HOST
        console.print(f"backend 'auto' picks [bold]{backend.name}[/] for a scenario with no "
                      f"requirements, project, python or container settings: {reason} (for "
                      "those it picks a backend that honours them, and says which)")
        backend.close()
        return EXIT_OK


class ImageCommand:
    """Build the Docker images builds run in, reusing any already built from the same inputs.

    Without SLA_FILE: memsla's own scenarios image (offline: a debootstrap base and wheels
    downloaded on the host). With SLA_FILE: what each of its scenarios needs on the docker
    backend: a scenario with requirements or a project gets an image of its own, its `image:`
    (default: memsla's offline Debian base) plus a virtualenv of the requirements plus the
    project's wheel, each a cached layer tagged by a hash of its content; a scenario without
    them runs in its `image:` (memsla-scenarios by default, built here too).
    """

    name = "image"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("action", choices=["build"], help="what to do")
        parser.add_argument("sla_file", type=Path, nargs="?", metavar="SLA_FILE",
                            help="build what this SLA file's scenarios need")

    def run(self, args: argparse.Namespace) -> int:
        try:
            from runner.backends.docker.images import ensure_images
        except ImportError as exc:
            raise HostError(f"image building is unavailable: {exc}") from None
        def log(line: str) -> None:
            print(line, file=sys.stderr)

        try:
            if args.sla_file is None:
                print(ensure_images(log))
                return EXIT_OK
            return self._for_file(args.sla_file, ensure_images, log)
        except RuntimeError as exc:
            raise HostError(str(exc)) from None

    def _for_file(self, sla_file: Path, ensure_images: Any, log: Any) -> int:
        from runner.backends.docker import DockerRunOptions
        from runner.metrics import case_label
        from runner.session import Session
        from runner.slafile.model import BUILTIN_SETTINGS

        session = Session(sla_file)
        try:
            plans = session.plan(backend="docker")
            backend = backends.create("docker")
            executor = session.executor()
            executor.on_progress = log
            done: set[tuple[str, ...]] = set()
            failed = False  # an image that cannot be made: the others are still built
            for plan in plans:
                # one image per scenario and environment's matrix values (a version sweep)
                swept = {k: plan.params[k] for k in plan.scenario.environment_parameters}
                combination = (plan.scenario_name, *map(str, swept.values()))
                if combination in done:
                    continue
                done.add(combination)
                label = case_label(plan.scenario_name, swept)
                explicit = backends.explicit_settings(plan.scenario, session.suite.defaults)
                for key, why in backends.unhonoured("docker", explicit):
                    log(f"{label}: not for docker: {key}: {why}")
                    break
                else:
                    if plan.settings.image == BUILTIN_SETTINGS.image:  # memsla's own: built
                        ensure_images(log)  # here if missing, before a case checks it
                    try:
                        _, options = executor.environment(plan, backend)
                    except MemslaError as exc:
                        log(f"{label}: {exc}")
                        failed = True
                        continue
                    assert isinstance(options, DockerRunOptions)
                    print(f"{label}\t{options.image}")
            backend.close()
        finally:
            session.close()
        return EXIT_HOST if failed else EXIT_OK


COMMANDS: list[type[Command]] = [CheckCommand, MergeCommand, DoctorCommand, ImageCommand,
                                 ReportCommand, *ANALYSIS_COMMANDS, HistoryCommand]
__all__ = ["COMMANDS", "__version__"]
