"""The in-process probe: chaining, no-op phases outside memsla, partial data of killed builds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from runner import phase
from runner.measure import staging
from runner.measure.probe_records import read_probe_dir


def _run_probed(tmp_path: Path, code: str, *, trace: bool = True,
                extra_path: str | None = None) -> subprocess.CompletedProcess[str]:
    stage = staging.stage(tmp_path / "cache")
    out = tmp_path / "probe"
    out.mkdir(exist_ok=True)
    env = {**os.environ, **staging.environment(str(stage), str(out), trace=trace, t0=time.time(),
                                             existing_pythonpath=extra_path)}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=False, cwd=tmp_path)


def test_phase_is_a_no_op_outside_memsla() -> None:
    with phase("anything"):
        value = 1
    assert value == 1


def test_shadowed_sitecustomize_still_runs(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "sitecustomize.py").write_text("import builtins\nbuiltins.CHAINED = True\n")
    proc = _run_probed(tmp_path, "import builtins; print(builtins.CHAINED)",
                       extra_path=str(other))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"
    assert read_probe_dir(tmp_path / "probe").python, "the probe ran too"


def test_probe_reports_peak_final_and_top_sites(tmp_path: Path) -> None:
    code = ("keep = bytearray(b'x') * (20 * 1024 * 1024)\n"
            "tmp = bytearray(b'x') * (50 * 1024 * 1024)\n"
            "del tmp\n")
    proc = _run_probed(tmp_path, code)
    assert proc.returncode == 0, proc.stderr
    data = read_probe_dir(tmp_path / "probe")
    (heap,) = data.python
    MiB = 1024 * 1024
    assert 70 * MiB <= heap.peak < 72 * MiB
    assert heap.final is not None and 20 * MiB <= heap.final < 21 * MiB
    assert heap.top_allocations[0].line == 1 and heap.top_allocations[0].size >= 20 * MiB


def test_killed_build_leaves_partial_heap_data(tmp_path: Path) -> None:
    code = ("import os, signal, time\n"
            "keep = bytearray(b'x') * (30 * 1024 * 1024)\n"
            "time.sleep(1.5)\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = _run_probed(tmp_path, code)
    assert proc.returncode == -9
    data = read_probe_dir(tmp_path / "probe")
    (heap,) = data.python
    assert heap.complete is False and heap.peak >= 30 * 1024 * 1024
    assert any("died" in problem for problem in data.problems)


def test_phase_the_build_dies_in_is_kept_open_ended(tmp_path: Path) -> None:
    code = ("import os, signal, runner\n"
            "with runner.phase('parse'):\n"
            "    pass\n"
            "with runner.phase('render'):\n"
            "    with runner.phase('page'):\n"
            "        os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = _run_probed(tmp_path, code)
    assert proc.returncode == -9
    phases = {p.name: p for p in read_probe_dir(tmp_path / "probe").phases}
    assert phases["parse"].end is not None
    assert phases["render"].end is None and phases["page"].end is None
    assert phases["page"].depth == 1 and phases["page"].start >= phases["render"].start


def test_untraced_run_records_phase_marks_only(tmp_path: Path) -> None:
    code = "import runner\nwith runner.phase('render'):\n    pass\n"
    proc = _run_probed(tmp_path, code, trace=False)
    assert proc.returncode == 0, proc.stderr
    data = read_probe_dir(tmp_path / "probe")
    assert data.python == []
    assert [p.name for p in data.phases] == ["render"]
    assert data.phases[0].python_peak is None
    lines = (next((tmp_path / "probe").glob("probe-*.jsonl"))).read_text().splitlines()
    assert json.loads(lines[0])["trace"] is False


def test_staged_folder_holds_only_stdlib_modules(tmp_path: Path) -> None:
    stage = staging.stage(tmp_path)
    for path in stage.rglob("*.py"):
        text = path.read_text()
        for forbidden in ("pydantic", "rich", "yaml", "psutil", "docker"):
            assert f"import {forbidden}" not in text, (path, forbidden)
    assert staging.stage(tmp_path) == stage, "staging is keyed by content"


def test_an_untraced_run_imports_nothing_the_program_did_not(tmp_path: Path) -> None:
    """The probe is in every timed run: it adds itself and no other module (json, threading,
    typing and tracemalloc only in traced runs), and still records the run's start and end."""
    code = "import sys; print(' '.join(sorted(sys.modules)))"
    bare = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": ""})
    probed = _run_probed(tmp_path, code, trace=False)
    assert probed.returncode == 0, probed.stderr
    added = set(probed.stdout.split()) - set(bare.stdout.split())
    package = "_memsla_site"  # the probe's own modules, imported under this name
    own = {name for name in added if name.split(".")[0] == package}
    assert added - own <= {"sitecustomize", "_memsla_probe", "gc"}, added
    assert own <= {package, *(f"{package}.{job}" for job in (
        "process", "records", "budget", "phases", "cgroup_peak"))}, own
    records = [json.loads(line) for path in (tmp_path / "probe").glob("probe-*.jsonl")
               for line in path.read_text().splitlines()]
    assert [r["type"] for r in records] == ["start", "end"] and records[1]["vm_hwm"] > 0
    traced = _run_probed(tmp_path, code, trace=True)
    assert "tracemalloc" in traced.stdout.split()
