"""Phases (``runner.phase`` blocks and the callables MEMSLA_PHASES wraps): each gets its own
Python heap peak (tracemalloc.reset_peak) and, where MEMSLA_CGROUP_PEAK names a peak file the
build may reset, its own cgroup peak; both with the figure at the phase's entry, so what the
phase added (its growth) is known. A ``phase_start`` record is written at entry, so a build
killed inside a phase still leaves where it began; a ``phase`` record at its end.

Under memray a phase's heap is read on the host from memray's memory snapshots (one every
10 ms). The probe keeps the build still for a little longer than that at a phase's start and
end, so that a snapshot falls between what came before and the phase: its entry and peak are
then exact. Held to QUIET_BUDGET of the build's time plus QUIET_ALLOWANCE seconds; past it,
the host's figures are the conservative ones (memray_records says how).
"""

from __future__ import annotations

import time

from .budget import Budget

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .process import Probe

QUIET_S = 0.015
QUIET_BUDGET = 0.05
QUIET_ALLOWANCE = 1.0


class Phases:
    def __init__(self, probe: Probe, started: float) -> None:
        self.probe = probe
        self.stack: list[dict[str, Any]] = []  # open phases: dicts with running maxima
        self.quiet_budget = Budget(QUIET_BUDGET, QUIET_ALLOWANCE, started)

    def fold(self) -> None:
        """Fold the current peaks into every open phase and the heap's global maximum."""
        heap = self.probe.heap.fold() if self.probe.heap is not None else None
        cgroup = self.probe.cgroup
        shared = cgroup.peak() if cgroup.shared_reset else None
        for frame in self.stack:
            if heap is not None:
                frame["python_peak"] = max(frame["python_peak"] or 0, heap)
            if frame["cgroup_fd"] is not None:
                value = cgroup.peak(frame["cgroup_fd"])
                if value is not None:
                    frame["cgroup_peak"] = max(frame["cgroup_peak"] or 0, value)
            elif shared is not None and frame["cgroup_resettable"]:
                frame["cgroup_peak"] = max(frame["cgroup_peak"] or 0, shared)

    def _quiet(self) -> float | None:
        """Under memray, keep still for longer than memray's snapshot interval (within the
        budget); the time the stillness began, or None."""
        if self.probe.memray is None or not self.quiet_budget.allows():
            return None
        began = self.probe.records.now()
        time.sleep(QUIET_S)
        self.quiet_budget.spent += QUIET_S
        return began

    def enter(self, name: str) -> dict[str, Any]:
        probe = self.probe
        with probe.lock:
            quiet_from = self._quiet()
            self.fold()
            cgroup_entry = probe.cgroup.usage()
            if probe.heap is not None:
                probe.heap.reset_peak()
            resettable = probe.cgroup.reset()
            entry = probe.heap.current() if probe.heap is not None else None
            frame = {"name": name, "depth": len(self.stack), "start": probe.records.now(),
                     "python_peak": None, "cgroup_peak": None, "python_entry": entry,
                     "cgroup_entry": None, "snap_heap": 0, "at_peak": None,
                     "cgroup_resettable": resettable, "cgroup_fd": probe.cgroup.open_reset()}
            if resettable or frame["cgroup_fd"] is not None:
                frame["cgroup_entry"] = cgroup_entry
            if probe.heap is not None and not probe.heap.resettable:
                frame["python_peak_unavailable"] = True  # Python 3.8: no reset_peak
            if quiet_from is not None:
                frame["quiet_from"] = quiet_from
            self.stack.append(frame)
            probe.records.write({"type": "phase_start", "name": name, "depth": frame["depth"],
                                 "start": frame["start"]})
            return frame

    def exit(self, frame: dict[str, Any]) -> None:
        probe = self.probe
        with probe.lock:
            self.fold()
            if frame in self.stack:
                self.stack.remove(frame)
            handle = frame.pop("cgroup_fd")
            if handle is not None:
                handle.close()
            unavailable = frame.get("python_peak_unavailable")
            record = {"type": "phase", "name": frame["name"], "depth": frame["depth"],
                      "start": frame["start"], "end": probe.records.now(),
                      "python_peak": None if unavailable else frame["python_peak"],
                      "cgroup_peak": frame["cgroup_peak"],
                      "python_entry": None if unavailable else frame["python_entry"],
                      "cgroup_entry": frame["cgroup_entry"]}
            if "quiet_from" in frame:
                record["quiet_from"] = frame["quiet_from"]
            self._quiet()  # memray: what follows the phase is not in its last interval
            if probe.heap is not None:
                top = probe.heap.phase_sites()
                if top is not None:
                    record["top"] = top
                if frame["at_peak"] is not None:
                    record["at_peak"] = frame["at_peak"]
                # the summary's own memory is not the program's (its peak is folded)
                probe.heap.reset_peak()
            probe.records.write(record)
