"""cgroup v1 memory controller files (kernel docs: admin-guide/cgroup-v1/memory.rst).

Stdlib-only and Python 3.8+: the in-container harness imports it.
"""

from __future__ import annotations

VERSION = 1
PEAK_FILE = "memory.max_usage_in_bytes"
CURRENT_FILE = "memory.usage_in_bytes"
# 'total_*' keys are hierarchical: they include the cgroup's descendants.
ANON_KEY = "total_rss"  # anonymous and swap-cache memory, transparent huge pages included
CACHE_KEY = "total_cache"


def parse_stat(text: str) -> dict[str, int]:
    stats: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            stats[key] = int(value)
    return stats


def parse_oom_kills(oom_control: str) -> int:
    """``oom_kill N`` in memory.oom_control (kernel 4.13+); counts this cgroup only on v1."""
    for line in oom_control.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    return 0


def oom_kills_file() -> str:
    return "memory.oom_control"


def limit_writes(limit: int | None) -> list[tuple[str, str]]:
    """Files to write, in order, to hold memory and memory+swap to ``limit`` (-1: none).

    memsw must never be below the memory limit, so memory goes first when setting it.
    """
    value = "-1" if limit is None else str(limit)
    return [("memory.limit_in_bytes", value), ("memory.memsw.limit_in_bytes", value)]


def reset_peak_write() -> tuple[str, str]:
    """Writing 0 resets the cgroup-wide peak to the current usage (root may do it from inside)."""
    return PEAK_FILE, "0"
