"""Builds whose whole cgroup the runner cannot read from outside (a container, a systemd scope)
run under the harness (``runner.inbuild.harness``) as the cgroup's first process: the command that
starts it, and its report read back as ``Readings``."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from runner.backends.interface import RunRequest
from runner.inbuild.reaper import work_prefix
from runner.measure import staging
from runner.measure.assemble import assemble_run
from runner.measure.readings import Readings
from runner.results import LimitChange, Timeline

HARNESS_REPORT = "harness.json"
IDLE_LIMIT = 256 * 1024 * 1024
# The harness's report keys that are Readings fields of the same name, taken as they are.
_RAW_KEYS = ("exit_code", "signal", "cpu_time", "kernel_peak", "sampled_max_usage",
             "sampled_max_anon", "anon_at_end", "cache_at_max", "oom_kill_counter", "limit_read",
             "swap_allowed")


def run_idle(run: Callable[[RunRequest], Readings], workdir: Path | None = None
             ) -> tuple[int | None, str]:
    """The harness running ``true`` through ``run``: its cgroup peak is what a build sharing
    the harness's cgroup carries on top. Returns that peak, or None and the last line saying
    why."""
    from runner.workload.cache import cache_dir, work_root

    root = work_root(cache_dir())
    root.mkdir(parents=True, exist_ok=True)
    # named for this runner: a dead runner's leftover is removed by the next one
    with tempfile.TemporaryDirectory(prefix=work_prefix(os.getpid()), dir=root) as tmp:
        folders = [Path(tmp) / name for name in ("probe", "output", "scratch")]
        for folder in folders:
            folder.mkdir()
        readings = run(RunRequest(
            argv=["true"], env={}, workdir=workdir or Path(tmp), limit=IDLE_LIMIT,
            timeout=120, sample_interval=0.02, trace=False,
            probe_stage=staging.stage(cache_dir()), probe_out=folders[0], output=folders[1],
            scratch=folders[2]))
        idle = assemble_run("warmup", 0, readings, folders[0])
    if idle.exit_code == 0 and idle.cgroup_peak is not None:
        return idle.cgroup_peak, ""
    lines = idle.stderr_tail.strip().splitlines()[-1:] or readings.notes[-1:] or ["no report"]
    return None, lines[0]


def harness_command(python: str, out: str, interval: float, workdir: str,
                    argv: list[str], *, lifeline: bool,
                    read_cgroup: bool = True, build_cgroup: str | None = None) -> list[str]:
    """``python -S``: the probe's sitecustomize must not load into the harness itself.

    ``lifeline``: the harness's stdin is a pipe the runner holds open for the run (end of file:
    the runner is gone, the harness kills the build); ``read_cgroup`` False: the harness's
    cgroup is not the build's own (the process backend); ``build_cgroup``: the cgroup the build
    enters and the harness reads, apart from the harness's own."""
    flags = (["--lifeline"] if lifeline else []) + ([] if read_cgroup else ["--no-cgroup"])
    flags += ["--cgroup", build_cgroup] if build_cgroup else []
    return [python, "-S", "-m", "runner.inbuild.harness", "--out", out, "--interval",
            repr(interval), "--workdir", workdir, *flags, "--", *argv]


def read_report(folder: Path) -> dict[str, Any] | None:
    """The harness's report, with every value of a type the harness does not write dropped
    (the folder is writable by the build, so the file is untrusted input)."""
    try:
        report = json.loads((folder / HARNESS_REPORT).read_text())
    except (OSError, ValueError):
        return None
    return _well_typed(report) if isinstance(report, dict) else None


def _is_limit_change(item: object) -> bool:
    try:
        LimitChange.model_validate(item)
    except ValidationError:
        return False
    return True


def _well_typed(report: dict[str, Any]) -> dict[str, Any]:
    def number(value: object) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    def series(value: object) -> bool:
        return isinstance(value, list) and all(item is None or number(item) for item in value)

    kept: dict[str, Any] = {}
    dropped = []
    for key, value in report.items():
        if value is None:
            fits = True
        elif key == "swap_allowed":
            fits = isinstance(value, bool)
        elif key in ("error", "peak_file"):
            fits = isinstance(value, str)
        elif key == "limit_changes":
            fits = isinstance(value, list) and all(_is_limit_change(item) for item in value)
        elif key == "timeline":
            fits = isinstance(value, dict) and set(value) <= {"t", "cgroup", "anon"} and all(
                series(item) for item in value.values())
        else:
            fits = number(value) or isinstance(value, bool)
        if fits:
            kept[key] = value
        else:
            dropped.append(key)
    if dropped:
        kept["error"] = "; ".join(filter(None, [
            str(kept.get("error") or ""),
            f"the harness report held values it does not write ({', '.join(dropped)}): dropped"]))
    return kept


def from_report(report: dict[str, Any], *, sample_interval: float, host_duration: float,
                timed_out: bool, stderr_tail: str, limit_set: int | None,
                engine_oom_killed: bool = False, swap_allowed: bool | None = None) -> Readings:
    """The harness's report plus what was seen from outside: the host's clock (used where the
    harness took none), the limit asked for, the engine's OOM flag and swap rule (used where
    the harness read none)."""
    raw = {key: report.get(key) for key in _RAW_KEYS}
    if raw["swap_allowed"] is None:
        raw["swap_allowed"] = swap_allowed
    timeline = report.get("timeline")
    took = report.get("duration")  # 0.0: the build never started
    return Readings(
        **raw, duration=float(took or host_duration),
        duration_source="build" if took else "outside", timed_out=timed_out,
        engine_oom_killed=engine_oom_killed, limit_set=limit_set,
        limit_changes=[LimitChange.model_validate(change)
                       for change in report.get("limit_changes") or []],
        timeline=Timeline(interval=sample_interval, **timeline) if timeline else None,
        stderr_tail=stderr_tail,
        notes=([str(report["error"])] if report.get("error") else []) + _left_running(report))


def without_report(status: tuple[int | None, int | None], *, host_duration: float,
                   timed_out: bool, notes: list[str], limit_set: int | None = None,
                   stderr_tail: str = "", cpu_time: float | None = None,
                   engine_oom_killed: bool = False,
                   swap_allowed: bool | None = None) -> Readings:
    """The readings of a build whose harness left no report (killed, or it could not start):
    ``status`` is the (exit code, signal) seen from outside (``runner.inbuild.waiting``), the
    clock the host's, and no peak; ``notes`` say what the backend could still read."""
    exit_code, signal = status
    return Readings(
        exit_code=exit_code, signal=signal, duration=host_duration, duration_source="outside",
        timed_out=timed_out, cpu_time=cpu_time, engine_oom_killed=engine_oom_killed,
        limit_set=limit_set, swap_allowed=swap_allowed, stderr_tail=stderr_tail, notes=notes)


def _left_running(report: dict[str, Any]) -> list[str]:
    left = report.get("left_running")
    return [f"the build left {left} process(es) running after it exited; the harness killed "
            "them"] if left else []
