"""Host side of the leak mode: reading the driver's records back into a ``LeakRecord``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from runner.inbuild.leak import LEAK_FILE
from runner.results import LeakCall, LeakRecord, LeakSite


def read_leak(probe_out: Path) -> LeakRecord | None:
    """The driver's records, or None when it never started (e.g. the interpreter failed)."""
    path = probe_out / LEAK_FILE
    if not path.is_file():
        return None
    record = LeakRecord()
    started = False
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue  # the last line of a killed driver
        if not isinstance(item, dict):
            continue
        try:
            started = _read_item(item, record) or started
        except (KeyError, TypeError, ValueError, ValidationError) as exc:
            record.error = (f"a record the leak driver does not write was skipped "
                            f"({type(exc).__name__}: {exc})")[:400]
    return record if started else None


def _read_item(item: dict[str, Any], record: LeakRecord) -> bool:
    """Fold one record into ``record``; True for the driver's start record."""
    kind = item.get("type")
    if kind == "start":
        record.entry, record.python = str(item.get("entry", "")), str(item.get("python", ""))
        record.planned_calls, record.warmup = int(item.get("calls", 0)), int(item.get("warmup", 0))
        return True
    if kind == "call":
        record.calls.append(LeakCall(
            index=item["index"], warmup=item["warmup"], duration=item["duration"],
            traced=item["traced"], peak=item["peak"], rss=item.get("rss"),
            objects=item.get("objects", 0)))
    elif kind == "sites":
        record.sites = [LeakSite(**site) for site in item["sites"]]
    elif kind == "error":
        record.error = f"call {item.get('index', '?')}: {item.get('error', '')}"
    elif kind == "end":
        record.complete = True
    return False
