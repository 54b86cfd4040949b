"""Scaling fits: planted per-page costs recovered from real cgroup runs, a planted quadratic
caught, too few sizes refused, predictions labelled as extrapolations."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from runner.cli import main
from runner.judging import scaling
from runner.judging.regression import fit_power, theil_sen
from runner.results import Results, ScalingFit
from runner.slafile.rules import parse_rule
from tests.conftest import run_cli
from tests.judging.helpers import LINEAR, PYTHON, QUADRATIC, KiB, MiB, case, judged, write

PER_PAGE, FIXED = 200 * KiB, 30 * MiB


def _fit(run_results: dict[str, Any], metric: str) -> ScalingFit:
    (scenario,) = Results.model_validate(run_results).scenarios
    (fit,) = scenario.analysis.fits(metric)
    return fit


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_planted_per_page_cost_is_recovered_within_5_percent(tmp_path: Path) -> None:
    write(tmp_path, "linear.py", LINEAR)
    write(tmp_path, "sla.yaml", f"""
        version: 1
        defaults: {{backend: cgroup, repeats: 2, limit: 1GiB}}
        scenarios:
          linear:
            command: [{PYTHON}, linear.py, "{{pages}}", "{PER_PAGE}", "{FIXED}"]
            matrix: {{pages: [100, 200, 400, 800]}}
            slas:
              - per_page < 250KiB
              - per_page(rss_peak) < 250KiB
              - per_page(python_peak) < 250KiB
              - fixed_overhead(python_peak) < 40MiB
              - scaling_exponent < 1.2
        """)
    run = run_cli(["check", "sla.yaml", "--explain"], tmp_path)
    assert run.exit_code == 0, run.stdout + run.stderr
    assert run.results is not None
    for metric in ("peak", "rss_peak", "python_peak"):
        fit = _fit(run.results, metric)
        assert fit.line is not None
        assert fit.line.marginal == pytest.approx(PER_PAGE, rel=0.05), metric
        assert fit.line.r2 > 0.99
        assert fit.exponent == pytest.approx(1.0, abs=0.1)
    # the Python heap holds exactly the planted bytes: its intercept is the planted overhead
    python_line = _fit(run.results, "python_peak").line
    assert python_line is not None and python_line.fixed == pytest.approx(FIXED, rel=0.05)
    verdicts = {v["rule"]: v for v in run.results["scenarios"][0]["verdicts"]}
    assert set(verdicts) == {"per_page < 250KiB", "per_page(rss_peak) < 250KiB",
                             "per_page(python_peak) < 250KiB",
                             "fixed_overhead(python_peak) < 40MiB", "scaling_exponent < 1.2"}
    assert all(v["passed"] for v in verdicts.values())
    assert verdicts["per_page(python_peak) < 250KiB"]["value"] == pytest.approx(PER_PAGE, rel=0.05)
    predictions = _fit(run.results, "peak").predictions
    assert any(p.extrapolated and p.size == 8000 for p in predictions)
    explained = " ".join(run.stdout.split())  # however the terminal wrapped it
    assert "N pages use about" in explained
    # the sentence gives the fit's exponent to two decimals: 0.99 is as linear as 1.01
    said = re.search(r"peak grows as O\(N\^(\d+\.\d\d)\)", explained)
    assert said is not None and float(said.group(1)) == pytest.approx(1.0, abs=0.1), run.stdout


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_planted_quadratic_fails_the_exponent_rule(tmp_path: Path) -> None:
    write(tmp_path, "quadratic.py", QUADRATIC)
    write(tmp_path, "sla.yaml", f"""
        version: 1
        defaults: {{backend: cgroup, repeats: 1, tracker: none, limit: 1GiB}}
        scenarios:
          quadratic:
            command: [{PYTHON}, quadratic.py, "{{pages}}", "4096"]
            matrix: {{pages: [25, 50, 100, 200]}}
            slas: [scaling_exponent < 1.2]
        """)
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert run.exit_code == 1, run.stdout + run.stderr
    assert run.results is not None
    (verdict,) = run.results["scenarios"][0]["verdicts"]
    assert verdict["passed"] is False
    assert verdict["value"] == pytest.approx(2.0, abs=0.15)
    # the raw log-log slope is diluted by the interpreter's fixed memory; the fit is not
    loglog = _fit(run.results, "peak").loglog
    assert loglog is not None and loglog.exponent < verdict["value"]


def test_fewer_than_three_sizes_are_not_judged() -> None:
    cases = [case("s", [100 * MiB], size=10), case("s", [110 * MiB], size=20)]
    (verdict,) = scaling.judge(parse_rule("per_page < 1MiB"), cases)
    assert verdict.passed is None
    assert "2 size(s) (10, 20)" in verdict.reason and "at least 3" in verdict.reason


def test_sizes_whose_builds_did_not_complete_are_left_out_of_the_fit() -> None:
    cases = [case("s", [10 * MiB + n * MiB], size=n) for n in (10, 20, 40)]
    cases.append(case("s", [64 * MiB], size=80, oom=True))  # killed at its limit
    (fit,) = scaling.fits(cases, "peak")
    assert fit.sizes == [10, 20, 40]
    assert fit.line is not None and fit.line.marginal == pytest.approx(MiB)
    assert "size 80: 1 of 1 timed run(s) did not complete" in fit.excluded


def test_rule_statistic_picks_the_per_size_value() -> None:
    # repeats 100+n and 300+n MiB: the worst (max) has slope 1 MiB/page, so does the min
    cases = [case("s", [(100 + n) * MiB, (300 + 3 * n) * MiB], size=n) for n in (10, 20, 40)]
    (worst,) = scaling.judge(parse_rule("per_page < 2MiB"), cases)
    (low,) = scaling.judge(parse_rule("per_page > 0.5MiB"), cases)
    assert worst.value == pytest.approx(3 * MiB) and worst.stat == "max"
    assert low.value == pytest.approx(MiB) and low.stat == "min"


def test_other_matrix_axes_get_one_fit_each() -> None:
    cases = [case("s", [k * n * MiB + 5 * MiB], size=n, params={"theme": name})
             for name, k in (("light", 1), ("heavy", 2)) for n in (10, 20, 40)]
    verdicts = scaling.judge(parse_rule("per_page < 1.5MiB"), cases)
    assert [(v.passed, "theme=" in v.reason) for v in verdicts] == [(True, True),
                                                                     (False, True)]


def test_growth_exponent_ignores_the_fixed_overhead() -> None:
    xs = [10.0, 20.0, 40.0, 80.0]
    power = fit_power(xs, [500.0 + 3 * x**2 for x in xs])
    assert power.exponent == pytest.approx(2.0, abs=0.01)
    assert power.fixed == pytest.approx(500.0, rel=0.01)


def test_theil_sen_shrugs_off_one_outlier() -> None:
    ys = [1000.0 * i for i in range(10)]
    ys[5] += 1e6
    trend = theil_sen([float(i) for i in range(10)], ys)
    assert trend.slope == pytest.approx(1000.0) and trend.significant


def test_predict_labels_extrapolation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = [case("site", [float(40 * MiB + n * 100 * KiB)], size=n) for n in (100, 200, 400)]
    path = tmp_path / "results.json"
    judged(cases).write(path)
    assert main(["predict", str(path), "site", "--size", "50000", "--size", "300"]) == 0
    out = capsys.readouterr().out
    expected = 40 * MiB + 50000 * 100 * KiB  # 4.81 GiB
    assert f"{expected / 2**30:.3g} GiB" in out
    assert "EXTRAPOLATION: 125.0x the largest measured size (400 pages)" in out
    assert "interpolated between measured sizes" in out


def test_predict_refuses_a_fit_from_two_sizes(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "results.json"
    judged([case("site", [1e8], size=1), case("site", [2e8], size=2)]).write(path)
    assert main(["predict", str(path), "site", "--size", "9"]) == 2
    assert "a fit needs at least 3" in capsys.readouterr().err
