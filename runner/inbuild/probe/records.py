"""The probe's one channel back to the runner: JSON lines appended to
MEMSLA_PROBE_DIR/probe-<pid>.jsonl, read on the host by ``runner/measure/probe_records.py``.

The file is line-buffered, so a build that is killed still leaves every record written before.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any


def dumps(record: dict[str, Any]) -> str:
    """One JSON line. The records of untraced runs are flat (names, numbers, flags): written
    without importing json; anything else goes through json."""
    parts = []
    for key, value in record.items():
        if value is None or isinstance(value, (bool, int)):
            text = "null" if value is None else ("true" if value is True else
                                                 "false" if value is False else str(value))
        elif isinstance(value, float) and value == value and abs(value) != float("inf"):
            text = repr(value)
        elif isinstance(value, str) and value.isprintable() and value.isascii() and not (
                '"' in value or "\\" in value):
            text = '"' + value + '"'
        else:
            import json

            return json.dumps(record, separators=(",", ":"))
        parts.append('"%s":%s' % (key, text))
    return "{" + ",".join(parts) + "}"


class Records:
    """The records file of this process; ``now`` is the time on the run's clock (MEMSLA_T0)."""

    def __init__(self, directory: str, t0: float, lock: Any) -> None:
        self.t0 = t0
        self.lock = lock  # the probe's one lock: a record is never written halfway
        self.path = os.path.join(directory, f"probe-{os.getpid()}.jsonl")
        self.out: IO[str] = open(self.path, "a", buffering=1)  # noqa: SIM115 - open to the end

    def now(self) -> float:
        return round(time.time() - self.t0, 4)

    def write(self, record: dict[str, Any]) -> None:
        try:
            with self.lock:
                self.out.write(dumps(record) + "\n")
        except Exception:
            pass

    def close(self) -> None:
        try:
            self.out.close()
        except Exception:
            pass


def vm_hwm() -> int | None:
    """This process's resident set high-water mark (VmHWM), in bytes."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except Exception:
        return None
    return None
