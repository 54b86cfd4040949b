"""The process backend, for hosts with no writable cgroup: no hard limit, memory from sampling
the process tree's RSS. Every result it gives is marked approximate.

The build runs under the harness (``runner.inbuild.harness --no-cgroup``), which takes its exit
status, duration and CPU time, and, as a child subreaper, kills whatever the build left running
(daemons included) once it exits. Its stdin is a pipe the runner holds: if the runner dies, the
harness kills the build and everything below it. The sampler sums the harness's descendants.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from runner import interrupts
from runner.backends import capture, harnessed
from runner.backends.interface import Backend, RunRequest
from runner.backends.tree import TreeSampler, rss
from runner.inbuild.waiting import returncode_status
from runner.measure import staging
from runner.measure.readings import Readings
from runner.results import Timeline

STOP_GRACE_S = 5  # SIGTERM lets the harness kill the build and report; SIGKILL after this
OUTPUT_GRACE_S = 2  # for the output pipes to end once the harness exited


class ProcessBackend(Backend):
    name = "process"
    where = "the process tree, without a cgroup"
    approximate = True
    hard_limit = False

    def run(self, request: RunRequest) -> Readings:
        env = dict(os.environ)
        env.update(request.env)
        env.update(staging.environment(str(request.probe_stage), str(request.probe_out),
                                     trace=request.trace, t0=time.time(),
                                     existing_pythonpath=request.env.get("PYTHONPATH")))
        _check_program(request.argv[0], env.get("PATH"), request.workdir)
        harness = harnessed.harness_command(
            sys.executable, str(request.probe_out), request.sample_interval,
            str(request.workdir), request.argv, lifeline=True, read_cgroup=False)
        # -m puts the working directory first on sys.path: the staged probe, not the build's
        process, start, output = capture.start_captured(
            harness, cwd=request.probe_stage, env=env, stdin=subprocess.PIPE,
            start_new_session=True)
        # the harness is left out of the sum; the timeline starts with the build
        sampler = TreeSampler(process.pid, request.sample_interval, rss, include_root=False,
                              zero_at_first=True)
        sampler.start()
        timed_out = False
        try:
            try:
                interrupts.wait_process(process, request.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                _stop(process)
        except BaseException:
            _stop(process)
            raise
        finally:
            if process.poll() is None or sampler.alive_descendants():
                sampler.kill(group=True)
            process.wait()
            assert process.stdin is not None
            process.stdin.close()  # the harness's lifeline: held open for the run only
            sampler.stop()
            output.wait(OUTPUT_GRACE_S)  # the harness killed what the build left
        host_duration = time.monotonic() - start
        report = harnessed.read_report(request.probe_out)
        if report is None:
            readings = harnessed.without_report(
                returncode_status(process.returncode), host_duration=host_duration,
                timed_out=timed_out, cpu_time=sampler.cpu_time, notes=[
                    "the harness left no report (killed, or could not start): the exit status "
                    "and duration are the harness's"])
        else:
            readings = harnessed.from_report(
                report, sample_interval=request.sample_interval, host_duration=host_duration,
                timed_out=timed_out, stderr_tail="", limit_set=None)
        return dataclasses.replace(
            readings, tree_rss_max=sampler.max_usage or 0,  # double-counts shared pages
            timeline=Timeline(interval=request.sample_interval, t=sampler.t,
                              cgroup=sampler.usage, anon=sampler.anon_series),
            stderr_tail=output.stderr_tail,
            notes=readings.notes + output.save(request.scratch))


def _check_program(program: str, path: str | None, workdir: Path) -> None:
    """Fail as starting the build would (the harness would only say exit 127)."""
    found = (os.access(workdir / program, os.X_OK) if "/" in program else
             shutil.which(program, path=path) is not None)
    if not found:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the harness (it kills the build and reports), then SIGKILL."""
    try:
        process.send_signal(signal.SIGTERM)
        process.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
