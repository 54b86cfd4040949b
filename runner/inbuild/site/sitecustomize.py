"""memsla's in-process probe, loaded by the measured Python through PYTHONPATH.

It must never change what the program does: stdlib-only, CPython 3.8+, every failure swallowed
(and reported), and it chains to the sitecustomize it shadows (Debian's python3 ships one).
Under MEMSLA_PROBE_DIR it:
- starts tracemalloc at interpreter start when MEMSLA_TRACE=1 (the untraced runs that time the
  build only record phase marks);
- appends JSON lines to MEMSLA_PROBE_DIR/probe-<pid>.jsonl, flushed every
  MEMSLA_FLUSH_INTERVAL seconds so a build that is OOM-killed still leaves partial data;
- registers the module ``_memsla_probe`` that ``runner.phase`` calls: each phase gets its own
  Python heap peak (tracemalloc.reset_peak) and, where MEMSLA_CGROUP_PEAK names a peak file the
  build may reset (MEMSLA_CGROUP_RESET=v1 or v2), its own cgroup peak.

Resetting a cgroup v1 peak destroys the cgroup-wide figure, so every reset is preceded by a
``cgroup_segment`` record of the peak so far; the runner takes the maximum of all segments.
"""

from __future__ import annotations

import _thread
import atexit
import gc
import os
import sys
import time

# The probe loads into every Python process of the build, timed runs included: it imports no
# more than it needs there. typing, threading, tracemalloc (which pulls in pickle, fnmatch and
# linecache) and json are imported only by traced runs, or only for the type checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any, Dict, List, Optional

_ENV = os.environ


def _dumps(record: Dict[str, Any]) -> str:
    """One JSON line. The records of untraced runs are flat (names, numbers, flags): written
    without importing json; anything else goes through json."""
    parts = []
    for key, value in record.items():
        if value is None or isinstance(value, (bool, int)):
            text = "null" if value is None else ("true" if value is True else
                                                 "false" if value is False else str(value))
        elif isinstance(value, float) and value == value and abs(value) != float("inf"):
            text = repr(value)
        elif isinstance(value, str) and value.isprintable() and value.isascii() and not (
                '"' in value or "\\" in value):
            text = '"' + value + '"'
        else:
            import json

            return json.dumps(record, separators=(",", ":"))
        parts.append('"%s":%s' % (key, text))
    return "{" + ",".join(parts) + "}"


def _module_from_spec(spec: Any) -> Any:
    try:  # the import system's own, loaded at start-up; importlib.util costs more imports
        import _frozen_importlib

        return _frozen_importlib.module_from_spec(spec)
    except (ImportError, AttributeError):
        import importlib.util

        return importlib.util.module_from_spec(spec)


def _chain_shadowed_sitecustomize() -> None:
    import importlib.machinery

    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = _module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


class _Probe:
    def __init__(self, directory: str) -> None:
        self.trace = _ENV.get("MEMSLA_TRACE") == "1"
        self.tracemalloc: Any = None
        if self.trace:
            import tracemalloc

            self.tracemalloc = tracemalloc
        self.frames = int(_ENV.get("MEMSLA_TRACE_FRAMES", "1"))
        self.top = int(_ENV.get("MEMSLA_TOP_SITES", "15"))
        self.t0 = float(_ENV.get("MEMSLA_T0", "0")) or time.time()
        self.cgroup_peak_file = _ENV.get("MEMSLA_CGROUP_PEAK") or None
        self.cgroup_reset = _ENV.get("MEMSLA_CGROUP_RESET", "")
        self.lock = _thread.RLock()
        self.stack: List[Dict[str, Any]] = []  # open phases: dicts with running maxima
        self.heap_max = 0  # global heap peak folded over every reset
        self.path = os.path.join(directory, f"probe-{os.getpid()}.jsonl")
        self.out: IO[str] = open(self.path, "a", buffering=1)
        self.write({"type": "start", "pid": os.getpid(), "ppid": os.getppid(),
                    "python": sys.version.split()[0], "trace": self.trace,
                    "t": self.now()})
        if self.trace:
            self.tracemalloc.start(self.frames)
        self.stopping: Any = None
        self.flusher: Any = None
        interval = float(_ENV.get("MEMSLA_FLUSH_INTERVAL", "0.5"))
        if self.trace and interval > 0:
            import threading

            self.stopping = threading.Event()
            self.flusher = threading.Thread(target=self._flush_loop, args=(interval,),
                                            name="memsla-probe", daemon=True)
            self.flusher.start()
        atexit.register(self.finish)

    def now(self) -> float:
        return round(time.time() - self.t0, 4)

    def write(self, record: Dict[str, Any]) -> None:
        try:
            with self.lock:
                self.out.write(_dumps(record) + "\n")
        except Exception:
            pass

    def _flush_loop(self, interval: float) -> None:
        while not self.stopping.wait(interval):
            if not self.tracemalloc.is_tracing():
                return
            current, peak = self.tracemalloc.get_traced_memory()
            self.write({"type": "sample", "t": self.now(), "current": current,
                        "peak": max(peak, self.heap_max)})

    # -- peaks ---------------------------------------------------------------------------------
    def _heap_peak_now(self) -> Optional[int]:
        if not self.trace or not self.tracemalloc.is_tracing():
            return None
        return self.tracemalloc.get_traced_memory()[1]

    def _cgroup_peak_now(self, handle: Optional[IO[str]] = None) -> Optional[int]:
        try:
            if handle is not None:
                handle.seek(0)
                return int(handle.read().strip())
            if self.cgroup_peak_file:
                with open(self.cgroup_peak_file) as peak_file:
                    return int(peak_file.read().strip())
        except Exception:
            return None
        return None

    def _fold(self) -> Optional[int]:
        """Fold the current peaks into every open phase and the global maximum."""
        heap = self._heap_peak_now()
        if heap is not None:
            self.heap_max = max(self.heap_max, heap)
        cgroup = self._cgroup_peak_now() if self.cgroup_reset == "v1" else None
        for frame in self.stack:
            if heap is not None:
                frame["python_peak"] = max(frame["python_peak"] or 0, heap)
            if frame["cgroup_fd"] is not None:
                value = self._cgroup_peak_now(frame["cgroup_fd"])
                if value is not None:
                    frame["cgroup_peak"] = max(frame["cgroup_peak"] or 0, value)
            elif cgroup is not None and frame["cgroup_resettable"]:
                frame["cgroup_peak"] = max(frame["cgroup_peak"] or 0, cgroup)
        return cgroup

    def _reset(self) -> bool:
        if self.trace and hasattr(self.tracemalloc, "reset_peak"):
            self.tracemalloc.reset_peak()
        if self.cgroup_reset == "v1" and self.cgroup_peak_file:
            before = self._cgroup_peak_now()
            try:
                with open(self.cgroup_peak_file, "w") as peak_file:
                    peak_file.write("0")
            except Exception:
                return False
            self.write({"type": "cgroup_segment", "t": self.now(), "peak": before})
            return True
        return False

    def _open_v2_peak(self) -> Optional[IO[str]]:
        if self.cgroup_reset != "v2" or not self.cgroup_peak_file:
            return None
        try:
            handle = open(self.cgroup_peak_file, "r+")
            handle.write("reset\n")
            handle.flush()
            return handle
        except Exception:
            return None

    # -- phases (called by runner.phase) -------------------------------------------------------
    def enter_phase(self, name: str) -> Dict[str, Any]:
        with self.lock:
            self._fold()
            resettable = self._reset()
            frame = {"name": name, "depth": len(self.stack), "start": self.now(),
                     "python_peak": None, "cgroup_peak": None,
                     "cgroup_resettable": resettable, "cgroup_fd": self._open_v2_peak()}
            if self.trace and not hasattr(self.tracemalloc, "reset_peak"):
                frame["python_peak_unavailable"] = True  # Python 3.8: no reset_peak
            self.stack.append(frame)
            # A build killed inside the phase still leaves where the phase began.
            self.write({"type": "phase_start", "name": name, "depth": frame["depth"],
                        "start": frame["start"]})
            return frame

    def exit_phase(self, frame: Dict[str, Any]) -> None:
        with self.lock:
            self._fold()
            if frame in self.stack:
                self.stack.remove(frame)
            handle = frame.pop("cgroup_fd")
            if handle is not None:
                handle.close()
            record = {"type": "phase", "name": frame["name"], "depth": frame["depth"],
                      "start": frame["start"], "end": self.now(),
                      "python_peak": None if frame.get("python_peak_unavailable")
                      else frame["python_peak"],
                      "cgroup_peak": frame["cgroup_peak"]}
            if self.trace:
                record["top"] = self._top_sites(5)
            self.write(record)

    # -- end -----------------------------------------------------------------------------------
    def _top_sites(self, limit: int) -> List[Dict[str, Any]]:
        try:
            snapshot = self.tracemalloc.take_snapshot()
            stats = snapshot.statistics("lineno")[:limit]
        except Exception:
            return []
        return [{"file": s.traceback[0].filename, "line": s.traceback[0].lineno,
                 "size": s.size, "count": s.count} for s in stats]

    def _stop_flusher(self) -> None:
        # The flusher wakes at times that depend on the machine's load; stopped before the
        # final counts, it leaves them depending on the program alone.
        if self.flusher is None:
            return
        import threading  # imported already by the traced run that started the flusher

        self.stopping.set()
        if self.flusher is not threading.current_thread():
            self.flusher.join(timeout=5)

    def _live_blocks(self) -> Optional[int]:
        """Traced blocks still live at exit, free lists emptied first.

        Objects parked on CPython's free lists still count as traced blocks, and how full
        those lists are depends on when the flusher thread ran; a full collection empties them.
        """
        try:
            gc.collect()
            return len(self.tracemalloc.take_snapshot().traces)
        except Exception:
            return None

    def finish(self) -> None:
        self._stop_flusher()
        with self.lock:
            while self.stack:  # phases left open by an exception that escaped them
                self.exit_phase(self.stack[-1])
            record = {"type": "end", "t": self.now(), "vm_hwm": _vm_hwm()}
            if self.trace and self.tracemalloc.is_tracing():
                current, peak = self.tracemalloc.get_traced_memory()
                record["python_peak"] = max(peak, self.heap_max)
                record["python_final"] = current
                record["blocks"] = self._live_blocks()
                record["top"] = self._top_sites(self.top)
            if self.cgroup_reset == "v1":
                record["cgroup_peak"] = self._cgroup_peak_now()
            self.write(record)
            try:
                self.out.close()
            except Exception:
                pass


def _vm_hwm() -> Optional[int]:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except Exception:
        return None
    return None


def _install() -> None:
    directory = _ENV.get("MEMSLA_PROBE_DIR")
    if not directory:
        return
    probe = _Probe(directory)
    module = type(sys)("_memsla_probe")  # types.ModuleType, without importing types
    module.__dict__.update(enter_phase=probe.enter_phase, exit_phase=probe.exit_phase,
                           probe=probe)
    sys.modules["_memsla_probe"] = module


try:
    _install()
except Exception as _error:  # the build must run even if the probe cannot
    sys.stderr.write(f"memsla probe disabled: {_error!r}\n")

try:
    _chain_shadowed_sitecustomize()
except Exception as _error:
    sys.stderr.write(f"memsla: the shadowed sitecustomize failed: {_error!r}\n")
