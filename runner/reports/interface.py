"""The report formats behind one interface: a reporter renders the results model to a stream.

Every format name maps to exactly one implementation in REPORTERS (a test checks it is
exhaustive). Reporters take the results (and an optional baseline to compare with) and a text
stream; they never import the CLI.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator, Mapping
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TextIO, runtime_checkable

from runner.reports.common import ReportError

if TYPE_CHECKING:
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


# Each format's reporter: its module under runner.reports and its class.
_REPORTER_CLASSES: dict[ReportFormat, tuple[str, str]] = {
    ReportFormat.JUNIT: ("junit", "JUnitReport"),
    ReportFormat.GITHUB: ("github", "WorkflowCommands"),
    ReportFormat.GITHUB_SUMMARY: ("github", "StepSummary"),
    ReportFormat.MARKDOWN: ("markdown", "PullRequestComment"),
    ReportFormat.BENCH_CUSTOM: ("bench", "CustomSmallerIsBetter"),
    ReportFormat.BENCHER: ("bench", "BencherMetricFormat"),
    ReportFormat.HTML: ("html", "HtmlReport"),
    ReportFormat.TERMINAL: ("terminal", "TerminalTable"),
    ReportFormat.EXPLAIN: ("explain", "Explanation"),
    ReportFormat.PYTEST_SUMMARY: ("plain", "PytestSummary"),
    ReportFormat.GUARANTEES: ("guarantees", "Guarantees"),
}


class _Reporters(Mapping[ReportFormat, Reporter]):
    """Every format's reporter, its module imported when the format is first asked for: a
    check that prints the terminal table does not import the JUnit or HTML writers."""

    def __init__(self) -> None:
        self._made: dict[ReportFormat, Reporter] = {}

    def __getitem__(self, fmt: ReportFormat) -> Reporter:
        if fmt not in self._made:
            module, name = _REPORTER_CLASSES[fmt]
            self._made[fmt] = getattr(importlib.import_module(f"runner.reports.{module}"),
                                      name)()
        return self._made[fmt]

    def __iter__(self) -> Iterator[ReportFormat]:
        return iter(_REPORTER_CLASSES)

    def __len__(self) -> int:
        return len(_REPORTER_CLASSES)


REPORTERS: Mapping[ReportFormat, Reporter] = _Reporters()
__all__ = ["REPORTERS", "ReportError", "ReportFormat", "Reporter",
           "check_available", "render_text", "report_target", "write_report"]


def check_available(fmt: ReportFormat) -> None:
    """Raise ReportError when this host lacks what the format needs (before measuring)."""
    if fmt is ReportFormat.HTML:
        from runner.reports import html

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
