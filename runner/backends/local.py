"""The local cgroup backend: each build in its own memory cgroup below the runner's own.

Each run gets two cgroups (``runner.backends.fence``): a fence ``memsla-<pid>-<n>/`` that holds
the hard limit and no process, and below it the build's own cgroup ``memsla-<pid>-<n>/build/``
with the same limit. The build enters its cgroup before it execs (a shell writes itself to
cgroup.procs, then execs).

The runner samples the fence from outside (usage and peak are hierarchical) and the limits of
both cgroups: a changed limit is reported with the run, and a changed fence, which nothing holds
any more, stops the build at once. After the build it reads the fence's peak and the subtree's
OOM kills, then kills anything left and removes both cgroups, also on timeout, Ctrl-C and
SIGTERM. The probe in the build resets the peak of the build's own cgroup at phase starts; the
fence's peak, the whole run's, is never reset. If the runner dies, its watchdog
(``runner.inbuild.reaper``) kills and removes its cgroups, named ``memsla-<runner pid>-*``.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from pathlib import Path
from types import ModuleType

import psutil

from runner import interrupts
from runner.backends import capture
from runner.backends.fence import (
    CGROUP_PREFIX,
    fenced,
    limit_watch,
    read_fence,
    timeline,
)
from runner.backends.interface import Backend, BackendError, RunRequest
from runner.inbuild import cgroups, reaper
from runner.inbuild.cgroups import cpuset as cpusets
from runner.inbuild.waiting import Waiter
from runner.measure import staging
from runner.measure.readings import Readings

# $0 is the cgroup.procs file; the shell moves itself in, then becomes the build.
ENTER_AND_EXEC = 'echo 0 > "$0" && exec "$@"'
# The same, entering a cpuset cgroup ($1) too, where that is a hierarchy of its own (v1).
ENTER_TWO_AND_EXEC = 'echo 0 > "$0" && echo 0 > "$1" && shift && exec "$@"'
OUTPUT_GRACE_S = 2  # for the output pipes to end once the build exited


def find_parent() -> cgroups.Cgroup:
    """The runner's own memory cgroup, if the runner may create children in it."""
    own = cgroups.own_cgroup()
    if own is None:
        raise BackendError("no memory cgroup controller is mounted on this host")
    probe_child = f"{CGROUP_PREFIX}probe-{os.getpid()}"
    try:
        child = own.create_child(probe_child)
    except OSError as exc:
        raise BackendError(
            f"cannot create a cgroup below {own.path}: {exc.strerror}; run as root, or on a "
            "systemd host use a delegated scope (runner doctor)") from None
    try:
        child.remove()
    except OSError:
        pass
    if not own.memory_for_children():
        raise BackendError(f"the memory controller is not enabled for children of {own.path} "
                           "(cgroup.subtree_control); see runner doctor")
    return own


class CgroupBackend(Backend):
    name = "cgroup"
    where = "a writable local memory cgroup"
    confines_cpus = True

    def __init__(self) -> None:
        self.parent = find_parent()
        self.cgroup_version = self.parent.version
        self._counter = itertools.count(1)  # next() is atomic: runs may start in threads

    def remove_leftovers(self) -> list[str]:
        removed = []
        for entry in Path(self.parent.path).glob(f"{CGROUP_PREFIX}*"):
            owner = reaper.owner_of(entry.name)
            if owner is not None and psutil.pid_exists(owner):
                continue
            try:  # with any cgroups below it: the build may sit one level down
                reaper.remove_cgroup_tree(cgroups.Cgroup(str(entry), self.parent.version))
                removed.append(str(entry))
            except OSError:
                pass
        return removed + _remove_cpusets(self.parent.files)

    def interrupt(self) -> None:
        for entry in Path(self.parent.path).glob(f"{CGROUP_PREFIX}{os.getpid()}-*"):
            cgroups.Cgroup(str(entry), self.parent.version).kill_all(timeout=1)

    def run(self, request: RunRequest) -> Readings:
        name = f"{CGROUP_PREFIX}{os.getpid()}-{next(self._counter)}"
        cpuset = None
        try:
            with fenced(self.parent, name, request.limit) as (fence, build):
                # the CPUs go to the fence: its whole subtree (v2), or a cpuset cgroup of its
                # name
                cpuset = cpusets.confine(fence, request.cpus) if request.cpus else None
                return self._run_in(fence, build, request, cpuset)
        finally:
            if cpuset is not None:  # once its tasks died with the fence
                cpuset.remove()

    def _run_in(self, cgroup: cgroups.Cgroup, build: cgroups.Cgroup, request: RunRequest,
                cpuset: cpusets.CpuSet | None = None) -> Readings:
        """Run the build in ``build``, measured on ``cgroup`` (its fence)."""
        t0 = time.time()
        peak_file, reset_mode = build.probe_peak()
        env = dict(os.environ)
        env.update(request.env)
        env.update(staging.environment(
            str(request.probe_stage), str(request.probe_out), trace=request.trace, t0=t0,
            cgroup_peak_file=peak_file, reset_mode=reset_mode,
            existing_pythonpath=request.env.get("PYTHONPATH")))
        watch = limit_watch(cgroup, build)
        sampler = cgroups.Sampler(cgroup, request.sample_interval, watch)
        timed_out = False
        # the output goes through pipes the runner reads: a file would be the build's cache
        process, start, output = capture.start_captured(
            [*_enter(build, cpuset), *request.argv], cwd=request.workdir, env=env,
            stdin=subprocess.DEVNULL, start_new_session=True)
        # Ctrl-C held until the build can be stopped: one before would leave it running. Not
        # before the build starts: a child inherits the signals its parent holds.
        with interrupts.held() as release:
            sampler.started_at(start)
            sampler.start()
            waiter = Waiter(process.pid)
            try:
                release()
                if not interrupts.wait(waiter.done.wait, request.timeout):
                    timed_out = True
                    stop_build(cgroup, process.pid, waiter)
                    waiter.done.wait(10)
            except BaseException:
                stop_build(cgroup, process.pid, waiter)
                waiter.done.wait(10)
                output.wait(OUTPUT_GRACE_S)
                raise
            finally:
                process.returncode = (-9 if waiter.status is None
                                      else os.waitstatus_to_exitcode(waiter.status))
                sampler.stop()
        duration = (waiter.finished_at or time.monotonic()) - start
        exit_code, signal_number = waiter.exit
        readings = Readings(
            exit_code=exit_code, signal=signal_number, duration=duration, timed_out=timed_out,
            cpu_time=waiter.cpu_time, limit_set=request.limit,
            timeline=timeline(sampler, request.sample_interval))
        read_fence(readings, cgroup, sampler, watch)
        readings.anon_at_end = cgroup.anon()
        if not output.wait(OUTPUT_GRACE_S):  # a process the build left holds the pipes
            cgroup.kill_all()
            output.wait(OUTPUT_GRACE_S)
        readings.stderr_tail = output.stderr_tail
        readings.notes += output.save(request.scratch)
        return readings


def stop_build(fence: cgroups.Cgroup, pid: int, waiter: Waiter) -> None:
    """SIGKILL the build started as ``pid``: its process group first (the shell that enters
    the build's cgroup is only there until it has), then everything in ``fence``."""
    if not waiter.done.is_set():  # not reaped yet: the pid is still the build's
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    fence.kill_all()


def _enter(cgroup: cgroups.Cgroup, cpuset: cpusets.CpuSet | None) -> list[str]:
    """The shell that moves itself into the build's cgroups, then becomes the build."""
    if cpuset is None or cpuset.enter_file is None:
        return ["/bin/sh", "-c", ENTER_AND_EXEC, cgroup.enter_file()]
    return ["/bin/sh", "-c", ENTER_TWO_AND_EXEC, cgroup.enter_file(), cpuset.enter_file]


def _remove_cpusets(files: ModuleType) -> list[str]:
    """Cpuset cgroups of runners that are gone (v1: a hierarchy of its own)."""
    removed = []
    for path in cpusets.leftovers(files, CGROUP_PREFIX):
        owner = reaper.owner_of(os.path.basename(path))
        if owner is not None and psutil.pid_exists(owner):
            continue
        try:
            os.rmdir(path)
            removed.append(path)
        except OSError:
            pass
    return removed


__all__ = ["CgroupBackend", "find_parent"]
