"""Where every per-run number is born: a backend's raw readings plus the probe's records become
one ``Run``. Nothing downstream derives a run-level figure again."""

from __future__ import annotations

from pathlib import Path

from runner.backends.interface import RawRun
from runner.measure.leak_records import read_leak
from runner.measure.probe_records import read_probe_dir
from runner.results import Run, RunKind


def assemble_run(kind: RunKind, index: int, raw: RawRun, probe_out: Path) -> Run:
    """One run's result: the backend's kernel figures plus what the probe recorded."""
    data = read_probe_dir(probe_out)
    cgroup_peak = raw.cgroup_peak
    if data.cgroup_segments:  # the build reset the cgroup peak at phase starts
        cgroup_peak = max([cgroup_peak or 0, *data.cgroup_segments])
    rss_peak = raw.rss_peak
    if data.vm_hwm is not None:
        rss_peak = max(rss_peak or 0, data.vm_hwm)
    return Run(
        kind=kind, index=index, exit_code=raw.exit_code, signal=raw.signal,
        timed_out=raw.timed_out, oom_killed=raw.oom_killed, oom_kills=raw.oom_kills,
        duration=raw.duration, cpu_time=raw.cpu_time, cgroup_peak=cgroup_peak,
        rss_peak=rss_peak, cache_peak=raw.cache_peak, limit=raw.limit,
        approximate=raw.approximate, python=data.python if kind == "traced" else [],
        phases=data.phases, timeline=raw.timeline,
        leak=read_leak(probe_out) if kind == "leak" else None,
        stderr_tail=raw.stderr_tail, notes=raw.notes + data.problems)
