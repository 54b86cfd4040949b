"""Sampling a process tree where no cgroup can be read: the summed memory of the tree's
processes every ``interval`` seconds (approximate: shared pages are counted once per process
with RSS, short spikes between samples are missed), and the processes seen, to kill them."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import psutil

from runner.inbuild.waiting import Periodic

Measure = Callable[[psutil.Process], int]


def rss(process: psutil.Process) -> int:
    return int(process.memory_info().rss)


def uss(process: psutil.Process) -> int:
    """Pages no other process maps: what a forked child added to its parent's memory."""
    return int(process.memory_full_info().uss)


class TreeSampler(Periodic):
    """The summed ``measure`` of ``pid``'s descendants (and of ``pid`` itself when
    ``include_root``), with the same series and maxima as ``cgroups.Sampler`` (no page cache
    here: anon is the same series). With ``zero_at_first`` the timeline's zero is the moment a
    descendant is first seen (``pid`` is a harness that starts the build)."""

    def __init__(self, pid: int, interval: float, measure: Measure, *, include_root: bool,
                 zero_at_first: bool = False) -> None:
        super().__init__("memsla-tree-sampler", interval)
        try:
            self.root: psutil.Process | None = psutil.Process(pid)
        except psutil.Error:  # already gone
            self.root = None
        self.measure, self.include_root, self.zero_at_first = measure, include_root, zero_at_first
        self.t: list[float] = []
        self.usage: list[int] = []
        self.anon_series: list[int | None] = []
        self.max_usage: int | None = None
        self.cpu_time: float | None = None  # the largest sum of the tree's user + system time
        self._known: dict[int, psutil.Process] = {}

    def _tree(self) -> list[psutil.Process]:
        if self.root is None:
            return []
        try:
            found = self.root.children(recursive=True)
        except psutil.Error:
            return []
        if self.include_root:
            found.insert(0, self.root)
        for process in found:
            self._known.setdefault(process.pid, process)
        return found

    def sample(self) -> None:
        tree = self._tree()
        if self.zero_at_first and not self.t:
            if not [p for p in tree if p is not self.root]:
                return  # the harness has not started the build yet
            self.started_at(time.monotonic())
        total, cpu = 0, 0.0
        for process in tree:
            try:
                total += self.measure(process)
                times = process.cpu_times()
                cpu += times.user + times.system
            except psutil.Error:
                continue
        if total:
            self.t.append(self.since_start())
            self.usage.append(total)
            self.anon_series.append(total)
            self.max_usage = max(self.max_usage or 0, total)
            self.cpu_time = max(self.cpu_time or 0.0, cpu)

    def alive_descendants(self) -> bool:
        root = self.root.pid if self.root is not None else None
        return any(p.is_running() for pid, p in self._known.items() if pid != root)

    def kill(self, *, group: bool = False) -> None:
        """Kill every descendant seen (and the root's process group, with ``group``)."""
        root = self.root.pid if self.root is not None else None
        if group and root is not None:
            try:
                os.killpg(root, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for pid, process in self._known.items():
            if pid != root or group:
                try:
                    process.kill()
                except psutil.Error:
                    pass
