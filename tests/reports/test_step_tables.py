"""A step scenario's per-step figures in every report: the HTML page and JUnit XML show each
step's figures (medians of its repeats) and the runs it missed, as the terminal and markdown
step tables do."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import xmlschema

from runner.judging.statistics import case_metrics
from runner.measure.assemble import assemble_steps
from runner.reports.common import step_rows
from runner.reports.html import missing_dependency
from runner.reports.interface import ReportFormat, render_text
from runner.results import Case, Host, Results, Run, StepResult
from tests.reports.conftest import DATA

MiB = 1024 * 1024


def _step(peak_mib: int, duration: float) -> Run:
    return Run(kind="timed", index=0, exit_code=0, duration=duration, cpu_time=duration,
               cgroup_peak=peak_mib * MiB, rss_peak=peak_mib * MiB, oom_kills=0)


def step_results() -> Results:
    """A step case of three timed runs: the incremental step not run in the last one (its full
    build failed), and a plain case beside it."""
    runs = [assemble_steps("timed", 0, [StepResult(name="full", run=_step(140, 2.0)),
                                        StepResult(name="incremental", run=_step(44, 0.5))]),
            assemble_steps("timed", 1, [StepResult(name="full", run=_step(150, 2.2)),
                                        StepResult(name="incremental", run=_step(46, 0.7))])]
    failed = _step(90, 1.0)
    failed.exit_code = 1
    runs.append(assemble_steps("timed", 2, [StepResult(name="full", run=failed),
                                            StepResult(name="incremental")]))
    site = Case(scenario="site", params={}, backend="docker", limit=512 * MiB, runs=runs)
    plain = Case(scenario="plain", params={}, backend="docker", limit=512 * MiB,
                 runs=[_step(20, 0.1)])
    for case in (site, plain):
        case.metrics = case_metrics(case)
    host = Host(hostname="ci", kernel="6.8.0", os="Debian", python="3.11.9", cpus=2,
                memory_total=8192 * MiB, cgroup_version=1, backend="docker",
                backend_reason="asked", docker_version="27.0")
    return Results.new(sla_file="sla.yaml", host=host, status="fail", cases=[site, plain])


def test_junit_carries_each_steps_figures() -> None:
    results = step_results()
    text = render_text(ReportFormat.JUNIT, results)
    xmlschema.XMLSchema(DATA / "jenkins-junit.xsd").validate(text)
    suites = {s.get("name"): s for s in ET.fromstring(text).findall("testsuite")}
    properties = {p.get("name"): p.get("value")
                  for p in suites["site"].findall("properties/property")}
    assert properties["step(full).peak"] == str(140 * MiB)  # the median of 140, 150 and 90
    assert properties["step(incremental).peak"] == str(45 * MiB)
    assert properties["step(full).duration"] == "2"
    assert properties["step(incremental).not_run"] == "1"
    assert properties["step(full).not_run"] == "0"
    out = suites["site"].findtext("system-out") or ""
    assert "step full: 140 MiB" in out, out
    assert "step incremental: 45 MiB" in out and "not run in 1 of 3 runs" in out, out
    plain = {p.get("name") for p in suites["plain"].findall("properties/property")}
    assert not any(name and name.startswith("step(") for name in plain)
    assert "step " not in (suites["plain"].findtext("system-out") or "")


@pytest.mark.skipif(missing_dependency() is not None, reason="matplotlib is not installed")
def test_html_has_a_step_table_per_step_case() -> None:
    results = step_results()
    page = render_text(ReportFormat.HTML, results)
    assert page.count("<h4>Steps</h4>") == 1  # the plain case has none
    table = page[page.index("<table class=steps>"):]
    table = table[:table.index("</table>")]
    rows = step_rows(results)
    assert [row.step for row in rows] == ["full", "incremental"]
    for row in rows:  # the same figures as the terminal and markdown tables
        cells = "".join(f'<td class="num">{figure}</td>' for figure in row.figures)
        assert f"<td>{row.step}</td>{cells}" in table, (row, table)
    assert "1 of 3" in table and "<tr class=fail><td>incremental</td>" in table
