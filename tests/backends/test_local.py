"""The local cgroup backend measured against planted truths, on real cgroups."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.inbuild import cgroups
from tests.conftest import (
    assert_not_judged,
    assert_planted_within_2_percent,
    interrupt_when_running,
    kill_running,
    kill_when_running,
    run_cli,
    running,
    wait_until,
    write_interruptible_suite,
    write_lift_suite,
)

MiB = 1024 * 1024
# A build that does nothing: for the tests of what a check removes before it measures.
QUICK = """
    version: 1
    defaults: {backend: cgroup, repeats: 1, tracker: none}
    scenarios:
      quick: {command: [python3, -c, "pass"]}
    slas: [oom_kills == 0]
    """
pytestmark = [pytest.mark.cgroup, pytest.mark.usefixtures("writable_cgroup")]


def test_planted_allocation_is_reported_within_two_percent(sla, tmp_path: Path) -> None:
    sla("""
        version: 1
        defaults: {backend: cgroup, limit: 1GiB, repeats: 2}
        scenarios:
          plant:
            command: [python3, plant.py, "main={mib}"]
            matrix: {mib: [0, 256]}
        slas: [oom_kills == 0]
        """)
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert run.exit_code == 0, run.stderr + run.stdout
    planted = assert_planted_within_2_percent(run, 256)
    # a timing never comes from the traced run: durations are counted from timed runs only
    assert planted["metrics"]["duration"]["n"] == 2
    assert [r["kind"] for r in planted["runs"]] == ["timed", "timed", "traced"]
    assert run.results is not None and run.results["host"]["cgroup_version"] in (1, 2)


def test_warmup_runs_are_kept_but_in_no_metric(sla, tmp_path: Path) -> None:
    # the first build costs 128 MiB more, as a cold cache makes a first build cost more
    (tmp_path / "first.py").write_text(
        "import os, sys\n"
        "if not os.path.exists(sys.argv[1]):\n"
        "    cold = bytearray(b'\\x01') * (128 * 1024 * 1024)\n"
        "    open(sys.argv[1], 'w').close()\n")
    sla(f"""
        version: 1
        defaults: {{backend: cgroup, limit: 1GiB, repeats: 2, warmup: 1, tracker: none}}
        scenarios:
          first: {{command: [python3, first.py, "{tmp_path / 'marker'}"]}}
        slas: [oom_kills == 0]
        """)
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert run.exit_code == 0, run.stderr + run.stdout
    case = run.case()
    assert [r["kind"] for r in case["runs"]] == ["warmup", "timed", "timed"]
    assert case["runs"][0]["cgroup_peak"] > 128 * MiB
    assert case["metrics"]["peak"]["n"] == 2 and case["metrics"]["peak"]["max"] < 64 * MiB


def test_build_over_its_limit_is_oom_killed_and_fails(sla, tmp_path: Path) -> None:
    sla("""
        version: 1
        defaults: {backend: cgroup, limit: 128MiB, repeats: 1, tracker: none}
        scenarios:
          big:
            command: [python3, plant.py, "main=300"]
            slas: [peak < 1GiB]
        """)
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert run.exit_code == 1, run.stderr
    case = run.case()
    timed = case["runs"][0]
    assert timed["oom_kills"] >= 1 and timed["oom_killed"]
    assert timed["exit_code"] == 128 + signal.SIGKILL
    assert timed["cgroup_peak"] <= 128 * MiB
    failed = {v["rule"] for v in case["verdicts"] if v["passed"] is False}
    assert failed == {"exit_code == 0", "oom_kills == 0"}


def test_grandchild_oom_kill_is_reported_while_parent_survives(sla, tmp_path: Path) -> None:
    (tmp_path / "parent.py").write_text(
        "import subprocess, sys\n"
        "code = subprocess.call([sys.executable, '-c', 'import subprocess, sys; "
        "sys.exit(subprocess.call([sys.executable, \"plant.py\", \"main=400\"]))'])\n"
        "print('grandchild exited', code)\n"
        "sys.exit(0)\n")
    sla("""
        version: 1
        defaults: {backend: cgroup, limit: 160MiB, repeats: 1, tracker: none}
        scenarios:
          family:
            command: [python3, parent.py]
        """)
    run = run_cli(["check", "sla.yaml"], tmp_path)
    timed = run.case()["runs"][0]
    assert timed["exit_code"] == 0, "the parent survives and exits 0"
    assert timed["oom_kills"] >= 1
    assert run.exit_code == 1
    verdict = next(v for v in run.case()["verdicts"] if v["metric"] == "oom_kills")
    assert verdict["passed"] is False and verdict["value"] >= 1


def test_phases_get_their_own_peaks(sla, tmp_path: Path) -> None:
    sla("""
        version: 1
        defaults: {backend: cgroup, limit: 1GiB, repeats: 1}
        scenarios:
          phases:
            command: [python3, plant.py, "parse=64", "render=192", "write=32"]
            slas:
              - phase(render).python_peak < 200MiB
              - phase(parse).python_peak < 70MiB
        """)
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert run.exit_code == 0, run.stderr + run.stdout
    case = run.case()
    for name, mib in (("parse", 64), ("render", 192), ("write", 32)):
        heap = case["metrics"][f"phase({name}).python_peak"]["median"]
        assert abs(heap - mib * MiB) / (mib * MiB) < 0.02, (name, heap / MiB)
        cgroup_peak = case["metrics"][f"phase({name}).peak"]["median"]
        # the phase's own cgroup peak: its block plus the interpreter, never the global peak
        assert mib * MiB < cgroup_peak < (mib + 40) * MiB, (name, cgroup_peak / MiB)
    # the whole-run peak survives the per-phase resets
    assert case["metrics"]["peak"]["median"] > 192 * MiB


def test_timeout_kills_the_whole_cgroup(sla, tmp_path: Path) -> None:
    (tmp_path / "forks.py").write_text(
        "import subprocess, time\n"
        "subprocess.Popen(['sleep', '300'])\n"
        "time.sleep(300)\n")
    sla("""
        version: 1
        defaults: {backend: cgroup, repeats: 1, tracker: none, timeout: 1s}
        scenarios:
          slow: {command: [python3, forks.py]}
        """)
    started = time.monotonic()
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert time.monotonic() - started < 60
    assert run.exit_code == 1
    assert run.case()["runs"][0]["timed_out"] is True
    assert not running(["sleep", "300"])


def test_a_stopped_build_dies_even_before_it_joined_its_cgroup(tmp_path: Path) -> None:
    """A timeout can come before the entering shell has moved itself into the build's cgroup:
    the build's process group is killed too."""
    from runner.backends.local import stop_build
    from runner.inbuild.waiting import Waiter

    own = cgroups.own_cgroup()
    assert own is not None
    fence = own.create_child(f"memsla-{os.getpid()}-stop-test")
    build = subprocess.Popen(["/bin/sh", "-c", "sleep 309 & exec sleep 309"],
                             start_new_session=True)  # in the runner's cgroup, not the fence
    try:
        assert wait_until(lambda: running(["sleep", "309"]))
        stop_build(fence, build.pid, Waiter(build.pid))
        build.wait(10)
        assert wait_until(lambda: not running(["sleep", "309"]), 10)
    finally:
        kill_running(["sleep", "309"])
        fence.remove()


def _memsla_cgroups() -> list[Path]:
    own = cgroups.own_cgroup()
    assert own is not None
    return sorted(Path(own.path).glob("memsla-*"))


def test_ctrl_c_leaves_no_cgroup_and_no_process(tmp_path: Path) -> None:
    sleeping = write_interruptible_suite(tmp_path, 301)
    before = _memsla_cgroups()
    run = interrupt_when_running([sys.executable, "-m", "runner", "check", "sla.yaml"],
                                 tmp_path, sleeping)
    assert run.exit_code == 130, run.stderr
    assert not running(sleeping)
    assert _memsla_cgroups() == before
    results = run.results
    assert results is not None
    assert results["interrupted"] is True and results["status"] == "interrupted"
    assert [c["scenario"] for c in results["cases"]] == ["quick"], "measured results are kept"


def test_leftover_cgroup_of_a_dead_runner_is_removed(sla, tmp_path: Path) -> None:
    own = cgroups.own_cgroup()
    assert own is not None
    dead = subprocess.run(["true"], check=True)
    del dead
    stale = Path(own.path) / "memsla-999999-1"
    stale.mkdir()
    sla(QUICK)
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert run.exit_code == 0, run.stderr
    assert not stale.exists()
    assert "leftover" in run.stdout


def test_a_build_that_lifts_its_own_limit_is_still_held(tmp_path: Path) -> None:
    write_lift_suite(tmp_path, "own")
    run = run_cli(["check", "sla.yaml"], tmp_path)
    timed = run.case()["runs"][0]
    assert timed["oom_kills"] >= 1 and timed["exit_code"] == 128 + signal.SIGKILL, timed
    assert timed["cgroup_peak"] <= 256 * MiB, "the fence above the build held"
    assert timed["limit"] == 256 * MiB
    changed = timed["limit_changed"]
    assert changed.startswith("the build changed its memory limit from 256 MiB to no limit (")
    own = cgroups.own_cgroup()
    assert own is not None
    assert f"({own.files.LIMIT_FILE} " in changed, "the file names of the host's version"
    assert "of its own cgroup, " in changed and "stopped" not in changed
    assert {c["cgroup"] for c in timed["limit_changes"]} == {"own"}
    assert len(timed["limit_changes"]) == 2, "memory and memory+swap"
    assert_not_judged(run, changed)


def test_a_build_that_lifts_the_fence_is_stopped_and_not_judged(tmp_path: Path) -> None:
    write_lift_suite(tmp_path, "fence")
    run = run_cli(["check", "sla.yaml"], tmp_path)
    timed = run.case()["runs"][0]
    changed = timed["limit_changed"]
    assert changed.startswith("the build changed its memory limit from 256 MiB to no limit (")
    assert "of the parent cgroup holding its limit" in changed
    assert changed.endswith("; the runner stopped the build")
    assert timed["signal"] == signal.SIGKILL and timed["limit"] == 256 * MiB
    assert {c["cgroup"] for c in timed["limit_changes"]} == {"fence"}
    assert_not_judged(run, changed)


def test_killed_runner_leaves_no_build_cgroup_or_work_folder(tmp_path: Path) -> None:
    sleeping = write_interruptible_suite(tmp_path, 302)
    try:
        killed = kill_when_running([sys.executable, "-m", "runner", "check", "sla.yaml"],
                                   tmp_path, sleeping)
        # the runner's watchdog saw it go: the build, its cgroup and its work folder follow
        assert wait_until(lambda: not running(sleeping)), "the build outlived the runner"
        assert wait_until(lambda: not [c for c in _memsla_cgroups()
                                       if c.name.startswith(f"memsla-{killed.pid}-")])
        assert wait_until(lambda: not killed.work_folders())
    finally:
        kill_running(sleeping)
    assert killed.results is not None
    assert killed.results["status"] == "running", "a killed runner's file never reads pass"


def test_leftover_work_folder_of_a_dead_runner_is_removed(sla, tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    cache = tmp_path / "cache"
    runs = cache / "runs"  # where work folders are made: beside the cache
    stale, live, kept = (runs / f"memsla-{dead.pid}-abc", runs / f"memsla-{os.getpid()}-abc",
                         runs / f"memsla-kept-{dead.pid}-abc")
    for folder in (stale / "run0" / "output", live, kept):
        folder.mkdir(parents=True)
    sla(QUICK)
    run = run_cli(["check", "sla.yaml"], tmp_path, env={"MEMSLA_CACHE_DIR": str(cache)})
    assert run.exit_code == 0, run.stderr
    assert not stale.exists()
    assert live.exists() and kept.exists(), "a live runner's folder and kept outputs stay"
    assert "leftover" in run.stdout
