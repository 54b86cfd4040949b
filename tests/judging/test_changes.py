"""The change detector on planted truths: steps found on their commit with their size, no alerts
on flat noisy series, accepted shifts, short and noiseless series, and the pull request test
both ways and at its floor. Seeded noise of memsla's own size (peak: about 0.6%)."""

from __future__ import annotations

import math
import random

import pytest

from runner.judging.changes import (
    ChangePoint,
    SeriesPoint,
    change_points,
    compare_to_base,
    noise,
    series_noise,
    two_sample_test,
)
from runner.units import Kind

MiB = 1024 * 1024
LEVEL = 240 * MiB


def series(levels: list[float], *, sigma: float = 0.006, repeats: int = 2,
           seed: int = 0) -> list[SeriesPoint]:
    """One point per level, each with ``repeats`` values of relative noise ``sigma``."""
    rng = random.Random(seed)
    return [SeriesPoint(f"c{i:03d}", tuple(level * (1 + rng.gauss(0, sigma))
                                           for _ in range(repeats)))
            for i, level in enumerate(levels)]


def steps(n: int, *shifts: tuple[int, float]) -> list[float]:
    """``n`` levels of LEVEL, times (1 + size) from each shift's commit on."""
    levels = []
    for i in range(n):
        level = float(LEVEL)
        for at, size in shifts:
            if i >= at:
                level *= 1 + size
        levels.append(level)
    return levels


@pytest.mark.parametrize(("n", "at", "size"), [
    (100, 37, 0.10), (100, 80, 0.03), (100, 12, -0.05), (12, 6, 0.15), (12, 3, 0.15),
    (30, 27, 0.20),
])
def test_a_planted_step_is_found_on_its_commit_with_its_size(n: int, at: int,
                                                             size: float) -> None:
    found = change_points(series(steps(n, (at, size)), seed=at))
    assert [cp.commit for cp in found] == [f"c{at:03d}"]
    cp = found[0]
    assert cp.index == at
    assert cp.relative == pytest.approx(size, abs=0.02)
    assert cp.change == pytest.approx(cp.after - cp.before)
    assert cp.before == pytest.approx(LEVEL, rel=0.01)
    assert cp.p_value < 0.001 and cp.test == "welch-t"
    assert (cp.n_before, cp.n_after) == (at, n - at)


def test_two_steps_give_two_alerts_one_each() -> None:
    found = change_points(series(steps(100, (30, 0.10), (70, 0.05)), seed=3))
    assert [cp.index for cp in found] == [30, 70]
    assert [round(cp.relative, 2) for cp in found] == [0.10, 0.05]


@pytest.mark.parametrize("seed", range(20))
def test_no_alert_on_a_flat_noisy_series(seed: int) -> None:
    assert change_points(series(steps(100), seed=seed)) == []


def test_no_alert_on_a_noisier_flat_series_with_one_repeat() -> None:
    for seed in range(10):
        assert change_points(series(steps(60), sigma=0.05, repeats=1, seed=seed)) == []


def test_an_accepted_shift_is_not_alerted_again_and_becomes_the_reference() -> None:
    points = series(steps(100, (30, 0.10), (70, 0.05)), seed=4)
    found = change_points(points, accepted={"c030"})
    assert [cp.commit for cp in found] == ["c070"]
    # the level after the accepted commit is the reference, not the one before it
    assert found[0].before == pytest.approx(LEVEL * 1.10, rel=0.01)
    assert found[0].n_before == 40
    assert change_points(points, accepted={"c030", "c070"}) == []


def test_an_accepted_commit_cuts_the_series_even_off_a_shift() -> None:
    # a shift at 50 with the accepted commit at 45: 45..99 still holds the shift at 50
    points = series(steps(100, (50, 0.10)), seed=5)
    assert [cp.commit for cp in change_points(points, accepted={"c045"})] == ["c050"]
    # fewer than MIN_SIZE commits between the accepted one and the shift: too few to tell
    assert change_points(points, accepted={"c048"}) == []
    # accepted after the shift: before and after it are never compared
    assert change_points(points, accepted={"c052"}) == [
        cp for cp in change_points(points[:52]) if cp.index < 52]


def test_accepted_ids_that_are_not_in_the_series_change_nothing() -> None:
    points = series(steps(40, (20, 0.10)), seed=6)
    assert change_points(points, accepted={"elsewhere"}) == change_points(points)


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_very_short_series_give_no_alert_and_no_crash(n: int) -> None:
    points = series([1.0, 2.0, 4.0][:n] + [8.0] * max(0, n - 3))
    assert change_points(points) == []
    if n:
        assert series_noise(points).n >= 1


def test_identical_values_zero_noise() -> None:
    flat = [SeriesPoint(f"c{i}", (100.0, 100.0)) for i in range(20)]
    assert change_points(flat) == []
    assert series_noise(flat).sigma == 0.0
    stepped = [SeriesPoint(f"c{i}", (100.0 if i < 8 else 115.0,)) for i in range(20)]
    [cp] = change_points(stepped)
    assert (cp.index, cp.before, cp.after, cp.relative, cp.p_value) == (8, 100.0, 115.0, 0.15,
                                                                         0.0)
    zeros = [SeriesPoint(f"c{i}", (0.0,)) for i in range(10)]
    assert change_points(zeros) == []


def test_min_relative_drops_small_shifts() -> None:
    points = series(steps(100, (40, 0.03)), seed=7)
    assert len(change_points(points)) == 1
    assert change_points(points, min_relative=0.05) == []


def test_a_point_needs_a_value_and_finite_ones() -> None:
    with pytest.raises(ValueError, match="no values"):
        SeriesPoint("c", ())
    with pytest.raises(ValueError, match="not finite"):
        SeriesPoint("c", (1.0, math.nan))
    with pytest.raises(ValueError, match="min_size"):
        change_points([], min_size=1)


def test_change_point_described() -> None:
    cp = ChangePoint(4, "abc123", 200 * MiB, 230 * MiB, 30 * MiB, 0.15, 2e-9, "welch-t", 4, 8)
    assert cp.describe(Kind.BYTES) == \
        "abc123: 200 MiB -> 230 MiB (+30 MiB, +15%), p=2e-09 (welch-t)"


def test_noise_of_repeats() -> None:
    n = noise([100.0, 101.0, 99.0, 100.0, 100.5])
    assert (n.n, n.median) == (5, 100.0)
    assert n.sigma == pytest.approx(1.4826 * 0.5)
    assert n.relative == pytest.approx(n.sigma / 100.0)
    assert noise([242 * MiB, 243 * MiB, 241 * MiB]).describe(Kind.BYTES) == \
        "242 MiB, noise ±0.6%"
    assert noise([5.0]).describe() == "5, noise unknown (1 value)"
    assert noise([0.0, 0.0]).relative == 0.0
    with pytest.raises(ValueError):
        noise([])


def test_series_noise_ignores_the_shift() -> None:
    points = series(steps(100, (50, 0.20)), sigma=0.01, seed=8)
    assert series_noise(points).relative == pytest.approx(0.01, rel=0.25)
    one_each = series(steps(100, (50, 0.20)), sigma=0.01, repeats=1, seed=8)
    assert series_noise(one_each).relative == pytest.approx(0.01, rel=0.25)


# --- pull requests ---------------------------------------------------------------------------

BASE = [100.0 * (1 + random.Random(1).gauss(0, 0.01)) for _ in range(1)] + [
    100.0 * (1 + g) for g in (0.004, -0.006, 0.011, -0.002, 0.007, -0.009, 0.001, -0.013, 0.005,
                              0.009, -0.004, 0.002, -0.007, 0.012, -0.001)]


def test_pull_request_regression() -> None:
    v = compare_to_base([115.2, 114.6, 115.9], BASE)
    assert v.verdict == "regression"
    assert v.significant and v.test == "mann-whitney-u"
    assert v.relative == pytest.approx(0.152, abs=0.01)
    assert v.message.startswith("regression: +15 (+15%): 100 -> 115; p=0.0021 (mann-whitney")


def test_pull_request_improvement() -> None:
    v = compare_to_base([80.1, 79.5], BASE)
    assert v.verdict == "improvement"
    assert v.change < 0


def test_pull_request_unchanged_when_only_noise() -> None:
    v = compare_to_base([100.3, 99.6, 100.8], BASE)
    assert v.verdict == "unchanged"
    assert not v.significant


def test_pull_request_significant_but_small_is_not_a_regression() -> None:
    v = compare_to_base([105.2, 104.8, 105.5], BASE)
    assert v.significant
    assert v.verdict == "unchanged"
    assert "within" in v.message


def test_pull_request_floor_from_the_base_noise() -> None:
    noisy = [100.0, 80.0, 120.0, 90.0, 110.0, 95.0, 105.0, 85.0, 115.0, 100.0]
    v = compare_to_base([131.0, 132.0, 133.0], noisy, threshold=0.10)
    assert v.floor == pytest.approx(3 * noise(noisy).sigma)
    assert v.floor > 30  # the noise floor, not the 10%, decides here
    assert v.significant
    assert v.verdict == "unchanged"
    # just past the floor
    w = compare_to_base([160.0, 161.0, 162.0], noisy)
    assert w.change > w.floor and w.verdict == "regression"
    # an explicit floor wins over the noise's
    assert compare_to_base([131.0, 132.0, 133.0], noisy, floor=10.0).verdict == "regression"


def test_pull_request_with_too_few_values_for_rank_tests_uses_welch() -> None:
    v = compare_to_base([110.0, 110.5], [100.0, 100.4, 99.8])
    assert v.test == "welch-t"
    assert v.verdict == "regression"


def test_pull_request_with_ties_uses_a_permutation_test() -> None:
    v = compare_to_base([112.0, 112.0], [100.0] * 5 + [101.0] * 5)
    assert v.test == "permutation"
    assert v.p_value == pytest.approx(2 / math.comb(12, 2))
    assert v.verdict == "regression"


def test_pull_request_single_head_value() -> None:
    v = compare_to_base([112.0], BASE)
    assert v.verdict == "regression"
    assert v.test == "t-prediction"
    assert compare_to_base([112.0], [100.0]).verdict == "inconclusive"


def test_pull_request_identical_values() -> None:
    v = compare_to_base([100.0, 100.0], [100.0] * 10)
    assert (v.verdict, v.p_value, v.change) == ("unchanged", 1.0, 0.0)
    assert compare_to_base([120.0, 120.0], [100.0] * 10).verdict == "regression"


def test_pull_request_message_speaks_the_metric_unit() -> None:
    base = [240 * MiB + i * 100_000 for i in range(10)]
    v = compare_to_base([290 * MiB, 291 * MiB], base, kind=Kind.BYTES)
    assert "MiB" in v.message and "noise ±" in v.message


def test_two_sample_test_false_positive_rate_is_near_alpha() -> None:
    rng = random.Random(2)
    trials = 400
    hits = sum(two_sample_test([rng.gauss(0, 1) for _ in range(3)],
                               [rng.gauss(0, 1) for _ in range(15)], 0.05)[0] < 0.05
               for _ in range(trials))
    assert hits / trials < 0.09
