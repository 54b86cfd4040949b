"""The check as a whole: what earns a pass, what a selection that matches nothing or a crashing
build gives, and what the results file says at each moment."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runner.judging.status import status_of
from runner.results import Case, Host, Results, Run, Verdict
from tests.conftest import run_cli


def _results(*cases: Case) -> Results:
    host = Host(hostname="h", kernel="k", os="o", python="3", cpus=2, memory_total=1,
                cgroup_version=1, backend="cgroup", backend_reason="test")
    return Results(memsla_version="0", created="now", sla_file="sla.yaml", host=host,
                   cases=list(cases))


def _case(*verdicts: Verdict, error: str | None = None) -> Case:
    return Case(scenario="s", params={}, backend="cgroup", limit=None, error=error,
                runs=[Run(kind="timed", index=0, exit_code=0, duration=1.0)],
                verdicts=list(verdicts))


def _verdict(passed: bool | None, *, implicit: bool = False) -> Verdict:
    return Verdict(rule="peak < 1", metric="peak", op="<", bound=1, stat="max",
                   value=None if passed is None else 0.5, passed=passed, implicit=implicit)


def test_a_new_results_file_reads_running_never_pass() -> None:
    assert _results().status == "running"


@pytest.mark.parametrize(("verdicts", "error", "expected"), [
    ([_verdict(True), _verdict(True, implicit=True)], None, "pass"),
    ([_verdict(True), _verdict(False)], None, "fail"),
    ([_verdict(False), _verdict(None)], None, "fail"),  # a broken SLA is the loudest news
    ([_verdict(True), _verdict(None)], None, "error"),
    ([_verdict(True)], "the build could not run", "error"),
    ([_verdict(True, implicit=True)], None, "error"),  # only memsla's own rules: no gate
    ([], None, "error"),
])
def test_status_needs_a_judged_rule_of_the_users(verdicts: list[Verdict], error: str | None,
                                                 expected: str) -> None:
    status, problems = status_of(_results(_case(*verdicts, error=error)))
    assert status == expected
    if verdicts and all(v.implicit for v in verdicts):
        assert "no SLA written by the user" in problems[0]


def _write(folder: Path, text: str) -> Path:
    path = folder / "sla.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_size_outside_the_matrix_is_bad_input_not_a_pass(tmp_path: Path) -> None:
    _write(tmp_path, """\
        version: 1
        defaults: {backend: process, repeats: 1, tracker: none}
        scenarios:
          s:
            command: [python3, -c, "pass"]
            matrix: {pages: [1, 2]}
            slas: [duration < 60s]
        """)
    run = run_cli(["check", "sla.yaml", "--size", "12345"], tmp_path)
    assert run.exit_code == 2, run.stderr
    assert "matches no case" in run.stderr
    assert run.results is None or run.results["status"] != "pass"


def test_implicit_rules_alone_are_no_pass(tmp_path: Path) -> None:
    _write(tmp_path, """\
        version: 1
        defaults: {backend: process, repeats: 1, tracker: none}
        scenarios:
          s: {command: [python3, -c, "pass"]}
        """)
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert run.exit_code == 3, run.stdout + run.stderr
    assert run.results is not None and run.results["status"] == "error"
    assert "no SLA written by the user" in run.results["problems"][0]
    assert "no SLA written" in run.stdout


@pytest.mark.parametrize(("scenario", "said"), [
    ('{command: [python3, -c, "pass"], workdir: /no/such/folder, slas: [duration < 60s]}',
     "workdir /no/such/folder is not a folder"),
    ('{command: [no-such-program-memsla], backend: process, slas: [duration < 60s]}',
     "the build could not run"),
])
def test_a_build_that_cannot_start_is_an_error_with_a_message(tmp_path: Path, scenario: str,
                                                              said: str) -> None:
    _write(tmp_path, f"""\
        version: 1
        defaults: {{backend: cgroup, repeats: 1, tracker: none}}
        scenarios:
          s: {scenario}
        """)
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert run.exit_code == 3, run.stderr
    assert "Traceback" not in run.stderr
    assert run.results is not None and run.results["status"] == "error"
    assert said in run.results["cases"][0]["error"]
    assert said in run.stdout
