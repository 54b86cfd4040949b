"""The pytest plugin on real cgroups: a marked body measured in its own cgroup (what the
fixtures made before is not charged), OOM kills and failed rules fail the test with the value
and the bound, grandchildren are counted, the fixture measures callables and commands, the
results file and JUnit properties, and the fallback without a cgroup."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from runner.results import Results
from tests.pytest_plugin.conftest import MiB

pytestmark = pytest.mark.usefixtures("writable_cgroup")

HEADER = """
import subprocess, sys
import pytest
MiB = 1 << 20

def touch(mib):
    return bytearray(b"\\x01") * (mib * MiB)
"""


def test_a_body_over_its_marker_limit_fails_as_an_oom_with_the_value(run_plugin) -> None:
    run = run_plugin(HEADER + """
@pytest.mark.memsla(limit="256MiB")
def test_big():
    block = touch(300)
""")
    run.outcome.assert_outcomes(failed=1)
    assert "oom_kills == 0: measured 1 (worst), bound == 0" in run.text
    assert "OOM-killed a process at the 256 MiB limit (peak 256 MiB)" in run.text
    case = run.case("test_big")
    assert case["limit"] == 256 * MiB and case["runs"][0]["oom_kills"] >= 1


def test_only_the_body_is_charged_not_what_its_fixture_made(run_plugin, pytester) -> None:
    run = run_plugin(HEADER + """
@pytest.fixture
def site():
    return touch(200)

@pytest.mark.memsla("peak < 100MiB", "rss_peak < 100MiB", limit="512MiB")
def test_body(site):
    block = touch(50)
    assert len(site) == 200 * MiB
""", "--junitxml=junit.xml")
    run.outcome.assert_outcomes(passed=1)
    assert run.results is not None
    baseline = run.results["host"]["harness_baseline"]
    assert baseline is not None and 0 < baseline < 4 * MiB  # the fork's own cost, stated
    added = run.peak("test_body") - baseline
    assert abs(added - 50 * MiB) / (50 * MiB) < 0.02, added / MiB  # not 250
    rss = run.case("test_body")["metrics"]["rss_peak"]["max"]
    assert abs(rss - 50 * MiB) / (50 * MiB) < 0.02, rss / MiB
    assert any("fork baseline" in note for note in run.case("test_body")["runs"][0]["notes"])
    # the figures as JUnit properties, and the summary table
    properties = {p.get("name"): p.get("value")
                  for p in ET.parse(pytester.path / "junit.xml").iter("property")}
    assert int(properties["memsla.peak"]) == run.peak("test_body")
    assert int(properties["memsla.baseline"]) == baseline
    assert properties["memsla.limit"] == str(512 * MiB)
    run.outcome.stdout.fnmatch_lines(["*memsla: memory measured by the kernel*",
                                      "*test_body*512 MiB*50.*MiB*pass*",
                                      "fork baseline: an empty callable*"])
    Results.model_validate(run.results)  # the results schema of runner check


def test_a_grandchild_is_counted_and_its_oom_kill_fails_the_test(run_plugin) -> None:
    run = run_plugin(HEADER + """
ALLOCATE = "import time; b = bytearray(b'1') * ({} * 2**20); time.sleep(0.2)"

@pytest.mark.memsla(limit="512MiB")
def test_counted():
    subprocess.run([sys.executable, "-c", ALLOCATE.format(120)], check=True)

@pytest.mark.memsla(limit="200MiB")
def test_killed():
    # the body does not look at the grandchild's exit: the kernel's counter does
    subprocess.run([sys.executable, "-c", ALLOCATE.format(300)])
""")
    run.outcome.assert_outcomes(passed=1, failed=1)
    peak = run.peak("test_counted")
    assert 120 * MiB < peak < 150 * MiB, peak / MiB
    killed = run.case("test_killed")
    assert killed["runs"][0]["oom_kills"] >= 1
    failed = {v["rule"] for v in killed["verdicts"] if v["passed"] is False}
    assert failed == {"oom_kills == 0"}
    assert "oom_kills == 0: measured 1" in run.text


def test_the_body_failing_skipping_or_breaking_a_rule(run_plugin) -> None:
    run = run_plugin(HEADER + """
@pytest.mark.memsla(limit="256MiB")
def test_asserts():
    assert 1 + 1 == 3, "arithmetic"

@pytest.mark.memsla(limit="256MiB")
def test_skips():
    pytest.skip("not here")

@pytest.mark.memsla(limit="256MiB")
def test_xfails():
    pytest.xfail("known")

@pytest.mark.xfail(reason="too big for now", strict=True)
@pytest.mark.memsla(limit="64MiB")
def test_expected_oom():
    block = touch(100)

@pytest.mark.memsla("peak < 20MiB", limit="256MiB")
def test_rule():
    block = touch(40)
""", "-rsx")
    run.outcome.assert_outcomes(failed=2, skipped=1, xfailed=2)
    assert "AssertionError: arithmetic" in run.text
    assert "not here" in run.text and "known" in run.text
    assert run.results is not None  # a skipped or xfailed body is no measurement
    measured = sorted(c["scenario"].split("::")[-1] for c in run.results["cases"])
    assert measured == ["test_asserts", "test_expected_oom", "test_rule"]
    run.outcome.stdout.fnmatch_lines(["*peak < 20MiB: measured 40.*MiB (max), bound < 20 MiB*"])


def test_the_fixture_measures_callables_and_commands(run_plugin) -> None:
    run = run_plugin(HEADER + """
@pytest.mark.memsla(limit="512MiB")
def test_runs(memsla, tmp_path):
    kept = touch(100)  # made in the test, before the measured call: not charged
    call = memsla.run(lambda: touch(30), name="call")
    assert abs(call.added - 30 * MiB) < 0.02 * 30 * MiB, call.describe()
    assert call.limit == 512 * MiB and call.baseline == memsla.baseline
    command = memsla.run([sys.executable, "-c", "b = bytearray(b'1') * (60 * 2**20)"],
                         name="command", rules=["peak < 200MiB"])
    assert 60 * MiB < command.peak < 90 * MiB, command.describe()
    assert command.baseline is None
    over = memsla.run(lambda: touch(100), name="over", limit="64MiB", check=False)
    assert over.oom_kills >= 1 and not over.passed

def test_a_failed_run_fails_the_test(memsla):
    memsla.run(lambda: touch(30), rules=["peak < 10MiB"], limit="256MiB")
""")
    run.outcome.assert_outcomes(passed=1, failed=1)
    run.outcome.stdout.fnmatch_lines(["*memsla run 1 broke its memory rules:*",
                                      "*peak < 10MiB: measured 30.*MiB (max), bound < 10 MiB*"])
    assert run.results is not None
    labels = [c["params"].get("run") for c in run.results["cases"]]
    assert labels == ["call", "command", "over", "1"]


def test_a_bad_rule_is_reported_not_crashed(run_plugin) -> None:
    run = run_plugin(HEADER + """
@pytest.mark.memsla("peek < 1GiB")
def test_typo():
    pass
""")
    run.outcome.assert_outcomes(failed=1)
    assert "unknown metric 'peek' (did you mean 'peak'?)" in run.text


def test_xdist_workers_give_the_same_figures(run_plugin, pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    source = HEADER + """
@pytest.mark.parametrize("mib", [30, 60, 90, 120])
@pytest.mark.memsla(limit="512MiB")
def test_planted(mib):
    block = touch(mib)
"""
    alone = run_plugin(source)
    alone.outcome.assert_outcomes(passed=4)
    workers = run_plugin(source, "-n", "2")
    workers.outcome.assert_outcomes(passed=4)
    assert workers.results is not None and alone.results is not None
    assert len(workers.results["cases"]) == 4
    for mib in (30, 60, 90, 120):
        test = f"test_planted[{mib}]"
        one, two = alone.peak(test), workers.peak(test)
        assert abs(one - two) / one < 0.02, (test, one / MiB, two / MiB)
        added = two - (workers.results["host"]["harness_baseline"] or 0)  # the stated fork cost
        assert abs(added - mib * MiB) / (mib * MiB) < 0.02, (test, two / MiB, added / MiB)
    workers.outcome.stdout.fnmatch_lines(["*memsla: memory measured by the kernel*"])


def test_without_a_cgroup_every_figure_is_approximate(run_plugin, pytester) -> None:
    pytester.makeconftest("""
import runner.inbuild.cgroups
runner.inbuild.cgroups.CGROUP_ROOT = "/nonexistent/memsla-test"
""")
    run = run_plugin(HEADER + """
@pytest.mark.memsla("peak < 1GiB", limit="256MiB")
def test_sampled():
    block = touch(80)
    import time; time.sleep(0.3)

def test_command(memsla):
    code = "import time; b = bytearray(b'1') * (80 * 2**20); time.sleep(0.3)"
    figures = memsla.run([sys.executable, "-c", code])
    assert figures.approximate
""")
    run.outcome.assert_outcomes(passed=2)
    assert run.results is not None
    for case in run.results["cases"]:
        assert case["approximate"] and case["backend"] == "process"
        assert all(v["approximate"] for v in case["verdicts"])
    sampled = run.peak("test_sampled")
    assert 70 * MiB < sampled < 100 * MiB, sampled / MiB  # unique pages of the child
    run.outcome.stdout.fnmatch_lines(["*approx.*", "approximate: no cgroup here*"])


def test_a_marker_traces_with_memray_and_judges_its_churn(run_plugin) -> None:
    run = run_plugin(HEADER + """
@pytest.mark.memsla("allocation_calls >= 500", "allocated < 100MiB", limit="256MiB",
                    tracker="memray")
def test_churn():
    for _ in range(500):
        block = touch(1)
""")
    run.outcome.assert_outcomes(failed=1)
    assert "allocated < 100MiB: measured 50" in run.text  # 500 x 1 MiB, the bound broken
    verdicts = {v["rule"]: v for v in run.case("test_churn")["verdicts"]}
    assert abs(verdicts["allocated < 100MiB"]["value"] - 500 * MiB) < 0.02 * 500 * MiB
    assert verdicts["allocation_calls >= 500"]["passed"] is True
    traced = [r for r in run.case("test_churn")["runs"] if r["kind"] == "traced"]
    assert len(traced) == 1 and traced[0]["python"][0]["tracker"] == "memray"
    assert traced[0]["python"][0]["allocation_calls"] >= 500
