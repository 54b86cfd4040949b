"""Results to render: recorded real runs, and a synthetic file full of awkward cases.

``data/results.json`` and ``data/base.json`` were written by ``docs/generate_excerpts.py
--save-results tests/reports/data`` on a cgroup v1 host: a small Python build holding 256 KiB
(200 KiB in the baseline) per page at 100, 200 and 400 pages, and a scenario OOM-killed at its
96 MiB limit. One SLA of the site fails at 400 pages.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.results import (
    AllocationSite,
    Case,
    Host,
    LeakFinding,
    LineFit,
    PhaseResult,
    PythonHeap,
    Results,
    Run,
    ScalingFit,
    ScenarioAnalysis,
    ScenarioResult,
    Stats,
    Timeline,
    Verdict,
)

DATA = Path(__file__).parent / "data"
MiB = 1024 * 1024


@pytest.fixture
def recorded() -> Results:
    return Results.read(DATA / "results.json")


@pytest.fixture
def base() -> Results:
    return Results.read(DATA / "base.json")


def _verdict(rule: str, metric: str, value: float | None, bound: float, passed: bool | None,
             **extra: object) -> Verdict:
    return Verdict.model_validate({"rule": rule, "metric": metric, "op": "<", "bound": bound,
                                   "stat": "max", "value": value, "passed": passed, **extra})


def awkward_results() -> Results:
    """Everything a report must survive: characters that need escaping in XML, markdown and
    workflow commands, an unjudged rule, an approximate backend, an unmeasured case, a phase the
    build died in, a scaling fit from too few sizes and a leak run that never started."""
    host = Host(hostname="ci-runner", kernel="6.8.0", os="Ubuntu 24.04", python="3.11.9",
                cpus=4, memory_total=16 * 1024 * MiB, cgroup_version=2, backend="process",
                backend_reason="no cgroup", docker_version=None)
    timeline = Timeline(interval=0.05, t=[i * 0.05 for i in range(40)],
                        cgroup=[min(i, 30) * 4 * MiB for i in range(40)],
                        anon=[None if i == 3 else min(i, 30) * 3 * MiB for i in range(40)])
    run = Run(kind="timed", index=0, exit_code=137, signal=9, oom_killed=True, oom_kills=1,
              duration=2.0, cgroup_peak=120 * MiB, rss_peak=90 * MiB, limit=128 * MiB,
              approximate=True, timeline=timeline,
              stderr_tail="\x1b[31mKilled\x1b[0m \x00 100% done: a,b\nnext line",
              phases=[PhaseResult(name="a|b:c,d%", start=0.1, end=0.5),
                      PhaseResult(name="inner", depth=1, start=0.2, end=0.3),
                      PhaseResult(name="render", start=0.5, end=None)],
              notes=["memory is the sampled sum of the process tree's RSS"])
    traced = Run(kind="traced", index=1, exit_code=0, duration=3.0,
                 python=[PythonHeap(pid=7, peak=50 * MiB, final=10 * MiB, blocks=99,
                                    top_allocations=[AllocationSite(
                                        file="/usr/lib/python3.11/site-packages/x/<y>.py",
                                        line=3, size=40 * MiB, count=12)])],
                 python_peak=50 * MiB, python_final=10 * MiB, allocations=99)
    verdicts = [
        _verdict("phase(a|b:c,d%).peak < 100MiB", "phase(a|b:c,d%).peak", 120 * MiB, 100 * MiB,
                 False, file="/work/sla.yaml", line=7, approximate=True),
        _verdict("python_peak < 1GiB", "python_peak", None, 1024 * MiB, None,
                 reason="no traced run:\nset tracker: tracemalloc", file="sla.yaml", line=8),
        _verdict("exit_code == 0", "exit_code", 137, 0, False, implicit=True, op="==",
                 stat="worst"),
    ]
    odd = Case(scenario="odd.name-1", params={"pages": 10, "flavour": "a,b"},
               size_parameter="pages", size=10, backend="process", limit=128 * MiB,
               approximate=True, runs=[run, traced], verdicts=verdicts,
               metrics={"peak": Stats.of([120.0 * MiB]), "duration": Stats.of([2.0]),
                        "python_peak": Stats.of([50.0 * MiB]), "exit_code": Stats.of([137.0]),
                        "phase(a|b:c,d%).peak": Stats.of([120.0 * MiB])})
    second = odd.model_copy(update={"params": {"pages": 20, "flavour": "a,b"}, "size": 20,
                                    "verdicts": [], "metrics": {
                                        "peak": Stats.of([200.0 * MiB, 210.0 * MiB])}})
    missing = Case(scenario="odd.name-1", params={"pages": 40, "flavour": "a,b"},
                   size_parameter="pages", size=40, backend="process", limit=None,
                   error="the fixture could not be generated: <boom> & 'quotes'")
    scenario = ScenarioResult(
        scenario="odd.name-1",
        verdicts=[_verdict("per_page(peak) < 1MiB", "per_page(peak)", 8.0 * MiB, 1.0 * MiB,
                           False, file="sla.yaml", line=9, reason="fit of 2 sizes")],
        analysis=ScenarioAnalysis(
            scaling=[ScalingFit(metric="peak", size_parameter="pages", params={"flavour": "a,b"},
                                sizes=[10, 20], values=[120.0 * MiB, 205.0 * MiB],
                                excluded=["size 40 not measured"],
                                problem="peak was measured at 2 size(s) (10, 20); a fit needs "
                                        "at least 3 (size 40 not measured)",
                                line=LineFit(fixed=40.0 * MiB, marginal=8.0 * MiB, r2=1.0,
                                             residual_sd=0.0))],
            leaks=[LeakFinding(case=odd.label, params=odd.params,
                               problem="the leak driver did not start: <boom> | 100%")]))
    return Results(memsla_version="0.1.0", created="2026-01-02T03:04:05+00:00",
                   sla_file="sla.yaml", host=host, cases=[odd, second, missing],
                   scenarios=[scenario], status="error")


@pytest.fixture
def awkward() -> Results:
    return awkward_results()
