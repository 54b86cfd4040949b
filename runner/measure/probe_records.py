"""Reads the probe's JSON-lines files into the results model (host side).

The files are written inside the build, so they are untrusted input: a record that is not what
the probe writes is skipped with a note on the run, never a crash, and no file is read past
``MAX_FILE_BYTES``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from runner.measure.memray_records import MemrayData, PhaseJob, read_memray_dir
from runner.results import AllocationSite, PeakSites, PhaseResult, PythonHeap, StackFrame

# The probe writes a few KB per process (more with many phases); a larger file is not its own.
MAX_FILE_BYTES = 64 * 1024 * 1024


@dataclass
class ProbeData:
    python: list[PythonHeap] = field(default_factory=list)
    phases: list[PhaseResult] = field(default_factory=list)
    cgroup_segments: list[int] = field(default_factory=list)  # peaks recorded before resets
    vm_hwm: int | None = None  # the largest process's own RSS high-water mark
    hooks: dict[str, str] = field(default_factory=dict)  # zero-code phase target -> status
    # the tracker asked for could not run in the build: in none of its processes (where it
    # ran in some, this is a problem noted on the run, not an error of its figures)
    tracker_error: str | None = None
    problems: list[str] = field(default_factory=list)


def _sites(records: list[dict[str, Any]]) -> list[AllocationSite]:
    return [AllocationSite(file=r["file"], line=r["line"], size=r["size"], count=r["count"],
                           function=r.get("function"),
                           stack=[StackFrame(file=f["file"], line=f["line"],
                                             function=f.get("function"), code=f.get("code"))
                                  for f in r.get("stack") or []])
            for r in records]


def _peak_sites(record: dict[str, Any] | None) -> PeakSites | None:
    if not record:
        return None
    return PeakSites(t=record["t"], heap=record["heap"], peak=record.get("peak"),
                     tolerance=record.get("tolerance", 0.05),
                     tolerance_bytes=record.get("tolerance_bytes", 0),
                     sites=_sites(record.get("sites") or []))


def _growth(peak: Any, entry: Any) -> int | None:
    """What a phase added: its own peak minus the figure at its entry (never below 0: an own
    peak starts from the figure at entry)."""
    if peak is None or entry is None:
        return None
    return max(0, int(peak) - int(entry))


# What a zero-code phase's target became, best first: one process that wrapped it is enough.
HOOK_ORDER = ("wrapped", "not wrapped", "never imported")


def read_probe_dir(directory: Path, *, captures: bool = True, totals: bool = True
                   ) -> ProbeData:
    """Every process's records in ``directory`` (the probe's JSON lines, memray's captures
    unless not ``captures``, their totals over the run unless not ``totals``): its heap, its
    phases with their own peaks and times, the cgroup's peaks before the probe reset them; what
    could not be read as notes."""
    data = ProbeData()
    phase_jobs: dict[str, PhaseJob] = {}  # by capture file: read with the process's heap
    for path in sorted(directory.glob("probe-*.jsonl")):
        try:
            with path.open("rb") as handle:
                raw = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            data.problems.append(f"{path.name}: unreadable ({exc.strerror or exc})")
            continue
        if len(raw) > MAX_FILE_BYTES:
            data.problems.append(f"{path.name}: larger than {MAX_FILE_BYTES >> 20} MiB; read "
                                 "only that much")
            raw = raw[:MAX_FILE_BYTES]
        records: list[dict[str, Any]] = []
        for line in raw.decode("utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                data.problems.append(f"{path.name}: a truncated record was skipped")
                continue
            if isinstance(record, dict):
                records.append(record)
            else:
                data.problems.append(f"{path.name}: a record that is not an object was skipped")
        found = ProbeData()
        try:
            _read_process(records, found)
        except (KeyError, TypeError, ValueError, ValidationError) as exc:
            data.problems.append(f"{path.name}: records the probe does not write were found "
                                 f"and the file was skipped ({type(exc).__name__}: {exc})"[:400])
            continue
        _memray_phases(directory, records, found, phase_jobs)
        data.python += found.python
        data.phases += found.phases
        data.cgroup_segments += found.cgroup_segments
        data.problems += found.problems
        data.tracker_error = data.tracker_error or found.tracker_error
        for target, status in found.hooks.items():
            data.hooks[target] = min(status, data.hooks.get(target, status), key=_hook_rank)
        if found.vm_hwm is not None:
            data.vm_hwm = max(data.vm_hwm or 0, found.vm_hwm)
    data.phases.sort(key=lambda p: (p.start, p.depth))
    memray = (read_memray_dir(directory, phase_jobs, totals=totals) if captures
              else MemrayData())
    data.python += memray.python
    data.problems += memray.problems
    if data.tracker_error:
        data.problems.append(data.tracker_error)
        if memray.python:  # another process of the build was traced: its figures stand
            data.problems[-1] += " (in some of the build's processes; their heaps are left out)"
            data.tracker_error = None
    for target, status in data.hooks.items():
        if status != "wrapped":
            data.problems.append(f"phase {target}: {status}")
    return data


def _memray_phases(directory: Path, records: list[dict[str, Any]], found: ProbeData,
                   jobs: dict[str, PhaseJob]) -> None:
    """Under memray the probe times the phases and memray's capture of the same process holds
    their heap: they are read together with that process's heap (``read_memray_dir``)."""
    start = next((r for r in records if r.get("type") == "start"), None)
    if not found.phases or start is None or start.get("tracker") != "memray":
        return
    pid, t0 = start.get("pid"), start.get("t0")
    capture = directory / f"memray-{pid}.bin"
    if not isinstance(pid, int) or not isinstance(t0, float) or not capture.is_file():
        return  # no capture (memray did not start: said so), or records not the probe's
    quiet_from = {_phase_key(r): float(r["quiet_from"]) for r in records
                  if r.get("type") == "phase" and isinstance(r.get("quiet_from"), float)}
    jobs[capture.name] = PhaseJob(found.phases, t0, quiet_from)


def _hook_rank(status: str) -> int:
    return next((i for i, word in enumerate(HOOK_ORDER) if status.startswith(word)),
                len(HOOK_ORDER))


def _phase_key(record: dict[str, Any]) -> tuple[str, int, float]:
    return record["name"], record.get("depth", 0), record["start"]


def _read_process(records: list[dict[str, Any]], data: ProbeData) -> None:
    start = next((r for r in records if r.get("type") == "start"), None)
    end = next((r for r in records if r.get("type") == "end"), None)
    if start is None:
        return
    unfinished: dict[tuple[str, int, float], dict[str, Any]] = {}
    at_peak: dict[str, Any] | None = None  # the last sites taken at the heap's peak
    for record in records:
        kind = record.get("type")
        if kind == "phase_start":
            unfinished[_phase_key(record)] = record
        elif kind == "phase":
            unfinished.pop(_phase_key(record), None)
            data.phases.append(PhaseResult(
                name=record["name"], depth=record.get("depth", 0), start=record["start"],
                end=record.get("end"), python_peak=record.get("python_peak"),
                cgroup_peak=record.get("cgroup_peak"),
                top_allocations=_sites(record.get("top", [])),
                python_entry=record.get("python_entry"), cgroup_entry=record.get("cgroup_entry"),
                python_growth=_growth(record.get("python_peak"), record.get("python_entry")),
                cgroup_growth=_growth(record.get("cgroup_peak"), record.get("cgroup_entry")),
                at_peak=_peak_sites(record.get("at_peak"))))
        elif kind == "cgroup_segment" and record.get("peak") is not None:
            data.cgroup_segments.append(int(record["peak"]))
        elif kind == "peak_sites":
            at_peak = record
        elif kind == "tracker_error":
            data.tracker_error = str(record["error"])[:1000]
        elif kind == "phase_hook":
            data.hooks[str(record["target"])] = str(record["status"])
    for record in unfinished.values():  # the process died inside these phases
        data.phases.append(PhaseResult(name=record["name"], depth=record.get("depth", 0),
                                       start=record["start"], end=None))
    if end is not None and end.get("vm_hwm"):
        data.vm_hwm = max(data.vm_hwm or 0, int(end["vm_hwm"]))
    if not start.get("trace"):
        return
    samples = [r for r in records if r.get("type") == "sample"]
    if end is not None and "python_peak" in end:
        data.python.append(PythonHeap(
            pid=start["pid"], peak=end["python_peak"], final=end.get("python_final"),
            blocks=end.get("blocks"), vm_hwm=end.get("vm_hwm"), complete=True,
            top_allocations=_sites(end.get("top", [])),
            top_before_collection=_sites(end.get("top_before_collection", [])),
            final_collected=end.get("python_collected"), at_peak=_peak_sites(at_peak)))
    elif samples or at_peak:
        data.python.append(PythonHeap(
            pid=start["pid"], complete=False, at_peak=_peak_sites(at_peak),
            peak=max([s["peak"] for s in samples] + [(at_peak or {}).get("peak") or 0])))
        data.problems.append(f"process {start['pid']} died before its probe could report; "
                             "its heap peak is the last periodic flush")
