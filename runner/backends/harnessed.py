"""Builds whose whole cgroup the runner cannot read from outside (a container, a systemd scope)
run under the harness (``runner.inbuild.harness``) as the cgroup's first process: the command that
starts it, and its report turned into a RawRun."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runner.backends.interface import RawRun, RunRequest
from runner.measure import staging
from runner.results import Timeline

HARNESS_REPORT = "harness.json"
IDLE_LIMIT = 256 * 1024 * 1024


def run_idle(run: Callable[[RunRequest], RawRun], workdir: Path | None = None,
             image: str | None = None) -> tuple[int | None, str]:
    """The harness running ``true`` through ``run``: its cgroup peak is what every build
    carries on top. Returns that peak, or None and the last line saying why."""
    from runner.workload.cache import cache_dir

    with tempfile.TemporaryDirectory(prefix="memsla-baseline-") as tmp:
        folders = [Path(tmp) / name for name in ("probe", "output", "scratch")]
        for folder in folders:
            folder.mkdir()
        raw = run(RunRequest(
            argv=["true"], env={}, workdir=workdir or Path(tmp), limit=IDLE_LIMIT,
            timeout=120, sample_interval=0.02, trace=False,
            probe_stage=staging.stage(cache_dir()), probe_out=folders[0], output=folders[1],
            scratch=folders[2], image=image))
    if raw.exit_code == 0 and raw.cgroup_peak is not None:
        return raw.cgroup_peak, ""
    lines = raw.stderr_tail.strip().splitlines()[-1:] or raw.notes[-1:] or ["no report"]
    return None, lines[0]


def harness_command(python: str, out: str, interval: float, workdir: str,
                    argv: list[str]) -> list[str]:
    """``python -S``: the probe's sitecustomize must not load into the harness itself."""
    return [python, "-S", "-m", "runner.inbuild.harness", "--out", out, "--interval",
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
