"""Where every per-run figure is born: a backend's raw ``Readings`` plus the probe's records
become one ``Run``. Backends only read; nothing downstream derives a run-level figure again.

Each figure has one function here, and each function says what the figure is.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from runner.measure.probe_records import ProbeData, read_probe_dir
from runner.measure.readings import Readings
from runner.results import LeakRecord, LimitChange, PythonHeap, Run, RunKind, StepResult, Timeline
from runner.units import format_bytes, format_seconds

NO_LIMIT_NOTE = "no memory limit was set: the build could use all of the host's memory"
SWAP_NOTE = "swap is allowed in this cgroup: the build may swap instead of being killed"
# Limits are kept in whole pages: a limit read back within the largest page size (64 KiB,
# arm64) of the one asked for is that limit.
PAGE_ROUNDING = 64 * 1024
# The kernel may charge a little past a limit (allocations that cannot fail, a dying process's
# last pages): a peak this far above the limit means the limit did not hold.
PEAK_SLACK_FRACTION = 0.01
PEAK_SLACK_MIN = 4 * 1024 * 1024
TREE_RSS_NOTE = ("no hard limit on this backend; memory is the sampled sum of the process "
                 "tree's RSS (shared pages counted once per process, short spikes can be missed)")


def assemble_run(kind: RunKind, index: int, readings: Readings, probe_out: Path,
                 cache_sites: Mapping[str, str] | None = None) -> Run:
    """One run's result: the backend's readings plus what the probe (and leak driver) wrote.
    The scenario's named folders are read by the executor once the run (all its steps) ended,
    with ``disk_usage``."""
    leak: LeakRecord | None = None
    if kind == "leak":  # only a leak run has the leak driver's record
        from runner.measure.leak_records import read_leak

        leak = read_leak(probe_out)
    return assemble(kind, index, readings, read_probe_dir(probe_out), leak, cache_sites)


def assemble(kind: RunKind, index: int, readings: Readings, probe: ProbeData,
             leak: LeakRecord | None = None,
             cache_sites: Mapping[str, str] | None = None) -> Run:
    """The same on plain data: readings, the probe's parsed records and the leak record."""
    kills = oom_kills(readings)
    changes = limit_changes(readings)
    changed = limit_changed(readings, changes)
    run_limit = limit(readings, changed)
    heaps = probe.python if kind == "traced" else []
    return Run(
        kind=kind, index=index, exit_code=readings.exit_code, signal=readings.signal,
        timed_out=readings.timed_out, oom_killed=kills > 0, oom_kills=kills,
        duration=readings.duration, cpu_time=readings.cpu_time,
        cgroup_peak=cgroup_peak(readings, probe), rss_peak=rss_peak(readings, probe),
        cache_peak=cache_peak(readings), harness_subtracted=harness_subtracted(readings),
        limit=run_limit, limit_changed=changed,
        limit_changes=changes, approximate=approximate(readings),
        python=heaps, python_peak=python_peak(heaps), python_final=python_final(heaps),
        allocations=allocations(heaps), allocated=allocated(heaps),
        allocation_calls=allocation_calls(heaps), cache=cache_held(heaps, cache_sites or {}),
        phases=probe.phases,
        timeline=readings.timeline, leak=leak, stderr_tail=readings.stderr_tail,
        tracker_error=probe.tracker_error if kind == "traced" else None,
        notes=[*([changed] if changed else []), *notes(readings, run_limit), *readings.notes,
               *probe.problems])


def assemble_steps(kind: RunKind, index: int, steps: list[StepResult]) -> Run:
    """One run of a step scenario, made of its steps' own runs (each assembled from its own
    readings): the steps are kept as they are (``Run.steps``), and the run's figures are the
    whole sequence's. Peaks (cgroup, RSS, heap) are the largest of the steps', since each step
    was a build of its own; durations, CPU times, OOM kills and memray's bytes and calls
    allocated are summed; the heap at exit and
    the blocks held are the last step's that ran; the exit status and how the run failed are
    the first step's that did not complete (the steps after it were not run). The timeline is
    the steps' timelines one after the other."""
    ran = [step.run for step in steps if step.run is not None]
    failed = next((run for run in ran if not run.completed), None)
    last = failed or ran[-1]

    def largest(field: str) -> int | None:
        values = [getattr(run, field) for run in ran if getattr(run, field) is not None]
        return max(values) if values else None

    cpu = [run.cpu_time for run in ran if run.cpu_time is not None]
    kills = sum(run.oom_kills for run in ran)
    changed = next((run.limit_changed for run in ran if run.limit_changed), None)
    not_run = [step.name for step in steps if step.run is None]
    said = [f"steps not run, as step {_step_of(steps, failed)!r} did not complete: "
            + ", ".join(not_run)] if not_run and failed is not None else []
    return Run(
        kind=kind, index=index, exit_code=last.exit_code, signal=last.signal,
        timed_out=last.timed_out, oom_killed=kills > 0, oom_kills=kills,
        duration=sum(run.duration for run in ran), cpu_time=sum(cpu) if cpu else None,
        cgroup_peak=largest("cgroup_peak"), rss_peak=largest("rss_peak"),
        cache_peak=largest("cache_peak"), harness_subtracted=largest("harness_subtracted"),
        limit=ran[0].limit, limit_changed=changed,
        limit_changes=[c for run in ran for c in run.limit_changes],
        approximate=any(run.approximate for run in ran),
        python=[heap for run in ran for heap in run.python],
        python_peak=largest("python_peak"), python_final=last.python_final,
        allocations=last.allocations, allocated=_total([run.allocated for run in ran]),
        allocation_calls=_total([run.allocation_calls for run in ran]),
        phases=[phase for run in ran for phase in run.phases], timeline=_joined(ran),
        stderr_tail=last.stderr_tail,
        tracker_error=next((run.tracker_error for run in ran if run.tracker_error), None),
        notes=[*said, *dict.fromkeys(note for run in ran for note in run.notes)], steps=steps)


def _step_of(steps: list[StepResult], run: Run | None) -> str:
    return next((step.name for step in steps if step.run is run), "")


def _joined(runs: list[Run]) -> Timeline | None:
    """The steps' timelines one after the other, each from where the one before it ended."""
    lines = [run.timeline for run in runs if run.timeline is not None]
    if len(lines) != len(runs) or not lines:
        return None
    joined = Timeline(interval=lines[0].interval)
    offset = 0.0
    for run, line in zip(runs, lines, strict=True):
        joined.t.extend(round(offset + t, 4) for t in line.t)
        joined.cgroup.extend(line.cgroup)
        joined.anon.extend(line.anon)
        offset += run.duration
    return joined


def approximate(readings: Readings) -> bool:
    """True where memory comes from sampling the process tree instead of a cgroup."""
    return readings.tree_rss_max is not None


def cgroup_peak(readings: Readings, probe: ProbeData) -> int | None:
    """The build's charged-memory high-water mark, page cache included: the largest of the
    kernel's peak file, the sampler's max usage and the peaks the probe read before it reset
    the kernel's at phase starts. Process backend: the tree RSS max (approximate).

    The harness that runs a container's build is not in it where the build has a cgroup of its
    own; where it shares the build's (``harness_subtracted``), the idle harness's peak is taken
    off."""
    if approximate(readings):
        return readings.tree_rss_max or None
    seen = [readings.kernel_peak, readings.sampled_max_usage, *probe.cgroup_segments]
    peak = max((value for value in seen if value is not None), default=0)
    return max(peak - (harness_subtracted(readings) or 0), 0) if peak else None


def harness_subtracted(readings: Readings) -> int | None:
    """The bytes taken off the cgroup peak for the harness that shared the build's cgroup
    (the idle harness's own peak, measured once per image); None where nothing was taken off:
    the build had a cgroup of its own, or ran with no harness in its cgroup."""
    if approximate(readings) or not readings.harness_share:
        return None
    return readings.harness_share


def rss_peak(readings: Readings, probe: ProbeData) -> int | None:
    """The build's anonymous-memory high-water mark (heaps and stacks, no page cache): the
    largest of the sampled cgroup anon, the anon at the end and the largest process's own
    VmHWM from the probe. Process backend: the tree RSS max (approximate) and VmHWM."""
    if approximate(readings):
        seen = [readings.tree_rss_max]
    else:
        seen = [readings.sampled_max_anon, readings.anon_at_end]
    seen.append(probe.vm_hwm)
    return max((value for value in seen if value is not None), default=0) or None


def python_peak(heaps: list[PythonHeap]) -> int | None:
    """The traced run's heap peak: the highest of its Python processes' own peaks
    (tracemalloc's Python heap, or memray's high-water mark of every allocation). Processes peak
    at different times, so this is the largest process, not a sum. None: no process reported."""
    return max((heap.peak for heap in heaps), default=None)


def python_final(heaps: list[PythonHeap]) -> int | None:
    """The heap still traced when the build exits, before the exit's full collection: the
    largest of its processes' (None: no process lived to report it)."""
    return max((heap.final for heap in heaps if heap.final is not None), default=None)


def allocations(heaps: list[PythonHeap]) -> int | None:
    """Memory blocks the build's Python processes still hold at exit, after a full
    collection, summed over them (None: no process reported them)."""
    return _total([heap.blocks for heap in heaps])


def allocated(heaps: list[PythonHeap]) -> int | None:
    """Bytes requested by every allocation call over the run, freed or not, summed over the
    build's processes (memray only: None under tracemalloc)."""
    return _total([heap.allocated for heap in heaps])


def allocation_calls(heaps: list[PythonHeap]) -> int | None:
    """Allocation calls over the run, summed over the build's processes (memray only)."""
    return _total([heap.allocation_calls for heap in heaps])


def _total(values: list[int | None]) -> int | None:
    known = [value for value in values if value is not None]
    return sum(known) if known else None


def disk_usage(folders: Mapping[str, Path]) -> tuple[dict[str, int], dict[str, int]]:
    """``disk(NAME)`` and ``disk_files(NAME)``: the bytes (apparent sizes) and the number of the
    regular files under each named folder as the build left it, walked after the run, outside
    the measurement; symlinks are neither followed nor counted. A folder that is not there
    (the build made none) has 0 bytes and 0 files."""
    sizes: dict[str, int] = {}
    counts: dict[str, int] = {}
    for name, folder in folders.items():
        total = files = 0
        for parent, _, names in os.walk(folder):
            for entry in names:
                try:
                    info = os.lstat(os.path.join(parent, entry))
                except OSError:  # removed while we walked
                    continue
                if info.st_mode & 0o170000 == 0o100000:  # a regular file
                    total += info.st_size
                    files += 1
        sizes[name], counts[name] = total, files
    return sizes, counts


def cache_held(heaps: list[PythonHeap], prefixes: Mapping[str, str]) -> dict[str, int]:
    """``cache(NAME)``: the bytes the program's cache objects hold at the heap's peak: of the
    sites taken at each process's high-water mark (the probe's top sites: a lower bound where
    the cache is spread over more lines than it keeps), those whose file path starts with the
    prefix, at its start or after a '/' (``jinja2/`` matches ``.../site-packages/jinja2/x.py``).
    Empty where no process reported its sites at the peak (no traced run)."""
    taken = [heap.at_peak for heap in heaps if heap.at_peak is not None]
    if not taken:
        return {}
    return {name: sum(site.size for sites in taken for site in sites.sites
                      if _under(site.file, prefix))
            for name, prefix in prefixes.items()}


def _under(file: str, prefix: str) -> bool:
    file = file.replace(os.sep, "/")
    return file.startswith(prefix) or f"/{prefix.lstrip('/')}" in file


def cache_peak(readings: Readings) -> int | None:
    """The page cache charged at the time of the cgroup's sampled max."""
    return readings.cache_at_max


def oom_kills(readings: Readings) -> int:
    """Processes of the build the kernel OOM-killed: its counter, or at least one where the
    engine saw an OOM kill the counter missed (a container gone before it was read)."""
    return max(readings.oom_kill_counter or 0, 1 if readings.engine_oom_killed else 0)


def limit(readings: Readings, changed: str | None = None) -> int | None:
    """The hard limit the run is judged under: as read back from the cgroup (page-rounded),
    else as the backend set it; where the limit did not hold, the one that was asked for."""
    if changed is not None or readings.limit_read is None:
        return readings.limit_set
    return readings.limit_read


def limit_changes(readings: Readings) -> list[LimitChange]:
    """Every change of a limit of the build's cgroups: those the backend saw during and after
    the build, else the limit read after the build where it is not the one asked for."""
    if readings.limit_changes:
        return list(readings.limit_changes)
    asked, read = readings.limit_set, readings.limit_read
    if asked is not None and read is not None and abs(read - asked) >= PAGE_ROUNDING:
        return [LimitChange(cgroup="own", before=asked, after=read)]
    return []


def limit_changed(readings: Readings, changes: list[LimitChange]) -> str | None:
    """Why the run was not held by the limit it was given, in words; None: it was. Either a
    limit of its cgroups changed, or its cgroup's peak went above the limit (a limit raised and
    set back between two reads leaves that trace only)."""
    if changes:
        first = changes[0]
        # memory and memory+swap usually change together: one sentence names both files, in
        # one order (the memory file sorts first on both versions), whether the sampler saw
        # them change in one read or in two
        alike = [c for c in changes if (c.cgroup, c.before, c.after) == (
            first.cgroup, first.before, first.after)]
        files = " and ".join(sorted(c.file for c in alike if c.file))
        where = "its own cgroup" if first.cgroup == "own" else (
            "the parent cgroup holding its limit")
        when = ("read after the build" if first.at is None
                else f"{format_seconds(first.at)} into the build")
        said = (f"the build changed its memory limit from {_limit_words(first.before)} to "
                f"{_limit_words(first.after)} ({files + ' of ' if files else ''}"
                f"{where}, {when})")
        if len(changes) > len(alike):
            said += f", and {len(changes) - len(alike)} other limit change(s)"
        if any(change.stopped for change in changes):
            said += "; the runner stopped the build"
        return said
    asked = readings.limit_set
    seen = [value for value in (readings.kernel_peak, readings.sampled_max_usage)
            if value is not None]
    if asked is None or not seen:
        return None
    if max(seen) > asked + max(PEAK_SLACK_MIN, asked * PEAK_SLACK_FRACTION):
        return (f"the build's cgroup peaked at {format_bytes(max(seen))}, above its limit of "
                f"{format_bytes(asked)}: the build changed its memory limit during the run")
    return None


def _limit_words(value: int | None) -> str:
    return "no limit" if value is None else format_bytes(value)


def notes(readings: Readings, run_limit: int | None) -> list[str]:
    """What the figures mean on this run: an approximation, no limit, swap allowed."""
    said = []
    if approximate(readings):
        said.append(TREE_RSS_NOTE)
    elif run_limit is None:
        said.append(NO_LIMIT_NOTE)
    if readings.swap_allowed:
        said.append(SWAP_NOTE)
    return said
