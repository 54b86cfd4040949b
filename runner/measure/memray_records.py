"""Reads the capture files memray wrote inside the build (``tracker: memray``) into the results
model, on the host: the heap's high-water mark, the bytes and calls allocated over the run
(``memray stats``' totals), what was still held at the end, and the sites held at the
high-water mark, with native stacks where the build asked for them.

memray is an optional dependency (``pip install 'memsla[memray]'``): without it here, the
files are left unread and the run says why."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.results import AllocationSite, PeakSites, PythonHeap, StackFrame

TOP_SITES = 15
MAX_STACK = 16  # frames kept of each site's stack (Python and native)
NOT_INSTALLED = ("memray wrote {count} capture file(s) in the build, but memray is not "
                 "installed where memsla runs: pip install 'memsla[memray]' to read them")


@dataclass
class MemrayData:
    python: list[PythonHeap] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def capture_files(directory: Path) -> list[Path]:
    """memray-<pid>.bin per process; a forked child's carries its own pid after it."""
    return sorted(directory.glob("memray-*.bin*"))


def read_memray_dir(directory: Path) -> MemrayData:
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
            data.python.append(_read_file(path, memray, compute_statistics))
        except Exception as exc:  # a file from inside the build is untrusted
            data.problems.append(f"{path.name}: memray could not read it ({type(exc).__name__}: "
                                 f"{exc})"[:400])
    return data


def _read_file(path: Path, memray: Any, compute_statistics: Any) -> PythonHeap:
    reader = memray.FileReader(str(path))
    try:
        meta = reader.metadata
        stats = compute_statistics(str(path))
        at_peak = list(reader.get_high_watermark_allocation_records(merge_threads=True))
        native = bool(meta.has_native_traces)
        held = list(reader.get_leaked_allocation_records(merge_threads=True))
        final = sum(record.size for record in held)
        return PythonHeap(
            pid=meta.pid, peak=meta.peak_memory, final=final, tracker="memray",
            allocated=stats.total_memory_allocated,
            allocation_calls=stats.total_num_allocations, native=native,
            at_peak=PeakSites(heap=sum(r.size for r in at_peak),
                              peak=meta.peak_memory, tolerance=0.0, tolerance_bytes=0,
                              sites=sites(at_peak, native)))
    finally:
        reader.close()


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
