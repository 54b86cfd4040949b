"""The harness: PID 1 of a measured container (or of a delegated scope). It runs the build with
its OOM score raised to the maximum, so the kernel kills the build and not the harness, samples
its own cgroup meanwhile (its usage, and its limits: a build that changes them is stopped), and
after the build exits reads the cgroup's peak and OOM-kill count before the cgroup disappears.
It writes what it read, raw, to OUT/harness.json: the keys are the fields of
``runner.measure.readings.Readings`` (the host assembles the figures).

Nothing the build starts outlives it: the harness is a child subreaper, so the build's orphans
(daemons: double fork + setsid) become its children, and it kills whatever is left once the
build has exited. With ``--lifeline`` its stdin is a pipe from the runner: end of file there
means the runner is gone, and the harness kills the build and everything below it and exits.
With ``--no-cgroup`` (the process backend) its cgroup is not the build's: it reads none. With
``--cgroup PATH`` (a container whose runner made the build a cgroup of its own and mounted it
there) the build enters that cgroup before it execs, and the harness samples and reads it
instead of its own: the harness stays out of the build's figures.

Stdlib-only, CPython 3.8+, started as ``python3 -S -m runner.inbuild.harness`` (no site: the
probe's sitecustomize must not load into the harness itself).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

from runner.inbuild import cgroups, reaper
from runner.inbuild.waiting import Waiter, killed_by

RAISE_OOM_SCORE = 'echo 1000 > /proc/self/oom_score_adj && exec "$@"'
# $0 is the build cgroup's cgroup.procs: the shell moves itself in, then becomes the build.
ENTER_AND_RAISE = 'echo 0 > "$0" && echo 1000 > /proc/self/oom_score_adj && exec "$@"'
# MEMSLA_CGROUP_PEAK=@own: give the build the peak file of the harness's own cgroup.
OWN_CGROUP_PEAK = "@own"


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="memsla-harness")
    parser.add_argument("--out", required=True)
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--lifeline", action="store_true",
                        help="end of file on stdin: the runner is gone, kill all and exit")
    parser.add_argument("--no-cgroup", action="store_true",
                        help="the harness's cgroup is not the build's: read none")
    parser.add_argument("--cgroup", default=None,
                        help="the build's own cgroup: enter the build there, read it")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command and args.command[0] == "--":
        args.command = args.command[1:]
    if not args.command:
        parser.error("no command given")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    own = None if args.no_cgroup else cgroups.own_cgroup()
    if own is not None and args.cgroup:
        own = cgroups.Cgroup(args.cgroup, own.version)
    reaper.become_subreaper()
    result: dict[str, Any] = {"started": True, "cgroup_version": own.version if own else None}
    child_holder: dict[str, subprocess.Popen[bytes]] = {}
    stopping: list[int] = []

    def forward(signum: int, frame: object) -> None:
        stopping.append(signum)
        child = child_holder.get("child")
        if child is not None:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except OSError:
                pass

    # The limit is on the harness's own cgroup, which the build shares: a build that may write
    # it (the owner of a delegated scope) can lift it, and nothing else holds the build then.
    # A container's cgroupfs is read-only: there the watch only confirms the limit held.
    watch = cgroups.LimitWatch({"own": own}, holding="own",
                               stop=lambda: forward(signal.SIGKILL, None)) if own else None
    sampler = cgroups.Sampler(own, args.interval, watch) if own else None

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    if args.lifeline:
        reaper.watch_lifeline(sys.stdin.fileno(), _runner_gone)
    env = dict(os.environ)
    if env.get("MEMSLA_CGROUP_PEAK") == OWN_CGROUP_PEAK:
        # Only the harness knows which cgroup it is in (a systemd scope is named at start).
        peak_file, reset_mode = own.probe_peak() if own is not None else (None, "")
        if peak_file is not None:
            env["MEMSLA_CGROUP_PEAK"], env["MEMSLA_CGROUP_RESET"] = peak_file, reset_mode
        else:
            del env["MEMSLA_CGROUP_PEAK"]
    start = time.monotonic()
    if "MEMSLA_T0" in env:
        # The probe's phase times then share the timeline's zero (the build's start here),
        # whatever a container's start-up cost before it.
        env["MEMSLA_T0"] = repr(time.time())
    try:
        start_build = (["/bin/sh", "-c", ENTER_AND_RAISE, own.enter_file()]
                       if own is not None and args.cgroup else
                       ["/bin/sh", "-c", RAISE_OOM_SCORE, "memsla-build"])
        child = subprocess.Popen(
            [*start_build, *args.command],
            cwd=args.workdir, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
    except OSError as exc:
        result.update(exit_code=127, signal=None, duration=0.0, cpu_time=0.0,
                      error="cannot start the build in %s: %s" % (args.workdir, exc))
        sys.stderr.write("memsla-harness: %s\n" % result["error"])
        _write(args.out, result)
        return 127
    child_holder["child"] = child
    if stopping:  # a stop signal arrived before the build existed
        forward(signal.SIGTERM, None)
    if sampler is not None:
        sampler.started_at(start)
        sampler.start()
    waiter = Waiter(child.pid)
    while not waiter.done.wait(0.5):
        pass
    exit_code, signal_number = waiter.exit
    child.returncode = exit_code if signal_number is None else -signal_number
    if sampler is not None:
        sampler.stop()
    result.update(
        exit_code=exit_code, signal=signal_number,
        duration=(waiter.finished_at or time.monotonic()) - start, cpu_time=waiter.cpu_time)
    if own is not None and sampler is not None:
        result.update(
            kernel_peak=own.peak(), sampled_max_usage=sampler.max_usage,
            sampled_max_anon=sampler.max_anon, anon_at_end=own.anon(),
            cache_at_max=sampler.cache_at_max, oom_kill_counter=own.oom_kills(),
            limit_read=own.limit(), swap_allowed=own.swap_allowed(), peak_file=own.peak_file(),
            limit_changes=watch.changes if watch is not None else [],
            timeline={"t": sampler.t, "cgroup": sampler.usage, "anon": sampler.anon_series})
    left = reaper.kill_descendants()  # what the build left running dies with it
    reaper.reap_children()
    if left:
        result["left_running"] = left
    _write(args.out, result)
    return 1 if exit_code is None else exit_code  # None: the build could not be waited for


def _runner_gone() -> None:
    """The lifeline ended: nobody will read a report. Kill everything below and go."""
    try:  # stderr may be a pipe the runner read: nobody reads it now
        sys.stderr.write("memsla-harness: the runner is gone; killing the build\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    reaper.kill_descendants()
    os._exit(killed_by(signal.SIGKILL)[0])  # as if killed


def _write(out: str, result: dict[str, Any]) -> None:
    tmp = os.path.join(out, "harness.json.tmp")
    with open(tmp, "w") as handle:
        json.dump(result, handle)
    os.replace(tmp, os.path.join(out, "harness.json"))


if __name__ == "__main__":
    sys.exit(main())
