"""Prediction intervals that hold the run-to-run noise and the model's error: planted
linear-with-noise workloads (no builds: synthetic repeats through the same fitting code),
predicted at 2.5x the largest measured size, and the same with a mild curvature."""

from __future__ import annotations

import random
from pathlib import Path

from runner.judging import scaling
from runner.judging.regression import fit_line
from runner.results import Results
from tests.judging.helpers import MiB, case, judged

SIZES = (250, 1000, 2000)
TARGET = 5000  # 2.5x the largest measured size
WORKLOADS = 20


def _workload(seed: int, exponent: float) -> tuple[list[list[float]], float, float]:
    """Each size's repeats (2 or 3, noise 0.5-2% like real repeats), the true memory at TARGET
    and a fresh noisy build there."""
    rnd = random.Random(seed)
    fixed, per_page = rnd.uniform(20, 200) * MiB, rnd.uniform(20, 120) * 1024
    noise, repeats = rnd.uniform(0.005, 0.02), 2 + seed % 2

    def true(pages: float) -> float:  # per_page is the cost per page at the largest size
        return fixed + per_page * pages ** exponent / max(SIZES) ** (exponent - 1)

    values = [[true(s) * (1 + rnd.gauss(0, noise)) for _ in range(repeats)] for s in SIZES]
    return values, true(TARGET), true(TARGET) * (1 + rnd.gauss(0, noise))


def _coverage(exponent: float) -> tuple[int, int, int]:
    """Of WORKLOADS planted workloads: how often the stated interval holds the true value, a new
    noisy build, and how often the old interval (the residuals of the 3 medians) held the truth."""
    truth = fresh = old = 0
    for seed in range(WORKLOADS):
        values, true, build = _workload(seed, exponent)
        cases = [case("site", v, size=s) for s, v in zip(SIZES, values, strict=True)]
        (fit,) = scaling.fits(cases, "peak")
        predicted = scaling.predict(fit, TARGET)
        assert predicted.low is not None and predicted.high is not None
        assert predicted.beyond_twice and predicted.factor == 2.5
        truth += predicted.low <= true <= predicted.high
        fresh += predicted.low <= build <= predicted.high
        medians = fit_line([float(s) for s in fit.sizes], fit.values)
        half = medians.interval(TARGET)
        old += predicted.value - half <= true <= predicted.value + half
    return truth, fresh, old


def test_linear_workloads_are_held_by_the_interval() -> None:
    truth, fresh, old = _coverage(1.0)
    print(f"linear: truth {truth}/{WORKLOADS}, new build {fresh}/{WORKLOADS}, "
          f"median-residual interval {old}/{WORKLOADS}")
    assert truth >= 18 and fresh >= 18


def test_mild_curvature_is_held_by_spanning_the_growth_model() -> None:
    truth, fresh, old = _coverage(1.05)
    print(f"exponent 1.05: truth {truth}/{WORKLOADS}, new build {fresh}/{WORKLOADS}, "
          f"median-residual interval {old}/{WORKLOADS}")
    assert truth >= 18 and fresh >= 17


def test_a_results_file_gives_the_same_interval(tmp_path: Path) -> None:
    values, _, _ = _workload(3, 1.0)
    report = judged([case("site", v, size=s) for s, v in zip(SIZES, values, strict=True)])
    path = tmp_path / "results.json"
    report.write(path)
    made = report.scenarios[0].analysis.fits("peak")[0]
    read = Results.read(path).scenarios[0].analysis.fits("peak")[0]
    assert read.repeats == made.repeats and len(read.repeats[0]) == 3
    assert scaling.predict(read, TARGET) == scaling.predict(made, TARGET)
    outlook = read.outlook
    assert outlook is not None and outlook.beyond_twice
    assert outlook.low is not None and outlook.high is not None
    assert outlook.low < outlook.expected < outlook.high
