"""CPUs of its own for one build (``runner check --jobs``): a cpuset cgroup.

On cgroup v1 the cpuset controller is a hierarchy of its own (``/sys/fs/cgroup/cpuset``): the
build gets a cpuset cgroup below the runner's, with ``cpuset.cpus`` and ``cpuset.mems`` written
before any task may join, and enters it next to its memory cgroup. On v2 the build's memory
cgroup is also its cpuset cgroup (``cpuset`` must be in the parent's ``cgroup.subtree_control``).
What differs between the versions is named in ``v1``/``v2`` (``CPUSET_*``, ``CPUS_FILE``, ...).

Stdlib-only and Python 3.8+, like the rest of ``runner.inbuild``.
"""

from __future__ import annotations

import errno
import os
import time
from types import ModuleType
from typing import Iterable, List, Optional, Sequence

from runner.inbuild import cgroups as _cgroups
from runner.inbuild.cgroups import _io


def format_cpus(cpus: Iterable[int]) -> str:
    """[0, 1, 2, 5] -> "0-2,5", the kernel's list format."""
    ordered = sorted(set(cpus))
    parts: List[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else "%d-%d" % (ordered[i], ordered[j]))
        i = j + 1
    return ",".join(parts)


def parse_cpus(text: str) -> List[int]:
    """ "0-2,5\\n" -> [0, 1, 2, 5] (``cpuset.cpus``, ``Cpus_allowed_list``)."""
    cpus: List[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        cpus.extend(range(int(low), int(high or low) + 1))
    return cpus


class CpuSet:
    """The cpuset cgroup a build runs in: ``enter_file`` is None where the build's memory
    cgroup is that cgroup already (v2)."""

    def __init__(self, path: str, enter_file: Optional[str], owned: bool, cpus_file: str) -> None:
        self.path = path
        self.enter_file = enter_file
        self.owned = owned  # a cgroup of its own, removed with remove()
        self._cpus_file = cpus_file

    def __repr__(self) -> str:
        return "CpuSet(%r)" % (self.path,)

    def cpus(self) -> List[int]:
        return parse_cpus(_io.read(os.path.join(self.path, self._cpus_file)))

    def remove(self, timeout: float = 5.0) -> None:
        """Remove a cpuset cgroup of its own once its tasks are gone (they die with the
        memory cgroup, which the backend removes first)."""
        if not self.owned:
            return
        _cgroups.remove_when_drained(self.path, time.monotonic() + timeout, "cpuset")


def own_cpuset_dir(files: ModuleType, root: Optional[str] = None,
                   proc: Optional[str] = None) -> Optional[str]:
    """The runner's own cpuset cgroup (where children are made), or None without the
    controller."""
    root = root or _cgroups.CGROUP_ROOT
    proc = proc or _cgroups.PROC_ROOT
    mount = files.cpuset_mount(root)
    if mount is None:
        return None
    try:
        paths = _cgroups.parse_proc_cgroup(_io.read(os.path.join(proc, "self", "cgroup")))
    except OSError:
        return None
    field = files.CPUSET_PROC_FIELD
    if field not in paths:
        return None
    return _cgroups._join_or_root(mount, paths[field])


def confine(memory: "_cgroups.Cgroup", cpus: Sequence[int], root: Optional[str] = None,
            proc: Optional[str] = None) -> CpuSet:
    """Give the build of ``memory`` (a fresh memory cgroup, no task in it yet) the CPUs
    ``cpus``. Raises CgroupError when the host has no usable cpuset controller."""
    files = memory.files
    wanted = format_cpus(cpus)
    if not files.CPUSET_SEPARATE:
        above = os.path.dirname(memory.path)
        try:
            subtree: Optional[str] = _io.read(os.path.join(above, "cgroup.subtree_control"))
        except OSError:
            subtree = None
        if not files.cpuset_in_subtree(subtree):
            raise _cgroups.CgroupError(
                errno.ENOTSUP, "the cpuset controller is not enabled for children of %s "
                "(cgroup.subtree_control): each case cannot get CPUs of its own" % above)
        _write(os.path.join(memory.path, files.CPUS_FILE), wanted)
        return CpuSet(memory.path, None, owned=False, cpus_file=files.CPUS_FILE)
    parent = own_cpuset_dir(files, root, proc)
    if parent is None:
        raise _cgroups.CgroupError(errno.ENOENT, "no cpuset controller is mounted on this host: "
                                   "each case cannot get CPUs of its own")
    path = os.path.join(parent, os.path.basename(memory.path))
    try:
        os.mkdir(path)
    except OSError as exc:
        raise _cgroups.CgroupError(exc.errno, "cannot create cpuset %s: %s"
                                   % (path, exc.strerror)) from None
    cpuset = CpuSet(path, os.path.join(path, _cgroups.PROCS_FILE), owned=True,
                    cpus_file=files.CPUS_FILE)
    try:
        mems = _io.read(os.path.join(parent, files.PARENT_MEMS_FILE)).strip()
        _write(os.path.join(path, files.MEMS_FILE), mems)
        _write(os.path.join(path, files.CPUS_FILE), wanted)
    except BaseException:
        cpuset.remove()
        raise
    return cpuset


def leftovers(files: ModuleType, prefix: str, root: Optional[str] = None,
              proc: Optional[str] = None) -> List[str]:
    """Cpuset cgroups named ``prefix...`` below the runner's own (v1; none on v2)."""
    if not files.CPUSET_SEPARATE:
        return []
    parent = own_cpuset_dir(files, root, proc)
    if parent is None:
        return []
    try:
        names = os.listdir(parent)
    except OSError:
        return []
    return [os.path.join(parent, name) for name in sorted(names) if name.startswith(prefix)]


def _write(path: str, value: str) -> None:
    try:
        with open(path, "w") as handle:
            handle.write(value)
    except OSError as exc:
        raise _cgroups.CgroupError(exc.errno, "cannot write %r to %s: %s"
                                   % (value, path, exc.strerror)) from None
