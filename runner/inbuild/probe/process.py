"""The probe of one process of the build: starts what the run asks for (a tracker, the flusher
thread), holds the parts every job shares, and writes the ``start`` and ``end`` records. At exit:
the heap and its top sites before and after a full collection (``heap.Heap.exit_heap``)."""

from __future__ import annotations

import _thread
import atexit
import os
import sys
import time

from .cgroup_peak import CgroupPeak
from .phases import Phases
from .records import Records, vm_hwm

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .flusher import Flusher
    from .heap import Heap


class Probe:
    def __init__(self, directory: str, environ: Any) -> None:
        traced = environ.get("MEMSLA_TRACE") == "1"
        self.tracker = environ.get("MEMSLA_TRACKER", "tracemalloc") if traced else "none"
        self.lock = _thread.RLock()
        started = time.monotonic()
        # tracemalloc runs only (memray's figures are read from its file on the host)
        self.heap: Heap | None = None
        if self.tracker == "tracemalloc":
            from .heap import Heap

            self.heap = Heap(environ, self.lock, started)
        self.memray: Any = None
        self.hooks: dict[str, str] = {}  # zero-code phase target -> what became of it
        t0 = float(environ.get("MEMSLA_T0", "0")) or time.time()
        self.records = Records(directory, t0, self.lock)
        self.cgroup = CgroupPeak(environ.get("MEMSLA_CGROUP_PEAK") or None,
                                 environ.get("MEMSLA_CGROUP_RESET", ""), self.records)
        self.phases = Phases(self, started)
        self.records.write({"type": "start", "pid": os.getpid(), "ppid": os.getppid(),
                            "python": sys.version.split()[0], "trace": self.heap is not None,
                            "tracker": self.tracker, "t": self.records.now(), "t0": t0})
        if self.heap is not None:
            self.heap.start()
        elif self.tracker == "memray":
            from . import memray_tracker

            self.memray = memray_tracker.start(directory, self.records, environ)
        self.flusher: Flusher | None = None
        interval = float(environ.get("MEMSLA_FLUSH_INTERVAL", "0.5"))
        if self.heap is not None and interval > 0:
            from .flusher import Flusher

            self.flusher = Flusher(self, interval)
        atexit.register(self.finish)

    def finish(self) -> None:
        if self.flusher is not None:
            self.flusher.stop()
        if self.memray is not None:
            from . import memray_tracker

            memray_tracker.stop(self.memray)
            self.memray = None
        heap = self.heap
        with self.lock:
            figures: dict[str, Any] = {}
            if heap is not None and heap.tracing():
                self.phases.fold()
                current, peak = heap.tracemalloc.get_traced_memory()
                figures = {"python_peak": max(peak, heap.heap_max), "python_final": current}
                try:
                    figures.update(heap.exit_heap(self.phases, self.records))
                except Exception:
                    pass
                heap.reset_peak()  # the summaries' own memory is not the program's
            while self.phases.stack:  # phases left open by an exception that escaped them
                self.phases.exit(self.phases.stack[-1])
            for target, status in self.hooks.items():
                self.records.write({"type": "phase_hook", "target": target, "status": status})
            record = {"type": "end", "t": self.records.now(), "vm_hwm": vm_hwm(), **figures}
            if self.cgroup.shared_reset:
                record["cgroup_peak"] = self.cgroup.peak()
            self.records.write(record)
            self.records.close()
