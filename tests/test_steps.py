"""Step scenarios: several commands in order on one writable fixture copy, each step measured in
its own cgroup reading, judged by ``step(NAME).METRIC`` rules.

Planted on a real cgroup: an idle step (the interpreter alone), a full build holding 200 MiB
that leaves a file in the copy, and an incremental build that needs that file and holds 30 MiB;
each step's peak minus the idle step's is the planted size within 2%. A first step that fails
leaves the next one not run and the case failing, never passing. The SLA file's ``steps:`` is
checked at load, with the line of each mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import SpecError
from runner.judging.statistics import case_metrics
from runner.judging.steps import judge_ratios
from runner.judging.verdicts import judge_case
from runner.measure.assemble import assemble_steps
from runner.results import Case, Run, StepResult
from runner.slafile import parse_suite
from runner.slafile.rules import parse_rule
from tests.conftest import run_cli
from tests.judging.helpers import PYTHON, MiB, write

# holds N MiB, every page touched; with --write FILE leaves FILE in the working folder (the
# fixture copy), with --need FILE fails unless an earlier step left it there
GROW = """
import sys, time
mib = int(sys.argv[1])
args = sys.argv[2:]
if "--need" in args and open(args[args.index("--need") + 1]).read() != "built":
    sys.exit("not built")
block = bytearray(b"\\x01") * (mib * 1024 * 1024)
time.sleep(0.3)
if "--write" in args:
    with open(args[args.index("--write") + 1], "w") as handle:
        handle.write("built")
"""


def steps_suite(folder: Path, first: str) -> None:
    write(folder, "grow.py", GROW)
    write(folder, "sla.yaml", f"""
        version: 1
        defaults: {{backend: cgroup, repeats: 2, limit: 1GiB}}
        scenarios:
          site:
            generate:
              command: [{PYTHON}, -c, "open('{{fixture}}/page.md', 'w').write('x')"]
            steps:
              - {{name: idle, command: [{PYTHON}, {folder}/grow.py, "0"]}}
              - {{name: full, command: [{PYTHON}, {folder}/grow.py, {first}]}}
              - name: incremental
                command: [{PYTHON}, {folder}/grow.py, "30", --need, "{{fixture_copy}}/built.txt"]
            slas:
              - step(incremental).peak < 100MiB
              - step(full).peak < 100MiB
              - step(incremental).peak / step(full).peak < 0.5
              - step(incremental).rss_peak / step(full).rss_peak < 10%
        """)


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_planted_steps_are_measured_each_on_its_own(tmp_path: Path) -> None:
    steps_suite(tmp_path, '"200", --write, built.txt')
    run = run_cli(["check", "sla.yaml", "--markdown", "report.md"], tmp_path)
    assert run.exit_code == 1, run.stdout + run.stderr  # step(full).peak < 100MiB breaks
    case = run.case()
    metrics = {name: stats["median"] for name, stats in case["metrics"].items()}
    idle = {m: metrics[f"step(idle).{m}"] for m in ("peak", "rss_peak")}
    for step, mib in (("full", 200), ("incremental", 30)):
        for metric in ("peak", "rss_peak"):
            grown = metrics[f"step({step}).{metric}"] - idle[metric]
            assert grown == pytest.approx(mib * MiB, rel=0.02), (step, metric, grown / MiB)
        # the heap of the traced run's step
        assert metrics[f"step({step}).python_peak"] == pytest.approx(mib * MiB, rel=0.02)
        assert metrics[f"step({step}).duration"] >= 0.3
    # the whole run: the largest of its steps' peaks, the sum of their durations
    timed = [r for r in case["runs"] if r["kind"] == "timed"]
    for whole in timed:
        ran = [s["run"] for s in whole["steps"]]
        assert [s["name"] for s in whole["steps"]] == ["idle", "full", "incremental"]
        assert whole["cgroup_peak"] == max(r["cgroup_peak"] for r in ran)
        assert whole["duration"] == pytest.approx(sum(r["duration"] for r in ran))
    verdicts = {v["rule"]: v["passed"] for v in case["verdicts"]}
    assert verdicts == {"step(incremental).peak < 100MiB": True,
                        "step(full).peak < 100MiB": False,
                        "step(incremental).peak / step(full).peak < 0.5": True,
                        "step(incremental).rss_peak / step(full).rss_peak < 10%": False,
                        "exit_code == 0": True, "oom_kills == 0": True}
    # a ratio is judged in each run, both steps of the same run: its worst across the repeats
    ratio = next(v for v in case["verdicts"] if v["rule"].startswith("step(incremental).peak /"))
    assert ratio["metric"] == "step(incremental).peak / step(full).peak"
    expected = max(run["steps"][2]["run"]["cgroup_peak"] / run["steps"][1]["run"]["cgroup_peak"]
                   for run in timed)
    assert ratio["value"] == pytest.approx(expected)
    # every report shows the steps
    assert "Steps" in run.stdout and "incremental" in run.stdout
    markdown = (tmp_path / "report.md").read_text()
    assert "| site | full |" in markdown and "| site | incremental |" in markdown


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_a_failing_step_leaves_the_next_not_run(tmp_path: Path) -> None:
    # the full build fails before writing the file the incremental build needs
    steps_suite(tmp_path, '"0", --need, missing.txt')
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert run.exit_code == 1, run.stdout + run.stderr
    assert run.results is not None and run.results["status"] != "pass"
    case = run.case()
    for whole in (r for r in case["runs"] if r["kind"] in ("timed", "traced")):
        idle, full, incremental = whole["steps"]
        assert idle["run"]["exit_code"] == 0 and full["run"]["exit_code"] != 0
        assert incremental["run"] is None
        assert whole["exit_code"] == full["run"]["exit_code"]
    verdicts = {v["rule"]: v for v in case["verdicts"]}
    assert not any(v["passed"] for rule, v in verdicts.items() if rule.startswith("step("))
    for rule in ("step(incremental).peak < 100MiB",
                 "step(incremental).peak / step(full).peak < 0.5"):
        assert verdicts[rule]["passed"] is None
        assert "not run" in verdicts[rule]["reason"]
    assert verdicts["exit_code == 0"]["passed"] is False
    assert "2 of 2" in run.stdout or "3 of 3" in run.stdout  # the step table's not-run count


# --- without a cgroup: the run's figures made of its steps, and judging a step not run


def step_run(exit_code: int, peak: int, duration: float) -> Run:
    return Run(kind="timed", index=0, exit_code=exit_code, duration=duration, cpu_time=duration,
               cgroup_peak=peak, rss_peak=peak, oom_kills=0)


def test_the_whole_run_is_made_of_its_steps() -> None:
    whole = assemble_steps("timed", 0, [StepResult(name="full", run=step_run(0, 200, 2.0)),
                                        StepResult(name="incremental", run=step_run(0, 30, 0.5))])
    assert (whole.cgroup_peak, whole.rss_peak, whole.duration, whole.cpu_time) == (
        200, 200, 2.5, 2.5)
    assert whole.completed
    failed = assemble_steps("timed", 0, [StepResult(name="full", run=step_run(4, 90, 1.0)),
                                         StepResult(name="incremental")])
    assert failed.exit_code == 4 and not failed.completed
    assert any("not run" in note and "incremental" in note for note in failed.notes)


def test_a_step_not_run_in_one_repeat_is_not_judged() -> None:
    runs = [assemble_steps("timed", i, steps) for i, steps in enumerate([
        [StepResult(name="full", run=step_run(0, 90, 1.0)),
         StepResult(name="incremental", run=step_run(0, 30, 0.5))],
        [StepResult(name="full", run=step_run(1, 90, 1.0)), StepResult(name="incremental")]])]
    case = Case(scenario="site", params={}, backend="cgroup", limit=None, runs=runs)
    case.metrics = case_metrics(case)
    assert case.pick("step(incremental).peak") == 30
    rule = parse_rule("step(incremental).peak < 100MiB")
    (judged,) = judge_case(case, [rule], [])
    assert judged.passed is None and "not run" in judged.reason


def test_a_step_ratio_is_judged_per_run() -> None:
    runs = [assemble_steps("timed", i, [StepResult(name="full", run=step_run(0, full, 1.0)),
                                        StepResult(name="incremental", run=step_run(0, 30, 1.0))])
            for i, full in enumerate((100, 60))]
    case = Case(scenario="site", params={}, backend="cgroup", limit=None, runs=runs)
    rule = parse_rule("step(incremental).peak / step(full).peak < 0.4")
    (judged,) = judge_ratios(case, [rule])
    assert judged.value == pytest.approx(0.5) and judged.passed is False  # the worst run: 30/60
    assert judged.metric == "step(incremental).peak / step(full).peak"
    (held,) = judge_ratios(case, [parse_rule("step(incremental).peak / step(full).peak < 60%")])
    assert held.passed is True


# --- the SLA file


def error_of(text: str) -> SpecError:
    with pytest.raises(SpecError) as caught:
        parse_suite(text, file="sla.yaml")
    return caught.value


STEPS = """\
version: 1
scenarios:
  site:
    steps:
      - {name: full, command: [build]}
      - {name: incremental, command: "build --fast", shell: true}
"""


def test_steps_are_read() -> None:
    suite = parse_suite(STEPS + "    slas: ['step(incremental).peak < 64MiB']\n")
    scenario = suite.scenarios["site"]
    assert [s.name for s in scenario.steps or ()] == ["full", "incremental"]
    assert scenario.slas[0].metric.step == "incremental"


@pytest.mark.parametrize(("text", "line", "message"), [
    pytest.param(STEPS + "    command: [build]\n", 4, "either 'command' or 'steps'",
                 id="steps-and-command"),
    pytest.param(STEPS + "      - {name: full, command: [again]}\n", 7, "used twice",
                 id="duplicate-name"),
    pytest.param(STEPS + "    slas: [step(cold).peak < 1GiB]\n", 7, "no step 'cold'",
                 id="unknown-step-in-rule"),
    pytest.param(STEPS + "    slas: [step(full).peek < 1GiB]\n", 7, "did you mean 'peak'",
                 id="unknown-step-metric"),
    pytest.param(STEPS + "    slas: ['step(full).peak / step(cold).peak < 0.5']\n", 7,
                 "no step 'cold'", id="unknown-step-in-ratio"),
    pytest.param(STEPS + "    slas: ['step(full).peak / step(incremental).duration < 2']\n", 7,
                 "not in the same unit", id="ratio-of-units"),
    pytest.param(STEPS + "    slas: ['step(full).peak / step(incremental).peak < 1GiB']\n", 7,
                 "plain number or a percentage", id="ratio-bound-in-bytes"),
    pytest.param(STEPS.replace("shell: true", "shell: false"), 6, "needs 'shell: true'",
                 id="string-without-shell"),
    pytest.param(STEPS.replace("[build]", "[build, '{nope}']"), 5, "unknown placeholder",
                 id="unknown-placeholder"),
    pytest.param(STEPS.replace("name: full", "name: 'a b'"), 5, "step name",
                 id="bad-name"),
    pytest.param(STEPS + "    disk: {s: '{scratch}/x'}\n", 7, "each step's own",
                 id="disk-in-a-steps-scratch"),
    pytest.param(STEPS.replace("[build]", "[build, '{output}']")
                 + "    docker: {output: tmpfs}\n", 7, "output: bind",
                 id="steps-share-a-tmpfs-output"),
    pytest.param("version: 1\nscenarios:\n  site:\n    steps: []\n", 4, "at least 1",
                 id="no-steps"),
    pytest.param("version: 1\nscenarios:\n  site: {command: [x]}\n"
                 "slas: [step(full).peak < 1GiB]\n", 4, "no step 'full'",
                 id="suite-rule-no-step"),
])
def test_bad_steps_point_at_their_line(text: str, line: int, message: str) -> None:
    error = error_of(text)
    assert message in error.message, error.message
    assert error.line == line, error.message
