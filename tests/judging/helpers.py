"""Planted workloads and hand-built results for the analysis tests."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

from runner.judging.stage import judge
from runner.judging.statistics import case_metrics
from runner.results import Case, Host, LeakCall, LeakRecord, Results, Run
from runner.slafile import parse_suite

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


def leak_case(scenario: str, heap: list[int], *, warmup: int = 2,
              rss: list[int] | None = None) -> Case:
    """A case whose leak run left ``heap`` bytes traced after each call (the first ``warmup``
    calls are warm-up calls)."""
    calls = [LeakCall(index=i, warmup=i < warmup, duration=0.1, traced=traced, peak=0,
                      rss=None if rss is None else rss[i], objects=1000 + i)
             for i, traced in enumerate(heap)]
    record = LeakRecord(entry="app:build", planned_calls=len(heap), warmup=warmup, calls=calls,
                        complete=True)
    built = Case(scenario=scenario, params={}, backend="cgroup", limit=None)
    built.runs = [Run(kind="leak", index=0, exit_code=0, duration=1.0, leak=record)]
    built.metrics = case_metrics(built)
    return built


def judged(cases: list[Case], slas: list[str] | None = None) -> Results:
    """Results of these cases after the judging stage, under an SLA file whose scenarios have
    exactly the cases' matrix (and ``slas`` on each)."""
    scenarios: dict[str, dict[str, object]] = {}
    for built in cases:
        scenario = scenarios.setdefault(built.scenario, {"command": ["true"], "matrix": {},
                                                         "slas": list(slas or [])})
        matrix = scenario["matrix"]
        assert isinstance(matrix, dict)
        for key, value in built.params.items():
            matrix.setdefault(key, [])
            if value not in matrix[key]:
                matrix[key].append(value)
        if any(r.kind == "leak" for r in built.runs):
            scenario.pop("command")
            scenario["leak"] = {"entry": "app:build"}
    report = results(cases)
    judge(report, parse_suite(json.dumps({"version": 1, "scenarios": scenarios})))
    return report
