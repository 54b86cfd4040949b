"""The process backend, for hosts with no writable cgroup: no hard limit, memory from sampling
the process tree's RSS. Every result it gives is marked approximate."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import psutil

from runner.backends.interface import Backend, RunRequest, tail
from runner.measure import staging
from runner.measure.readings import Readings
from runner.results import Timeline


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
        stderr_path = request.scratch / "stderr.log"
        with (request.scratch / "stdout.log").open("wb") as out, stderr_path.open("wb") as err:
            start = time.monotonic()
            process = subprocess.Popen(request.argv, cwd=request.workdir, env=env,
                                       stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                       start_new_session=True)
        sampler = _TreeSampler(process.pid, request.sample_interval, start)
        sampler.start()
        timed_out = False
        try:
            try:
                process.wait(request.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
        finally:
            if process.returncode is None or sampler.alive_descendants():
                sampler.kill_tree()
            process.wait()
            sampler.stop()
        duration = time.monotonic() - start
        code = process.returncode
        sig = -code if code < 0 else None
        return Readings(
            exit_code=128 + sig if sig else code, signal=sig, duration=duration,
            timed_out=timed_out, cpu_time=sampler.cpu_time or None,
            tree_rss_max=sampler.max_rss,  # the sum double-counts shared pages: approximate
            timeline=Timeline(interval=request.sample_interval, t=sampler.t,
                              cgroup=sampler.series, anon=list(sampler.series)),
            stderr_tail=tail(stderr_path))


class _TreeSampler(threading.Thread):
    def __init__(self, pid: int, interval: float, start: float) -> None:
        super().__init__(name="memsla-tree-sampler", daemon=True)
        self.root = psutil.Process(pid)
        self.interval = interval
        self.start_time = start
        self.t: list[float] = []
        self.series: list[int] = []
        self.max_rss = 0
        self.cpu_time = 0.0
        self._known: dict[int, psutil.Process] = {}
        self._stop_event = threading.Event()

    def _tree(self) -> list[psutil.Process]:
        try:
            found = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            found = []
        for process in found:
            self._known.setdefault(process.pid, process)
        return found

    def run(self) -> None:
        while not self._stop_event.is_set():
            total, cpu = 0, 0.0
            for process in self._tree():
                try:
                    total += process.memory_info().rss
                    times = process.cpu_times()
                    cpu += times.user + times.system
                except psutil.Error:
                    continue
            if total:
                self.t.append(round(time.monotonic() - self.start_time, 4))
                self.series.append(total)
                self.max_rss = max(self.max_rss, total)
                self.cpu_time = max(self.cpu_time, cpu)
            self._stop_event.wait(self.interval)

    def alive_descendants(self) -> bool:
        return any(p.is_running() for p in self._known.values() if p.pid != self.root.pid)

    def kill_tree(self) -> None:
        try:
            os.killpg(self.root.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for process in self._known.values():
            try:
                process.kill()
            except psutil.Error:
                pass

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
