"""One API over the cgroup v1 and v2 memory controllers: find, create, limit, read, kill.

The version-specific file names, parsing and rules live in the sibling modules ``v1`` and ``v2``,
which define the same names (as psutil's per-platform modules do). This module picks one of them
once per cgroup, by version (``files_for``), and ``Cgroup`` asks it: nothing here or in the
callers branches on the version. Stdlib-only and Python 3.8+, because the harness that runs
inside containers imports this package. ``CGROUP_ROOT`` and ``PROC_ROOT`` can be pointed at a
recorded tree in tests.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from types import ModuleType
from typing import Any, Callable

from runner.inbuild.cgroups import _io, v1, v2
from runner.inbuild.waiting import Periodic

CGROUP_ROOT = "/sys/fs/cgroup"
PROC_ROOT = "/proc"
PROCS_FILE = "cgroup.procs"  # the same on both versions

# Looked for in this order: a hybrid host mounts v1's memory hierarchy next to a unified one.
VERSIONS = (v1, v2)
_BY_VERSION = {files.VERSION: files for files in VERSIONS}


def remove_when_drained(path: str, deadline: float, what: str) -> None:
    """rmdir a cgroup directory, retrying while the kernel still drains its last tasks
    (EBUSY) until ``deadline`` (time.monotonic()); gone already is fine."""
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                raise CgroupError(exc.errno, f"cannot remove {what} {path}: "
                                             f"{exc.strerror}") from None
            time.sleep(0.02)


class CgroupError(OSError):
    """A cgroup could not be found, created, written or read."""


def files_for(version: int) -> ModuleType:
    """The module (``v1`` or ``v2``) that knows a cgroup version's files and rules."""
    try:
        return _BY_VERSION[version]
    except KeyError:
        raise ValueError("unknown cgroup version %r" % (version,)) from None


class Cgroup:
    """A memory cgroup directory and the module that knows its version's files."""

    def __init__(self, path: str, version: int) -> None:
        self.path = path
        self.version = version
        self.files = files_for(version)

    def __repr__(self) -> str:
        return f"Cgroup({self.path!r}, v{self.version})"

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def exists(self) -> bool:
        return os.path.isdir(self.path)

    def _text(self, name: str) -> str | None:
        try:
            return _io.read(self.file(name))
        except OSError:
            return None

    def _int(self, name: str) -> int | None:
        text = self._text(name)
        try:
            return None if text is None else int(text.strip())
        except ValueError:
            return None

    def current(self) -> int | None:
        """Charged memory now (page cache included)."""
        return self._int(self.files.CURRENT_FILE)

    def peak_file(self) -> str:
        """The kernel's high-water mark of charged memory, as a path."""
        return self.file(self.files.PEAK_FILE)

    def peak(self) -> int | None:
        """The kernel's high-water mark of charged memory (page cache included)."""
        return self._int(self.files.PEAK_FILE)

    def stat(self) -> dict[str, int]:
        text = self._text(self.files.STAT_FILE)
        return {} if text is None else dict(self.files.parse_stat(text))

    def anon(self, stat: dict[str, int] | None = None) -> int | None:
        """Anonymous memory now (hierarchical), from ``stat`` or a fresh read."""
        return (stat if stat is not None else self.stat()).get(self.files.ANON_KEY)

    def cache(self, stat: dict[str, int] | None = None) -> int | None:
        """Page cache now (hierarchical), from ``stat`` or a fresh read."""
        return (stat if stat is not None else self.stat()).get(self.files.CACHE_KEY)

    def oom_kills(self) -> int | None:
        """Processes the kernel OOM-killed in this cgroup and every cgroup below it (None:
        cannot be read): the counter here where it counts the subtree, else the sum."""
        here = self._oom_kills_here()
        if here is None or self.files.OOM_KILLS_HIERARCHICAL:
            return here
        return here + sum(child._oom_kills_here() or 0 for child in self.descendants())

    def _oom_kills_here(self) -> int | None:
        text = self._text(self.files.OOM_KILLS_FILE)
        return None if text is None else int(self.files.parse_oom_kills(text))

    def limit(self) -> int | None:
        """The hard limit on memory, None when there is none (or it cannot be read)."""
        text = self._text(self.files.LIMIT_FILE)
        try:
            limit: int | None = None if text is None else self.files.parse_limit(text)
        except ValueError:
            return None
        return limit

    def limits(self) -> dict[str, int | None]:
        """Every hard limit file (memory, and memory+swap or swap) that can be read, by file
        name: its value, None for no limit."""
        found: dict[str, int | None] = {}
        for name in (self.files.LIMIT_FILE, self.files.SWAP_LIMIT_FILE):
            text = self._text(name)
            if text is None:
                continue
            try:
                found[name] = self.files.parse_limit(text)
            except ValueError:
                continue
        return found

    def swap_allowed(self) -> bool | None:
        """Whether the build could swap instead of being killed (None: cannot tell)."""
        try:
            allowed: bool | None = self.files.swap_allowed(
                self._text(self.files.LIMIT_FILE), self._text(self.files.SWAP_LIMIT_FILE))
        except ValueError:
            return None
        return allowed

    def memory_for_children(self) -> bool:
        """Whether cgroups created below this one get the memory controller."""
        name = self.files.SUBTREE_CONTROL_FILE
        return bool(self.files.memory_in_subtree(self._text(name) if name else None))

    def enable_memory_for_children(self) -> None:
        """Make the cgroups created below this one memory cgroups that this one's limit and
        counters cover. Call it before creating them."""
        if self.files.MEMORY_FOR_CHILDREN is None:
            return
        name, value = self.files.MEMORY_FOR_CHILDREN
        try:
            with open(self.file(name), "w") as handle:
                handle.write(value)
        except FileNotFoundError:
            pass  # a kernel that dropped the switch has it always on

    def probe_peak(self) -> tuple[str | None, str]:
        """The peak file the probe in the build may reset at phase starts (None: it may not,
        as this process's user) and the probe's reset mode (MEMSLA_CGROUP_RESET)."""
        resettable = self.files.peak_resettable(os.geteuid() == 0)
        return (self.peak_file() if resettable else None), self.files.PROBE_RESET_MODE

    def set_limit(self, limit: int | None) -> None:
        for name, value in self.files.limit_writes(limit):
            try:
                with open(self.file(name), "w") as handle:
                    handle.write(value)
            except FileNotFoundError:
                if name == self.files.SWAP_LIMIT_FILE:
                    continue  # no swap accounting: the kernel has no swap to hold back
                raise

    def pids(self) -> list[int]:
        """The processes in this cgroup itself (not in the cgroups below it)."""
        text = self._text(PROCS_FILE)
        return [] if text is None else [int(p) for p in text.split()]

    def descendants(self) -> list[Cgroup]:
        """Every cgroup below this one, the deepest first."""
        return [Cgroup(path, self.version)
                for path, _, _ in os.walk(self.path, topdown=False) if path != self.path]

    def hierarchy_path(self, root: str | None = None) -> str | None:
        """This cgroup's path from its hierarchy's root ("/a/b"), as /proc/PID/cgroup and an
        engine's ``cgroup_parent`` name it; None when it is not below ``root``'s mount."""
        mount = self.files.memory_mount(root or CGROUP_ROOT)
        if mount is None:
            return None
        relative = os.path.relpath(self.path, mount)
        if relative.startswith(".."):
            return None
        return "/" if relative == "." else "/" + relative.replace(os.sep, "/")

    def enter_file(self) -> str:
        """Writing a pid (or 0 for the writer itself) here moves that process in."""
        return self.file(PROCS_FILE)

    def create_child(self, name: str) -> Cgroup:
        child = Cgroup(os.path.join(self.path, name), self.version)
        try:
            os.mkdir(child.path)
        except OSError as exc:
            message = f"cannot create cgroup {child.path}: {exc.strerror}"
            raise CgroupError(exc.errno, message) from None
        return child

    def kill_all(self, timeout: float = 5.0) -> None:
        """SIGKILL every process in the cgroup and the cgroups below it until they are empty
        (or timeout)."""
        kill_file = self.files.KILL_FILE  # one write kills the whole subtree, where there is one
        if kill_file and os.path.exists(self.file(kill_file)):
            try:
                with open(self.file(kill_file), "w") as handle:
                    handle.write("1")
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        while True:
            pids = [pid for group in (*self.descendants(), self) for pid in group.pids()]
            if not pids or time.monotonic() > deadline:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)

    def remove(self, timeout: float = 5.0) -> None:
        """Kill what is left and remove the directory and every cgroup below it, the deepest
        first (retrying while the kernel drains them)."""
        if not self.exists():
            return
        self.kill_all(timeout)
        deadline = time.monotonic() + timeout
        for group in (*self.descendants(), self):
            group._rmdir(deadline)

    def _rmdir(self, deadline: float) -> None:
        remove_when_drained(self.path, deadline, "cgroup")


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
        paths = parse_proc_cgroup(_io.read(os.path.join(proc, pid, "cgroup")))
    except OSError:
        return None
    for files in VERSIONS:
        if files.PROC_FIELD not in paths:
            continue
        mount = files.memory_mount(root)
        if mount is not None:
            return Cgroup(_join_or_root(mount, paths[files.PROC_FIELD]), files.VERSION)
    return None


def _join_or_root(base: str, path: str) -> str:
    joined = os.path.normpath(os.path.join(base, path.lstrip("/")))
    return joined if os.path.isdir(joined) else base


class LimitWatch:
    """The hard limits of the cgroups that hold a build, as read before it starts, and every
    change of them read since: a build that may write its cgroups' files (root, or the owner
    of a delegated scope) can raise or remove its own limit.

    ``cgroups`` names each watched cgroup by its role ("own": the build's own cgroup; "fence":
    an ancestor holding the limit for the build's whole subtree). A change of the limit of the
    ``holding`` cgroup means nothing holds the build any more: ``stop`` is called (once) to
    stop it. Each change is a dict with the keys of ``runner.results.LimitChange``.
    """

    def __init__(self, cgroups: dict[str, Cgroup], holding: str | None = None,
                 stop: Callable[[], None] | None = None) -> None:
        self.cgroups = cgroups
        self.holding = holding
        self.stop = stop
        self.changes: list[dict[str, Any]] = []
        self._last = {(role, name): value for role, group in cgroups.items()
                      for name, value in group.limits().items()}

    def check(self, at: float) -> None:
        """Read the limits again (from one thread at a time: the sampler's); ``at`` is seconds
        since the build started."""
        stop = False
        for role, group in self.cgroups.items():
            for name, value in group.limits().items():
                key = (role, name)
                if key not in self._last or self._last[key] == value:
                    continue
                stop = stop or (role == self.holding and self.stop is not None)
                self.changes.append({"cgroup": role, "file": name, "before": self._last[key],
                                     "after": value, "at": at, "stopped": stop})
                self._last[key] = value
        if stop and self.stop is not None:
            self.holding = None  # stop once
            self.stop()

class _Reopened:
    """A cgroup file read again and again through one descriptor: ``pread`` at offset 0 makes
    the kernel render the file afresh, without the path lookup, open and close of every read
    (the sampler reads two files every 20 ms, beside the build)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None

    def read(self) -> str | None:
        try:
            if self.fd is None:
                self.fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            return os.pread(self.fd, 1 << 16, 0).decode("ascii", errors="replace")
        except OSError:
            self.close()
            return None

    def close(self) -> None:
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None


class Sampler(Periodic):
    """Samples a cgroup's charged and anonymous memory every ``interval`` seconds (and checks
    the limits ``watch`` keeps, if any, at each sample).

    Keeps the full series (for memory-over-time plots) and the raw maxima of what it saw
    (None until the first sample); how they combine with the kernel's own peak is decided in
    ``runner.measure.assemble``.
    """

    def __init__(self, cgroup: Cgroup, interval: float,
                 watch: LimitWatch | None = None) -> None:
        super().__init__("memsla-sampler", interval)
        self.cgroup = cgroup
        self.watch = watch  # checked at every sample, the last one after the build
        self.t: list[float] = []
        self.usage: list[int] = []
        self.anon_series: list[int | None] = []
        self.max_usage: int | None = None
        self.max_anon: int | None = None
        self.cache_at_max: int | None = None  # page cache in the sample of the largest usage
        self._current = _Reopened(cgroup.file(cgroup.files.CURRENT_FILE))
        self._stat = _Reopened(cgroup.file(cgroup.files.STAT_FILE))

    def sample(self) -> None:
        if self.watch is not None:
            self.watch.check(self.since_start())
        text = self._current.read()
        try:
            usage = None if text is None else int(text.strip())
        except ValueError:
            usage = None
        if usage is None:
            return
        stat_text = self._stat.read()
        stat = {} if stat_text is None else dict(self.cgroup.files.parse_stat(stat_text))
        anon = self.cgroup.anon(stat)
        self.t.append(self.since_start())
        self.usage.append(usage)
        self.anon_series.append(anon)
        if anon is not None and (self.max_anon is None or anon > self.max_anon):
            self.max_anon = anon
        if self.max_usage is None or usage > self.max_usage:
            self.max_usage = usage
            self.cache_at_max = self.cgroup.cache(stat)

    def stop(self) -> None:
        super().stop()
        self._current.close()
        self._stat.close()
