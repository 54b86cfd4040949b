"""A Python callable measured in a forked child that joins its own memory cgroup before the call.

Everything the calling process made before the fork (imports, fixtures, generated data) stays
charged to the caller's cgroup: charges do not move with a task (cgroup v1's
``memory.move_charge_at_immigrate`` is 0 by default, v2 never moves them), so the new cgroup is
charged only for pages the child touches after it joined: what the callable allocates, the files
it writes (page cache), and pages it copies on write, Python reference counts of old objects it
touches included. Seen on this project's host (v1): a 200 MiB buffer made before the fork was
not charged; an empty callable peaked at 0.25 MiB; 50 MiB allocated read 50.25 MiB; summing the
lengths of 300,000 old strings copied 32 MiB. ``gc.freeze()`` around the fork keeps the child's
collections off the parent's objects.

Without a writable cgroup the same fork runs without a hard limit, and memory is the sampled
unique set size (pages no other process maps) of the child and its descendants: approximate.

The child never returns into the caller's code: it runs the callable and ``os._exit``s, so its
side effects on the caller's objects are lost (as with any fork).

A traced call starts its tracker in the child just before the call: tracemalloc (figures sent
back with the report) or memray (a capture file in a work folder of the runner's, read here as
``runner check`` reads a build's, then removed).
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from runner import interrupts
from runner.backends.fence import (  # the local backend's leftover sweep knows ours
    CGROUP_PREFIX,
    fenced,
    limit_watch,
    read_fence,
    timeline,
)
from runner.backends.interface import BackendError
from runner.backends.local import find_parent
from runner.backends.tree import TreeSampler, uss
from runner.inbuild import cgroups, reaper
from runner.inbuild.waiting import Waiter
from runner.measure.memray_records import read_memray_dir
from runner.measure.probe_records import ProbeData
from runner.measure.readings import Readings
from runner.results import PythonHeap

USS_NOTE = ("forked callable without a cgroup: memory is the sampled unique set size (pages no "
            "other process maps) of the child and its descendants; no hard limit")
ERROR_LIMIT = 16_000  # characters of the callable's traceback sent back (a pipe holds 64 KiB)
EXIT_RAISED = 1  # the child's exit status when the callable raised
EXIT_NO_CGROUP = 70  # the child could not join its cgroup: nothing was called
EXIT_CHILD_BROKE = 71  # memsla's own code in the child failed

CallTracker = Literal["tracemalloc", "memray"]


@dataclass(frozen=True)
class CallError:
    """What the callable raised, as the child saw it."""

    type: str  # module.qualname of the exception class
    message: str
    traceback: str


@dataclass
class CallOutcome:
    """One measured call: the raw readings (``runner.measure.assemble`` makes the run of them),
    the tracker's figures of a traced call, and the callable's exception if it raised."""

    readings: Readings
    probe: ProbeData = field(default_factory=ProbeData)
    error: CallError | None = None


class ForkedCaller:
    """Calls functions in forked children, each in a fresh memory cgroup below this process's own
    (``place="cgroup"``) or, where none can be made, sampled from outside (``"process"``)."""

    def __init__(self, *, allow_process: bool = True, cgroup: bool = True) -> None:
        self.parent: cgroups.Cgroup | None = None
        self.reason = "asked for by name: forked child sampled (USS), no hard limit"
        self._counter = 0
        if not cgroup:
            return
        try:
            self.parent = find_parent()
            self.reason = "a fresh memory cgroup per call below this process's own (fork)"
        except BackendError as exc:
            if not allow_process:
                raise
            self.reason = f"no hard limit available ({exc}): forked child sampled (USS)"

    @property
    def name(self) -> str:
        return "cgroup" if self.parent is not None else "process"

    @property
    def approximate(self) -> bool:
        return self.parent is None

    @property
    def cgroup_version(self) -> int | None:
        return None if self.parent is None else self.parent.version

    def call(self, func: Callable[[], object], *, limit: int | None, timeout: float,
             tracker: CallTracker | None = None, native: bool = False,
             sample_interval: float = 0.02) -> CallOutcome:
        """Fork, run ``func`` in the child (under ``tracker``, if any; ``native``: memray keeps
        native stacks), and say what was read about it."""
        trace = Trace(tracker, native)
        try:
            return self._call(func, limit, timeout, trace, sample_interval)
        finally:
            trace.close()

    def _call(self, func: Callable[[], object], limit: int | None, timeout: float,
              trace: Trace, sample_interval: float) -> CallOutcome:
        if self.parent is None:
            return _call(func, None, limit, timeout, trace, sample_interval)
        self._counter += 1
        # the local backend's layout: the limit on a fence the child is not in, so a child
        # running as root that writes its own cgroup's limit is still held
        name = f"{CGROUP_PREFIX}{os.getpid()}-call-{self._counter}"
        with fenced(self.parent, name, limit) as (fence, build):
            return _call(func, fence, limit, timeout, trace, sample_interval, build)


class Trace:
    """The tracker of one call; memray's capture folder is one of the runner's work folders, so
    the runner's watchdog removes it if the runner dies."""

    def __init__(self, tracker: CallTracker | None, native: bool) -> None:
        self.tracker = tracker
        self.native = native
        self.folder: Path | None = None
        if tracker == "memray":
            from runner.workload.cache import cache_dir, work_root

            root = work_root(cache_dir())
            root.mkdir(parents=True, exist_ok=True)
            reaper.ensure_watchdog(str(root))
            self.folder = Path(tempfile.mkdtemp(dir=root,
                                                prefix=reaper.work_prefix(os.getpid())))

    def read(self, probe: ProbeData, report: dict[str, Any], pid: int,
             notes: list[str]) -> None:
        """The tracker's figures into ``probe``; what kept them from being read into ``notes``."""
        if isinstance(report.get("tracker_error"), str):
            notes.append(report["tracker_error"])
        if self.tracker == "tracemalloc" and report.get("python_peak") is not None:
            probe.python.append(PythonHeap(pid=pid, peak=int(report["python_peak"]),
                                           final=report.get("python_final")))
        elif self.folder is not None:
            memray = read_memray_dir(self.folder)
            probe.python += memray.python
            notes += memray.problems

    def close(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def _call(func: Callable[[], object], cgroup: cgroups.Cgroup | None, limit: int | None,
          timeout: float, trace: Trace, interval: float,
          build: cgroups.Cgroup | None = None) -> CallOutcome:
    """Fork and call; the child joins ``build`` (below the fence ``cgroup``, measured)."""
    read_end, write_end = os.pipe()
    gc.freeze()  # the child's collections then leave the caller's objects (and pages) alone
    try:
        with warnings.catch_warnings():  # 3.12+ warns about forking a threaded process
            warnings.simplefilter("ignore", DeprecationWarning)
            start = time.monotonic()
            pid = os.fork()
        if pid == 0:  # pragma: no cover - the child; its figures are what the tests check
            code = EXIT_CHILD_BROKE
            try:
                os.close(read_end)
                code = _child(func, build, write_end, trace)
            finally:
                os._exit(code)  # never back into the caller's code, whatever happened
    finally:
        gc.unfreeze()
    os.close(write_end)
    watch = None if cgroup is None or build is None else limit_watch(cgroup, build)
    sampler: cgroups.Sampler | TreeSampler
    sampler = cgroups.Sampler(cgroup, interval, watch) if cgroup else TreeSampler(
        pid, interval, uss, include_root=True)
    sampler.started_at(start)
    sampler.start()
    report: dict[str, Any] = {}

    def read_report() -> None:  # once the child exited: a grandchild holding the pipe open
        try:                    # cannot hang the caller
            report.update(_read_report(read_end))
        finally:
            os.close(read_end)

    waiter = Waiter(pid, after=read_report)
    timed_out = False
    try:
        if not interrupts.wait(waiter.done.wait, timeout):
            timed_out = True
            _kill(cgroup, pid, sampler)
            waiter.done.wait(10)
    except BaseException:
        _kill(cgroup, pid, sampler)
        waiter.done.wait(10)
        raise
    finally:
        sampler.stop()
        if cgroup is None and isinstance(sampler, TreeSampler):
            sampler.kill()
    exit_code, signal_number = waiter.exit
    took = report.get("duration")
    error = CallError(**report["error"]) if isinstance(report.get("error"), dict) else None
    notes = [] if report or timed_out or signal_number else ["the child sent no report"]
    if exit_code == EXIT_NO_CGROUP and "enter" in report:
        raise BackendError(f"the forked child could not join its cgroup: {report['enter']}")
    readings = Readings(
        exit_code=exit_code, signal=signal_number, timed_out=timed_out,
        duration=float(took) if took is not None else (waiter.finished_at or time.monotonic())
        - start, duration_source="build" if took is not None else "outside",
        cpu_time=waiter.cpu_time, limit_set=limit, timeline=timeline(sampler, interval),
        stderr_tail=error.traceback[-4000:] if error else "", notes=notes)
    if cgroup is not None:
        assert isinstance(sampler, cgroups.Sampler)
        read_fence(readings, cgroup, sampler, watch)
        readings.anon_at_end = report.get("anon")  # read in the child just after the call
    else:
        readings.tree_rss_max = sampler.max_usage or 0
        readings.notes.append(USS_NOTE)
    probe = ProbeData(vm_hwm=report.get("rss_added"))  # the call's own RSS high-water mark
    trace.read(probe, report, pid, readings.notes)
    return CallOutcome(readings, probe, error)


def _kill(cgroup: cgroups.Cgroup | None, pid: int, sampler: object) -> None:
    if cgroup is not None:
        cgroup.kill_all()
        return
    if isinstance(sampler, TreeSampler):
        sampler.kill()
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _child(func: Callable[[], object], cgroup: cgroups.Cgroup | None, out: int,
           trace: Trace) -> int:  # pragma: no cover - runs in the forked child
    """Join the cgroup, call, report over ``out``; the exit status for ``os._exit``."""
    report: dict[str, Any] = {}
    code = 0
    try:
        try:
            if cgroup is not None:
                with open(cgroup.enter_file(), "w") as handle:
                    handle.write("0")
            else:
                os.setpgid(0, 0)  # the parent kills the group on timeout
        except OSError as exc:
            report["enter"] = str(exc)
            return EXIT_NO_CGROUP
        rss_at_start = _reset_own_hwm()
        tracker = _start_tracker(trace, report)
        started = time.perf_counter()
        try:
            func()
        except BaseException as exc:  # everything, SystemExit included, is reported
            code = EXIT_RAISED
            report["error"] = {"type": f"{type(exc).__module__}.{type(exc).__qualname__}",
                               "message": str(exc)[:ERROR_LIMIT],
                               "traceback": traceback.format_exc()[-ERROR_LIMIT:]}
        report["duration"] = time.perf_counter() - started
        if tracker is not None:
            _stop_tracker(trace, tracker, report)
        if cgroup is not None:
            report["anon"] = cgroup.anon()
        hwm = _own_status("VmHWM")
        if rss_at_start is not None and hwm is not None:
            report["rss_added"] = max(0, hwm - rss_at_start)
        return code
    finally:
        for stream in ("stdout", "stderr"):
            try:
                getattr(sys, stream).flush()
            except Exception:  # a closed stream must not hide the report
                pass
        try:
            os.write(out, json.dumps(report).encode())
        finally:
            os.close(out)


def _start_tracker(trace: Trace, report: dict[str, Any]) -> Any:  # pragma: no cover - child
    """Start the call's tracker; what kept it from starting goes into ``report``."""
    try:
        if trace.tracker == "tracemalloc":
            import tracemalloc

            tracemalloc.start()
            return tracemalloc
        if trace.tracker == "memray" and trace.folder is not None:
            import memray

            capture = str(trace.folder / f"memray-{os.getpid()}.bin")
            started = memray.Tracker(
                destination=memray.FileDestination(capture, compress_on_exit=False),
                native_traces=trace.native)
            started.__enter__()
            return started
    except Exception as exc:  # memray not installed here, or a tracker already running
        report["tracker_error"] = (f"{trace.tracker} did not start in the forked child "
                                   f"({type(exc).__name__}: {exc}): no heap figures")[:1000]
    return None


def _stop_tracker(trace: Trace, tracker: Any, report: dict[str, Any]) -> None:  # pragma: no cover
    if trace.tracker == "tracemalloc":
        current, peak = tracker.get_traced_memory()
        tracker.stop()
        report["python_peak"], report["python_final"] = peak, current
    else:
        tracker.__exit__(None, None, None)  # closes the capture file the parent reads


def _own_status(key: str) -> int | None:
    """A ``kB`` line of /proc/self/status, in bytes (None: unreadable)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _reset_own_hwm() -> int | None:
    """Reset this process's RSS high-water mark to its RSS now (``5`` to clear_refs) and return
    that RSS: the child's VmHWM above it is what the call added (the caller's pages the child
    still maps are in both). None where the kernel refuses the reset."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return None
    return _own_status("VmRSS")


def _read_report(fd: int) -> dict[str, Any]:
    os.set_blocking(fd, False)
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    try:
        report = json.loads(b"".join(chunks) or b"{}")
    except ValueError:
        return {}
    return report if isinstance(report, dict) else {}


