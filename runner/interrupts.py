"""Ctrl-C and SIGTERM in the runner: one signal stops a check, whenever it comes.

The CLI installs ``handler``, which turns either signal into KeyboardInterrupt in the main
thread, with two guards plain Python lacks:

- Never in the middle of an import. A module cut off half-way stays half-made for the cleanup
  that follows (seen: PyYAML's C part failing on a half-imported ``yaml`` while the
  interrupted check wrote its results file). Inside an import the signal is sent again a moment
  later, until it lands outside one.
- Never lost. Where C code or a finalizer swallows the exception (a ``__del__``, a weakref
  callback, an extension calling back into Python), the request stays: every wait for a build
  goes through ``wait`` or ``wait_process``, which raise it again in the main thread.

Without the handler (memsla used as a library) nothing is ever requested and the waits are
plain waits.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI imports this module: --version need not import subprocess
    import subprocess

SIGNALS = (signal.SIGINT, signal.SIGTERM)
SLICE_S = 0.25  # how often a wait looks for an interrupt that was swallowed
RESEND_S = 0.02  # how soon a signal that came inside an import is sent again
_IMPORT_MACHINERY = "<frozen importlib._bootstrap"

_requested: int | None = None  # the signal asked for, once one came


def install() -> None:
    """Take SIGINT and SIGTERM with ``handler`` (a non-interactive shell may start the runner
    with SIGINT ignored: taken explicitly, both always reach the cleanup code)."""
    for signum in SIGNALS:
        signal.signal(signum, handler)


def ignore() -> None:
    """Ignore both signals: what must finish once interrupted (the results file) is not cut
    short by a second Ctrl-C."""
    for signum in SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def handler(signum: int, frame: FrameType | None) -> None:
    global _requested
    _requested = signum
    if _inside_import(frame):
        resend = threading.Timer(RESEND_S, _send_again, (signum,))
        resend.daemon = True
        resend.start()
        return
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def held() -> Iterator[Callable[[], None]]:
    """Hold SIGINT and SIGTERM in the main thread for the block (a build's stoppers being
    armed, a container being removed): one that comes meanwhile arrives, and raises, when the
    block ends or at the call of the release function it yields, wherever that sits (inside
    the ``try`` that stops the build). Start no process inside: it would inherit the signals
    held, and never see a SIGTERM. Elsewhere than the main thread, nothing is held."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)

    def release() -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    try:
        yield release
    finally:
        release()


def requested() -> int | None:
    """The signal that asked the runner to stop, if one did."""
    return _requested


def raise_if_requested() -> None:
    """KeyboardInterrupt in the main thread once a stop was asked for (the worker threads of
    ``--jobs`` are stopped by the main thread, not here)."""
    if _requested is not None and threading.current_thread() is threading.main_thread():
        raise KeyboardInterrupt(f"signal {_requested}")


def wait(ready: Callable[[float], bool], timeout: float | None) -> bool:
    """Wait for ``ready`` (called with a slice of seconds: True once what it waits for is done,
    e.g. ``event.wait``) up to ``timeout`` seconds (None: for ever); returns whether it became
    ready. Raises KeyboardInterrupt once a stop was asked for, even one Python swallowed."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        raise_if_requested()
        left = SLICE_S if deadline is None else min(SLICE_S, deadline - time.monotonic())
        if ready(max(left, 0.0)):
            return True
        if left <= 0:
            return False


def wait_process(process: subprocess.Popen[bytes], timeout: float | None) -> int:
    """``process.wait(timeout)`` (raising subprocess.TimeoutExpired alike) that raises
    KeyboardInterrupt once a stop was asked for, even one Python swallowed."""
    import subprocess

    if not wait(lambda seconds: ended_within(process, seconds), timeout):
        raise subprocess.TimeoutExpired(process.args, timeout or 0.0)
    assert process.returncode is not None
    return process.returncode


def ended_within(process: subprocess.Popen[Any], seconds: float) -> bool:
    """Whether ``process`` ends within ``seconds`` (a plain wait: it does not look for an
    interrupt)."""
    import subprocess

    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


def _send_again(signum: int) -> None:
    try:
        signal.pthread_kill(threading.main_thread().ident or 0, signum)
    except (OSError, ValueError):  # the runner is ending
        pass


def _inside_import(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith(_IMPORT_MACHINERY):
            return True
        frame = frame.f_back
    return False
