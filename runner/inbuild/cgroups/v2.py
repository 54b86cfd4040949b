"""cgroup v2 memory controller (kernel docs: admin-guide/cgroup-v2.rst).

Defines the same names as the sibling ``v1``; ``runner.inbuild.cgroups`` picks one of the two
and the rest of memsla asks it, never the version. Names are file names relative to a cgroup's
directory; parsers take the text of those files. This version cannot run on the development
machines (cgroup v1): its parsing is tested on recorded file contents.

Stdlib-only and Python 3.8+: the in-container harness imports it, and the probe inside the
build loads it alone, without its package (``runner/inbuild/probe/cgroup_peak.py``): it imports
nothing of memsla at module level.
"""

from __future__ import annotations

import os

VERSION = 2

# -- where the controller is ---------------------------------------------------------------------
PROC_FIELD = ""  # /proc/PID/cgroup: "0::/system.slice/docker-abc.scope"


def _root_with(root: str, controller: str) -> str | None:
    """The unified hierarchy is the cgroup root itself, if its controllers include
    ``controller``."""
    from runner.inbuild.cgroups import _io  # here, not above: see the module's docstring

    try:
        controllers = _io.read(os.path.join(root, "cgroup.controllers")).split()
    except OSError:
        return None
    return root if controller in controllers else None


def memory_mount(root: str) -> str | None:
    """The unified hierarchy, if its controllers include memory."""
    return _root_with(root, "memory")


# -- files ---------------------------------------------------------------------------------------
CURRENT_FILE = "memory.current"
PEAK_FILE = "memory.peak"  # kernel 5.19+; hierarchical; page cache included; RAM only, no swap
STAT_FILE = "memory.stat"
ANON_KEY = "anon"  # hierarchical, as every memory.stat key on v2
CACHE_KEY = "file"
LIMIT_FILE = "memory.max"
SWAP_LIMIT_FILE = "memory.swap.max"  # swap on top of memory.max; absent without swap accounting
OOM_KILLS_FILE = "memory.events"
OOM_KILLS_HIERARCHICAL = True  # memory.events counts the kills of the whole subtree
KILL_FILE = "cgroup.kill"  # kernel 5.14+: writing 1 kills every process of the subtree
SUBTREE_CONTROL_FILE = "cgroup.subtree_control"  # controllers the children get
# What to write (file, value) so that a cgroup's children get the memory controller (its
# limit and counters cover them in any case).
MEMORY_FOR_CHILDREN: tuple[str, str] | None = (SUBTREE_CONTROL_FILE, "+memory")

# -- peak reset, and what the probe inside the build may do with it ------------------------------
# Kernel 6.12+: a write resets the peak seen through that open file descriptor only; other
# readers keep the cgroup-wide peak. Older kernels refuse the write (the probe does without).
PEAK_RESET_VALUE = "reset"
PEAK_RESET_PER_READER = True
PROBE_RESET_MODE = "v2"  # MEMSLA_CGROUP_RESET: the probe keeps one reset descriptor per phase
# The peak file a container's build may reset, as the container sees it (cgroupns private, the
# v2 default, makes the container's own cgroup the mount root).
CONTAINER_PEAK_FILE: str | None = "/sys/fs/cgroup/memory.peak"


def peak_resettable(is_root: bool) -> bool:
    """A per-descriptor reset disturbs no other reader: any build may try."""
    return True


# -- the build's own cgroup beside a container's (the harness out of the build's figures) -------
def container_parent_refused(driver: str) -> str | None:
    """Why the build of a container cannot enter a cgroup the runner made beside the
    container's (None: it can). On v2 a process may move only between cgroups visible in its
    cgroup namespace (private for containers, the v2 default) and needs write access to the
    common ancestor's cgroup.procs, which would let it leave its own limit: memsla does not
    do it there, it subtracts the idle harness instead."""
    return ("cgroup v2: a container's build cannot enter a cgroup outside the container's "
            "cgroup namespace without delegation")


def engine_made(root: str, relative: str) -> list[str]:
    """The directories an engine makes for a container's ``cgroup_parent`` besides the
    memory one: none, the unified hierarchy is the only one."""
    return []


# -- parsers -------------------------------------------------------------------------------------
def parse_stat(text: str) -> dict[str, int]:
    stats: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            stats[key] = int(value)
    return stats


def parse_limit(text: str) -> int | None:
    """memory.max or memory.swap.max: "max" is no limit."""
    text = text.strip()
    return None if text == "max" else int(text)


def parse_oom_kills(events: str) -> int:
    """``oom_kill N`` in memory.events: hierarchical, so a grandchild's kill counts here."""
    for line in events.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    return 0


def swap_allowed(limit_text: str | None, swap_limit_text: str | None) -> bool | None:
    """Whether the cgroup may swap instead of being killed: memory.swap.max above 0 ("max"
    included). The texts of LIMIT_FILE and SWAP_LIMIT_FILE (None: missing); None when it
    cannot tell."""
    if swap_limit_text is None:
        return None
    return swap_limit_text.strip() != "0"


def memory_in_subtree(subtree_control: str | None) -> bool:
    """Whether children get the memory controller: only when cgroup.subtree_control lists it."""
    return subtree_control is not None and "memory" in subtree_control.split()


def limit_writes(limit: int | None) -> list[tuple[str, str]]:
    """memory.max plus memory.swap.max 0, so the build is killed instead of swapping."""
    value = "max" if limit is None else str(limit)
    return [(LIMIT_FILE, value), (SWAP_LIMIT_FILE, "0")]


# -- cpuset (runner check --jobs: each case on CPUs of its own) ----------------------------------
CPUSET_PROC_FIELD = ""  # one unified hierarchy
# The build's memory cgroup is its cpuset cgroup too: nothing more to enter.
CPUSET_SEPARATE = False
CPUS_FILE = "cpuset.cpus"
MEMS_FILE = "cpuset.mems"  # empty: the parent's effective memory nodes, which is what we want
PARENT_MEMS_FILE = "cpuset.mems.effective"


def cpuset_mount(root: str) -> str | None:
    """The unified hierarchy, if its controllers include cpuset."""
    return _root_with(root, "cpuset")


def cpuset_in_subtree(subtree_control: str | None) -> bool:
    """Whether children get the cpuset controller: only when cgroup.subtree_control lists it."""
    return subtree_control is not None and "cpuset" in subtree_control.split()
