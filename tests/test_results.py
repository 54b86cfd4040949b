"""The results file: a round trip of this version, versions 2 to 4 read with the run figures
version 5 stores, and version 1 files upgraded on load."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from runner.judging.statistics import case_metrics
from runner.measure.assemble import assemble
from runner.measure.probe_records import ProbeData
from runner.measure.readings import Readings
from runner.results import SCHEMA_VERSION, PythonHeap, Results
from tests.judging.helpers import MiB, case, judged, leak_case
from tests.reports.conftest import DATA

V1 = DATA / "results.json"  # written by memsla with schema version 1; kept as it was


def _v1() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(V1.read_text())
    assert data["schema_version"] == 1
    return data


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data))
    return path


def test_round_trip(tmp_path: Path) -> None:
    cases = [case("site", [40 * MiB + n * 300_000.0, 41 * MiB + n * 300_000.0], size=n)
             for n in (100, 200, 400)]
    report = judged([*cases, leak_case("app", [i * MiB for i in range(8)])])
    assert report.scenarios[0].analysis.scaling and report.scenarios[1].analysis.leaks
    path = tmp_path / "results.json"
    report.write(path)
    written = json.loads(path.read_text())
    assert written["schema_version"] == SCHEMA_VERSION == 11
    assert Results.read(path) == report
    assert Results.model_validate(written).model_dump() == report.model_dump()


def test_version_2_is_read_as_it_is(tmp_path: Path) -> None:
    report = judged([case("site", [40 * MiB + n * 300_000.0], size=n) for n in (100, 200, 400)])
    data = json.loads(report.model_dump_json())
    for name in ("sla_digest", "jobs", "memory_budget", "shard", "merged_from"):
        del data[name]
    for each in data["cases"]:
        for run in each["runs"]:
            for name in ("started", "ended", "cpus", "neighbours"):
                del run[name]
    read = Results.read(_write(tmp_path, {**data, "schema_version": 2}))
    assert read == report and read.schema_version == SCHEMA_VERSION


def test_version_4_runs_get_the_heap_figures_assemble_gives(tmp_path: Path) -> None:
    heaps = [PythonHeap(pid=1, peak=5 * MiB, final=2 * MiB, blocks=10),
             PythonHeap(pid=2, tracker="memray", peak=7 * MiB, final=1 * MiB,
                        allocated=9 * MiB, allocation_calls=30),
             PythonHeap(pid=3, peak=MiB, complete=False)]
    built = case("site", [40 * MiB])
    built.runs.append(assemble("traced", 1, Readings(exit_code=0, duration=1.0),
                               ProbeData(python=heaps)))
    built.metrics = case_metrics(built)
    report = judged([built])
    data = json.loads(report.model_dump_json())
    stored = ("python_peak", "python_final", "allocations", "allocated", "allocation_calls")
    traced = data["cases"][0]["runs"][-1]
    assert [traced.pop(name) for name in stored] == [7 * MiB, 2 * MiB, 10, 9 * MiB, 30]
    read = Results.read(_write(tmp_path, {**data, "schema_version": 4}))
    assert read == report and read.schema_version == SCHEMA_VERSION
    assert read.cases[0].pick("python_peak") == 7 * MiB


def test_version_1_scaling_fits_and_phases_are_upgraded() -> None:
    old = _v1()["scenarios"][0]["analysis"]
    upgraded = Results.read(V1)
    assert upgraded.schema_version == SCHEMA_VERSION
    site = upgraded.scenario("site")
    assert site is not None
    assert [f.metric for f in site.analysis.scaling] == ["peak", "rss_peak", "python_peak"]
    for fit in site.analysis.scaling:
        was = old["scaling"]["all"][fit.metric]
        assert fit.model_dump() == {
            **{k: was[k] for k in ("metric", "stat", "size_parameter", "params", "sizes",
                                   "values", "excluded", "problem", "approximate", "flat")},
            "line": {"fixed": was["fixed"], "marginal": was["marginal"], "r2": was["r2"],
                     "residual_sd": was["residual_sd"]},
            "growth": {"exponent": was["exponent"], "r2": was["exponent_r2"], "fixed": None,
                       "coefficient": None},
            "loglog": {"exponent": was["loglog_exponent"], "r2": was["loglog_r2"]},
            "predictions": [{**{k: v for k, v in p.items() if k != "extrapolated"},
                             "beyond_twice": p["factor"] > 2} for p in was["predictions"]],
            "outlook": None, "repeats": []}  # version 5's, stored by the judging stage
        assert [p.extrapolated for p in fit.predictions] == [
            p["extrapolated"] for p in was["predictions"]]
    new_figures = {"phases": {"__all__": {"growth", "python_growth"}}}
    assert [s.model_dump(exclude=new_figures) for s in site.analysis.phases] == [
        {"case": label, **summary} for label, summary in old["phases"].items()]
    assert site.analysis.leaks == []
    # everything outside the analysis reads as it did; what version 2 added takes its default
    again = _v1()
    added_to_verdicts = {"skipped": False}
    # version 6's noise is born in the judging stage: an older file reads without it
    assert all(s.noise is None for c in upgraded.cases for s in c.metrics.values())
    unchanged = {"runs": True, "metrics": {"__all__": {"noise"}}, "trace": True}
    assert [c.model_dump(exclude=unchanged) for c in upgraded.cases] == [
        {**{k: v for k, v in c.items() if k != "runs"},
         "verdicts": [{**v, **added_to_verdicts} for v in c["verdicts"]]}
        for c in again["cases"]]


def test_version_1_leak_findings_are_upgraded(tmp_path: Path) -> None:
    data = _v1()
    record = {"entry": "app:build", "python": "3.11.7", "planned_calls": 4, "warmup": 1,
              "calls": [{"index": i, "warmup": i < 1, "duration": 0.1, "traced": i * MiB,
                         "peak": 0, "rss": None, "objects": 10} for i in range(4)],
              "sites": [], "error": None, "complete": True}
    trend = {"slope": 1.0 * MiB, "low": 1.0 * MiB, "high": 1.0 * MiB, "p_increase": 0.04,
             "significant": True, "n": 3}
    finding = {"case": "app", "params": {}, "per_build": 1.0 * MiB, "heap": trend,
               "rss": None, "objects": {**trend, "slope": 0.0, "low": 0.0, "high": 0.0,
                                        "significant": False},
               "problem": None, "record": record}
    data["scenarios"].append({"scenario": "app", "verdicts": [],
                              "analysis": {"leak": {"app": copy.deepcopy(finding)}}})
    upgraded = Results.read(_write(tmp_path, data))
    app = upgraded.scenario("app")
    assert app is not None
    (found,) = app.analysis.leaks
    assert found.model_dump() == {**finding, "approximate": False}
    assert app.analysis.scaling == [] and app.analysis.phases == []


@pytest.mark.parametrize(("change", "message"), [
    ({"schema_version": 12}, "schema version 12; this memsla reads versions 1 to 11"),
    ({"schema_version": None}, "schema version None"),
])
def test_unknown_versions_are_refused(tmp_path: Path, change: dict[str, Any],
                                      message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Results.read(_write(tmp_path, {**_v1(), **change}))


def test_a_version_1_analysis_memsla_never_wrote_is_refused(tmp_path: Path) -> None:
    data = _v1()
    data["scenarios"][0]["analysis"]["fits"] = []
    with pytest.raises(ValueError, match="unknown parts: fits"):
        Results.read(_write(tmp_path, data))
    data["scenarios"][0]["analysis"] = {"scaling": {"all": ["not", "a", "fit"]}}
    with pytest.raises(ValueError, match="cannot upgrade version 1 results"):
        Results.read(_write(tmp_path, data))


def test_the_readme_gives_the_schema_version_the_results_carry() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"(versioned schema, `schema_version` {SCHEMA_VERSION};" in readme
