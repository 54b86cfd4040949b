"""The build's stdout and stderr, read by the runner through pipes, never written by the build.

A build's output written to a file while it runs is page cache charged to the build's cgroup:
a build printing 200 MB read a 215 MiB peak, 138 MiB of it the log's cache. So each stream is a
pipe that a thread of the runner (outside the measured cgroup) reads, keeping the first
``HEAD_BYTES`` and the last ``TAIL_BYTES`` and counting what it dropped between them; the runner
writes the kept bytes to the run's scratch folder after the build (``stdout.log``,
``stderr.log``), with a line saying how much was left out. The pipe's own buffer (64 KiB) is all
the build is charged for.
"""

from __future__ import annotations

import functools
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from runner.units import format_bytes

HEAD_BYTES = 64 * 1024
TAIL_BYTES = 1024 * 1024
TAIL_CHARS = 4000  # the stderr tail a run keeps for reports and error messages
READ_CHUNK = 64 * 1024
STREAMS = ("stdout", "stderr")


class Captured:
    """One stream's bytes, bounded: the head, the tail and the count of bytes between them."""

    def __init__(self, head: int = HEAD_BYTES, tail: int = TAIL_BYTES) -> None:
        self.head_limit, self.tail_limit = head, tail
        self.head = bytearray()
        self._tail = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self._tail += data
            if len(self._tail) > 2 * self.tail_limit:  # trimmed now and then, not per chunk
                del self._tail[:-self.tail_limit]

    @property
    def tail(self) -> bytes:
        return bytes(self._tail[-self.tail_limit:])

    @property
    def dropped(self) -> int:
        """Bytes between the head and the tail that were not kept."""
        return self.total - len(self.head) - len(self.tail)

    def last_text(self, limit: int = TAIL_CHARS) -> str:
        """The last ``limit`` bytes of the stream, as text."""
        kept = bytes(self.head) + self.tail if self.dropped == 0 else self.tail
        return kept[-limit:].decode("utf-8", errors="replace")

    def write(self, path: Path) -> None:
        """The kept bytes, with a line where the dropped ones were."""
        with path.open("wb") as handle:
            handle.write(self.head)
            if self.dropped:
                handle.write(f"\n[memsla: {self.dropped} bytes dropped here]\n".encode())
            handle.write(self.tail)


class OutputCapture:
    """The build's two streams, each read by a thread of the runner until end of file."""

    def __init__(self) -> None:
        self.streams = {name: Captured() for name in STREAMS}
        self._threads: list[threading.Thread] = []

    def read_fds(self, fds: dict[str, int]) -> OutputCapture:
        """Read each stream's pipe (closed here at end of file) in a thread of its own."""
        for name, fd in fds.items():
            self._start(f"memsla-{name}", functools.partial(self._drain, fd, name))
        return self

    def read_frames(self, frames: Iterable[tuple[str, bytes]]) -> OutputCapture:
        """Read (stream name, bytes) pairs (a container's multiplexed output) in a thread."""
        def drain() -> None:
            try:
                for name, data in frames:
                    if name in self.streams:
                        self.streams[name].feed(data)
            except (OSError, ValueError):  # the attachment closed under the reader
                pass

        self._start("memsla-output", drain)
        return self

    def _start(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _drain(self, fd: int, name: str) -> None:
        try:
            while True:
                data = os.read(fd, READ_CHUNK)
                if not data:
                    return
                self.streams[name].feed(data)
        except OSError:
            return
        finally:
            os.close(fd)

    def wait(self, timeout: float) -> bool:
        """Until every stream ended (its writers are gone), at most ``timeout`` seconds."""
        for thread in self._threads:
            thread.join(timeout)
        return not any(thread.is_alive() for thread in self._threads)

    @property
    def stderr_tail(self) -> str:
        return self.streams["stderr"].last_text()

    def save(self, scratch: Path) -> list[str]:
        """Write ``stdout.log`` and ``stderr.log`` into ``scratch``; returns a note per stream
        that was cut."""
        notes = []
        for name, captured in self.streams.items():
            try:
                captured.write(scratch / f"{name}.log")
            except OSError:
                pass
            if captured.dropped:
                notes.append(
                    f"the build wrote {format_bytes(captured.total)} to {name}: its log keeps "
                    f"the first {format_bytes(len(captured.head))} and the last "
                    f"{format_bytes(len(captured.tail))} ({format_bytes(captured.dropped)} "
                    "dropped)")
        return notes


def pipe_pair() -> tuple[dict[str, int], dict[str, int]]:
    """A pipe per stream: (read ends, write ends), by stream name. The read ends are not
    inherited by the build (os.pipe makes them close-on-exec)."""
    ends = {name: os.pipe() for name in STREAMS}
    return ({name: r for name, (r, _) in ends.items()},
            {name: w for name, (_, w) in ends.items()})


def close_all(fds: dict[str, int]) -> None:
    for fd in fds.values():
        try:
            os.close(fd)
        except OSError:
            pass


def start_captured(argv: list[str], **popen: Any) -> tuple[subprocess.Popen[bytes], float,
                                                            OutputCapture]:
    """Start ``argv`` (``subprocess.Popen`` keywords in ``popen``, no stdout or stderr) with
    its output read through pipes by this process: the process, when it started
    (``time.monotonic``), and the capture."""
    readers, writers = pipe_pair()
    try:
        start = time.monotonic()
        process = subprocess.Popen(argv, stdout=writers["stdout"], stderr=writers["stderr"],
                                   **popen)
    except BaseException:
        close_all(readers)
        raise
    finally:
        close_all(writers)
    return process, start, OutputCapture().read_fds(readers)
