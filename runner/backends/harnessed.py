"""Builds whose whole cgroup the runner cannot read from outside (a container, a systemd scope)
run under the harness (``runner.probe.harness``) as the cgroup's first process: the command that
starts it, and its report turned into a RawRun."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runner.backends.interface import RawRun
from runner.results import Timeline

HARNESS_REPORT = "harness.json"


def harness_command(python: str, out: str, interval: float, workdir: str,
                    argv: list[str]) -> list[str]:
    """``python -S``: the probe's sitecustomize must not load into the harness itself."""
    return [python, "-S", "-m", "runner.probe.harness", "--out", out, "--interval",
            repr(interval), "--workdir", workdir, "--", *argv]


def read_report(folder: Path) -> dict[str, Any] | None:
    try:
        report = json.loads((folder / HARNESS_REPORT).read_text())
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) else None


def from_report(report: dict[str, Any], *, limit: int | None, sample_interval: float,
                host_duration: float, timed_out: bool, stderr_tail: str,
                notes: list[str], outside_oom: bool = False) -> RawRun:
    """The harness's report as a RawRun; ``outside_oom``: an OOM kill seen from outside too."""
    notes = list(notes)
    if report.get("error"):
        notes.append(str(report["error"]))
    if report.get("swap_allowed") is True:
        notes.append("swap is allowed in this cgroup: the build may swap instead of being killed")
    # A grandchild killed while the build's parent lives leaves exit 0: the kernel's counter
    # (read by the harness) catches it.
    oom_kills = max(int(report.get("oom_kills") or 0), 1 if outside_oom else 0)
    timeline = report.get("timeline")
    return RawRun(
        exit_code=report.get("exit_code"), signal=report.get("signal"),
        duration=float(report.get("duration") or host_duration), timed_out=timed_out,
        oom_kills=oom_kills, oom_killed=oom_kills > 0, cpu_time=report.get("cpu_time"),
        cgroup_peak=report.get("cgroup_peak"), rss_peak=report.get("max_anon"),
        cache_peak=report.get("cache_at_max"), limit=report.get("limit") or limit,
        timeline=Timeline(interval=sample_interval, **timeline) if timeline else None,
        stderr_tail=stderr_tail, notes=notes)
