"""What the build can write is untrusted input: malformed probe, leak and harness records are
skipped with a note on the run, never a crash of the runner."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from runner.backends import harnessed
from runner.measure.leak_records import read_leak
from runner.measure.probe_records import read_probe_dir
from tests.conftest import run_cli

JUNK = [
    '{"type": "start"}',  # no pid
    '{"type": "start", "pid": 7, "trace": true}',
    '{"type": "phase", "start": 1}',  # no name
    '["not", "an", "object"]',
    '{"type": "end", "python_peak": "lots"}',
    "{half a record",
]


def test_malformed_probe_records_become_notes(tmp_path: Path) -> None:
    (tmp_path / "probe-1.jsonl").write_text("\n".join(JUNK) + "\n")
    good = [{"type": "start", "pid": 2, "trace": True, "t": 0},
            {"type": "end", "t": 1, "python_peak": 1024, "python_final": 10, "vm_hwm": 4096}]
    (tmp_path / "probe-2.jsonl").write_text("".join(json.dumps(r) + "\n" for r in good))
    data = read_probe_dir(tmp_path)
    assert [heap.peak for heap in data.python] == [1024]  # the well-formed process still counts
    assert data.vm_hwm == 4096
    said = " ".join(data.problems)
    assert "probe-1.jsonl" in said and "skipped" in said


def test_malformed_leak_records_are_skipped(tmp_path: Path) -> None:
    lines = ['{"type": "start", "entry": "a:b", "calls": 4, "warmup": 1}',
             '{"type": "call", "index": "first"}', "7",
             '{"type": "call", "index": 1, "warmup": false, "duration": 0.1, "traced": 10, '
             '"peak": 10}']
    (tmp_path / "leak.jsonl").write_text("\n".join(lines) + "\n")
    record = read_leak(tmp_path)
    assert record is not None and [c.index for c in record.calls] == [1]
    assert record.error is not None and "skipped" in record.error


def test_a_harness_report_of_the_wrong_types_keeps_only_what_fits(tmp_path: Path) -> None:
    (tmp_path / "harness.json").write_text(json.dumps({
        "exit_code": 0, "kernel_peak": "a lot", "duration": 1.5,
        "timeline": {"t": [0, "x"]}, "swap_allowed": "no"}))
    report = harnessed.read_report(tmp_path)
    assert report is not None
    assert report["exit_code"] == 0 and report["duration"] == 1.5
    assert "kernel_peak" not in report and "timeline" not in report
    assert "dropped" in report["error"]


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_a_build_that_forges_probe_records_gets_a_note_not_a_crash(tmp_path: Path) -> None:
    junk = "\n".join(JUNK)
    (tmp_path / "forge.py").write_text(textwrap.dedent(f"""\
        import os
        with open(os.path.join(os.environ["MEMSLA_PROBE_DIR"], "probe-999999.jsonl"), "w") as f:
            f.write({junk!r})
        """))
    (tmp_path / "sla.yaml").write_text(textwrap.dedent("""\
        version: 1
        defaults: {backend: cgroup, repeats: 1}
        scenarios:
          forge: {command: [python3, forge.py], slas: [peak < 1GiB]}
        """))
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert run.exit_code == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    notes = [note for r in run.case()["runs"] for note in r["notes"]]
    assert any("probe-999999.jsonl" in note for note in notes)
