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


def exit_status(status: int) -> Tuple[int, Optional[int]]:
    """A wait status as (exit code, signal): killed by signal N is exit 128+N, as shells say.

    os.waitstatus_to_exitcode is 3.9+, and the harness runs on 3.8 too.
    """
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        return 128 + number, number
    return os.WEXITSTATUS(status), None


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
