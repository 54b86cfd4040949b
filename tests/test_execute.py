"""The executor: the runs of one case, in order, through a real backend (the process backend:
no cgroup needed), and only runs: it judges nothing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from runner.backends.process import ProcessBackend
from runner.execute import Executor
from runner.plan import build_plan
from runner.slafile import parse_suite

PROGRAM = "import sys; held = bytearray(8 * 1024 * 1024); print('built', sys.argv[1:])"


@pytest.fixture
def executor(tmp_path: Path) -> Executor:
    backend = ProcessBackend()
    return Executor(backend_for=lambda name: backend, cache=tmp_path / "cache",
                    spec_dir=tmp_path)


def _suite(extra: str = "") -> str:
    return f"""
version: 1
defaults: {{backend: process, repeats: 2, warmup: 1}}
scenarios:
  s:
    command: [{sys.executable}, -c, "{PROGRAM}", "{{pages}}"]
    matrix: {{pages: [3]}}
    slas: [peak < 1GiB]
{extra}
"""


def test_runs_come_in_order_and_only_the_traced_one_has_a_heap(executor: Executor) -> None:
    plan = build_plan(parse_suite(_suite()))[0]
    case = executor.run_case(plan)
    assert case.error is None
    assert [(r.kind, r.index) for r in case.runs] == [
        ("warmup", 0), ("timed", 1), ("timed", 2), ("traced", 3)]
    assert all(r.exit_code == 0 and r.approximate for r in case.runs)
    heaps = [r.python_peak for r in case.runs]
    assert heaps[:3] == [None, None, None]
    assert heaps[3] is not None and heaps[3] >= 8 * 1024 * 1024
    assert case.verdicts == [] and case.metrics == {}  # judging is the judging stage's job
    assert (case.size, case.backend, case.limit) == (3, "process", None)


def test_no_work_folder_is_left_behind(executor: Executor, tmp_path: Path) -> None:
    executor.run_case(build_plan(parse_suite(_suite()))[0])
    assert list((tmp_path / "cache" / "runs").glob("memsla-*")) == []


def test_a_leak_scenario_runs_the_driver_and_keeps_its_record(executor: Executor,
                                                               tmp_path: Path) -> None:
    (tmp_path / "entry.py").write_text("kept = []\ndef build(n):\n    kept.append(bytes(1000))\n")
    suite = parse_suite(f"""
version: 1
defaults: {{backend: process}}
scenarios:
  leaky:
    leak: {{entry: "entry:build", calls: 5, warmup: 1, args: ["x"]}}
    env: {{PYTHONPATH: "{tmp_path}"}}
    python: {sys.executable}
    slas: [leak_per_build < 1MiB]
""")
    case = executor.run_case(build_plan(suite)[0])
    assert [r.kind for r in case.runs] == ["leak"]
    record = case.runs[0].leak
    assert record is not None and record.complete, case.runs[0].stderr_tail
    assert [c.index for c in record.measured] == [1, 2, 3, 4]
