"""cgroup v1 memory controller (kernel docs: admin-guide/cgroup-v1/memory.rst).

Defines the same names as the sibling ``v2``; ``runner.inbuild.cgroups`` picks one of the two
and the rest of memsla asks it, never the version. Names are file names relative to a cgroup's
directory; parsers take the text of those files, so tests feed them recorded contents.

Stdlib-only and Python 3.8+: the in-container harness imports it, and the probe inside the
build loads it alone, without its package (``runner/inbuild/probe/cgroup_peak.py``).
"""

from __future__ import annotations

import os

VERSION = 1

# -- where the controller is ---------------------------------------------------------------------
PROC_FIELD = "memory"  # /proc/PID/cgroup: "4:memory:/docker/abc"


def memory_mount(root: str) -> str | None:
    """The memory hierarchy's mount below the cgroup root (one hierarchy per controller)."""
    mount = os.path.join(root, "memory")
    return mount if os.path.isdir(mount) else None


# -- files ---------------------------------------------------------------------------------------
CURRENT_FILE = "memory.usage_in_bytes"
PEAK_FILE = "memory.max_usage_in_bytes"  # hierarchical; page cache included
STAT_FILE = "memory.stat"
# 'total_*' keys are hierarchical: they include the cgroup's descendants.
ANON_KEY = "total_rss"  # anonymous and swap-cache memory, transparent huge pages included
CACHE_KEY = "total_cache"
LIMIT_FILE = "memory.limit_in_bytes"
SWAP_LIMIT_FILE = "memory.memsw.limit_in_bytes"  # memory + swap; absent without swap accounting
OOM_KILLS_FILE = "memory.oom_control"
# v1 counts a kill in the cgroup of the killed process only, never in its ancestors: the kills of
# a subtree are the sum over its cgroups.
OOM_KILLS_HIERARCHICAL = False
KILL_FILE = None  # no cgroup.kill on v1: processes are killed one by one
SUBTREE_CONTROL_FILE = None  # every controller of a v1 hierarchy reaches every child
# What to write (file, value) so that a cgroup's limit and counters cover its children: the
# hierarchy (always on since kernel 5.11, where writing 1 is accepted and changes nothing).
MEMORY_FOR_CHILDREN: tuple[str, str] | None = ("memory.use_hierarchy", "1")

# -- peak reset, and what the probe inside the build may do with it ------------------------------
# Writing 0 resets the cgroup-wide peak to the current usage; root may do it from inside the
# cgroup (seen here: 216 MiB -> 17 MiB). A container's cgroupfs is read-only, so it cannot.
PEAK_RESET_VALUE = "0"
# One reset is seen by every reader: the probe records the peak so far before each one.
PEAK_RESET_PER_READER = False
PROBE_RESET_MODE = "v1"  # MEMSLA_CGROUP_RESET: the probe writes 0 and records the peak before
# The peak file a container's build may reset, as the container sees it: none (read-only).
CONTAINER_PEAK_FILE: str | None = None


def peak_resettable(is_root: bool) -> bool:
    """Whether a build run by the runner's user may reset its cgroup's peak: root only."""
    return is_root


# -- the build's own cgroup beside a container's (the harness out of the build's figures) -------
def container_parent_refused(driver: str) -> str | None:
    """Why an engine with this cgroup driver cannot run a container below a cgroup the runner
    made, beside the build's own cgroup there (None: it can). The cgroupfs driver takes any
    path as ``cgroup_parent``; cgroup namespaces are not used by default on v1, and v1 lets a
    process write itself into any cgroup whose cgroup.procs it may write."""
    if driver == "cgroupfs":
        return None
    return (f"the engine's {driver} cgroup driver takes only systemd slices as a container's "
            "parent cgroup")


def engine_made(root: str, relative: str) -> list[str]:
    """The directories an engine makes for a container's ``cgroup_parent`` ``relative``
    besides the memory one: the same path in every other hierarchy under ``root``."""
    try:
        hierarchies = sorted(os.listdir(root))
    except OSError:
        return []
    found = [os.path.join(root, name, relative.lstrip("/")) for name in hierarchies
             if name != "memory"]
    return [path for path in found if os.path.isdir(path)]


# -- parsers -------------------------------------------------------------------------------------
def parse_stat(text: str) -> dict[str, int]:
    stats: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            stats[key] = int(value)
    return stats


def parse_limit(text: str) -> int | None:
    """memory.limit_in_bytes or memory.memsw.limit_in_bytes: v1 spells "no limit" as a
    page-rounded LONG_MAX."""
    value = int(text.strip())
    return None if value >= 1 << 62 else value


def parse_oom_kills(oom_control: str) -> int:
    """``oom_kill N`` in memory.oom_control (kernel 4.13+); counts this cgroup only on v1."""
    for line in oom_control.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    return 0


def swap_allowed(limit_text: str | None, swap_limit_text: str | None) -> bool | None:
    """Whether the cgroup may swap instead of being killed: memory+swap above memory.

    The texts of LIMIT_FILE and SWAP_LIMIT_FILE (None: missing); None when it cannot tell.
    """
    if limit_text is None or swap_limit_text is None:
        return None
    return int(swap_limit_text.strip()) > int(limit_text.strip())


def memory_in_subtree(subtree_control: str | None) -> bool:
    """Whether children get the memory controller: always, on v1."""
    return True


def limit_writes(limit: int | None) -> list[tuple[str, str]]:
    """Files to write, in order, to hold memory and memory+swap to ``limit`` (-1: none).

    memsw must never be below the memory limit, so memory goes first when setting it.
    """
    value = "-1" if limit is None else str(limit)
    return [(LIMIT_FILE, value), (SWAP_LIMIT_FILE, value)]


# -- cpuset (runner check --jobs: each case on CPUs of its own) ----------------------------------
CPUSET_PROC_FIELD = "cpuset"  # /proc/PID/cgroup: "3:cpuset:/"
# A hierarchy of its own: the build enters a cpuset cgroup besides its memory cgroup.
CPUSET_SEPARATE = True
CPUS_FILE = "cpuset.cpus"
MEMS_FILE = "cpuset.mems"
# A new v1 cpuset starts with empty cpus and mems, and no task may join it until both are set:
# the memory nodes are copied from the parent.
PARENT_MEMS_FILE = "cpuset.mems"


def cpuset_mount(root: str) -> str | None:
    """The cpuset hierarchy's mount below the cgroup root."""
    mount = os.path.join(root, "cpuset")
    return mount if os.path.isdir(mount) else None


def cpuset_in_subtree(subtree_control: str | None) -> bool:
    """Whether children get the cpuset controller: always, on v1."""
    return True
