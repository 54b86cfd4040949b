"""Planted workloads and hand-built results for the analysis tests."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from runner.judging.statistics import case_metrics
from runner.results import Case, Host, Results, Run

KiB, MiB = 1024, 1024 * 1024
PYTHON = sys.executable

# pages x per_page + fixed bytes, every byte touched (bytes * n writes them all).
LINEAR = """
import sys
pages, per_page, fixed = (int(a) for a in sys.argv[1:4])
held = [b"\\x01" * fixed]
held += [b"\\x02" * per_page for _ in range(pages)]
"""

# pages blocks of pages x unit bytes: memory grows as pages^2.
QUADRATIC = """
import sys
pages, unit = int(sys.argv[1]), int(sys.argv[2])
held = [b"\\x03" * (pages * unit) for _ in range(pages)]
"""

# leak_entry: 1 MiB kept per call, beside random-sized temporary garbage.
# clean_entry: only random-sized temporary garbage and a throw-away dict.
LEAKY = """
import random

_kept = []


def leak_entry(tag):
    garbage = [bytes(random.randint(1, 100000)) for _ in range(20)]
    _kept.append(bytearray(1024 * 1024))
    return len(garbage)


def clean_entry(tag):
    garbage = [bytes(random.randint(1, 300000)) for _ in range(random.randint(5, 60))]
    table = {i: str(i) * random.randint(1, 40) for i in range(random.randint(100, 5000))}
    return len(garbage) + len(table)


def failing_entry(tag):
    raise RuntimeError("the build broke")
"""
LEAK_LINE = LEAKY.splitlines().index("    _kept.append(bytearray(1024 * 1024))") + 1


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def host() -> Host:
    return Host(hostname="test", kernel="6", os="linux", python="3.11", cpus=2,
                memory_total=8 << 30, cgroup_version=1, backend="cgroup",
                backend_reason="test")


def case(scenario: str, peaks: list[float], *, size: int | None = None,
         size_parameter: str | None = "pages", params: dict[str, int | str] | None = None,
         oom: bool = False) -> Case:
    """A case whose timed runs had these cgroup peaks (and durations of 1 s)."""
    params = dict(params or {})
    if size is not None and size_parameter is not None:
        params[size_parameter] = size
    built = Case(scenario=scenario, params=params,
                 size_parameter=size_parameter if size is not None else None, size=size,
                 backend="cgroup", limit=None)
    built.runs = [Run(kind="timed", index=i, exit_code=137 if oom else 0, oom_kills=int(oom),
                      duration=1.0, cgroup_peak=int(p), rss_peak=int(p))
                  for i, p in enumerate(peaks)]
    built.metrics = case_metrics(built)
    return built


def results(cases: list[Case]) -> Results:
    return Results(memsla_version="0.1.0", created="2024-01-01T00:00:00+00:00",
                   sla_file="sla.yaml", host=host(), cases=cases)
