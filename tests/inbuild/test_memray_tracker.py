"""``tracker: memray`` against planted truths: the site at the high-water mark (and not those
freed around it), churn counted as bytes and calls allocated, a native allocation attributed
with native stacks, and a clear error where the build's Python has no memray."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from runner.measure import staging
from runner.measure.memray_records import add_phase_heaps
from runner.measure.probe_records import ProbeData, read_probe_dir
from tests.inbuild.test_peak_sites import GROWTH, PEAK, PROGRAM, SITE, _line
from tests.inbuild.test_peak_sites import _run as _run_files

pytest.importorskip("memray", reason="memray is an optional extra: pip install 'memsla[memray]'")

MiB = 1024 * 1024


def _run(tmp_path: Path, code: str, *, native: bool = False,
         python: str = sys.executable) -> ProbeData:
    (tmp_path / "plant.py").write_text(textwrap.dedent(code))
    stage = staging.stage(tmp_path / "cache")
    out = tmp_path / "probe"
    out.mkdir(exist_ok=True)
    env = {**os.environ,
           **staging.environment(str(stage), str(out), trace=True, t0=time.time()),
           **staging.probe_settings(phases={}, stack_depth=5, tracker="memray", native=native)}
    proc = subprocess.run([python, "plant.py"], env=env, capture_output=True, text=True,
                          check=False, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return read_probe_dir(out)


def test_the_site_at_the_high_water_mark_is_named(tmp_path: Path) -> None:
    data = _run(tmp_path, PEAK)
    (heap,) = data.python
    assert heap.tracker == "memray" and heap.at_peak is not None
    top = heap.at_peak.sites[0]
    assert (Path(top.file).name, top.line, top.function) == ("plant.py", _line(PEAK, "# PEAK"),
                                                            "hold")
    assert abs(top.size - 64 * MiB) / (64 * MiB) < 0.02
    assert [f.function for f in top.stack[:3]] == ["hold", "build", "<module>"]
    lines = {s.line for s in heap.at_peak.sites if Path(s.file).name == "plant.py"}
    assert _line(PEAK, "# BEFORE") not in lines and _line(PEAK, "# AFTER") not in lines
    assert abs(heap.peak - 64 * MiB) / (64 * MiB) < 0.05


CHURN = """
    for _ in range(1000):
        block = bytearray(1024 * 1024)
        del block
    """


def test_churn_is_counted_as_allocated_bytes_and_calls(tmp_path: Path) -> None:
    (heap,) = _run(tmp_path, CHURN).python
    assert heap.allocated is not None and heap.allocation_calls is not None
    assert abs(heap.allocated - 1000 * MiB) / (1000 * MiB) < 0.02
    assert heap.allocation_calls >= 1000
    assert heap.peak < 2 * MiB, "one block at a time"


NATIVE = """
    import ctypes

    def native_buffer():
        # through Python's raw allocator: memray sees malloc called from a loaded library; a
        # libc malloc called through a pointer ctypes looked up with dlsym it does not see
        allocate = ctypes.pythonapi.PyMem_RawMalloc
        allocate.restype, allocate.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
        address = allocate(48 * 1024 * 1024)
        ctypes.memset(address, 1, 48 * 1024 * 1024)
        return address

    native_buffer()
    """


def test_a_native_allocation_is_attributed_with_native_stacks(tmp_path: Path) -> None:
    (heap,) = _run(tmp_path, NATIVE, native=True).python
    assert heap.native and heap.at_peak is not None
    top = heap.at_peak.sites[0]
    assert top.function == "native_buffer" and abs(top.size - 48 * MiB) / (48 * MiB) < 0.02
    assert any("ffi_call" in (f.function or "") or "callproc" in f.file
               for f in top.native_stack), top.native_stack


def test_memray_missing_in_the_build_is_a_clear_error(tmp_path: Path) -> None:
    python = "/usr/bin/python3"  # Debian's python3: memray is not installed there
    probe = subprocess.run([python, "-c", "import memray"], capture_output=True, check=False)
    if probe.returncode == 0:
        pytest.skip("memray is importable by every Python here")
    data = _run(tmp_path, "x = 1\n", python=python)
    assert data.python == []
    assert data.tracker_error is not None
    assert "memray is not importable by the build's Python" in data.tracker_error
    assert data.tracker_error in data.problems


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_memray_metrics_are_judged_and_a_missing_memray_is_an_error_verdict(
        tmp_path: Path) -> None:
    from tests.conftest import run_cli

    (tmp_path / "churn.py").write_text(textwrap.dedent(CHURN))
    (tmp_path / "sla.yaml").write_text(textwrap.dedent(f"""
        version: 1
        defaults: {{backend: cgroup, repeats: 1, tracker: memray}}
        scenarios:
          churn:
            command: [{sys.executable}, churn.py]
            slas: [allocated < 900MiB, allocation_calls >= 1000, python_peak < 8MiB]
          bare:
            command: [/usr/bin/python3, churn.py]
            slas: [python_peak < 8MiB]
        """))
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert run.results is not None, run.stderr
    cases = {case["scenario"]: case for case in run.results["cases"]}
    churn = {v["rule"]: v for v in cases["churn"]["verdicts"]}
    assert churn["allocated < 900MiB"]["passed"] is False
    assert churn["allocated < 900MiB"]["value"] == pytest.approx(1000 * MiB, rel=0.02)
    assert churn["allocation_calls >= 1000"]["passed"] is True
    assert churn["python_peak < 8MiB"]["passed"] is True
    bare = {v["rule"]: v for v in cases["bare"]["verdicts"]}
    probe = subprocess.run(["/usr/bin/python3", "-c", "import memray"], capture_output=True,
                           check=False)
    if probe.returncode != 0:
        verdict = bare["python_peak < 8MiB"]
        assert verdict["passed"] is None
        assert verdict["reason"].startswith("error: memray is not importable")
        assert run.results["status"] != "pass"


def test_a_child_without_memray_is_a_note_when_the_build_was_traced(tmp_path: Path) -> None:
    probe = subprocess.run(["/usr/bin/python3", "-c", "import memray"], capture_output=True,
                           check=False)
    if probe.returncode == 0:
        pytest.skip("memray is importable by every Python here")
    data = _run(tmp_path, """
        import subprocess
        held = bytearray(16 * 1024 * 1024)
        subprocess.run(["/usr/bin/python3", "-c", "pass"], check=True)
        """)
    (heap,) = data.python
    assert heap.peak >= 16 * MiB
    assert data.tracker_error is None
    assert any("in some of the build's processes" in problem for problem in data.problems)


def test_zero_code_phases_get_their_heap_from_memray(tmp_path: Path) -> None:
    """The phases of test_peak_sites under memray: each one's growth is what it added, a phase
    nested in a large one added nothing, and its sites at its own peak name what it held."""
    _, data = _run_files(tmp_path, {"site_gen.py": SITE, "main.py": PROGRAM}, "main.py",
                         tracker="memray", phases={"parse": "site_gen:Site.parse",
                                                   "render": "site_gen:Site.render",
                                                   "write": "site_gen:Site.write"})
    assert [(p.name, p.depth) for p in data.phases] == [("parse", 0), ("render", 0),
                                                        ("write", 1), ("write", 1)]
    parse, render, write, again = data.phases
    for phase, mib in ((parse, 50), (render, 200)):
        assert phase.python_growth is not None and phase.python_peak is not None
        assert abs(phase.python_growth - mib * MiB) / (mib * MiB) < 0.02, phase
        assert phase.at_peak is not None and phase.at_peak.sites[0].size >= mib * MiB * 0.98
    for phase in (write, again):  # entered with render's 200 MiB held: it added 1 KiB
        assert phase.python_entry is not None and phase.python_entry >= 200 * MiB
        assert phase.python_growth is not None and phase.python_growth < 64 * 1024, phase


def test_a_phase_entered_at_100_mib_that_adds_10_mib_grew_10_mib_under_memray(
        tmp_path: Path) -> None:
    _, data = _run_files(tmp_path, {"grow.py": GROWTH}, "grow.py", tracker="memray")
    (phase,) = data.phases
    assert phase.python_entry is not None and phase.python_entry >= 100 * MiB
    assert phase.python_growth is not None
    assert abs(phase.python_growth - 10 * MiB) / (10 * MiB) < 0.02, phase


def test_without_the_stillness_no_phase_growth_is_under_reported(tmp_path: Path) -> None:
    """Read again as if the probe had spent its stillness budget: the entries are lower bounds,
    so every growth is at least the exact one."""
    _, exact = _run_files(tmp_path, {"site_gen.py": SITE, "main.py": PROGRAM}, "main.py",
                          tracker="memray", phases={"parse": "site_gen:Site.parse",
                                                    "render": "site_gen:Site.render",
                                                    "write": "site_gen:Site.write"})
    (capture,) = (tmp_path / "probe").glob("memray-*.bin")
    (probe,) = (tmp_path / "probe").glob("probe-*.jsonl")
    t0 = next(json.loads(line)["t0"] for line in probe.read_text().splitlines()
              if json.loads(line).get("type") == "start")
    phases = [phase.model_copy(update={"python_peak": None, "python_entry": None,
                                       "python_growth": None, "at_peak": None})
              for phase in exact.phases]
    add_phase_heaps(capture, phases, t0, quiet_from={})
    for bound, phase in zip(phases, exact.phases, strict=True):
        assert bound.python_growth is not None and phase.python_growth is not None
        assert bound.python_peak == phase.python_peak, phase.name
        assert bound.python_growth >= phase.python_growth, (bound, phase)


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_phase_growth_under_memray_is_judged_by_runner_check(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    (tmp_path / "site_gen.py").write_text(textwrap.dedent(SITE))
    (tmp_path / "main.py").write_text(textwrap.dedent(PROGRAM))
    (tmp_path / "sla.yaml").write_text(textwrap.dedent(f"""
        version: 1
        defaults: {{backend: cgroup, repeats: 1, tracker: memray}}
        scenarios:
          site:
            command: [{sys.executable}, main.py]
            phases: {{parse: "site_gen:Site.parse", render: "site_gen:Site.render"}}
            slas: [phase(parse).python_growth < 100MiB, phase(render).python_growth < 100MiB]
        """))
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert run.exit_code == 1, run.stderr + run.stdout
    assert run.results is not None
    verdicts = {v["rule"]: v for v in run.results["cases"][0]["verdicts"]}
    parse = verdicts["phase(parse).python_growth < 100MiB"]
    render = verdicts["phase(render).python_growth < 100MiB"]
    assert parse["passed"] is True and parse["value"] == pytest.approx(50 * MiB, rel=0.02)
    assert render["passed"] is False and render["value"] == pytest.approx(200 * MiB, rel=0.02)


def _run_capture(tmp_path: Path, code: str, *, aggregate: bool) -> ProbeData:
    folder = tmp_path / ("aggregated" if aggregate else "full")
    folder.mkdir()
    (folder / "plant.py").write_text(textwrap.dedent(code))
    stage = staging.stage(tmp_path / "cache")
    out = folder / "probe"
    out.mkdir()
    env = {**os.environ, "PYTHONHASHSEED": "0",
           **staging.environment(str(stage), str(out), trace=True, t0=time.time()),
           **staging.probe_settings(phases={}, stack_depth=5, tracker="memray",
                                    aggregate=aggregate)}
    proc = subprocess.run([sys.executable, "plant.py"], env=env, capture_output=True,
                          text=True, check=False, cwd=folder)
    assert proc.returncode == 0, proc.stderr
    return read_probe_dir(out)


def test_the_aggregated_capture_gives_the_full_captures_heap_figures(tmp_path: Path) -> None:
    """Where the check reads neither memray's totals nor phases, memray sums the capture up in
    the build: its peak, heap at exit and planted site at the peak are the full capture's."""
    full = _run_capture(tmp_path, PEAK, aggregate=False).python[0]
    aggregated = _run_capture(tmp_path, PEAK, aggregate=True).python[0]
    assert full.allocated is not None and aggregated.allocated is None
    assert aggregated.allocation_calls is None
    assert full.at_peak is not None and aggregated.at_peak is not None
    assert abs(aggregated.peak - full.peak) < 64 * 1024, (aggregated.peak, full.peak)
    assert full.final is not None and aggregated.final is not None
    assert abs(aggregated.final - full.final) < 64 * 1024
    planted = [(s.line, s.size, s.count, s.function, [f.function for f in s.stack])
               for heap in (full, aggregated) for s in heap.at_peak.sites[:1]]
    assert planted[0] == planted[1]
    assert planted[0][0] == _line(PEAK, "# PEAK")


FORKED = """
    import os
    held = bytearray(16 * 1024 * 1024)
    pid = os.fork()
    if pid == 0:  # as multiprocessing's workers leave: os._exit, no exit handlers
        child = bytearray(32 * 1024 * 1024)
        os._exit(0)
    os.waitpid(pid, 0)
    """


def test_a_forked_child_leaving_by_os_exit_writes_its_aggregated_capture(
        tmp_path: Path) -> None:
    full = _run_capture(tmp_path, FORKED, aggregate=False)
    aggregated = _run_capture(tmp_path, FORKED, aggregate=True)
    assert aggregated.problems == [] and len(aggregated.python) == 2
    assert sorted(h.peak for h in aggregated.python) == sorted(h.peak for h in full.python)
    assert max(h.peak for h in aggregated.python) >= 32 * MiB


KILLED = """
    import os, signal, sys, time
    held = bytearray(8 * 1024 * 1024)
    ready, tell = os.pipe()
    pid = os.fork()
    if pid == 0:
        child = bytearray(48 * 1024 * 1024)
        os.write(tell, b"x")
        time.sleep(60)
        os._exit(0)
    os.read(ready, 1)
    time.sleep(0.5)
    os.kill(pid, signal.SIGTERM)  # as multiprocessing.Pool.terminate() ends its workers
    os.waitpid(pid, 0)
    """


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_a_child_killed_before_writing_its_aggregated_capture_is_traced_again(
        tmp_path: Path) -> None:
    from tests.conftest import run_cli

    (tmp_path / "killed.py").write_text(textwrap.dedent(KILLED))
    (tmp_path / "sla.yaml").write_text(textwrap.dedent(f"""
        version: 1
        defaults: {{backend: cgroup, repeats: 1, tracker: memray}}
        scenarios:
          killed:
            command: [{sys.executable}, killed.py]
            slas: [python_peak < 1GiB]
        """))
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert run.results is not None, run.stderr
    (traced,) = [r for r in run.results["cases"][0]["runs"] if r["kind"] == "traced"]
    assert any(n.startswith("traced again with memray's full capture") for n in traced["notes"])
    assert not any("could not read" in n for n in traced["notes"]), traced["notes"]
    assert len(traced["python"]) == 2, "the killed child's heap is read from the full capture"
    assert traced["python_peak"] == pytest.approx(48 * MiB, rel=0.02)
