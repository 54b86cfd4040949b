"""The leak mode on real cgroup runs: a planted 1 MiB-per-call leak is found with its file:line,
a leak-free workload with noisy garbage passes, a crashing entry point is reported."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from runner.measure import staging
from runner.measure.leak_records import read_leak
from tests.conftest import run_cli
from tests.judging.helpers import LEAK_LINE, LEAKY, MiB, write

pytestmark = [pytest.mark.cgroup, pytest.mark.usefixtures("writable_cgroup")]


def _leak_suite(tmp_path: Path, entry: str, *, calls: int = 12) -> None:
    write(tmp_path, "leaky.py", LEAKY)
    write(tmp_path, "sla.yaml", f"""
        version: 1
        defaults: {{backend: cgroup, limit: 512MiB}}
        scenarios:
          app:
            leak: {{entry: "leaky:{entry}", calls: {calls}, warmup: 2, args: ["{{output}}"]}}
            slas: ["leak_per_build < 256KiB"]
        """)


def _finding(run_results: dict[str, Any]) -> dict[str, Any]:
    (scenario,) = run_results["scenarios"]
    (finding,) = scenario["analysis"]["leaks"]
    return finding  # type: ignore[no-any-return]


def test_planted_leak_is_found_with_its_line(tmp_path: Path) -> None:
    _leak_suite(tmp_path, "leak_entry")
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert run.exit_code == 1, run.stdout + run.stderr
    assert run.results is not None
    finding = _finding(run.results)
    assert finding["heap"]["significant"]
    assert finding["per_build"] == pytest.approx(MiB, rel=0.05)
    top = finding["record"]["sites"][0]
    assert (Path(top["file"]).name, top["line"]) == ("leaky.py", LEAK_LINE)
    assert top["size_diff"] == pytest.approx(10 * MiB, rel=0.05)  # 10 measured calls
    (verdict,) = run.results["scenarios"][0]["verdicts"]
    assert verdict["passed"] is False and verdict["value"] == pytest.approx(MiB, rel=0.05)
    # the leak run is a build: it had a cgroup, the limit, and passed the implicit rules
    (leak_run,) = run.case()["runs"]
    assert leak_run["kind"] == "leak" and leak_run["limit"] == 512 * MiB
    assert all(v["passed"] for v in run.case()["verdicts"])


def test_noisy_leak_free_workload_passes(tmp_path: Path) -> None:
    _leak_suite(tmp_path, "clean_entry", calls=14)
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert run.exit_code == 0, run.stdout + run.stderr
    assert run.results is not None
    finding = _finding(run.results)
    assert abs(finding["heap"]["slope"]) < 16 * 1024
    assert run.results["scenarios"][0]["verdicts"][0]["passed"] is True


def test_crashing_entry_point_fails_the_build_and_is_not_judged(tmp_path: Path) -> None:
    _leak_suite(tmp_path, "failing_entry")
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert run.results is not None
    exit_rule = next(v for v in run.case()["verdicts"] if v["metric"] == "exit_code")
    assert exit_rule["passed"] is False
    (verdict,) = run.results["scenarios"][0]["verdicts"]
    assert verdict["passed"] is None and "0 measured call(s)" in verdict["reason"]
    assert "the build broke" in _finding(run.results)["record"]["error"]


def test_driver_runs_on_python_3_8(tmp_path: Path) -> None:
    candidates = [shutil.which("python3.8"),
                  *sorted(Path.home().glob(".pyenv/versions/3.8*/bin/python3.8"))]
    python38 = next((str(c) for c in candidates if c and subprocess.run(
        [str(c), "-c", "pass"], capture_output=True, check=False).returncode == 0), None)
    if python38 is None:
        pytest.skip("no python3.8 on this host")
    staged = staging.stage(tmp_path / "cache")
    write(tmp_path, "leaky.py", LEAKY)
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run([python38, "-m", "runner.inbuild.leak", "--entry", "leaky:leak_entry",
                    "--calls", "5", "--warmup", "1", "--out", str(out), "--", "x"],
                   cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(staged)}, check=True)
    record = read_leak(out)
    assert record is not None and record.complete and record.python.startswith("3.8")
    assert len(record.measured) == 4 and record.sites[0].line == LEAK_LINE
