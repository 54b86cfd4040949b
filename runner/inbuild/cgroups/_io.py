"""The one helper every cgroup and /proc read goes through (stdlib-only, Python 3.8+)."""

from __future__ import annotations


def read(path: str) -> str:
    with open(path, encoding="ascii", errors="replace") as handle:
        return handle.read()
