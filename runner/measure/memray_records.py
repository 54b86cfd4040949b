"""Reads the capture files memray wrote inside the build (``tracker: memray``) into the results
model, on the host: the heap's high-water mark, the bytes and calls allocated over the run
(``memray stats``' totals), what was still held at the end, and the sites held at the
high-water mark, with native stacks where the build asked for them.

Each phase's heap figures come from memray's temporal high-water marks: memray writes a memory
snapshot every 10 ms and keeps, for each interval between two snapshots, the heap's highest
point and the allocations held there. A phase's ``python_peak`` is the highest of the intervals
it overlaps, and the sites at its peak those held at that interval's high point. The probe keeps
the build still for 15 ms before a phase starts and after it ends (within a time budget), so a
snapshot falls between the phase and what came before and after: its first and last intervals
then hold only the phase, and its ``python_entry`` is the heap at that snapshot, exact (where
the build's other threads allocate meanwhile, they count too). Where no snapshot fell in the
stillness before the start (past the budget, or memray's thread was late), ``python_entry`` is
what was held both at the high point of the interval before the one the phase starts in and at
that of the interval after (an allocation lives one stretch of time, so it was held at the start
too): a lower bound. Either way a phase's growth is never under-reported, so a gate on it
cannot pass falsely; without the stillness it may include what a neighbouring phase held within
about 10 ms of the boundary.

memray is an optional dependency (``pip install 'memsla[memray]'``): without it here, the
files are left unread and the run says why."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.results import AllocationSite, PeakSites, PhaseResult, PythonHeap, StackFrame

TOP_SITES = 15
MAX_STACK = 16  # frames kept of each site's stack (Python and native)
# Phases whose sites at their own peak are listed, largest growth first: a phase on a function
# called once per page would otherwise read the capture's records once per page.
MAX_PHASE_SITES = 32
# memray stamps its snapshots in whole milliseconds (cut, not rounded) and the probe its phases
# to 0.1 ms: a snapshot stamped T was taken in [T, T + 1 ms), known to within this.
SNAPSHOT_SLACK_S = 0.0015
NOT_INSTALLED = ("memray wrote {count} capture file(s) in the build, but memray is not "
                 "installed where memsla runs: pip install 'memsla[memray]' to read them")


@dataclass
class MemrayData:
    python: list[PythonHeap] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def capture_files(directory: Path) -> list[Path]:
    """memray-<pid>.bin per process; a forked child's carries its own pid after it."""
    return sorted(directory.glob("memray-*.bin*"))


PhaseKey = tuple[str, int, float]  # a phase's name, depth and start, as the probe wrote them


@dataclass
class PhaseJob:
    """One process's phases whose heap figures its capture holds: their times in seconds since
    ``t0`` (an epoch time), and when the build was kept still before each phase's start."""

    phases: list[PhaseResult]
    t0: float
    quiet_from: dict[PhaseKey, float]


def read_memray_dir(directory: Path, phase_jobs: dict[str, PhaseJob] | None = None, *,
                    totals: bool = True) -> MemrayData:
    """Every capture file in ``directory``: each process's heap figures, and the heap figures
    of the phases in ``phase_jobs`` (by capture file name), read with the same reader: memray
    reads the whole file once whenever a reader is opened. Without ``totals`` the full
    captures' totals are left to ``capture_totals`` (another pass, which may run beside)."""
    data = MemrayData()
    files = capture_files(directory)
    if not files:
        return data
    try:
        import memray
        from memray._memray import compute_statistics
    except ImportError:
        data.problems.append(NOT_INSTALLED.format(count=len(files)))
        return data
    for path in files:
        try:
            data.python.append(_read_file(path, memray, compute_statistics if totals else None,
                                          (phase_jobs or {}).get(path.name), data.problems))
        except Exception as exc:  # a file from inside the build is untrusted
            data.problems.append(f"{path.name}: memray could not read it ({type(exc).__name__}: "
                                 f"{exc})"[:400])
    return data


def _read_file(path: Path, memray: Any, compute_statistics: Any, phases: PhaseJob | None,
               problems: list[str]) -> PythonHeap:
    """One capture: its high-water mark with the sites held there, what was held at the end,
    and (a full capture) the totals over the run and the phases' heap figures. An aggregated
    capture (``tracker: memray`` where the check reads neither) holds the first three only,
    summed up by memray in the build: reading it takes a fraction of a full capture's passes."""
    reader = memray.FileReader(str(path))
    try:
        meta = reader.metadata
        aggregated = _aggregated(memray, meta)
        stats = None if aggregated or compute_statistics is None else compute_statistics(
            str(path))
        at_peak = list(reader.get_high_watermark_allocation_records(merge_threads=True))
        native = bool(meta.has_native_traces)
        held = list(reader.get_leaked_allocation_records(merge_threads=True))
        final = sum(record.size for record in held)
        if phases is not None and aggregated:
            problems.append(f"{path.name}: memray's aggregated capture has no heap figures of "
                            "phases; a rule on a phase's python_peak or python_growth, or the "
                            "scenario's phases:, make the capture a full one")
        elif phases is not None:
            try:
                _add_phase_heaps(reader, phases.phases, phases.t0, phases.quiet_from)
            except Exception as exc:  # a file from inside the build is untrusted
                problems.append(f"{path.name}: its phases' heap figures could not be read "
                                f"({type(exc).__name__}: {exc})"[:400])
        return PythonHeap(
            pid=meta.pid, peak=meta.peak_memory, final=final, tracker="memray",
            allocated=None if stats is None else stats.total_memory_allocated,
            allocation_calls=None if stats is None else stats.total_num_allocations,
            native=native,
            at_peak=PeakSites(heap=sum(r.size for r in at_peak),
                              peak=meta.peak_memory, tolerance=0.0, tolerance_bytes=0,
                              sites=sites(at_peak, native)))
    finally:
        reader.close()


def unwritten_captures(directory: Path) -> list[str]:
    """The capture files in ``directory`` memray cannot open: under its aggregated capture, a
    process that ended without stopping its tracker (killed by a signal) never wrote its
    figures. [] where memray is not installed here (``read_memray_dir`` says so)."""
    try:
        import memray
    except ImportError:
        return []
    unwritten = []
    for path in capture_files(directory):
        try:
            memray.FileReader(str(path)).close()
        except Exception:  # a file from inside the build is untrusted
            unwritten.append(path.name)
    return unwritten


def capture_totals(directory: Path) -> dict[int, tuple[int, int]]:
    """Each capture's totals over the run, by the pid that wrote it: (bytes allocated,
    allocation calls), as ``read_memray_dir`` reads them. Raises what memray raises."""
    from memray._memray import compute_statistics

    found = {}
    for path in capture_files(directory):
        stats = compute_statistics(str(path))
        found[stats.metadata.pid] = (stats.total_memory_allocated, stats.total_num_allocations)
    return found


def _aggregated(memray: Any, meta: Any) -> bool:
    """Whether the capture is memray's aggregated one (no record of each allocation)."""
    file_format = getattr(memray, "FileFormat", None)
    return file_format is not None and getattr(meta, "file_format", None) == (
        file_format.AGGREGATED_ALLOCATIONS)


def sites(records: list[Any], native: bool, limit: int = TOP_SITES) -> list[AllocationSite]:
    """Records (one per stack and allocator) grouped by their innermost Python frame, largest
    first, each with the stack of its largest record; native frames where they were kept."""
    grouped: dict[tuple[str, int], list[Any]] = {}
    for record in records:
        stack = record.stack_trace(max_stacks=MAX_STACK)
        where = (stack[0][1], stack[0][2]) if stack else ("<native>", 0)
        site = grouped.setdefault(where, [0, 0, record, 0, stack])
        site[0] += record.size
        site[1] += record.n_allocations
        if record.size > site[3]:
            site[2], site[3], site[4] = record, record.size, stack
    top = sorted(grouped.items(), key=lambda item: item[1][0], reverse=True)[:limit]
    found = []
    for (file, line), (size, count, largest, _, stack) in top:
        native_stack = []
        if native:
            try:
                native_stack = [StackFrame(file=f, line=n, function=fn)
                                for fn, f, n in largest.native_stack_trace(max_stacks=MAX_STACK)]
            except Exception:  # a record without native frames
                native_stack = []
        found.append(AllocationSite(
            file=file, line=line, size=size, count=count,
            function=stack[0][0] if stack else None,
            stack=[StackFrame(file=f, line=n, function=fn) for fn, f, n in stack],
            native_stack=native_stack))
    return found


def add_phase_heaps(path: Path, phases: list[PhaseResult], t0: float,
                    quiet_from: dict[PhaseKey, float]) -> None:
    """``phases``' heap figures from the capture file ``path`` alone (``read_memray_dir`` reads
    them with the process's heap, from one reader)."""
    import memray

    reader = memray.FileReader(str(path))
    try:
        _add_phase_heaps(reader, phases, t0, quiet_from)
    finally:
        reader.close()


def _add_phase_heaps(reader: Any, phases: list[PhaseResult], t0: float,
                     quiet_from: dict[PhaseKey, float]) -> None:
    """Fill the heap figures of ``phases`` (one process's, times in seconds since ``t0``, an
    epoch time) from that process's open capture ``reader``; ``quiet_from``: when the build was
    kept still before each phase's start. The module docstring says how. Raises what memray
    raises on a file it cannot read."""
    native = bool(reader.metadata.has_native_traces)
    snapshots = [(snap.time / 1000, int(snap.heap)) for snap in reader.get_memory_snapshots()]
    times = [time for time, _ in snapshots]
    latest = [time + SNAPSHOT_SLACK_S for time in times]
    found, peaks = reader.get_temporal_high_water_mark_allocation_records(merge_threads=True)
    records = list(found)
    if not peaks:
        return
    held_across = _held_across(records, len(peaks))
    highest: list[tuple[PhaseResult, int]] = []  # each ended phase and its highest interval
    for phase in phases:
        if phase.end is None:  # the process died inside it: no end to measure to
            continue
        # the first interval that may hold the start, the last that may hold the end
        first = min(bisect_left(latest, t0 + phase.start), len(peaks) - 1)
        last = max(first, min(bisect_left(times, t0 + phase.end), len(peaks) - 1))
        interval = max(range(first, last + 1), key=peaks.__getitem__)
        phase.python_peak, phase.python_entry = peaks[interval], held_across[first]
        still = quiet_from.get((phase.name, phase.depth, phase.start))
        if still is not None and first > 0 and times[first - 1] >= t0 + still:
            phase.python_entry = snapshots[first - 1][1]  # the build was still since then
        phase.python_growth = max(0, phase.python_peak - phase.python_entry)
        highest.append((phase, interval))
    listed: dict[int, list[AllocationSite]] = {}
    for phase, interval in sorted(highest, key=lambda item: item[0].python_growth or 0,
                                  reverse=True):
        if interval not in listed and len(listed) < MAX_PHASE_SITES:
            listed[interval] = sites(_held_at(records, interval), native)
        phase.at_peak = PeakSites(heap=peaks[interval], peak=peaks[interval], tolerance=0.0,
                                  tolerance_bytes=0, sites=listed.get(interval, []))


def _held_across(records: list[Any], count: int) -> list[int]:
    """For each interval k of ``count``, the bytes held at the high points of both interval
    k - 1 and interval k + 1 (0 for the first: nothing was held before the capture began).
    An allocation counted at intervals ``[a, d)`` adds to k in ``[a + 1, d - 2]``."""
    change = [0] * (count + 1)
    for record in records:
        for span in record.intervals:
            low = span.allocated_before_snapshot + 1
            end = count if span.deallocated_before_snapshot is None else min(
                count, span.deallocated_before_snapshot - 1)
            if low < end:
                change[low] += span.n_bytes
                change[end] -= span.n_bytes
    held, total = [], 0
    for k in range(count):
        total += change[k]
        held.append(total)
    return held


@dataclass
class _HeldAt:
    """A temporal record's allocations held at one interval's high point, shaped as ``sites``
    reads a high-water-mark record."""

    record: Any
    size: int
    n_allocations: int

    def stack_trace(self, max_stacks: int) -> Any:
        return self.record.stack_trace(max_stacks=max_stacks)

    def native_stack_trace(self, max_stacks: int) -> Any:
        return self.record.native_stack_trace(max_stacks=max_stacks)


def _held_at(records: list[Any], interval: int) -> list[_HeldAt]:
    held = []
    for record in records:
        spans = [span for span in record.intervals
                 if span.allocated_before_snapshot <= interval
                 and (span.deallocated_before_snapshot is None
                      or interval < span.deallocated_before_snapshot)]
        if spans:
            held.append(_HeldAt(record, sum(s.n_bytes for s in spans),
                                sum(s.n_allocations for s in spans)))
    return held
