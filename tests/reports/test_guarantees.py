"""The written guarantees page: made by the real CLI from real Pelican results (a version 6 file,
refitted from its repeats), its limits consistent with the fit's intervals, grouped by swept
value, with the commit of the SLA file's repository and the disk figures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from runner.judging import scaling
from runner.judging.stage import refit
from runner.reports.guarantees import _largest_under, page
from runner.results import Results, Run
from tests.conftest import REPO
from tests.judging.helpers import MiB, case, judged

PELICAN = Path(__file__).parent / "data" / "pelican-after.json"


def test_the_page_from_real_pelican_results(tmp_path: Path) -> None:
    out = tmp_path / "guarantees.md"
    proc = subprocess.run([sys.executable, "-m", "runner", "report", str(PELICAN),
                           "--guarantees", str(out)], cwd=tmp_path, capture_output=True,
                          text=True, check=False, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert "Measured on 2026-12-07" in text and "outside a git repository" in text
    assert "## pelican on the cgroup backend" in text
    assert "- Building 2,000 pages uses **122 MiB** (measured: 121 MiB to 122 MiB over 2 builds" \
        in text
    assert "| 5,000 | 256 MiB | 252 MiB to 260 MiB | 2.5x the largest measured: beyond 2x" in text
    assert "| 2 GiB | 39,950 (20.0x the largest measured: extrapolated, beyond 2x) |" in text
    assert "| 10,000 | 505 MiB | measured: the highest of 1 |" in text
    assert "No disk or cache figures were measured" in text


def test_a_limits_largest_size_is_where_the_upper_bound_crosses_it() -> None:
    results = Results.read(PELICAN)
    refit(results)
    stored = results.scenario("pelican")
    assert stored is not None
    fit = next(f for f in stored.analysis.scaling if f.metric == "peak")
    assert [len(r) for r in fit.repeats] == [2, 2, 2]
    reach = _largest_under(fit, 1 << 30)
    assert reach is not None
    assert (scaling.predict(fit, reach).high or 0) <= 1 << 30
    assert (scaling.predict(fit, reach + 1).high or 0) > 1 << 30


def test_one_section_per_swept_value_with_the_commit_and_the_disk_figures(
        tmp_path: Path) -> None:
    cases = []
    for theme, factor in (("light", 1.0), ("dark", 1.5)):
        for pages in (100, 200, 400):
            peak = factor * (40 * MiB + pages * 100_000)
            built = case("site", [peak, peak * 1.01], size=pages, params={"theme": theme})
            for run in built.runs:
                run.disk, run.disk_files = {"cache": pages * 10_000}, {"cache": pages}
            cases.append(built)
    report = judged(cases)
    sla = tmp_path / "sla.yaml"
    sla.write_text("version: 1\n")
    for args in (["init", "-q"], ["add", "sla.yaml"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "sla"]):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True)
    sha = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], check=True,
                         capture_output=True, text=True).stdout.strip()
    report.sla_file = str(sla)
    text = "\n".join(page(report))
    assert f"commit `{sha[:12]}`" in text
    assert "## site [theme=light] on the cgroup backend" in text
    assert "## site [theme=dark] on the cgroup backend" in text
    assert "| 400 | 3.81 MiB | 400 |" in text
    assert "+ 9.77 KiB x pages (R² 1.0000)" in text and "disk(cache) grows as" in text


def test_runs_keep_their_disk_figures() -> None:
    run = Run(kind="timed", index=0, exit_code=0, duration=1.0, disk={"a": 1}, disk_files={"a": 1})
    assert Run.model_validate(run.model_dump()) == run
