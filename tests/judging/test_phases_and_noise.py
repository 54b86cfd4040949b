"""Phases of different planted sizes, the spread of repeats in the terminal table, and the
allocation-count tripwire: steady across traced runs of one program, moved by a change in it."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from runner.reports.terminal import TerminalTable
from tests.conftest import run_cli
from tests.judging.helpers import PYTHON, MiB, case, results, write

PHASES = {"parse": 12, "render": 48}  # MiB planted inside each phase


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_two_phases_of_planted_sizes(sla, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sla(f"""
        version: 1
        defaults: {{backend: cgroup, repeats: 2}}
        scenarios:
          build:
            command: [{PYTHON}, plant.py, "parse={PHASES['parse']}", "render={PHASES['render']}"]
            slas:
              - phase(render).python_peak < 500MiB
              - phase(parse).python_peak < 8MiB
        """)
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert run.exit_code == 1, run.stdout + run.stderr
    built = run.case()
    for name, mib in PHASES.items():
        heap = built["metrics"][f"phase({name}).python_peak"]["median"]
        assert heap == pytest.approx(mib * MiB, rel=0.05), name
    verdicts = {v["rule"]: v["passed"] for v in built["verdicts"]}
    assert verdicts["phase(render).python_peak < 500MiB"] is True
    assert verdicts["phase(parse).python_peak < 8MiB"] is False
    assert run.results is not None
    (summary,) = (s for s in run.results["scenarios"][0]["analysis"]["phases"]
                  if s["case"] == "build")
    assert summary["largest"] == "render"
    rows = {row["name"]: row for row in summary["phases"]}
    if rows["render"]["peak"] is not None:  # the host let the build reset the cgroup peak
        assert rows["render"]["peak"] - rows["parse"]["peak"] == pytest.approx(
            (PHASES["render"] - PHASES["parse"]) * MiB, rel=0.1)
    assert "render *" in run.stdout  # the terminal marks the phase that uses the most


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_allocation_count_is_steady_across_runs_and_moves_with_the_program(
        tmp_path: Path) -> None:
    write(tmp_path, "objects.py", """
        import json, sys
        pages = {f"page-{i}": {"title": str(i) * 3, "tags": [i, i + 1]} for i in range(5000)}
        text = json.dumps(pages)
        kept = [{"n": n} for n in range(int(sys.argv[1]))]
        """)
    write(tmp_path, "sla.yaml", f"""
        version: 1
        defaults: {{backend: cgroup, repeats: 1}}
        scenarios:
          build:
            command: [{PYTHON}, objects.py, "{{kept}}"]
            matrix: {{kept: [0, 300], attempt: [1, 2, 3]}}
        slas: [oom_kills == 0]
        """)
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert run.exit_code == 0, run.stdout + run.stderr

    def counts(kept: int) -> list[float]:
        return [run.case(kept=kept, attempt=n)["metrics"]["allocations"]["values"][0]
                for n in (1, 2, 3)]

    plain, more = counts(0), counts(300)
    assert min(plain) > 5000 * 3
    # Interpreter caches keyed by randomized string hashes keep a handful of blocks alive
    # or not; the program's own 300 dicts must stand far above that.
    assert max(plain) - min(plain) <= 0.001 * min(plain)
    assert max(more) - min(more) <= 0.001 * min(more)
    assert min(more) - max(plain) >= 300


def test_terminal_shows_the_noise_of_repeats() -> None:
    # median 104 MiB, MAD 4 MiB: sigma 1.4826 x 4 MiB = 5.7% of the median
    report = results([case("site", [100 * MiB, 104 * MiB, 108 * MiB], size=10)])
    out = io.StringIO()
    TerminalTable().render(report, out)
    assert "104 MiB ±5.7%" in out.getvalue()
    assert "1 s ±0.0%" in out.getvalue()
