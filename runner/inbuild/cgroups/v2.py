"""cgroup v2 memory controller files (kernel docs: admin-guide/cgroup-v2.rst).

Stdlib-only and Python 3.8+: the in-container harness imports it. This version cannot run on the
development machines (cgroup v1); its parsing is tested on recorded file contents.
"""

from __future__ import annotations

VERSION = 2
PEAK_FILE = "memory.peak"  # kernel 5.19+
CURRENT_FILE = "memory.current"
ANON_KEY = "anon"
CACHE_KEY = "file"


def parse_stat(text: str) -> dict[str, int]:
    stats: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            stats[key] = int(value)
    return stats


def parse_oom_kills(events: str) -> int:
    """``oom_kill N`` in memory.events: hierarchical, so a grandchild's kill counts here."""
    for line in events.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    return 0


def oom_kills_file() -> str:
    return "memory.events"


def limit_writes(limit: int | None) -> list[tuple[str, str]]:
    """memory.max plus memory.swap.max 0, so the build is killed instead of swapping."""
    value = "max" if limit is None else str(limit)
    return [("memory.max", value), ("memory.swap.max", "0")]


def reset_peak_write() -> tuple[str, str]:
    """Kernel 6.12+: a write resets the peak seen through that open file descriptor only."""
    return PEAK_FILE, "reset"
