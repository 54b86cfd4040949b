"""``trace_sizes`` on planted builds (local cgroup): the traced run is made where a rule reads
heap figures and at the largest size, the reports say where and why, and an untraced size's
heap figures are "not traced", never 0."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli

MiB = 1024 * 1024


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_auto_traces_where_rules_read_heap_figures_and_says_so(sla: Any, tmp_path: Path) -> None:
    sla("""
        version: 1
        defaults: {backend: cgroup, limit: 512MiB, repeats: 1}
        scenarios:
          plant:
            command: [python3, plant.py, "main={mib}"]
            matrix: {mib: [8, 16, 48]}
            slas:
              - rule: python_peak < 12MiB
                when: {mib: 8}
              - peak < 256MiB
        """)
    run = run_cli(["check", "sla.yaml", "--markdown", "comment.md"], tmp_path)
    assert run.exit_code == 0, run.stderr + run.stdout
    assert run.results is not None
    cases = {c["params"]["mib"]: c for c in run.results["cases"]}
    kinds = {mib: [r["kind"] for r in case["runs"]] for mib, case in cases.items()}
    assert kinds == {8: ["timed", "traced"], 16: ["timed"], 48: ["timed", "traced"]}
    assert cases[8]["trace"] == "traced: rule 'python_peak < 12MiB' reads heap figures at mib=8"
    assert cases[48]["trace"].startswith("traced: the largest size")
    assert cases[16]["trace"] == (
        "not traced: no rule at mib=16 reads heap figures (trace_sizes: auto)")
    # the planted allocations, where traced; none made up where not
    assert cases[48]["metrics"]["python_peak"]["max"] == pytest.approx(48 * MiB, rel=0.05)
    assert cases[8]["metrics"]["python_peak"]["max"] == pytest.approx(8 * MiB, rel=0.1)
    assert "python_peak" not in cases[16]["metrics"]
    out = " ".join(run.stdout.split())
    assert "not traced" in out
    assert "plant: the traced run (heap figures) at mib=8" in out
    assert "not at mib=16 (no rule at mib=16 reads heap figures" in out
    comment = (tmp_path / "comment.md").read_text()
    row = next(line for line in comment.splitlines() if line.startswith("| plant\\[mib=16\\] | "))
    assert "not traced" in row and "| 0 B" not in row


def test_a_heap_rule_at_an_untraced_size_is_refused_with_its_line(sla: Any,
                                                                  tmp_path: Path) -> None:
    sla("""
        version: 1
        scenarios:
          plant:
            command: [python3, plant.py, "main={mib}"]
            matrix: {mib: [8, 48]}
            trace_sizes: [48]
            slas:
              - rule: python_peak < 12MiB
                when: {mib: 8}
        """)
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert run.exit_code == 2
    assert "sla.yaml:9:" in run.stderr and "trace_sizes: [48] leaves untraced" in run.stderr
