"""The judging stage on hand-built results: the typed scaling fits, leak findings and phase
summaries it stores, and the reports that read them instead of computing their own."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.judging import baseline, leaks, scaling
from runner.reports.explain import explain
from runner.results import Case, PhaseResult, PythonHeap, Results, Run
from tests.judging.helpers import KiB, MiB, case, judged, leak_case

SIZES = (100, 200, 400, 800)


def _linear(per_page: float = 200 * KiB, noise: tuple[float, ...] = (0, 0, 0, 0),
            **params: int | str) -> list[Case]:
    return [case("site", [40 * MiB + per_page * n + e], size=n, params=dict(params))
            for n, e in zip(SIZES, noise, strict=True)]


def test_the_stage_stores_typed_fits_of_every_fittable_metric() -> None:
    report = judged(_linear(), slas=["per_page < 300KiB"])
    (scenario,) = report.scenarios
    assert [(f.metric, f.params) for f in scenario.analysis.scaling] == [
        ("peak", {}), ("rss_peak", {}), ("python_peak", {})]
    (fit,) = scenario.analysis.fits("peak")
    assert (fit.size_parameter, fit.stat, fit.sizes) == ("pages", "median", list(SIZES))
    assert fit.values == [40 * MiB + 200 * KiB * n for n in SIZES]
    assert fit.problem is None and fit.excluded == [] and not fit.flat
    assert fit.line is not None and fit.growth is not None and fit.loglog is not None
    assert fit.line.marginal == pytest.approx(200 * KiB)
    assert fit.line.fixed == pytest.approx(40 * MiB)
    assert fit.line.r2 == pytest.approx(1.0) and fit.line.residual_sd == pytest.approx(0, abs=1)
    assert fit.exponent == pytest.approx(1.0, abs=0.01)
    assert fit.growth.fixed == pytest.approx(40 * MiB, rel=0.01)
    assert fit.loglog.exponent < 1  # the fixed overhead dilutes the plain log-log slope
    assert [p.size for p in fit.predictions] == scaling.prediction_sizes(list(SIZES))
    at = {p.size: p for p in fit.predictions}
    assert at[8000].value == pytest.approx(40 * MiB + 8000 * 200 * KiB)
    assert at[8000].extrapolated and at[8000].factor == 10 and not at[500].extrapolated
    (python,) = scenario.analysis.fits("python_peak")
    assert python.sizes == [] and python.line is None and python.predictions == []
    assert python.excluded == [f"size {n}: no python_peak measured" for n in SIZES]
    assert python.problem is not None and "at least 3" in python.problem
    (verdict,) = scenario.verdicts
    assert verdict.passed and verdict.value == pytest.approx(200 * KiB)


def test_predictions_carry_the_interval_of_the_fit() -> None:
    noise = (1 * MiB, -1 * MiB, 1 * MiB, -1 * MiB)
    (fit,) = judged(_linear(noise=noise)).scenarios[0].analysis.fits("peak")
    for prediction in fit.predictions:
        assert prediction.low is not None and prediction.high is not None
        assert prediction.low < prediction.value < prediction.high
    widths = [p.high - p.low for p in fit.predictions if p.high and p.low]
    assert widths == sorted(widths)  # wider the farther past the measured sizes


def test_a_stored_fit_predicts_what_the_stage_stored(tmp_path: Path) -> None:
    noise = (3 * MiB, 0, -2 * MiB, 1 * MiB)
    path = tmp_path / "results.json"
    judged(_linear(noise=noise)).write(path)
    (fit,) = Results.read(path).scenarios[0].analysis.fits("peak")
    for stored in fit.predictions:
        assert scaling.predict(fit, stored.size) == stored


def test_too_few_sizes_and_failed_builds_are_a_problem_not_a_fit() -> None:
    cases = [case("site", [10 * MiB], size=10), case("site", [20 * MiB], size=20),
             case("site", [64 * MiB], size=40, oom=True)]
    (fit,) = judged(cases).scenarios[0].analysis.fits("peak")
    assert fit.sizes == [10, 20] and fit.excluded == [
        "size 40: 1 of 1 timed run(s) did not complete"]
    assert fit.problem == ("peak was measured at 2 size(s) (10, 20); a fit needs at least 3 "
                           "(size 40: 1 of 1 timed run(s) did not complete)")
    assert fit.line is not None and fit.predictions == []  # a line, but nothing to judge


def test_other_axes_get_a_fit_each_and_compare_names_them_like_cases() -> None:
    report = judged(_linear(theme="light") + _linear(per_page=400 * KiB, theme="dark"))
    fits = report.scenarios[0].analysis.fits("peak")
    assert [(f.label, round((f.line.marginal if f.line else 0) / KiB)) for f in fits] == [
        ("theme=light", 200), ("theme=dark", 400)]
    figures = baseline.fit_figures(report)
    assert figures[("site[theme=dark]", "per_page(peak)")] == pytest.approx(400 * KiB)


def test_a_planted_leak_is_judged_from_the_leak_run() -> None:
    built = leak_case("app", [10 * MiB + i * MiB for i in range(12)],
                      rss=[50 * MiB + i * MiB for i in range(12)])
    finding = leaks.find(built)
    assert finding.case == "app" and finding.problem is None
    assert finding.heap is not None and finding.heap.significant and finding.heap.n == 10
    assert finding.per_build == pytest.approx(MiB)
    assert finding.heap.low == pytest.approx(MiB) and finding.heap.p_increase < 0.001
    assert finding.rss is not None and finding.rss.slope == pytest.approx(MiB)
    assert finding.objects is not None and finding.objects.slope == pytest.approx(1)
    assert finding.record is built.runs[0].leak
    report = judged([built], slas=["leak_per_build < 256KiB"])
    (scenario,) = report.scenarios
    assert scenario.analysis.leaks == [finding]
    (verdict,) = scenario.verdicts
    assert verdict.passed is False and verdict.value == pytest.approx(MiB)
    assert verdict.stat == "slope" and "heap grows 1 MiB/build" in verdict.reason


def test_a_steady_heap_is_no_leak() -> None:
    noise = [0, 300, -200, 100, 0, -300, 200, -100, 300, 0, -200, 100]
    finding = leaks.find(leak_case("app", [10 * MiB + e for e in noise]))
    assert finding.heap is not None and not finding.heap.significant
    assert finding.per_build == 0.0 and finding.rss is None


def test_a_leak_run_with_too_few_calls_says_why() -> None:
    built = leak_case("app", [MiB, MiB, MiB, MiB])
    assert built.runs[0].leak is not None
    built.runs[0].leak.error = "RuntimeError: the build broke"
    finding = leaks.find(built)
    assert finding.heap is None and finding.per_build is None
    assert finding.problem == ("2 measured call(s); a trend needs 3 "
                               "(RuntimeError: the build broke)")


def _phased(size: int, render: int, cgroup: bool = True) -> Case:
    def phases(scale: int) -> list[PhaseResult]:
        return [PhaseResult(name="load", start=0.0, end=0.5, python_peak=scale * MiB,
                            cgroup_peak=2 * scale * MiB if cgroup else None),
                PhaseResult(name="render", start=0.5, end=2.0, python_peak=render * scale * MiB,
                            cgroup_peak=(render + 1) * scale * MiB if cgroup else None)]

    built = case("site", [100 * MiB, 100 * MiB], size=size)
    for run in built.runs:
        run.phases = phases(1 + run.index)  # the two timed runs differ: medians are taken
    built.runs.append(Run(kind="traced", index=2, exit_code=0, duration=3.0,
                          python=[PythonHeap(pid=1, peak=200 * MiB)], python_peak=200 * MiB,
                          phases=phases(1)))
    return built


def test_phase_summaries_take_medians_and_name_the_largest_phase() -> None:
    report = judged([_phased(10, render=4), _phased(20, render=6, cgroup=False)])
    summaries = report.scenarios[0].analysis.phases
    assert [s.case for s in summaries] == ["site[pages=10]", "site[pages=20]"]
    first, second = summaries
    assert [p.model_dump() for p in first.phases] == [
        {"name": "load", "python_peak": 1.0 * MiB, "peak": 3.0 * MiB, "duration": 0.5,
         "growth": None, "python_growth": None},
        {"name": "render", "python_peak": 4.0 * MiB, "peak": 7.5 * MiB, "duration": 1.5,
         "growth": None, "python_growth": None}]
    assert (first.largest, first.largest_by) == ("render", "peak")
    assert first.top is first.phases[1]
    assert (second.largest, second.largest_by) == ("render", "python_peak")  # no cgroup peaks
    assert second.phases[1].peak is None


def test_the_phase_that_added_the_most_uses_the_most_memory() -> None:
    """Rendering took the cgroup from 42 to 204 MiB; postprocessing, entered at 204 MiB, peaked
    at 210 MiB: its own peak is the highest, but rendering added the memory."""
    def phases() -> list[PhaseResult]:
        return [PhaseResult(name="render", start=0.0, end=1.0, cgroup_peak=204 * MiB,
                            cgroup_entry=42 * MiB, cgroup_growth=162 * MiB),
                PhaseResult(name="postprocess", start=1.0, end=2.0, cgroup_peak=210 * MiB,
                            cgroup_entry=204 * MiB, cgroup_growth=6 * MiB)]

    built = case("site", [210 * MiB, 210 * MiB], size=10)
    for run in built.runs:
        run.phases = phases()
    (summary,) = judged([built]).scenarios[0].analysis.phases
    assert (summary.largest, summary.largest_by) == ("render", "growth")
    assert built.pick("phase(postprocess).growth") == 6 * MiB


def test_reports_read_the_stored_analysis_and_compute_none() -> None:
    report = judged(_linear())
    (fit,) = report.scenarios[0].analysis.fits("peak")
    assert fit.line is not None
    fit.line.marginal = 123 * KiB  # what the report shows comes from the stored fit alone
    report.cases[0].runs = []
    (sentence, *_) = explain(report)["site"]
    assert "40 MiB + 123 KiB·N of cgroup peak" in sentence
    report.scenarios = []
    assert explain(report)["site"] == [
        "nothing to explain: no size parameter, leak run or phases"]


def test_a_build_that_changed_its_limit_gets_no_verdict_but_that() -> None:
    from runner.judging.status import status_of

    changed = "the build changed its memory limit from 256 MiB to no limit (its own cgroup, ...)"
    built = case("site", [10 * MiB, 10 * MiB])
    built.runs[1].limit_changed = changed
    report = judged([built], slas=["peak < 1GiB"])
    verdicts = report.cases[0].verdicts
    assert {v.rule for v in verdicts} == {"peak < 1GiB", "exit_code == 0", "oom_kills == 0"}
    for verdict in verdicts:
        assert verdict.passed is None and verdict.value is None
        assert verdict.reason == changed
    assert status_of(report)[0] == "error", "never a pass, whatever the figures say"
