"""The harness on a recorded cgroup v2 tree: it reports raw readings, and the host reads them
back as ``Readings`` and assembles the figures (v2 cannot run here; the build itself is real)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runner.backends import harnessed
from runner.measure import staging
from runner.measure.assemble import assemble
from runner.measure.probe_records import ProbeData
from runner.measure.readings import Readings
from tests.inbuild.recorded import v2_tree

MiB = 1024 * 1024
# The harness as the build's Python would start it, with the cgroup and /proc roots moved.
START = """
import sys
from runner.inbuild import cgroups, harness
cgroups.CGROUP_ROOT, cgroups.PROC_ROOT = sys.argv[1], sys.argv[2]
sys.exit(harness.main(sys.argv[3:]))
"""


def _interpreters() -> list[str]:
    found = [sys.executable]
    oldest = shutil.which("python3.8")  # the oldest Python the in-build code supports
    if oldest and subprocess.run([oldest, "-c", "pass"], capture_output=True,
                                 check=False).returncode == 0:
        found.append(oldest)
    return found


@pytest.mark.parametrize("python", _interpreters())
def test_harness_reports_raw_v2_readings(tmp_path: Path, python: str) -> None:
    root = tmp_path / "cgroup"
    root.mkdir()
    v2_tree(root, **{"memory.swap.max": "max\n"})
    out = tmp_path / "out"
    out.mkdir()
    stage = staging.stage(tmp_path / "cache")
    proc = subprocess.run(
        [python, "-S", "-c", START, str(root), str(root / "proc"), "--out", str(out),
         "--interval", "0.01", "--", "true"], cwd=stage, capture_output=True, text=True,
        check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    report = harnessed.read_report(out)
    assert report is not None and report["cgroup_version"] == 2
    assert {key: report[key] for key in (
        "exit_code", "kernel_peak", "sampled_max_usage", "sampled_max_anon", "anon_at_end",
        "cache_at_max", "oom_kill_counter", "limit_read", "swap_allowed")} == {
        "exit_code": 0, "kernel_peak": 200 * MiB, "sampled_max_usage": 150 * MiB,
        "sampled_max_anon": 100 * MiB, "anon_at_end": 100 * MiB, "cache_at_max": 50 * MiB,
        "oom_kill_counter": 2, "limit_read": 256 * MiB, "swap_allowed": True}
    assert "cgroup_peak" not in report, "the harness derives no figure"
    assert "error" not in report, "read_report keeps every value the harness writes"

    readings = harnessed.from_report(
        report, sample_interval=0.01, host_duration=9.0, timed_out=False, stderr_tail="",
        limit_set=256 * MiB)
    assert readings.duration_source == "build" and readings.duration < 9.0
    run = assemble("timed", 0, readings, ProbeData())
    assert run.cgroup_peak == 200 * MiB and run.rss_peak == 100 * MiB
    assert run.oom_kills == 2 and run.oom_killed and run.limit == 256 * MiB
    assert run.timeline is not None and run.timeline.cgroup[0] == 150 * MiB
    assert any("swap" in note for note in run.notes)


def test_report_keys_are_readings_fields() -> None:
    fields = {f.name for f in dataclasses.fields(Readings)}
    assert set(harnessed._RAW_KEYS) <= fields


def test_report_without_a_build_falls_back_to_the_host_clock() -> None:
    report = {"started": True, "exit_code": 127, "duration": 0.0, "error": "cannot start"}
    readings = harnessed.from_report(
        report, sample_interval=0.02, host_duration=1.5, timed_out=False, stderr_tail="",
        limit_set=None, engine_oom_killed=True)
    assert (readings.duration, readings.duration_source) == (1.5, "outside")
    assert readings.engine_oom_killed and readings.oom_kill_counter is None
    assert readings.notes == ["cannot start"]
    assert json.loads(json.dumps(dataclasses.asdict(readings)))["exit_code"] == 127
