"""One API over the cgroup v1 and v2 memory controllers: find, create, limit, read, kill.

The version-specific file names and parsing live in the sibling modules ``v1`` and ``v2``; the
rest of memsla stays blind to the version. Stdlib-only and Python 3.8+, because the harness that
runs inside containers imports this package. ``CGROUP_ROOT`` and ``PROC_ROOT`` can be pointed at
a recorded tree in tests.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
import time
from typing import Any

from runner.inbuild.cgroups import v1, v2

CGROUP_ROOT = "/sys/fs/cgroup"
PROC_ROOT = "/proc"


class CgroupError(OSError):
    """A cgroup could not be found, created, written or read."""


def _read(path: str) -> str:
    with open(path, encoding="ascii", errors="replace") as handle:
        return handle.read()


class Cgroup:
    """A memory cgroup directory and the module that knows its version's files."""

    def __init__(self, path: str, version: int) -> None:
        self.path = path
        self.version = version
        self.files: Any = v1 if version == 1 else v2

    def __repr__(self) -> str:
        return f"Cgroup({self.path!r}, v{self.version})"

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def exists(self) -> bool:
        return os.path.isdir(self.path)

    def read_int(self, name: str) -> int | None:
        try:
            text = _read(self.file(name)).strip()
        except OSError:
            return None
        if text == "max":
            return None
        return int(text)

    def current(self) -> int | None:
        return self.read_int(self.files.CURRENT_FILE)

    def peak(self) -> int | None:
        """The kernel's high-water mark of charged memory (page cache included)."""
        return self.read_int(self.files.PEAK_FILE)

    def stat(self) -> dict[str, int]:
        try:
            return dict(self.files.parse_stat(_read(self.file("memory.stat"))))
        except OSError:
            return {}

    def anon(self, stat: dict[str, int] | None = None) -> int | None:
        return (stat if stat is not None else self.stat()).get(self.files.ANON_KEY)

    def cache(self, stat: dict[str, int] | None = None) -> int | None:
        return (stat if stat is not None else self.stat()).get(self.files.CACHE_KEY)

    def oom_kills(self) -> int:
        try:
            return int(self.files.parse_oom_kills(_read(self.file(self.files.oom_kills_file()))))
        except OSError:
            return 0

    def limit(self) -> int | None:
        name = "memory.limit_in_bytes" if self.version == 1 else "memory.max"
        value = self.read_int(name)
        # v1 spells "no limit" as a page-rounded LONG_MAX
        return None if value is None or value >= 1 << 62 else value

    def swap_allowed(self) -> bool | None:
        """Whether the build could swap instead of being killed (None: cannot tell)."""
        if self.version == 1:
            memory, memsw = self.read_int("memory.limit_in_bytes"), self.read_int(
                "memory.memsw.limit_in_bytes")
            if memory is None or memsw is None:
                return None
            return memsw > memory
        swap_max = self.read_int("memory.swap.max")
        return None if swap_max is None and not os.path.exists(
            self.file("memory.swap.max")) else swap_max != 0

    def set_limit(self, limit: int | None) -> None:
        for name, value in self.files.limit_writes(limit):
            try:
                with open(self.file(name), "w") as handle:
                    handle.write(value)
            except FileNotFoundError:
                if name in ("memory.memsw.limit_in_bytes", "memory.swap.max"):
                    continue  # no swap accounting: the kernel has no swap to hold back
                raise

    def reset_peak(self) -> bool:
        """Reset the cgroup-wide peak (v1 only; v2 resets are per file descriptor)."""
        if self.version != 1:
            return False
        name, value = self.files.reset_peak_write()
        try:
            with open(self.file(name), "w") as handle:
                handle.write(value)
            return True
        except OSError:
            return False

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in _read(self.file("cgroup.procs")).split()]
        except OSError:
            return []

    def enter_file(self) -> str:
        """Writing a pid (or 0 for the writer itself) here moves that process in."""
        return self.file("cgroup.procs")

    def create_child(self, name: str) -> Cgroup:
        child = Cgroup(os.path.join(self.path, name), self.version)
        try:
            os.mkdir(child.path)
        except OSError as exc:
            message = f"cannot create cgroup {child.path}: {exc.strerror}"
            raise CgroupError(exc.errno, message) from None
        return child

    def kill_all(self, timeout: float = 5.0) -> None:
        """SIGKILL every process in the cgroup until it is empty (or timeout)."""
        if self.version == 2 and os.path.exists(self.file("cgroup.kill")):
            try:
                with open(self.file("cgroup.kill"), "w") as handle:
                    handle.write("1")
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        while True:
            pids = self.pids()
            if not pids or time.monotonic() > deadline:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)

    def remove(self, timeout: float = 5.0) -> None:
        """Kill what is left and remove the directory (retrying while the kernel drains it)."""
        if not self.exists():
            return
        self.kill_all(timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError as exc:
                if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise CgroupError(exc.errno, f"cannot remove cgroup {self.path}: "
                                                 f"{exc.strerror}") from None
                time.sleep(0.02)


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """``/proc/PID/cgroup`` -> {'memory': '/a/b', '': '/unified/path', ...}."""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            paths[""] = path
        for controller in controllers.split(","):
            if controller:
                paths[controller] = path
    return paths


def own_cgroup(pid: str = "self", root: str | None = None,
               proc: str | None = None) -> Cgroup | None:
    """The memory cgroup the process sits in, or None when there is no memory controller.

    Inside a container the cgroup mount's root is the container's own cgroup, while
    /proc/self/cgroup may still name the host path: fall back to the mount root then.
    """
    root = root or CGROUP_ROOT
    proc = proc or PROC_ROOT
    try:
        paths = parse_proc_cgroup(_read(os.path.join(proc, pid, "cgroup")))
    except OSError:
        return None
    if "memory" in paths and os.path.isdir(os.path.join(root, "memory")):
        base = os.path.join(root, "memory")
        return Cgroup(_join_or_root(base, paths["memory"]), 1)
    if "" in paths and os.path.exists(os.path.join(root, "cgroup.controllers")):
        controllers = _read(os.path.join(root, "cgroup.controllers")).split()
        if "memory" not in controllers:
            return None
        return Cgroup(_join_or_root(root, paths[""]), 2)
    return None


def _join_or_root(base: str, path: str) -> str:
    joined = os.path.normpath(os.path.join(base, path.lstrip("/")))
    return joined if os.path.isdir(joined) else base


class Sampler(threading.Thread):
    """Samples a cgroup's charged and anonymous memory every ``interval`` seconds.

    Keeps the full series (for memory-over-time plots) and the maxima (for verdicts).
    """

    def __init__(self, cgroup: Cgroup, interval: float) -> None:
        super().__init__(name="memsla-sampler", daemon=True)
        self.cgroup = cgroup
        self.interval = interval
        self.t: list[float] = []
        self.usage: list[int] = []
        self.anon_series: list[int | None] = []
        self.cache_series: list[int | None] = []
        self.max_anon = 0
        self.max_usage = 0
        self.cache_at_max = 0
        self._stop_event = threading.Event()
        self._start = time.monotonic()

    def started_at(self, monotonic_start: float) -> None:
        """Align the series' zero with the build's start."""
        self._start = monotonic_start

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)

    def sample(self) -> None:
        usage = self.cgroup.current()
        if usage is None:
            return
        stat = self.cgroup.stat()
        anon = self.cgroup.anon(stat)
        cache = self.cgroup.cache(stat)
        self.t.append(round(time.monotonic() - self._start, 4))
        self.usage.append(usage)
        self.anon_series.append(anon)
        self.cache_series.append(cache)
        if anon is not None and anon > self.max_anon:
            self.max_anon = anon
        if usage > self.max_usage:
            self.max_usage = usage
            self.cache_at_max = cache or 0

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join()
        self.sample()  # one last point after the build ended
