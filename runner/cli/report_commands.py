"""The output flags shared by ``runner check`` and ``runner report``, and ``runner report``.

``add_output_arguments`` gives both commands the same flags; ``Outputs.from_args`` checks them
before anything is measured (a missing matplotlib should not cost a 30-minute check), and
``Outputs.write`` renders each asked-for report from the results model.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from runner.errors import EXIT_OK, UsageError

if TYPE_CHECKING:  # imported where used: the parser (--help, --version) stays light
    from runner.results import Results

BENCH_CHOICES = ("customSmallerIsBetter", "bencher")


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("outputs")
    group.add_argument("--junit", type=Path, metavar="PATH",
                       help="JUnit XML: one testcase per case and SLA")
    group.add_argument("--github", action=argparse.BooleanOptionalAction, default=None,
                       help="GitHub Actions annotations on the SLA file's lines, and the job "
                            "summary when $GITHUB_STEP_SUMMARY is set (default: on when "
                            "GITHUB_ACTIONS=true)")
    group.add_argument("--markdown", type=Path, metavar="PATH",
                       help="a pull-request comment in markdown (with deltas given --baseline)")
    group.add_argument("--bench-json", type=Path, metavar="PATH",
                       help="metrics for a benchmark tracker (see --bench-format)")
    group.add_argument("--bench-format", choices=BENCH_CHOICES, default="customSmallerIsBetter",
                       help="github-action-benchmark's customSmallerIsBetter (default) or "
                            "Bencher Metric Format")
    group.add_argument("--html", type=Path, metavar="PATH",
                       help="one self-contained HTML page with charts (needs memsla[html])")
    group.add_argument("--guarantees", type=Path, metavar="PATH",
                       help="the written guarantees in markdown, for the project's docs: "
                            "memory per size, the fit and its intervals, the largest size "
                            "under each limit, the cache bound")
    try:
        parser.add_argument("--baseline", type=Path, metavar="BASE.json",
                            help="results of an earlier run to compare with")
    except argparse.ArgumentError:
        pass  # the command defines --baseline itself; the outputs read the same value


@dataclass
class Outputs:
    """The reports one command invocation asked for, checked before anything is measured."""

    files: list[tuple[str, Path]] = field(default_factory=list)  # (format name, path)
    github: bool = False
    summary: Path | None = None
    baseline_path: Path | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Outputs:
        from runner.reports.interface import ReportFormat, check_available

        outputs = cls()
        for flag, fmt in (("junit", "junit"), ("markdown", "markdown"), ("html", "html"),
                          ("bench_json", args.bench_format), ("guarantees", "guarantees")):
            path = getattr(args, flag)
            if path is not None:
                check_available(ReportFormat(fmt))
                outputs.files.append((fmt, path))
        github = args.github
        outputs.github = os.environ.get("GITHUB_ACTIONS") == "true" if github is None else github
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if outputs.github and summary:
            outputs.summary = Path(summary)
        baseline = getattr(args, "baseline", None)
        if baseline is not None:
            outputs.baseline_path = Path(baseline)
            outputs.load_baseline()  # fail now on a bad file, not after the measurement
        return outputs

    def load_baseline(self) -> Results | None:
        if self.baseline_path is None:
            return None
        return read_results(self.baseline_path, "baseline")

    def write(self, results: Results, *, stdout: TextIO | None = None,
              say: Callable[[str], None] = lambda _: None) -> None:
        from runner.reports.interface import REPORTERS, ReportFormat, write_report

        baseline = self.load_baseline()
        # against this baseline, judged or not; without one, the sites a judged file lists go
        if baseline is not None or any(s.analysis.grown_sites for s in results.scenarios):
            from runner.judging.baseline import attach_grown_sites

            attach_grown_sites(results, baseline)
        for name, path in self.files:
            try:
                write_report(ReportFormat(name), results, path, baseline=baseline)
            except OSError as exc:
                raise UsageError(f"cannot write the {name} report to {path}: "
                                 f"{exc.strerror or exc}") from None
            if str(path) != "-":
                say(f"{name}: {path}")
        if self.github:
            out = stdout or sys.stdout
            REPORTERS[ReportFormat.GITHUB].render(results, out, baseline=baseline)
            out.flush()
        if self.summary is not None:
            try:
                write_report(ReportFormat.GITHUB_SUMMARY, results, self.summary,
                             baseline=baseline, append=True)
            except OSError as exc:
                raise UsageError(f"cannot append the job summary to {self.summary}: "
                                 f"{exc.strerror or exc}") from None


def read_results(path: Path, what: str = "results") -> Results:
    from pydantic import ValidationError

    from runner.results import Results

    try:
        return Results.read(path)
    except FileNotFoundError:
        raise UsageError(f"{what} file {path} does not exist") from None
    except OSError as exc:
        raise UsageError(f"cannot read the {what} file {path}: {exc.strerror or exc}") from None
    except (ValueError, ValidationError) as exc:
        first = str(exc).splitlines()[0]
        raise UsageError(f"{path} is not a memsla results file: {first}") from None


class ReportCommand:
    """Render reports from a results file written by 'runner check --json'.

    Takes the same output flags as 'runner check'; with none of them, prints the terminal
    table. Exits 0 once the reports are written, whatever the verdicts.
    """

    name = "report"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("results", type=Path, metavar="RESULTS.json",
                            help="a results file from 'runner check --json'")
        add_output_arguments(parser)

    def run(self, args: argparse.Namespace) -> int:
        from rich.console import Console

        from runner.judging.stage import refit

        outputs = Outputs.from_args(args)
        results = read_results(args.results)
        refit(results)  # an older file's fits: intervals from every repeat, as a check stores
        if not outputs.files and not outputs.github:
            from runner.reports.interface import REPORTERS, ReportFormat

            REPORTERS[ReportFormat.TERMINAL].render(results, sys.stdout)
        # Notices go to stderr: stdout may carry a report ('--junit -') or workflow commands.
        notices = Console(stderr=True, highlight=False)
        outputs.write(results, say=notices.print)
        return EXIT_OK
