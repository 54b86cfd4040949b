"""The process backend (approximate, no hard limit) and the host checks."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from runner.backends.scope import scope_command
from tests.conftest import (
    kill_running,
    kill_when_running,
    run_cli,
    running,
    wait_until,
    write_interruptible_suite,
)

MiB = 1024 * 1024


def test_process_backend_marks_every_result_approximate(sla, tmp_path: Path) -> None:
    sla("""
        version: 1
        defaults: {backend: process, repeats: 1}
        scenarios:
          plant:
            command: [python3, plant.py, "main=128"]
            slas: [peak < 1GiB]
        """)
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert run.exit_code == 0, run.stderr
    case = run.case()
    assert case["approximate"] is True
    assert all(v["approximate"] for v in case["verdicts"])
    assert all(r["approximate"] for r in case["runs"])
    peak = case["metrics"]["peak"]["median"]
    assert 128 * MiB < peak < 200 * MiB
    assert "approx" in run.stdout


def test_process_backend_leaves_no_daemon_of_the_build_behind(sla, tmp_path: Path) -> None:
    (tmp_path / "daemonize.py").write_text(textwrap.dedent("""\
        import os, time
        if os.fork() == 0:          # the classic daemon: fork, setsid, fork again, parent exits
            os.setsid()
            if os.fork() == 0:
                os.execvp("sleep", ["sleep", "303"])
            os._exit(0)
        os.wait()
        time.sleep(0.5)
        """))
    sla("""
        version: 1
        defaults: {backend: process, repeats: 1, tracker: none}
        scenarios:
          daemon: {command: [python3, daemonize.py]}
        slas: [exit_code == 0]
        """)
    daemon = ["sleep", "303"]
    try:
        run = run_cli(["check", "sla.yaml"], tmp_path)
        assert run.exit_code == 0, run.stderr + run.stdout
        assert wait_until(lambda: not running(daemon), 10), "the daemon outlived its run"
    finally:
        kill_running(daemon)
    assert any("left 1 process" in note for note in run.case()["runs"][0]["notes"])


def test_killed_runner_leaves_no_process_build_behind(tmp_path: Path) -> None:
    sleeping = write_interruptible_suite(tmp_path, 305)
    try:
        killed = kill_when_running([sys.executable, "-m", "runner", "check", "sla.yaml",
                                    "--backend", "process"], tmp_path, sleeping)
        assert wait_until(lambda: not running(sleeping)), "the build outlived the runner"
        assert wait_until(lambda: not killed.work_folders())
    finally:
        kill_running(sleeping)
    assert killed.results is not None and killed.results["status"] == "running"


def test_systemd_scope_command_holds_memory_and_swap() -> None:
    command = scope_command(["pelican", "content"], 2 * 1024**3, "memsla-1")
    assert command[:3] == ["systemd-run", "--user", "--scope"]
    assert "MemoryMax=2147483648" in command and "MemorySwapMax=0" in command
    assert command[command.index("--") + 1:] == ["pelican", "content"]


def test_doctor_says_what_this_host_can_measure(tmp_path: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "runner", "doctor"], capture_output=True,
                          text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "cgroup v" in proc.stdout
    assert "backend 'auto' picks" in proc.stdout
