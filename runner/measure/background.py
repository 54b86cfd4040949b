"""Reading memray's full captures in the background: a traced run's capture is read by a worker
process while the next runs go on, and its figures are put into the run before the check is
judged (``BackgroundReads.finish``).

memray reads a full capture in several passes over the file (the high-water mark, what is held
at the end, the totals over the run, the phases' history), each about a fifth of the traced
build's own time on Pelican; read serially they kept the next case waiting. The worker is a
process of its own: memray's readers hold the GIL for a whole pass, which would stall the
runner's own waiting and sampling. It runs outside every measured cgroup (the runner's own),
at idle priority (``SCHED_IDLE``: it gets only CPU time no build wants), and ignores Ctrl-C, so
an interrupted check still keeps what was measured. The figures are the serial read's: the
workers run the same ``read_probe_dir`` on the same files, and where they fail the runner reads
them itself. Two workers: the totals over the run (memray's statistics, a pass of their own)
are read beside the other passes, so the last capture, which the user waits for, is read in
about the time of its longest part on a host with a CPU to spare."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from runner.inbuild import reaper
from runner.measure.assemble import assemble
from runner.measure.memray_records import capture_totals
from runner.measure.probe_records import ProbeData, read_probe_dir
from runner.measure.readings import Readings
from runner.results import Run, RunKind

if TYPE_CHECKING:  # imported when the first capture is read: a check with none starts no pool
    from concurrent.futures import Future, ProcessPoolExecutor

# What the executor sets on a run once it is assembled: kept when the run's figures arrive.
EXECUTOR_FIELDS = frozenset({"disk", "disk_files", "fixture_changed", "started", "ended", "cpus",
                             "neighbours"})
PENDING_NOTE = ("memray's capture of this run was still being read when these results were "
                "written: its heap figures come with the check's end")


def _idle() -> None:
    """The worker's start: the lowest CPU priority there is, and deaf to Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        try:
            os.nice(19)
        except OSError:
            pass


def _read(folder: str) -> ProbeData:
    return read_probe_dir(Path(folder), totals=False)


def _totals(folder: str) -> dict[int, tuple[int, int]]:
    return capture_totals(Path(folder))


def _ready() -> None:
    return None


@dataclass
class _Pending:
    run: Run  # the run as the executor holds it: its figures are filled in place
    readings: Readings
    folder: Path
    owned: bool  # the folder is this reader's to remove
    cache_sites: dict[str, str]
    future: Future[ProbeData] | None
    totals: Future[dict[int, tuple[int, int]]] | None


@dataclass
class BackgroundReads:
    """The traced runs whose captures are being read; ``finish`` fills them in."""

    root: Path  # where captures wait to be read: the work root, under this runner's pid
    _pool: ProcessPoolExecutor | None = field(default=None, init=False, repr=False)
    _pending: list[_Pending] = field(default_factory=list, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def warm(self) -> None:
        """Start the worker (its interpreter and imports) now, while a traced build runs."""
        with self._lock:
            self._start().submit(_ready)

    def _start(self) -> ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn, not fork: the runner has threads (the scheduler's, the sampler's)
            self._pool = ProcessPoolExecutor(
                max_workers=2, mp_context=multiprocessing.get_context("spawn"),
                initializer=_idle)
        return self._pool

    def defer(self, kind: RunKind, index: int, readings: Readings, probe_out: Path,
              cache_sites: dict[str, str], *, keep: bool) -> Run:
        """The run, with every figure but those of memray's captures, which the worker reads
        meanwhile from ``probe_out`` (moved aside first unless ``keep``: the executor removes
        a run's folder once the run ends)."""
        folder, owned = probe_out, False
        if not keep:
            self.root.mkdir(parents=True, exist_ok=True)
            aside = Path(tempfile.mkdtemp(dir=self.root, prefix=reaper.work_prefix(os.getpid())))
            folder, owned = Path(shutil.move(str(probe_out), str(aside / "probe"))), True
        run = assemble(kind, index, readings, read_probe_dir(folder, captures=False), None,
                       cache_sites)
        run.notes.append(PENDING_NOTE)
        with self._lock:
            future: Future[ProbeData] | None = None
            totals: Future[dict[int, tuple[int, int]]] | None = None
            try:
                future = self._start().submit(_read, str(folder))
                totals = self._start().submit(_totals, str(folder))
            except Exception:  # no worker here: read at the end, by the runner
                future = totals = None
            self._pending.append(_Pending(run, readings, folder, owned, cache_sites, future,
                                          totals))
        return run

    def finish(self) -> None:
        """Wait for every capture and put its figures into its run (the serial read's, where
        the worker failed); then stop the worker and remove the folders. Safe to call twice."""
        with self._lock:
            pending, self._pending = self._pending, []
        try:
            for entry in pending:
                probe = _joined(entry)
                if probe is None:  # a worker died or could not read: the runner reads it
                    probe = read_probe_dir(entry.folder)
                full = assemble(entry.run.kind, entry.run.index, entry.readings, probe, None,
                                entry.cache_sites)
                for name in type(full).model_fields:
                    if name not in EXECUTOR_FIELDS:
                        setattr(entry.run, name, getattr(full, name))
        finally:
            for entry in pending:
                if entry.owned:
                    shutil.rmtree(entry.folder.parent, ignore_errors=True)
            with self._lock:
                pool, self._pool = self._pool, None
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)


def _joined(entry: _Pending) -> ProbeData | None:
    """The workers' two parts of one run's read put together; None where either failed or
    they do not match (the runner then reads the files itself)."""
    if entry.future is None or entry.totals is None:
        return None
    try:
        probe, totals = entry.future.result(), entry.totals.result()
    except Exception:
        return None
    captured = [heap for heap in probe.python if heap.tracker == "memray"]
    if len(captured) != len(totals) or any(heap.pid not in totals for heap in captured):
        return None
    for heap in captured:
        heap.allocated, heap.allocation_calls = totals[heap.pid]
    return probe
