"""The traced heap (tracemalloc) of a traced run: its peak folded over every reset, and the top
allocation sites taken at its high-water mark, globally and in each open phase.

The sites are summarised in the build's own process, under the GIL: their cost is held to
SNAP_BUDGET of the build's time plus SNAP_ALLOWANCE seconds (``budget.Budget``).
"""

from __future__ import annotations

import time

from . import sites
from .budget import Budget

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .phases import Phases
    from .records import Records

SNAP_BUDGET = 0.1
SNAP_ALLOWANCE = 0.5
PHASE_TOP = 5  # sites kept per phase


class Heap:
    def __init__(self, environ: Any, lock: Any, started: float) -> None:
        import tracemalloc

        self.tracemalloc = tracemalloc
        self.lock = lock
        self.frames = int(environ.get("MEMSLA_TRACE_FRAMES", "1"))
        self.top = int(environ.get("MEMSLA_TOP_SITES", "15"))
        self.phase_top = PHASE_TOP
        fraction, _, floor = environ.get("MEMSLA_PEAK_TOLERANCE", "0.05,1048576").partition(",")
        self.tolerance = (float(fraction), int(floor or "0"))
        self.peak_poll = float(environ.get("MEMSLA_PEAK_POLL", "0.05"))
        self.snap_heap = 0  # the heap when the last sites at the peak were taken
        self.heap_max = 0  # the peak folded over every reset
        self.budget = Budget(SNAP_BUDGET, SNAP_ALLOWANCE, started)
        # Python 3.8 has no reset_peak: no phase peaks, no sites at the peak
        self.resettable = hasattr(tracemalloc, "reset_peak")

    def start(self) -> None:
        self.tracemalloc.start(self.frames)

    def tracing(self) -> bool:
        return bool(self.tracemalloc.is_tracing())

    def current(self) -> int | None:
        return self.tracemalloc.get_traced_memory()[0] if self.tracing() else None

    def fold(self) -> int | None:
        """The peak since the last reset, folded into the global maximum (None: not tracing)."""
        if not self.tracing():
            return None
        peak: int = self.tracemalloc.get_traced_memory()[1]
        self.heap_max = max(self.heap_max, peak)
        return peak

    def reset_peak(self) -> None:
        if self.resettable:
            self.tracemalloc.reset_peak()

    def top_sites(self, limit: int, raw: list[Any] | None = None) -> list[dict[str, Any]]:
        try:
            return sites.top_sites(self.tracemalloc, limit, raw)
        except Exception:
            return []

    def phase_sites(self) -> list[dict[str, Any]] | None:
        """A phase's top sites at its end, while the budget allows (a phase entered a thousand
        times, one per page, would otherwise cost a summary each time); None past it."""
        if not self.budget.allows():
            return None
        started = time.monotonic()
        top = self.top_sites(self.phase_top)
        self.budget.spent += time.monotonic() - started
        return top

    def live_traces(self) -> list[Any] | None:
        """The traced blocks still live at exit, free lists emptied first: their count is the
        ``allocations`` figure, and the sites at exit are summed from the same list (one pass
        over the heap, not two).

        Objects parked on CPython's free lists still count as traced blocks, and how full
        those lists are depends on when the flusher thread ran; a full collection empties them.
        """
        try:
            import gc

            gc.collect()
            return sites.raw_traces(self.tracemalloc)
        except Exception:
            return None

    def _beyond(self, current: int, base: int) -> bool:
        fraction, floor = self.tolerance
        return current > base + max(floor, int(base * fraction))

    def snapshot_if_grown(self, current: int, phases: Phases, records: Records) -> None:
        """Take the top sites now if the heap has grown past the last sites taken (globally,
        or in an open phase) by more than the tolerance."""
        with self.lock:
            overall = self._beyond(current, self.snap_heap)
            grown = [f for f in phases.stack if f.get("python_entry") is not None
                     and self._beyond(current, max(f["python_entry"], f["snap_heap"]))]
            if not (overall or grown):
                return
            phases.fold()  # the program's peak so far, before the summary allocates
            started = time.monotonic()
            top = sites.top_sites(self.tracemalloc, self.top)
            record = {"type": "peak_sites", "t": records.now(), "heap": current,
                      "peak": self.heap_max, "tolerance": self.tolerance[0],
                      "tolerance_bytes": self.tolerance[1], "sites": top}
            if overall:
                self.snap_heap = current
                records.write(record)
            for frame in grown:
                frame["snap_heap"] = current
                frame["at_peak"] = {"t": record["t"], "heap": current,
                                    "tolerance": self.tolerance[0],
                                    "tolerance_bytes": self.tolerance[1],
                                    "sites": top[:self.phase_top]}
            # What the summary itself allocated is not the program's: forget its peak (the
            # program's was folded above). The cost: a spike of the program's (it runs on
            # between GIL switches) that rises above every earlier peak and falls again while
            # the summary runs (tens to hundreds of milliseconds, a few times per build) is not
            # in the heap peak. Subtracting a bound on the summary's own allocations instead
            # overstated the peak by a megabyte where the bound missed one (json's import).
            self.tracemalloc.reset_peak()
            self.budget.spent += time.monotonic() - started
