"""The traced heap (tracemalloc) of a traced run: its peak folded over every reset, and the top
allocation sites taken at its high-water mark, globally and in each open phase.

The sites are summarised in the build's own process, under the GIL: their cost is held to
SNAP_BUDGET of the build's time plus SNAP_ALLOWANCE seconds (``budget.Budget``), a summary's
cost foreseen from the last one's (it grows with the count of traced blocks, which the memory
tracemalloc uses for its traces follows), so the last one does not overrun.
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

SNAP_BUDGET = 0.03
SNAP_ALLOWANCE = 0.2
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
        self.seconds_per_byte = 0.0  # the last summary's cost per byte of tracemalloc's memory
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
        if not self.summary_allowed():
            return None
        started = time.monotonic()
        top = self.top_sites(self.phase_top)
        self.charge(started)
        return top

    def summary_allowed(self) -> bool:
        """Whether the budget allows one more summary of the heap."""
        return self.budget.allows(self.seconds_per_byte * self.tracemalloc.get_tracemalloc_memory())

    def charge(self, started: float) -> None:
        """Charge a summary begun at ``started`` (monotonic) of the heap as it is now."""
        spent = time.monotonic() - started
        self.budget.spent += spent
        self.seconds_per_byte = spent / max(1, self.tracemalloc.get_tracemalloc_memory())

    def exit_heap(self, phases: Phases, records: Records) -> dict[str, Any]:
        """The heap at exit, for the ``end`` record: after a full collection, its top sites and
        the count of blocks still live; before it, the top sites too where the collection
        freed more than the tolerance (cyclic garbage the program still held); and, where the
        heap grew past the last sites taken at its peak, those before it as the peak's.

        The collection keeps its garbage aside (DEBUG_SAVEALL) while the heap is read, so
        one read is the heap before it, and only if it found garbage is the heap read again
        after freeing it. Objects parked on CPython's free lists would count as traced blocks,
        and how full those lists are depends on when the flusher thread ran: the collection
        empties them before either read.
        """
        import gc

        current = self.tracemalloc.get_traced_memory()[0]
        saving = not gc.get_debug() & gc.DEBUG_SAVEALL  # else gc.garbage is the program's
        kept = len(gc.garbage)
        if saving:
            gc.set_debug(gc.get_debug() | gc.DEBUG_SAVEALL)
        try:
            gc.collect()
        finally:
            if saving:
                gc.set_debug(gc.get_debug() & ~gc.DEBUG_SAVEALL)
        garbage = len(gc.garbage) - kept if saving else 0
        raw = self.raw_traces()
        top: list[dict[str, Any]] | None = None  # the sites of ``raw``, once summarised
        overall, grown = self._grown(current, phases)
        if self.peak_poll > 0 and self.resettable and (overall or grown):
            top = self.top_sites(self.top, raw)
            self.record_sites(top, current, overall, grown, records)
        if saving:
            del gc.garbage[kept:]
        gc.collect()
        collected = self.tracemalloc.get_traced_memory()[0]
        heap: dict[str, Any] = {"python_collected": collected, "top_before_collection": []}
        if garbage or not saving:  # ``raw`` is the heap before the collection: read it after
            if self._beyond(current, collected):
                heap["top_before_collection"] = (top if top is not None
                                                 else self.top_sites(self.top, raw))
            raw, top = self.raw_traces(), None
        heap["top"] = top if top is not None else self.top_sites(self.top, raw)
        heap["blocks"] = None if raw is None else len(raw)
        return heap

    def raw_traces(self) -> list[Any] | None:
        try:
            return sites.raw_traces(self.tracemalloc)
        except Exception:
            return None

    def _beyond(self, current: int, base: int) -> bool:
        fraction, floor = self.tolerance
        return current > base + max(floor, int(base * fraction))

    def _grown(self, current: int, phases: Phases) -> tuple[bool, list[dict[str, Any]]]:
        """Whether the heap grew past the last sites taken at its peak by more than the
        tolerance, and the open phases whose heap grew past the last sites taken in them."""
        return self._beyond(current, self.snap_heap), [
            f for f in phases.stack if f.get("python_entry") is not None
            and self._beyond(current, max(f["python_entry"], f["snap_heap"]))]

    def snapshot_if_grown(self, current: int, phases: Phases, records: Records) -> None:
        """Take the top sites now if the heap has grown past the last sites taken (globally,
        or in an open phase) by more than the tolerance."""
        with self.lock:
            overall, grown = self._grown(current, phases)
            if not (overall or grown):
                return
            phases.fold()  # the program's peak so far, before the summary allocates
            started = time.monotonic()
            self.record_sites(sites.top_sites(self.tracemalloc, self.top), current, overall,
                              grown, records)
            # What the summary itself allocated is not the program's: forget its peak (the
            # program's was folded above). The cost: a spike of the program's (it runs on
            # between GIL switches) that rises above every earlier peak and falls again while
            # the summary runs (tens to hundreds of milliseconds, a few times per build) is not
            # in the heap peak. Subtracting a bound on the summary's own allocations instead
            # overstated the peak by a megabyte where the bound missed one (json's import).
            self.tracemalloc.reset_peak()
            self.charge(started)

    def record_sites(self, top: list[dict[str, Any]], current: int, overall: bool,
                     grown: list[dict[str, Any]], records: Records) -> None:
        """``top``, taken at a heap of ``current``, as the sites at the peak: the heap's where
        it grew (``overall``), and each open phase's in ``grown`` (``_grown``)."""
        with self.lock:
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
