"""memsla's in-process probe, loaded by the measured Python through PYTHONPATH.

It must never change what the program does: stdlib-only, CPython 3.8+, every failure swallowed
(and reported), and it chains to the sitecustomize it shadows (Debian's python3 ships one).
Under MEMSLA_PROBE_DIR it:
- starts tracemalloc at interpreter start when MEMSLA_TRACE=1 (the untraced runs that time the
  build only record phase marks), or memray when MEMSLA_TRACKER=memray (a capture file per
  process, MEMSLA_NATIVE=1 for native stacks, read on the host by
  ``runner/measure/memray_records.py``; where the build's Python cannot import memray, a
  ``tracker_error`` record says so and nothing else is traced);
- appends JSON lines to MEMSLA_PROBE_DIR/probe-<pid>.jsonl, flushed every
  MEMSLA_FLUSH_INTERVAL seconds so a build that is OOM-killed still leaves partial data;
- registers the module ``_memsla_probe`` that ``runner.phase`` calls: each phase gets its own
  Python heap peak (tracemalloc.reset_peak) and, where MEMSLA_CGROUP_PEAK names a peak file the
  build may reset (MEMSLA_CGROUP_RESET=v1 or v2), its own cgroup peak; both with the figure at
  the phase's entry, so what the phase added (its growth) is known;
- wraps the callables MEMSLA_PHASES names (``name=module:Qual.name;...``) as phases when their
  module is imported (``_PhaseFinder``), without a change to the program;
- in traced runs, takes the top allocation sites at the heap's high-water mark: the flusher
  thread polls ``get_traced_memory`` every MEMSLA_PEAK_POLL seconds and summarises the traces
  when the heap has grown past the last summary by more than MEMSLA_PEAK_TOLERANCE (a
  fraction, and at least a number of bytes), and the same at each open phase's own peak;
  at exit, the heap and its top sites both before and after a full collection.

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
# The sites at the peak are summarised in the build's own process, under the GIL: their cost
# is held to this fraction of the build's time, plus a fixed allowance in seconds.
SNAP_BUDGET = 0.1
SNAP_ALLOWANCE = 0.5
# Under memray a phase's heap is read on the host from memray's memory snapshots (one every
# 10 ms). The probe keeps the build still for a little longer than that at a phase's start
# and end, so that a snapshot falls between what came before and the phase: its entry and
# peak are then exact. Held to QUIET_BUDGET of the build's time plus QUIET_ALLOWANCE seconds;
# past it, the host's figures are the conservative ones (memray_records says how).
QUIET_S = 0.015
QUIET_BUDGET = 0.05
QUIET_ALLOWANCE = 1.0


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
        traced = _ENV.get("MEMSLA_TRACE") == "1"
        self.tracker = _ENV.get("MEMSLA_TRACKER", "tracemalloc") if traced else "none"
        # self.trace: tracemalloc runs (memray's figures are read from its file on the host)
        self.trace = self.tracker == "tracemalloc"
        self.tracemalloc: Any = None
        self.memray: Any = None
        if self.trace:
            import tracemalloc

            self.tracemalloc = tracemalloc
        self.frames = int(_ENV.get("MEMSLA_TRACE_FRAMES", "1"))
        self.top = int(_ENV.get("MEMSLA_TOP_SITES", "15"))
        self.phase_top = 5
        fraction, _, floor = _ENV.get("MEMSLA_PEAK_TOLERANCE", "0.05,1048576").partition(",")
        self.tolerance = (float(fraction), int(floor or "0"))
        self.peak_poll = float(_ENV.get("MEMSLA_PEAK_POLL", "0.05"))
        self.snap_heap = 0  # the heap when the last sites at the peak were taken
        # The summaries' cost is held to SNAP_BUDGET of the time since start plus SNAP_ALLOWANCE
        self.snap_spent = 0.0
        self.quiet_spent = 0.0
        self.started = time.monotonic()
        self.hook_depth: Dict[str, int] = {}  # zero-code phases being run, by name
        self.hooks: Dict[str, str] = {}  # target -> what became of it
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
                    "tracker": self.tracker, "t": self.now(), "t0": self.t0})
        if self.trace:
            self.tracemalloc.start(self.frames)
        elif self.tracker == "memray":
            self._start_memray(directory)
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

    def _start_memray(self, directory: str) -> None:
        """memray in this process, to the end (its file is read on the host). Where the build's
        Python cannot import memray, say so: the run has no heap figures, never another
        tracker's."""
        try:
            import memray
        except Exception as error:
            self.write({"type": "tracker_error", "tracker": "memray",
                        "error": "memray is not importable by the build's Python (%s, %s): "
                                 "install it where the build runs (requirements: [memray], "
                                 "or the image), or set tracker: tracemalloc"
                                 % (sys.executable, type(error).__name__)})
            return
        try:
            capture = os.path.join(directory, "memray-%d.bin" % os.getpid())
            try:  # uncompressed: compressing at exit is the build's time; the host reads either
                where = {"destination": memray.FileDestination(capture, compress_on_exit=False)}
            except (AttributeError, TypeError):  # a memray older than 1.5
                where = {"file_name": capture}
            self.memray = memray.Tracker(
                native_traces=_ENV.get("MEMSLA_NATIVE") == "1", follow_fork=True, **where)
            self.memray.__enter__()
        except Exception as error:
            self.memray = None
            self.write({"type": "tracker_error", "tracker": "memray",
                        "error": "memray did not start in the build: %r" % (error,)})

    def now(self) -> float:
        return round(time.time() - self.t0, 4)

    def write(self, record: Dict[str, Any]) -> None:
        try:
            with self.lock:
                self.out.write(_dumps(record) + "\n")
        except Exception:
            pass

    def _flush_loop(self, interval: float) -> None:
        snapping = self.peak_poll > 0 and hasattr(self.tracemalloc, "reset_peak")
        poll = min(self.peak_poll, interval) if snapping else interval
        next_flush = time.monotonic() + interval
        while not self.stopping.wait(poll):
            if not self.tracemalloc.is_tracing():
                return
            current, peak = self.tracemalloc.get_traced_memory()
            if snapping and self._within_budget():
                try:
                    self._maybe_snapshot(current)
                except Exception:
                    pass
            if time.monotonic() >= next_flush:
                next_flush = time.monotonic() + interval
                self.write({"type": "sample", "t": self.now(), "current": current,
                            "peak": max(peak, self.heap_max)})

    # -- sites at the peak ---------------------------------------------------------------------
    def _within_budget(self) -> bool:
        """Whether the summaries of sites (at peaks, at phase ends) may take more time."""
        return self.snap_spent <= SNAP_ALLOWANCE + SNAP_BUDGET * (
            time.monotonic() - self.started)

    def _beyond(self, current: int, base: int) -> bool:
        fraction, floor = self.tolerance
        return current > base + max(floor, int(base * fraction))

    def _maybe_snapshot(self, current: int) -> None:
        """Take the top sites now if the heap has grown past the last sites taken (globally,
        or in an open phase) by more than the tolerance."""
        with self.lock:
            overall = self._beyond(current, self.snap_heap)
            phases = [f for f in self.stack if f.get("python_entry") is not None
                      and self._beyond(current, max(f["python_entry"], f["snap_heap"]))]
            if not (overall or phases):
                return
            self._fold()  # the program's peak so far, before the summary allocates
            started = time.monotonic()
            sites = self._sites(self.top)
            record = {"type": "peak_sites", "t": self.now(), "heap": current,
                      "peak": self.heap_max, "tolerance": self.tolerance[0],
                      "tolerance_bytes": self.tolerance[1], "sites": sites}
            if overall:
                self.snap_heap = current
                self.write(record)
            for frame in phases:
                frame["snap_heap"] = current
                frame["at_peak"] = {"t": record["t"], "heap": current,
                                    "tolerance": self.tolerance[0],
                                    "tolerance_bytes": self.tolerance[1],
                                    "sites": sites[:self.phase_top]}
            # What the summary itself allocated is not the program's: forget its peak (the
            # program's was folded above). The cost: a spike of the program's (it runs on
            # between GIL switches) that rises above every earlier peak and falls again while
            # the summary runs (tens to hundreds of milliseconds, a few times per build) is not
            # in the heap peak. Subtracting a bound on the summary's own allocations instead
            # overstated the peak by a megabyte where the bound missed one (json's import).
            self.tracemalloc.reset_peak()
            self.snap_spent += time.monotonic() - started

    def _raw_traces(self) -> List[Any]:
        try:
            import _tracemalloc  # the C module: the list it makes is not traced itself

            return _tracemalloc._get_traces()  # type: ignore[no-any-return]
        except (ImportError, AttributeError):
            return list(self.tracemalloc.take_snapshot().traces._traces)

    def _sites(self, limit: int) -> List[Dict[str, Any]]:
        """The ``limit`` largest allocation sites (the innermost frame's file and line) of the
        live heap, each with its largest stack. Sorted and grouped in C: a Python loop over
        every trace is slowed tenfold by tracemalloc itself."""
        import itertools
        import operator

        raw = self._raw_traces()
        stack_of = operator.itemgetter(2)
        raw.sort(key=stack_of)
        sites: Dict[Any, List[Any]] = {}
        size_of = operator.itemgetter(1)
        for stack, group in itertools.groupby(raw, key=stack_of):
            if not stack or stack[0][0] == __file__:
                continue
            traces = list(group)
            size = sum(map(size_of, traces))
            site = sites.get(stack[0])
            if site is None:
                sites[stack[0]] = [size, len(traces), stack, size]
            else:
                site[0] += size
                site[1] += len(traces)
                if size > site[3]:
                    site[2], site[3] = stack, size
        del raw
        top = sorted(sites.items(), key=lambda item: item[1][0], reverse=True)[:limit]
        sources: Dict[str, Optional[List[str]]] = {}
        return [{"file": where[0], "line": where[1],
                 "function": _function_at(sources, where[0], where[1]),
                 "size": site[0], "count": site[1],
                 "stack": [{"file": f, "line": n, "function": _function_at(sources, f, n),
                            "code": _code_at(sources, f, n)} for f, n in site[2]]}
                for where, site in top]

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

    def _cgroup_usage_now(self) -> Optional[int]:
        """The cgroup's charged memory now (v1 memory.usage_in_bytes, v2 memory.current),
        beside the peak file: what a phase starts from."""
        if not self.cgroup_peak_file or self.cgroup_reset not in ("v1", "v2"):
            return None
        name = "memory.usage_in_bytes" if self.cgroup_reset == "v1" else "memory.current"
        try:
            with open(os.path.join(os.path.dirname(self.cgroup_peak_file), name)) as usage:
                return int(usage.read().strip())
        except Exception:
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
    def _quiet(self) -> Optional[float]:
        """Under memray, keep still for longer than memray's snapshot interval (within the
        budget); the time the stillness began, or None."""
        if self.memray is None or self.quiet_spent > QUIET_ALLOWANCE + QUIET_BUDGET * (
                time.monotonic() - self.started):
            return None
        began = self.now()
        time.sleep(QUIET_S)
        self.quiet_spent += QUIET_S
        return began

    def enter_phase(self, name: str) -> Dict[str, Any]:
        with self.lock:
            quiet_from = self._quiet()
            self._fold()
            cgroup_entry = self._cgroup_usage_now()
            resettable = self._reset()
            heap = self.tracemalloc.get_traced_memory()[0] if (
                self.trace and self.tracemalloc.is_tracing()) else None
            frame = {"name": name, "depth": len(self.stack), "start": self.now(),
                     "python_peak": None, "cgroup_peak": None, "python_entry": heap,
                     "cgroup_entry": None, "snap_heap": 0, "at_peak": None,
                     "cgroup_resettable": resettable, "cgroup_fd": self._open_v2_peak()}
            if resettable or frame["cgroup_fd"] is not None:
                frame["cgroup_entry"] = cgroup_entry
            if self.trace and not hasattr(self.tracemalloc, "reset_peak"):
                frame["python_peak_unavailable"] = True  # Python 3.8: no reset_peak
            if quiet_from is not None:
                frame["quiet_from"] = quiet_from
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
                      "cgroup_peak": frame["cgroup_peak"],
                      "python_entry": None if frame.get("python_peak_unavailable")
                      else frame["python_entry"],
                      "cgroup_entry": frame["cgroup_entry"]}
            if "quiet_from" in frame:
                record["quiet_from"] = frame["quiet_from"]
            self._quiet()  # memray: what follows the phase is not in its last interval
            if self.trace:
                # a phase entered a thousand times (one per page) would otherwise cost a
                # summary each time: the phase ends share the summaries' time budget
                if self._within_budget():
                    started = time.monotonic()
                    record["top"] = self._top_sites(self.phase_top)
                    self.snap_spent += time.monotonic() - started
                if frame["at_peak"] is not None:
                    record["at_peak"] = frame["at_peak"]
                if hasattr(self.tracemalloc, "reset_peak"):
                    # the summary's own memory is not the program's (its peak is folded)
                    self.tracemalloc.reset_peak()
            self.write(record)

    # -- end -----------------------------------------------------------------------------------
    def _top_sites(self, limit: int) -> List[Dict[str, Any]]:
        try:
            return self._sites(limit)
        except Exception:
            return []

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
        if (self.trace and self.tracemalloc.is_tracing() and self.peak_poll > 0
                and hasattr(self.tracemalloc, "reset_peak") and self._within_budget()):
            try:  # a heap that grew to its peak after the last poll is often still there now
                self._maybe_snapshot(self.tracemalloc.get_traced_memory()[0])
            except Exception:
                pass
        if self.memray is not None:
            try:
                self.memray.__exit__(None, None, None)
            except Exception:
                pass
            self.memray = None
        with self.lock:
            while self.stack:  # phases left open by an exception that escaped them
                self.exit_phase(self.stack[-1])
            for target, status in self.hooks.items():
                self.write({"type": "phase_hook", "target": target, "status": status})
            record = {"type": "end", "t": self.now(), "vm_hwm": _vm_hwm()}
            if self.trace and self.tracemalloc.is_tracing():
                current, peak = self.tracemalloc.get_traced_memory()
                record["python_peak"] = max(peak, self.heap_max)
                record["python_final"] = current
                # before the collection: what cyclic garbage still held at exit shows here
                record["top_before_collection"] = self._top_sites(self.top)
                record["blocks"] = self._live_blocks()
                record["python_collected"] = self.tracemalloc.get_traced_memory()[0]
                record["top"] = self._top_sites(self.top)
            if self.cgroup_reset == "v1":
                record["cgroup_peak"] = self._cgroup_peak_now()
            self.write(record)
            try:
                self.out.close()
            except Exception:
                pass


def _function_at(sources: Dict[str, Optional[List[str]]], path: str,
                 line: int) -> Optional[str]:
    """The function (``Class.method``) whose body holds ``path:line``, from its source text,
    read once per summary and never cached beyond it; ``<module>`` at the top level; None
    without a readable source. tracemalloc records files and lines only."""
    if path not in sources:
        sources[path] = None
        if not path.startswith("<"):
            try:
                with open(path, encoding="utf-8", errors="replace") as source:
                    sources[path] = source.read(4 * 1024 * 1024).splitlines()
            except Exception:
                pass
    lines = sources[path]
    if lines is None or not 0 < line <= len(lines):
        return None
    names: List[str] = []
    text = lines[line - 1]
    indent = len(text) - len(text.lstrip())
    if text.lstrip().startswith(("def ", "async def ")):  # a one-line function
        indent += 1
    for number in range(line - 1 if indent > len(text) - len(text.lstrip()) else line - 2,
                        -1, -1):
        text = lines[number]
        stripped = text.lstrip()
        if not stripped or stripped.startswith(("#", ")", "]", "}")):
            continue
        depth = len(text) - len(stripped)
        if depth >= indent:
            continue
        indent = depth
        for keyword in ("def ", "async def ", "class "):
            if stripped.startswith(keyword):
                names.append(stripped[len(keyword):].split("(")[0].split(":")[0].strip())
        if depth == 0:
            break
    return ".".join(reversed(names)) or "<module>"


class _PhaseFinder:
    """Zero-code phases: a meta path finder that lets the usual finders find a module named in
    MEMSLA_PHASES, and after that module has executed (before its importer sees it) replaces
    each named callable with one that runs it as a phase. Nothing else of the import changes:
    the spec and loader stay the ones found; only the loader instance's ``exec_module`` is
    wrapped for that one call."""

    def __init__(self, probe: _Probe, targets: List[Any]) -> None:
        self.probe = probe
        self.by_module: Dict[str, List[Any]] = {}
        for name, module, qualname in targets:
            self.by_module.setdefault(module, []).append((name, qualname))
            probe.hooks["%s:%s" % (module, qualname)] = "never imported"

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in self.by_module:
            return None
        try:
            return self._find_and_hook(fullname, path, target)
        except Exception:  # the import goes on as if the probe were not there
            return None

    def _find_and_hook(self, fullname: str, path: Any, target: Any) -> Any:
        for finder in sys.meta_path:
            if finder is self:
                continue
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or isinstance(loader, type) or not hasattr(loader, "exec_module"):
            return spec  # a shared loader (builtin, frozen): wrapped once imported, see wrap
        original = loader.exec_module

        def exec_module(module: Any) -> None:
            try:
                del loader.exec_module  # the loader is as it was from now on
            except Exception:
                pass
            original(module)
            self.wrap(fullname, module)

        try:
            loader.exec_module = exec_module
        except Exception:
            pass
        return spec

    def wrap_imported(self) -> None:
        for module_name in self.by_module:
            if module_name == "__main__":
                for _name, qualname in self.by_module[module_name]:
                    self.probe.hooks["__main__:" + qualname] = (
                        "not wrapped: the script run as __main__ defines its functions after "
                        "the probe has loaded; name the module they are imported from")
                continue
            module = sys.modules.get(module_name)
            if module is not None:
                self.wrap(module_name, module)

    def wrap(self, module_name: str, module: Any) -> None:
        for name, qualname in self.by_module.get(module_name, ()):
            target = "%s:%s" % (module_name, qualname)
            try:
                self.probe.hooks[target] = _wrap_callable(self.probe, name, module, qualname)
            except Exception as error:
                self.probe.hooks[target] = "not wrapped: %r" % (error,)


def _wrap_callable(probe: _Probe, name: str, module: Any, qualname: str) -> str:
    owner = module
    parts = qualname.split(".")
    for part in parts[:-1]:
        owner = getattr(owner, part)
    raw = owner.__dict__[parts[-1]] if parts[-1] in getattr(owner, "__dict__", {}) else getattr(
        owner, parts[-1])
    kind = None
    func = raw
    if isinstance(raw, (staticmethod, classmethod)):
        kind, func = type(raw), raw.__func__
    code = getattr(func, "__code__", None)
    if code is not None and code.co_flags & (0x20 | 0x80 | 0x200):
        return "not wrapped: a generator or coroutine function runs after it returns"
    if getattr(func, "__memsla_phase__", None) is not None:
        return "wrapped"
    if not callable(func):
        return "not wrapped: not callable"
    depth = probe.hook_depth
    depth.setdefault(name, 0)

    def phase_wrapper(*args: Any, **kwargs: Any) -> Any:
        if depth[name]:  # recursion, or a nested call of the same phase: counted once
            return func(*args, **kwargs)
        depth[name] = 1
        try:
            token = probe.enter_phase(name)
        except Exception:
            token = None
        try:
            return func(*args, **kwargs)
        finally:
            depth[name] = 0
            if token is not None:
                try:
                    probe.exit_phase(token)
                except Exception:
                    pass

    for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
        try:
            setattr(phase_wrapper, attribute, getattr(func, attribute))
        except Exception:
            pass
    try:
        phase_wrapper.__dict__.update(getattr(func, "__dict__", {}))
    except Exception:
        pass
    phase_wrapper.__wrapped__ = func  # type: ignore[attr-defined]
    phase_wrapper.__memsla_phase__ = name  # type: ignore[attr-defined]
    setattr(owner, parts[-1], kind(phase_wrapper) if kind is not None else phase_wrapper)
    return "wrapped"


def _phase_targets(text: str) -> List[Any]:
    """``render=pkg.mod:Class.method;parse=mod:func`` -> [(name, module, qualname)]."""
    targets = []
    for item in text.split(";"):
        name, _, target = item.partition("=")
        module, _, qualname = target.partition(":")
        if name and module and qualname:
            targets.append((name, module, qualname))
    return targets


def _code_at(sources: Dict[str, Optional[List[str]]], path: str, line: int) -> Optional[str]:
    """The source line, stripped and cut short, where ``_function_at`` has read its file."""
    lines = sources.get(path)
    if not lines or not 0 < line <= len(lines):
        return None
    return lines[line - 1].strip()[:120]


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
    targets = _phase_targets(_ENV.get("MEMSLA_PHASES", ""))
    if targets:
        finder = _PhaseFinder(probe, targets)
        sys.meta_path.insert(0, finder)
        finder.wrap_imported()


try:
    _install()
except Exception as _error:  # the build must run even if the probe cannot
    sys.stderr.write(f"memsla probe disabled: {_error!r}\n")

try:
    _chain_shadowed_sitecustomize()
except Exception as _error:
    sys.stderr.write(f"memsla: the shadowed sitecustomize failed: {_error!r}\n")
