"""memray in the build's process, from the probe's start to its end, when MEMSLA_TRACKER=memray:
a capture file per process (MEMSLA_NATIVE=1 for native stacks; MEMSLA_MEMRAY_AGGREGATE=1 for
memray's aggregated capture, summed up in the build as it runs: the high-water mark, what is
held at exit and the sites of both, which the host reads at once), read on the host by
``runner/measure/memray_records.py``. Where the build's Python cannot import memray, a
``tracker_error`` record says so and nothing else is traced."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .records import Records


def start(directory: str, records: Records, environ: Any) -> Any:
    """The running tracker, or None (and a ``tracker_error`` record): the run then has no heap
    figures, never another tracker's."""
    try:
        import memray
    except Exception as error:
        records.write({"type": "tracker_error", "tracker": "memray",
                       "error": "memray is not importable by the build's Python (%s, %s): "
                                "install it where the build runs (requirements: [memray], "
                                "or the image), or set tracker: tracemalloc"
                                % (sys.executable, type(error).__name__)})
        return None
    try:
        capture = os.path.join(directory, "memray-%d.bin" % os.getpid())
        where: dict[str, Any]
        try:  # uncompressed: compressing at exit is the build's time; the host reads either
            where = {"destination": memray.FileDestination(capture, compress_on_exit=False)}
        except (AttributeError, TypeError):  # a memray older than 1.5
            where = {"file_name": capture}
        aggregated = False
        if environ.get("MEMSLA_MEMRAY_AGGREGATE") == "1":
            file_format = getattr(memray, "FileFormat", None)  # memray 1.8+
            if file_format is not None:
                where["file_format"] = file_format.AGGREGATED_ALLOCATIONS
                aggregated = True
        tracker = memray.Tracker(
            native_traces=environ.get("MEMSLA_NATIVE") == "1", follow_fork=True, **where)
        tracker.__enter__()
        if aggregated and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=lambda: _written_at_exit(tracker))
        return tracker
    except Exception as error:
        records.write({"type": "tracker_error", "tracker": "memray",
                       "error": "memray did not start in the build: %r" % (error,)})
        return None


def _written_at_exit(tracker: Any) -> None:
    """In a forked child: stop the tracker before ``os._exit``, the way multiprocessing's
    workers leave, which skips every exit handler. An aggregated capture is written when its
    tracker stops, so it would never be (a full one is written as the process runs); the host
    traces again with a full capture where one still is not (a child killed by a signal)."""
    real_exit = os._exit

    def _exit(code: int) -> None:
        stop(tracker)
        real_exit(code)

    os._exit = _exit  # type: ignore[assignment]


def stop(tracker: Any) -> None:
    try:
        tracker.__exit__(None, None, None)
    except Exception:
        pass
