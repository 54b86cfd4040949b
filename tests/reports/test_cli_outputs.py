"""The output flags end to end: ``runner check`` on a real cgroup, and ``runner report``."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from runner.cli import main
from tests.conftest import run_cli
from tests.reports.conftest import DATA


def test_report_refuses_a_file_that_is_not_results(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 1, "cases": "nope"}')
    assert main(["report", str(bad), "--junit", str(tmp_path / "j.xml")]) == 2
    assert "is not a memsla results file" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "j.xml").exists()


def test_check_refuses_a_bad_baseline_before_measuring(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sla = tmp_path / "sla.yaml"
    sla.write_text("version: 1\nscenarios:\n  s:\n    command: [python3, -c, 'import sys']\n")
    assert main(["check", str(sla), "--baseline", str(tmp_path / "nope.json"),
                 "--json", str(tmp_path / "r.json")]) == 2
    assert "baseline file" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_report_without_outputs_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(DATA / "results.json")]) == 0
    assert "FAIL - 15 of 18 SLAs hold" in capsys.readouterr().out


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_check_writes_every_output(sla, tmp_path: Path) -> None:
    path = sla("""
        version: 1
        defaults: {backend: cgroup, limit: 256MiB, repeats: 1}
        scenarios:
          plant:
            command: [python3, plant.py, "grow={mib}"]
            matrix: {mib: [8, 48]}
            slas:
              - peak < 40MiB
        """)
    summary = tmp_path / "summary.md"
    run = run_cli(["check", "sla.yaml", "--junit", "out/junit.xml", "--html", "out/r.html",
                   "--markdown", "out/comment.md", "--bench-json", "out/bench.json",
                   "--bench-format", "bencher", "--github"], tmp_path,
                  env={"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_ACTIONS": ""})
    assert run.exit_code == 1, run.stderr + run.stdout
    errors = [line for line in run.stdout.splitlines() if line.startswith("::error")]
    assert errors == [next(e for e in errors if "plant[mib=48]" in e)]
    lines = path.read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if "- peak < 40MiB" in text)
    assert errors[0].startswith(
        f"::error file=sla.yaml,line={line},title=SLA broken%3A peak < 40MiB::")
    out = tmp_path / "out"
    root = ET.parse(out / "junit.xml").getroot()
    assert (root.get("tests"), root.get("failures")) == ("6", "1")
    assert (out / "comment.md").read_text().startswith("<!-- memsla-report -->\n")
    assert set(json.loads((out / "bench.json").read_text())) == {"plant[mib=8]", "plant[mib=48]"}
    page = (out / "r.html").read_text()
    icicles = page.count('<svg class="icicle"')  # the sites at each traced run's heap peak
    # no rule reads heap figures: only the largest size gets the traced run (trace_sizes: auto)
    assert (page.count("<svg") - icicles, icicles) == (3, 1)
    assert "not traced: no rule at mib=8 reads heap figures" in page
    assert "### ❌ memsla FAIL" in summary.read_text()
