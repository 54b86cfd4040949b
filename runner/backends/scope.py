"""The local backend where the runner may not create cgroups itself (a developer's laptop:
cgroup v2, systemd, no root): each build in a transient systemd user scope.

``systemd-run --user --scope -p MemoryMax=L -p MemorySwapMax=0`` asks the user's systemd for a
delegated cgroup with the hard limit. The scope is created before its first process execs, and
that process is the harness, as in a container: it runs the build, samples the scope's cgroup
and reads its peak and OOM-kill count after the build exits. The idle harness's own peak is
measured once (``harness_baseline``) and subtracted from the cgroup's figures (the build shares
the scope's cgroup with it). Timeouts, Ctrl-C and SIGTERM stop the harness (it kills the build
and still reports), then ``systemctl --user kill`` takes whatever is left in the scope.
The harness's stdin is a pipe held open by the runner: if the runner dies, the harness kills
the build and everything it started.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import psutil

from runner import interrupts
from runner.backends import capture, harnessed
from runner.backends.interface import Backend, BackendError, RunRequest
from runner.inbuild import cgroups
from runner.inbuild.harness import OWN_CGROUP_PEAK
from runner.inbuild.waiting import returncode_status
from runner.measure import staging
from runner.measure.readings import Readings
from runner.units import format_bytes

UNIT_PREFIX = "memsla-"
STOP_GRACE_S = 5  # SIGTERM lets the harness report; SIGKILL to the whole scope after this
SYSTEMCTL_TIMEOUT_S = 20
OUTPUT_GRACE_S = 2  # for the output pipes to end once the scope's processes are gone


def scope_command(argv: list[str], limit: int | None, unit: str,
                  systemd_run: str = "systemd-run") -> list[str]:
    """The command that runs ``argv`` as the first process of a new user scope ``unit``."""
    command = [systemd_run, "--user", "--scope", "--quiet", "--collect", f"--unit={unit}"]
    if limit is not None:
        command += ["-p", f"MemoryMax={limit}", "-p", "MemorySwapMax=0"]
    return [*command, "--", *argv]


class ScopeBackend(Backend):
    name = "cgroup"
    where = "a delegated systemd user scope"
    harness_kept_out = True  # subtracted: the build shares the scope's cgroup with it

    def __init__(self, systemd_run: str = "systemd-run", systemctl: str = "systemctl") -> None:
        found = shutil.which(systemd_run)
        if found is None:
            raise BackendError("systemd-run not found: no delegated scope on this host")
        self.systemd_run, self.systemctl = found, shutil.which(systemctl) or systemctl
        own = cgroups.own_cgroup()
        self.cgroup_version = own.version if own else None
        self._counter = 0
        self.harness_baseline: int | None = self._measure_baseline()

    def _measure_baseline(self) -> int:
        """The scope's peak with the harness running ``true``: what every run carries on top.
        Also the proof that this host gives a user scope with a memory limit."""
        peak, failure = harnessed.run_idle(self.run)
        if peak is None:
            raise BackendError(f"a systemd user scope with MemoryMax did not work ({failure}); "
                               "it needs a user systemd instance on cgroup v2 (loginctl "
                               "enable-linger $USER)")
        return peak

    def run(self, request: RunRequest) -> Readings:
        self._counter += 1
        unit = f"{UNIT_PREFIX}{os.getpid()}-{self._counter}"
        harness = harnessed.harness_command(sys.executable, str(request.probe_out),
                                            request.sample_interval, str(request.workdir),
                                            request.argv, lifeline=True)
        env = dict(os.environ)
        env.update(request.env)
        env.update(staging.environment(
            str(request.probe_stage), str(request.probe_out), trace=request.trace,
            t0=time.time(), cgroup_peak_file=OWN_CGROUP_PEAK,
            existing_pythonpath=request.env.get("PYTHONPATH")))
        timed_out = False
        # -m puts the working directory first on sys.path: the staged probe, not the build's
        process, start, output = capture.start_captured(
            scope_command(harness, request.limit, unit, self.systemd_run),
            cwd=request.probe_stage, env=env, stdin=subprocess.PIPE, start_new_session=True)
        try:
            try:
                interrupts.wait_process(process, request.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                self._stop(process, unit)
        except BaseException:
            self._stop(process, unit)
            raise
        finally:
            self._kill_scope(unit)  # what the build left running (daemons) dies with it
            assert process.stdin is not None
            process.stdin.close()  # the harness's lifeline: held open for the run only
            output.wait(OUTPUT_GRACE_S)  # the scope's processes are killed
        host_duration = time.monotonic() - start
        notes = output.save(request.scratch)
        report = harnessed.read_report(request.probe_out)
        if report is None:
            return harnessed.without_report(
                returncode_status(process.returncode), host_duration=host_duration,
                timed_out=timed_out, limit_set=request.limit, stderr_tail=output.stderr_tail,
                notes=["the harness left no report (killed, or the scope could not start): no "
                       "peak was measured", *notes])
        readings = harnessed.from_report(
            report, sample_interval=request.sample_interval, host_duration=host_duration,
            timed_out=timed_out, stderr_tail=output.stderr_tail, limit_set=request.limit)
        readings.notes += notes
        if self.harness_baseline:  # None while the idle harness itself is measured
            readings.harness_share = self.harness_baseline
            readings.notes.append(
                f"the idle harness's {format_bytes(self.harness_baseline)} is subtracted from "
                "the cgroup's figures: the build shares the scope's cgroup with it")
        return readings

    def _stop(self, process: subprocess.Popen[bytes], unit: str) -> None:
        """SIGTERM to the harness (it kills the build and reports), then the whole scope."""
        try:
            process.send_signal(signal.SIGTERM)
            process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self._kill_scope(unit)
            process.kill()
            process.wait()

    def _kill_scope(self, unit: str) -> None:
        subprocess.run([self.systemctl, "--user", "kill", "--signal=SIGKILL", f"{unit}.scope"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=SYSTEMCTL_TIMEOUT_S, check=False)

    def remove_leftovers(self) -> list[str]:
        """Kill the scopes of runners that are gone (``--collect`` lets systemd drop them)."""
        listing = subprocess.run(
            [self.systemctl, "--user", "list-units", "--plain", "--no-legend",
             f"{UNIT_PREFIX}*.scope"], capture_output=True, text=True,
            timeout=SYSTEMCTL_TIMEOUT_S, check=False)
        removed = []
        for line in listing.stdout.splitlines():
            unit = line.split()[0] if line.split() else ""
            owner = unit[len(UNIT_PREFIX):].split("-", 1)[0]
            if not unit.endswith(".scope") or not owner.isdigit():
                continue
            if psutil.pid_exists(int(owner)):
                continue
            self._kill_scope(unit[:-len(".scope")])
            removed.append(unit)
        return removed


__all__ = ["ScopeBackend", "scope_command"]
