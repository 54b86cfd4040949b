"""A run that did not complete never makes a pass: the rule fails where the figure proves it,
else it is not judged, and the reason says which run failed and how (exit, signal, timeout, OOM,
the last line of stderr). Plain data: no build runs here."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runner.judging.stage import judge
from runner.results import Case, Run, Selection, Verdict
from runner.slafile import parse_suite
from tests.conftest import run_cli
from tests.judging.helpers import MiB, results

SUITE = """
version: 1
scenarios:
  site:
    command: [build]
    slas: [peak < 200MiB, peak > 1MiB, duration < 30s, python_peak < 100MiB]
"""


def _judged(*runs: Run) -> dict[str, Verdict]:
    built = Case(scenario="site", params={}, backend="cgroup", limit=256 * MiB, runs=list(runs))
    report = results([built])
    judge(report, parse_suite(SUITE))
    return {v.rule: v for v in report.cases[0].verdicts}


def _run(index: int = 0, *, kind: str = "timed", peak: int = 50 * MiB, **failure: object) -> Run:
    return Run.model_validate({"kind": kind, "index": index, "exit_code": 0, "duration": 2.0,
                               "cgroup_peak": peak, "rss_peak": peak, **failure})


def test_completed_runs_are_judged_as_ever() -> None:
    verdicts = _judged(_run(0), _run(1))
    assert all(v.passed for rule, v in verdicts.items() if rule != "python_peak < 100MiB")
    assert verdicts["exit_code == 0"].reason == ""


def test_a_build_that_never_ran_judges_no_memory_rule() -> None:
    # exit 127: the program was not there; its 10 MiB is a shell's, not the build's
    never = _run(0, peak=10 * MiB, exit_code=127, stderr_tail="sh: 1: exec: sitegen: not found\n")
    verdicts = _judged(never)
    for rule in ("peak < 200MiB", "peak > 1MiB", "duration < 30s"):
        assert verdicts[rule].passed is None, rule
        assert verdicts[rule].value is None
        assert "timed run 1 did not complete: exit 127 (sh: 1: exec: sitegen: not found)" in (
            verdicts[rule].reason)
    implicit = verdicts["exit_code == 0"]
    assert implicit.passed is False and implicit.value == 127
    assert "sitegen: not found" in implicit.reason


def test_an_oom_at_the_limit_proves_a_lower_bound_broken() -> None:
    # killed at its 256 MiB limit: it needed at least that much, so 'peak < 200MiB' is broken
    killed = _run(0, peak=256 * MiB, exit_code=137, signal=9, oom_killed=True, oom_kills=1)
    verdicts = _judged(_run(1), killed)
    assert verdicts["peak < 200MiB"].passed is False
    assert verdicts["peak < 200MiB"].value == 256 * MiB
    assert "OOM-killed (1 kill)" in verdicts["peak < 200MiB"].reason
    # ... but says nothing of a bound above the limit, or of a lower bound
    assert verdicts["peak > 1MiB"].passed is None
    assert verdicts["oom_kills == 0"].passed is False


def test_a_rule_above_what_the_dead_run_reached_is_not_judged() -> None:
    killed = _run(0, peak=100 * MiB, exit_code=137, signal=9, oom_killed=True, oom_kills=1)
    verdict = _judged(killed)["peak < 200MiB"]
    assert verdict.passed is None
    assert verdict.reason.startswith("a run did not complete: timed run 1 did not complete: "
                                     "OOM-killed")


def test_a_timeout_proves_a_duration_bound_broken() -> None:
    slow = _run(0, duration=45.0, exit_code=137, signal=9, timed_out=True)
    verdicts = _judged(slow)
    assert verdicts["duration < 30s"].passed is False
    assert "timed out after 45.0 s" in verdicts["duration < 30s"].reason


def test_a_crashed_traced_run_judges_no_heap_rule() -> None:
    from runner.results import PythonHeap

    traced = _run(0, kind="traced", exit_code=1, stderr_tail="Traceback ...\nKeyError: 'x'\n",
                  python=[PythonHeap(pid=1, peak=5 * MiB)], python_peak=5 * MiB)
    verdict = _judged(_run(0), traced)["python_peak < 100MiB"]
    assert verdict.passed is None
    assert "traced run 1 did not complete: exit 1 (KeyError: 'x')" in verdict.reason


FIT_SUITE = """
version: 1
scenarios:
  site:
    command: [build]
    matrix: {pages: [100, 200, 400]}
    slas: [per_page < 1MiB, peak < 1GiB]
"""


def test_a_fit_the_selection_cannot_give_is_skipped_not_an_error() -> None:
    built = Case(scenario="site", params={"pages": 100}, size_parameter="pages", size=100,
                 backend="cgroup", limit=None, runs=[_run(0)])
    report = results([built])
    report.selection = Selection(sizes=[100])
    judge(report, parse_suite(FIT_SUITE))
    fit = report.scenarios[0].verdicts[0]
    assert fit.skipped and fit.passed is None
    assert "--size 100 leaves 1 size(s); a fit needs 3" in fit.reason


@pytest.fixture
def two_scenarios(tmp_path: Path) -> Path:
    (tmp_path / "sla.yaml").write_text(textwrap.dedent("""\
        version: 1
        defaults: {backend: process, repeats: 1, tracker: none}
        scenarios:
          quick:
            command: [python3, -c, "pass"]
            matrix: {pages: [1, 2, 3]}
            slas: [duration < 60s, per_page < 1GiB]
          other:
            command: [python3, -c, "pass"]
            slas: [duration < 60s]
        """))
    return tmp_path


def test_size_and_only_list_what_they_leave_out_and_still_gate(two_scenarios: Path) -> None:
    run = run_cli(["check", "sla.yaml", "--only", "quick", "--size", "2"], two_scenarios)
    assert run.exit_code == 0, run.stdout + run.stderr
    assert run.results is not None and run.results["status"] == "pass"
    skipped = [v for s in run.results["scenarios"] for v in s["verdicts"] if v["skipped"]]
    assert {v["rule"] for v in skipped} == {"per_page < 1GiB", "duration < 60s"}
    assert "2 skipped" in run.stdout
    assert "skipped: --only quick --size 2 left scenario 'other' out" in run.stdout


def test_a_missing_program_shows_its_failure_in_the_table(two_scenarios: Path) -> None:
    (two_scenarios / "sla.yaml").write_text(textwrap.dedent("""\
        version: 1
        defaults: {backend: cgroup, repeats: 1, tracker: none}
        scenarios:
          gone:
            command: [sh, -c, "exec no-such-build-tool-memsla"]
            slas: [peak < 1GiB]
        """))
    run = run_cli(["check", "sla.yaml"], two_scenarios)
    assert run.exit_code == 1, run.stdout + run.stderr
    assert "exit 127" in run.stdout and "not found" in run.stdout
    peak = next(v for v in run.results["cases"][0]["verdicts"] if v["rule"] == "peak < 1GiB")
    assert peak["passed"] is None and "exit 127" in peak["reason"]
