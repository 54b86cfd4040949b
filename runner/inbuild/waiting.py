"""Waiting for a build and sampling beside it, in threads, so the thread that started it stays
interruptible (Ctrl-C, SIGTERM, a timeout): one waiter and one sampling loop for the local
backend, the harness and a forked callable.

Stdlib-only and CPython 3.8+: the harness imports it inside containers and scopes.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Callable, Optional, Tuple

# Killed by signal N is exit 128+N, as shells and container engines say.
SIGNAL_EXIT_BASE = 128


def killed_by(number: int) -> Tuple[int, int]:
    """(exit code, signal) of a process killed by signal ``number``."""
    return SIGNAL_EXIT_BASE + number, number


def exit_status(status: int) -> Tuple[int, Optional[int]]:
    """A wait status as (exit code, signal).

    os.waitstatus_to_exitcode is 3.9+, and the harness runs on 3.8 too.
    """
    if os.WIFSIGNALED(status):
        return killed_by(os.WTERMSIG(status))
    return os.WEXITSTATUS(status), None


def returncode_status(code: Optional[int]) -> Tuple[Optional[int], Optional[int]]:
    """A ``subprocess`` returncode (-N: killed by signal N) as (exit code, signal)."""
    if code is not None and code < 0:
        return killed_by(-code)
    return code, None


def shell_status(code: Optional[int]) -> Tuple[Optional[int], Optional[int]]:
    """An exit code as a shell or a container engine reports it (above 128: killed by the
    signal 128 below it) as (exit code, signal)."""
    if code is not None and code > SIGNAL_EXIT_BASE:
        return killed_by(code - SIGNAL_EXIT_BASE)
    return code, None


class Waiter(threading.Thread):
    """``wait4`` on one child: its status, CPU time (its waited-for tree's) and when it ended;
    ``done`` is set once the child is reaped and ``after`` (if any) has run."""

    def __init__(self, pid: int, after: Optional[Callable[[], None]] = None) -> None:
        super().__init__(name="memsla-wait", daemon=True)
        self.pid = pid
        self.after = after
        self.done = threading.Event()
        self.status: Optional[int] = None
        self.cpu_time: Optional[float] = None
        self.finished_at: Optional[float] = None  # time.monotonic()
        self.start()

    def run(self) -> None:
        try:
            _, status, usage = os.wait4(self.pid, 0)
            self.finished_at = time.monotonic()
            self.status = status
            self.cpu_time = usage.ru_utime + usage.ru_stime
        except ChildProcessError:
            pass
        finally:
            try:
                if self.after is not None:
                    self.after()
            finally:
                self.done.set()

    @property
    def exit(self) -> Tuple[Optional[int], Optional[int]]:
        """(exit code, signal), or (None, None) while the child was not reaped."""
        return (None, None) if self.status is None else exit_status(self.status)


class Periodic(threading.Thread):
    """Calls ``sample`` every ``interval`` seconds until ``stop``, which takes one last sample
    after the build ended; ``since_start`` is the time on the build's clock."""

    def __init__(self, name: str, interval: float) -> None:
        super().__init__(name=name, daemon=True)
        self.interval = interval
        self._stop_event = threading.Event()
        self._start = time.monotonic()

    def started_at(self, monotonic_start: float) -> None:
        """Align the series' zero with the build's start."""
        self._start = monotonic_start

    def since_start(self) -> float:
        return round(time.monotonic() - self._start, 4)

    def sample(self) -> None:
        raise NotImplementedError

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join()
        self.sample()  # one last point after the build ended
