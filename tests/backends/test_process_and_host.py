"""The process backend (approximate, no hard limit) and the host checks."""

from __future__ import annotations

from pathlib import Path

from runner.backends.scope import scope_command
from tests.conftest import run_cli

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
