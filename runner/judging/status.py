"""The check's final word: its status from the verdicts, and why it is no pass where no verdict
says so. Given once the judging stage has judged every case and scenario."""

from __future__ import annotations

from typing import Literal

from runner.results import Results

Status = Literal["pass", "fail", "error", "interrupted", "measured"]


def status_of(results: Results) -> tuple[Status, list[str]]:
    """The check's final word, and why it is no pass where no verdict says so. A pass needs
    every verdict held, every case measured and at least one rule the user wrote judged: the
    implicit ones (the build must complete) alone do not make a gate. A shard never passes on
    its own: with nothing broken it is "measured", and ``runner merge`` gives the verdict."""
    if results.interrupted:
        return "interrupted", []
    verdicts = results.all_verdicts()
    if results.shard is not None:
        # what needs every case of a scenario (fits across sizes) is judged by runner merge
        verdicts = [v for case in results.cases for v in case.verdicts]
    # a broken SLA is the loudest news: it is not hidden by something else not being measured
    if any(v.passed is False for v in verdicts):
        return "fail", []
    judged = [v for v in verdicts if not v.skipped]
    if any(case.error for case in results.cases) or any(v.passed is None for v in judged):
        return "error", []
    if results.shard is not None:
        return "measured", [f"shard {results.shard.index}/{results.shard.count}: its cases were "
                            "measured and no rule of theirs is broken; runner merge judges the "
                            "whole file"]
    if not any(v.passed and not v.implicit for v in judged):
        return "error", ["no SLA written by the user (in the SLA file, a marker or an API call) "
                         "was judged: only the implicit rules (exit_code == 0, oom_kills == 0) "
                         "ran, and they alone make no gate"]
    return "pass", []


def settle(results: Results) -> None:
    """Give ``results`` their final status, adding why it is no pass to their problems."""
    results.status, problems = status_of(results)
    results.problems.extend(problems)
