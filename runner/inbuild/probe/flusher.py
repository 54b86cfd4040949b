"""The traced run's flusher thread: a ``sample`` record of the heap every MEMSLA_FLUSH_INTERVAL
seconds (so a build that is OOM-killed still leaves partial data), and, polling the heap every
MEMSLA_PEAK_POLL seconds, the top sites whenever it has grown past the last ones taken by more
than MEMSLA_PEAK_TOLERANCE (a fraction, and at least a number of bytes)."""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .process import Probe


class Flusher:
    def __init__(self, probe: Probe, interval: float) -> None:
        import threading

        self.probe = probe
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, args=(interval,),
                                       name="memsla-probe", daemon=True)
        self.thread.start()

    def _loop(self, interval: float) -> None:
        probe = self.probe
        heap = probe.heap
        assert heap is not None
        snapping = heap.peak_poll > 0 and heap.resettable
        poll = min(heap.peak_poll, interval) if snapping else interval
        next_flush = time.monotonic() + interval
        while not self.stopping.wait(poll):
            if not heap.tracing():
                return
            current, peak = heap.tracemalloc.get_traced_memory()
            if snapping and heap.summary_allowed():
                try:
                    heap.snapshot_if_grown(current, probe.phases, probe.records)
                except Exception:
                    pass
            if time.monotonic() >= next_flush:
                next_flush = time.monotonic() + interval
                probe.records.write({"type": "sample", "t": probe.records.now(),
                                     "current": current, "peak": max(peak, heap.heap_max)})

    def stop(self) -> None:
        """Stopped before the final counts, it leaves them depending on the program alone (it
        wakes at times that depend on the machine's load)."""
        import threading  # imported already, to start the thread

        self.stopping.set()
        if self.thread is not threading.current_thread():
            self.thread.join(timeout=5)
