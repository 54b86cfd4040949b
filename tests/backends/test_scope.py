"""The systemd-scope path of the cgroup backend, for a user who may not create cgroups.

No systemd runs here, so ``systemd-run`` and ``systemctl`` are stand-ins (fake_systemd.py) that
make the scope a real memory cgroup with the limit asked for; everything memsla does inside
it (the harness as first process, its reading of its own cgroup, OOM kills, timeouts, Ctrl-C)
is real. The runner is made to lose its right to create cgroups, as for a non-root user.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from runner.inbuild import cgroups
from tests.conftest import (
    REPO,
    CliRun,
    assert_not_judged,
    assert_planted_within_2_percent,
    interrupt_when_running,
    kill_running,
    kill_when_running,
    running,
    wait_until,
    write_interruptible_suite,
    write_lift_suite,
)

MiB = 1024 * 1024
pytestmark = [pytest.mark.cgroup, pytest.mark.usefixtures("writable_cgroup")]

# The runner as a user who may not write its own cgroup: backend 'cgroup' must find the scope.
AS_USER = """
import sys
from runner.backends import interface, local

def refuse():
    raise interface.BackendError("cannot create a cgroup below /user.slice: Permission denied")

local.find_parent = refuse
from runner.cli import main
sys.exit(main())
"""


@pytest.fixture
def systemd(tmp_path: Path) -> dict[str, str]:
    """The environment that puts the stand-in systemd on PATH and logs its calls."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    for name in ("systemd-run", "systemctl"):
        script = bin_dir / name
        script.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(REPO)!r})\n"
                          "from tests.backends.fake_systemd import main\nsys.exit(main())\n")
        script.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "FAKE_SYSTEMD_LOG": str(tmp_path / "systemd.log")}


def _run_as_user(args: list[str], cwd: Path, env: dict[str, str]) -> CliRun:
    out = cwd / "results.json"
    proc = subprocess.run([sys.executable, "-c", AS_USER, *args, "--json", str(out)], cwd=cwd,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, **env}, check=False)
    results = json.loads(out.read_text()) if out.exists() else None
    return CliRun(proc.returncode, proc.stdout, proc.stderr, results)


def _calls(env: dict[str, str]) -> list[list[str]]:
    path = Path(env["FAKE_SYSTEMD_LOG"])
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _scopes() -> list[Path]:
    own = cgroups.own_cgroup()
    assert own is not None
    return sorted(Path(own.path).glob("fake-scope-*"))


def test_scope_holds_the_limit_and_measures_a_planted_allocation(
        sla, tmp_path: Path, systemd: dict[str, str]) -> None:
    sla("""
        version: 1
        defaults: {backend: cgroup, limit: 1GiB, repeats: 1}
        scenarios:
          plant:
            command: [python3, plant.py, "main={mib}"]
            matrix: {mib: [0, 256]}
        slas: [oom_kills == 0]
        """)
    run = _run_as_user(["check", "sla.yaml"], tmp_path, systemd)
    assert run.exit_code == 0, run.stderr + run.stdout
    assert run.results is not None
    host = run.results["host"]
    assert "systemd user scope" in host["backend_reason"]
    assert host["harness_baseline"] and host["harness_baseline"] < 64 * MiB
    planted = assert_planted_within_2_percent(run, 256)
    assert planted["runs"][0]["limit"] == 1024 * MiB
    # the build shares the scope's cgroup with the harness: its idle peak is taken off, and said
    assert host["harness_kept_out"] is True
    for one in planted["runs"]:
        assert one["harness_subtracted"] == host["harness_baseline"]
        assert any("is subtracted" in note for note in one["notes"])
    scope_calls = [c for c in _calls(systemd) if c[0] == "systemd-run"]
    assert scope_calls, "every build went through systemd-run"
    for call in scope_calls:
        assert call[1:4] == ["--user", "--scope", "--quiet"]
        assert "MemorySwapMax=0" in call
        assert call[call.index("--") + 2:call.index("--") + 5] == ["-S", "-m",
                                                                   "runner.inbuild.harness"]
    assert "MemoryMax=1073741824" in scope_calls[-1]
    assert _scopes() == []


def test_oom_kill_inside_the_scope_fails_the_sla(sla, tmp_path: Path,
                                                systemd: dict[str, str]) -> None:
    sla("""
        version: 1
        defaults: {backend: cgroup, limit: 128MiB, repeats: 1, tracker: none}
        scenarios:
          big: {command: [python3, plant.py, "main=300"]}
        """)
    run = _run_as_user(["check", "sla.yaml"], tmp_path, systemd)
    assert run.exit_code == 1, run.stderr
    timed = run.case()["runs"][0]
    assert timed["oom_killed"] and timed["exit_code"] == 128 + signal.SIGKILL
    assert timed["cgroup_peak"] <= 128 * MiB
    assert _scopes() == []


def test_a_build_that_lifts_its_scope_limit_is_stopped_and_not_judged(
        tmp_path: Path, systemd: dict[str, str]) -> None:
    # the scope's limit is on the build's own cgroup, which a user owns in a delegated
    # subtree: nothing above holds the build, so the harness stops it on seeing the change
    write_lift_suite(tmp_path, "own")
    run = _run_as_user(["check", "sla.yaml"], tmp_path, systemd)
    timed = run.case()["runs"][0]
    changed = timed["limit_changed"]
    assert changed.startswith("the build changed its memory limit from 256 MiB to no limit (")
    assert "of its own cgroup" in changed and changed.endswith("; the runner stopped the build")
    assert timed["signal"] == signal.SIGKILL and timed["limit"] == 256 * MiB
    assert {c["cgroup"] for c in timed["limit_changes"]} == {"own"}
    assert_not_judged(run, changed)
    assert _scopes() == []


def test_ctrl_c_stops_the_scope_and_keeps_measured_results(
        tmp_path: Path, systemd: dict[str, str]) -> None:
    sleeping = write_interruptible_suite(tmp_path, 302)
    run = interrupt_when_running([sys.executable, "-c", AS_USER, "check", "sla.yaml"],
                                 tmp_path, sleeping, systemd)
    assert run.exit_code == 130, run.stderr
    assert not running(sleeping)
    assert _scopes() == []
    assert run.results is not None
    assert [c["scenario"] for c in run.results["cases"]] == ["quick"]


def test_killed_runner_leaves_no_build_in_the_scope(tmp_path: Path,
                                                   systemd: dict[str, str]) -> None:
    sleeping = write_interruptible_suite(tmp_path, 311)
    try:
        killed = kill_when_running([sys.executable, "-c", AS_USER, "check", "sla.yaml"],
                                   tmp_path, sleeping, systemd)
        # the harness's lifeline ended: it killed the build, and the scope went with it
        assert wait_until(lambda: not running(sleeping)), "the build outlived the runner"
        assert wait_until(lambda: _scopes() == [])
        assert wait_until(lambda: not killed.work_folders())
    finally:
        kill_running(sleeping)
    assert killed.results is not None and killed.results["status"] == "running"


def test_no_usable_scope_gives_one_message_and_exit_3(sla, tmp_path: Path,
                                                     systemd: dict[str, str]) -> None:
    broken = Path(systemd["PATH"].split(os.pathsep)[0]) / "systemd-run"
    broken.write_text("#!/bin/sh\necho 'Failed to connect to bus: No medium found' >&2\n"
                      "exit 1\n")
    sla("""
        version: 1
        defaults: {backend: cgroup, repeats: 1}
        scenarios:
          quick: {command: [python3, -c, "pass"]}
        """)
    run = _run_as_user(["check", "sla.yaml"], tmp_path, systemd)
    assert run.exit_code == 3, run.stderr
    assert "Permission denied" in run.stderr and "systemd user scope" in run.stderr
    assert "Traceback" not in run.stderr
