"""GitHub Actions: workflow commands that annotate the SLA file, and the job summary.

``::error file=sla.yaml,line=13,title=...::message`` puts each broken SLA on the line of the rule
that it breaks, in the pull request's diff and the run's summary. Messages and properties are
escaped as the Actions runner expects (actions/toolkit ``command.ts``): ``%``, CR and LF
everywhere, and ``:`` and ``,`` in properties as well.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

from runner.reports.common import VerdictRow, failure_message, verdict_rows
from runner.reports.markdown import body
from runner.results import Case, Results


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(kind: str, message: str, **properties: str | int | None) -> str:
    """One workflow command line, e.g. ``command("error", "msg", file="sla.yaml", line=3)``."""
    props = ",".join(f"{key}={escape_property(str(value))}"
                     for key, value in properties.items() if value is not None and value != "")
    return f"::{kind}{' ' + props if props else ''}::{escape_data(message)}"


def annotation_path(file: str) -> str:
    """The path as annotations want it: relative to the workspace (the working directory)."""
    path = Path(file)
    if path.is_absolute():
        root = Path(os.environ.get("GITHUB_WORKSPACE") or Path.cwd())
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            return path.as_posix()
    return path.as_posix()


def workflow_commands(results: Results) -> list[str]:
    lines = [_verdict_command(results, row) for row in verdict_rows(results)
             if row.verdict.passed is not True and not row.verdict.skipped]
    for case in results.cases:
        if case.error and not case.verdicts:
            lines.append(command("error", f"{case.label}: not measured: {case.error}",
                                 file=annotation_path(results.sla_file),
                                 title=f"memsla: {case.label} not measured"))
        if case.approximate:
            lines.append(_approximate_command(results, case))
    if results.interrupted:
        lines.append(command("warning", "the check was interrupted: results are partial",
                             title="memsla interrupted"))
    return lines


def _verdict_command(results: Results, row: VerdictRow) -> str:
    verdict = row.verdict
    # Implicit rules (the build must exit 0) are not written in the file: point at the file.
    file = annotation_path(verdict.file or results.sla_file)
    if verdict.passed is None:
        title = f"SLA not judged: {verdict.rule}"
    else:
        title = f"SLA broken: {verdict.rule}"
    message = failure_message(row)
    if verdict.approximate:
        message += " (approximate measurement)"
    return command("error", message, file=file, line=verdict.line, title=title)


def _approximate_command(results: Results, case: Case) -> str:
    lines = [v.line for v in case.verdicts if v.approximate and v.line is not None]
    notes = list(dict.fromkeys(note for run in case.runs for note in run.notes))
    message = (f"{case.label}: backend {case.backend!r} measured this case approximately; "
               "its verdicts are not kernel-exact")
    if notes:
        message += "\n" + "\n".join(notes)
    return command("warning", message, file=annotation_path(results.sla_file),
                   line=min(lines, default=None), title=f"approximate result: {case.label}")


class WorkflowCommands:
    """Annotations, written to the job's standard output for the runner to pick up."""

    def render(self, results: Results, out: TextIO, *, baseline: Results | None = None) -> None:
        for line in workflow_commands(results):
            out.write(line + "\n")


class StepSummary:
    """The markdown job summary; appended, since each step may add to the file."""

    def render(self, results: Results, out: TextIO, *, baseline: Results | None = None) -> None:
        out.write("\n".join(body(results, baseline, level=3)) + "\n\n")
