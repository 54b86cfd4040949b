"""The cgroup layout of one measured build, shared by the local backend and the forked callable:
a fence ``memsla-<pid>-<n>/`` below the runner's own cgroup that holds the hard limit (memory
and memory+swap to the same value) and no process, and below it the build's own cgroup
``build/`` with the same limit. A build running as root may write its own cgroup's limit files,
but a limit on an ancestor holds for the whole subtree whatever the build writes below it.

The fence is sampled from outside (usage and peak are hierarchical) with the limits of both
cgroups watched; after the build its figures are read into the run's ``Readings`` here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager

from runner.backends.tree import TreeSampler
from runner.inbuild import cgroups, reaper
from runner.measure.readings import Readings
from runner.results import LimitChange, Timeline

CGROUP_PREFIX = reaper.CGROUP_PREFIX  # memsla-<runner pid>-<n>: the watchdog finds them
BUILD_CGROUP = "build"  # the build's own cgroup, below the fence


@contextmanager
def fenced(parent: cgroups.Cgroup, name: str, limit: int | None,
           headroom: int = 0) -> Iterator[tuple[cgroups.Cgroup, cgroups.Cgroup]]:
    """The fence ``name`` below ``parent`` and the build's cgroup below it, both held to
    ``limit`` (the fence to ``limit + headroom``, where it also holds a container's harness);
    removed (with anything left in them) on the way out."""
    fence = parent.create_child(name)
    try:
        fence.set_limit(None if limit is None else limit + headroom)
        fence.enable_memory_for_children()
        build = fence.create_child(BUILD_CGROUP)
        # the same limit again: the build sees it in its own cgroup, and a change is seen
        build.set_limit(limit)
        yield fence, build
    except BaseException:
        # the error (or Ctrl-C) that came first is the one to tell: a fence that cannot be
        # removed now is left to this runner's watchdog, which kills and removes it
        with contextlib.suppress(OSError):
            fence.remove()
        raise
    fence.remove()


def limit_watch(fence: cgroups.Cgroup, build: cgroups.Cgroup) -> cgroups.LimitWatch:
    """The limits of both cgroups watched; a changed fence, which nothing holds any more,
    stops the build at once."""
    return cgroups.LimitWatch({"fence": fence, "own": build}, holding="fence",
                              stop=fence.kill_all)


def timeline(sampler: cgroups.Sampler | TreeSampler, interval: float) -> Timeline:
    """The sampler's series of the build's memory."""
    return Timeline(interval=interval, t=sampler.t, cgroup=sampler.usage,
                    anon=sampler.anon_series)


def read_fence(readings: Readings, fence: cgroups.Cgroup, sampler: cgroups.Sampler,
               watch: cgroups.LimitWatch | None) -> None:
    """The fence's figures after the build into ``readings``: the kernel's peak, the
    sampler's maxima, the subtree's OOM kills, the limit and swap rule read back, and every
    change of a limit seen."""
    readings.kernel_peak = fence.peak()
    readings.sampled_max_usage = sampler.max_usage
    readings.sampled_max_anon = sampler.max_anon
    readings.cache_at_max = sampler.cache_at_max
    readings.oom_kill_counter = fence.oom_kills()
    readings.limit_read = fence.limit()
    readings.swap_allowed = fence.swap_allowed()
    if watch is not None:
        readings.limit_changes = [LimitChange.model_validate(change)
                                  for change in watch.changes]
