"""The report formats behind one interface: a reporter renders the results model to a stream.

Every format name maps to exactly one implementation in REPORTERS (a test checks it is
exhaustive). Reporters take the results (and an optional baseline to compare with) and a text
stream; they never import the CLI.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Protocol, TextIO, runtime_checkable

from runner.reports import (
    bench,
    explain,
    github,
    guarantees,
    html,
    junit,
    markdown,
    plain,
    terminal,
)
from runner.reports.common import ReportError
from runner.results import Results


class ReportFormat(str, Enum):
    JUNIT = "junit"
    GITHUB = "github"  # workflow commands: annotations on the SLA file's lines
    GITHUB_SUMMARY = "github-summary"  # markdown for the job summary ($GITHUB_STEP_SUMMARY)
    MARKDOWN = "markdown"  # a pull-request comment
    BENCH_CUSTOM = "customSmallerIsBetter"  # github-action-benchmark
    BENCHER = "bencher"  # Bencher Metric Format
    HTML = "html"
    TERMINAL = "terminal"  # the tables runner check prints
    EXPLAIN = "explain"  # runner check --explain: what the fits and trends guarantee
    PYTEST_SUMMARY = "pytest-summary"  # the table at the end of a pytest session
    GUARANTEES = "guarantees"  # the written guarantees page, markdown for a team's docs


@runtime_checkable
class Reporter(Protocol):
    def render(self, results: Results, out: TextIO, *, baseline: Results | None = None) -> None:
        """Write the report of ``results`` to ``out``; ``baseline`` is an earlier run."""


REPORTERS: dict[ReportFormat, Reporter] = {
    ReportFormat.JUNIT: junit.JUnitReport(),
    ReportFormat.GITHUB: github.WorkflowCommands(),
    ReportFormat.GITHUB_SUMMARY: github.StepSummary(),
    ReportFormat.MARKDOWN: markdown.PullRequestComment(),
    ReportFormat.BENCH_CUSTOM: bench.CustomSmallerIsBetter(),
    ReportFormat.BENCHER: bench.BencherMetricFormat(),
    ReportFormat.HTML: html.HtmlReport(),
    ReportFormat.TERMINAL: terminal.TerminalTable(),
    ReportFormat.EXPLAIN: explain.Explanation(),
    ReportFormat.PYTEST_SUMMARY: plain.PytestSummary(),
    ReportFormat.GUARANTEES: guarantees.Guarantees(),
}
__all__ = ["REPORTERS", "ReportError", "ReportFormat", "Reporter",
           "check_available", "render_text", "report_target", "write_report"]


def check_available(fmt: ReportFormat) -> None:
    """Raise ReportError when this host lacks what the format needs (before measuring)."""
    if fmt is ReportFormat.HTML:
        problem = html.missing_dependency()
        if problem:
            raise ReportError(problem)


def render_text(fmt: ReportFormat, results: Results, *, baseline: Results | None = None) -> str:
    import io

    buffer = io.StringIO()
    REPORTERS[fmt].render(results, buffer, baseline=baseline)
    return buffer.getvalue()


@contextlib.contextmanager
def report_target(path: Path | None, append: bool = False) -> Iterator[TextIO]:
    """A report's stream: stdout for None or '-', else the file, written beside and renamed."""
    if path is None or str(path) == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if append:
        with path.open("a", encoding="utf-8") as out:
            yield out
        return
    # Written beside and renamed, so a reader never sees half a report.
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        yield out
    tmp.replace(path)


def write_report(fmt: ReportFormat, results: Results, path: Path | None, *,
                 baseline: Results | None = None, append: bool = False) -> None:
    """Render to ``path`` (stdout for None or ``-``); ``append`` adds to an existing file."""
    check_available(fmt)
    with report_target(path, append) as out:
        REPORTERS[fmt].render(results, out, baseline=baseline)
