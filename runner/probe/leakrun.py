"""Host side of the leak mode: the driver's command line and reading its records back."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import UsageError
from runner.probe.leak import LEAK_FILE
from runner.spec.model import Scenario


@dataclass
class LeakCall:
    index: int
    warmup: bool
    duration: float
    traced: int  # Python heap still traced after the call and gc.collect()
    peak: int  # heap peak during the call (0 where Python < 3.9 cannot reset it)
    rss: int | None
    objects: int  # GC-tracked objects after the call


@dataclass
class LeakSite:
    file: str
    line: int
    size_diff: int
    count_diff: int
    size: int
    count: int


@dataclass
class LeakRecord:
    """Everything one leak run recorded; ``complete`` is False when it did not finish."""

    entry: str = ""
    python: str = ""
    planned_calls: int = 0
    warmup: int = 0
    calls: list[LeakCall] = field(default_factory=list)
    sites: list[LeakSite] = field(default_factory=list)
    error: str | None = None
    complete: bool = False

    @property
    def measured(self) -> list[LeakCall]:
        return [c for c in self.calls if not c.warmup]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def leak_argv(scenario: Scenario, values: Mapping[str, object]) -> list[str]:
    """The driver's command line; ``args`` take the same placeholders as ``command``."""
    leak = scenario.leak
    assert leak is not None
    # With requirements the virtualenv's python3 comes first on PATH.
    python = "python3" if scenario.requirements else (scenario.python or "python3")
    args = []
    for text in leak.args:
        try:
            args.append(text.format_map({k: str(v) for k, v in values.items()}))
        except (KeyError, ValueError, IndexError, AttributeError) as exc:
            raise UsageError(f"leak args: cannot fill {text!r}: {exc!r}") from None
    return [python, "-m", "runner.probe.leak", "--entry", leak.entry,
            "--calls", str(leak.calls), "--warmup", str(leak.warmup), "--", *args]


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
        kind = item.get("type")
        if kind == "start":
            started = True
            record.entry, record.python = item.get("entry", ""), item.get("python", "")
            record.planned_calls, record.warmup = item.get("calls", 0), item.get("warmup", 0)
        elif kind == "call":
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
    return record if started else None
