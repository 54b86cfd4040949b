"""Change detection over plain numbers: a metric's noise, the level shifts of a main-line series
and a pull request's repeats against the base branch's recent values.

Pure statistics: no I/O, no store. The inputs are the raw values of every repeat; the store and
the series (``runner.history``) hand them over, the CLI and reports show the results.

- ``noise``: median and MAD (scaled to a standard deviation) of repeats or of a stable series.
- ``change_points``: a penalised piecewise-constant fit (``ruptures``' Pelt, L2 cost, penalty
  from the series' own noise) over the median of each commit, each break then kept only if a
  Welch t-test between the segments either side of it is significant (weakest first, as Apache
  Otava merges its weak change points). ``docs/detection.md`` has the measurements that chose it.
- ``compare_to_base``: a significance test (Mann-Whitney U, an exact permutation test with ties,
  or Welch's t-test when too few values for either to ever reach alpha) and a practical size
  (a relative threshold and an absolute floor from the base's noise); a change is a regression
  only where both hold.

numpy, scipy and ruptures are imported inside the functions that need them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Literal

from runner.units import Kind, format_percent, format_value

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

MAD_TO_SIGMA = 1.4826  # MAD x this estimates the standard deviation of normal noise
TINY = 1e-12  # relative noise below this is zero noise (identical values)

# The settings docs/detection.md measured (benchmarks/detector.py).
MIN_SIZE = 3  # commits on each side of a shift, at least
ALPHA = 0.001  # significance of the t-test on each side of a shift
PENALTY = 5.0  # Pelt penalty per break: PENALTY x sigma^2 x log(n), sigma from the series


@dataclass(frozen=True)
class Noise:
    """A metric's noise: ``sigma`` is the MAD scaled to a standard deviation."""

    n: int
    median: float
    sigma: float
    relative: float  # sigma / |median| (0 when the median is 0 and the values are identical)

    def describe(self, kind: Kind = Kind.NUMBER) -> str:
        """``'242 MiB, noise ±0.6%'``."""
        value = format_value(kind, self.median)
        if self.n < 2:
            return f"{value}, noise unknown (1 value)"
        return f"{value}, noise ±{format_percent(self.relative)}"


@dataclass(frozen=True)
class SeriesPoint:
    """One commit of a series: its id and the raw value of every repeat (at least one)."""

    commit: str
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError(f"commit {self.commit}: no values")
        if not all(math.isfinite(v) for v in self.values):
            raise ValueError(f"commit {self.commit}: a value is not finite: {self.values}")

    @property
    def level(self) -> float:
        return statistics.median(self.values)


@dataclass(frozen=True)
class ChangePoint:
    """A level shift: ``commit`` (at ``index`` in the series) is the first of the new level."""

    index: int
    commit: str
    before: float  # median level of the segment before
    after: float  # median level of the segment after
    change: float  # after - before
    relative: float  # change / |before| (inf when before is 0)
    p_value: float
    test: str
    n_before: int  # commits in each segment
    n_after: int

    def describe(self, kind: Kind = Kind.NUMBER) -> str:
        """``'abc123: 200 MiB -> 230 MiB (+30 MiB, +15%), p=2e-09 (welch-t)'``."""
        return (f"{self.commit}: {format_value(kind, self.before)} -> "
                f"{format_value(kind, self.after)} ({format_value(kind, self.change, signed=True)},"
                f" {format_percent(self.relative, signed=True)}),"
                f" p={self.p_value:.2g} ({self.test})")


Verdict = Literal["regression", "improvement", "unchanged", "inconclusive"]


@dataclass(frozen=True)
class PullRequestVerdict:
    """A pull request's repeats against the base branch's recent values."""

    verdict: Verdict
    head: float  # median of the head's values
    base: float  # median of the base's values
    change: float  # head - base
    relative: float  # change / |base|
    p_value: float
    test: str  # "mann-whitney-u", "permutation", "welch-t", "t-prediction" ("none": 1 vs 1)
    significant: bool  # p_value < alpha
    threshold: float  # the relative size a change must reach
    floor: float  # the absolute size a change must reach
    noise: Noise  # the base's
    message: str  # the verdict in words


def noise(values: Sequence[float]) -> Noise:
    """Median and MAD of repeats (or of a stable series' values)."""
    if not values:
        raise ValueError("noise of no values")
    middle = statistics.median(values)
    sigma = MAD_TO_SIGMA * statistics.median(abs(v - middle) for v in values)
    return Noise(len(values), middle, sigma, _relative(sigma, middle))


def series_noise(points: Sequence[SeriesPoint]) -> Noise:
    """The noise of a series that may hold level shifts: the differences between repeats of
    one commit where commits have several, else those between successive commits (a shift
    moves one difference, not their median)."""
    if not points:
        raise ValueError("noise of an empty series")
    levels = [p.level for p in points]
    middle = statistics.median(levels)
    pairs = [abs(x - y) for p in points for i, x in enumerate(p.values) for y in p.values[i + 1:]]
    if pairs:
        # |x - y| of two draws has a spread of sigma x sqrt(2)
        sigma = MAD_TO_SIGMA * statistics.median(pairs) / math.sqrt(2)
        n = sum(len(p.values) for p in points if len(p.values) > 1)
    elif len(levels) > 1:
        sigma = _difference_sigma(levels)
        n = len(levels)
    else:
        sigma, n = 0.0, 1
    return Noise(n, middle, sigma, _relative(sigma, middle))


def change_points(points: Sequence[SeriesPoint], *, accepted: Collection[str] = (),
                  min_size: int = MIN_SIZE, alpha: float = ALPHA, penalty: float = PENALTY,
                  min_relative: float = 0.0) -> list[ChangePoint]:
    """The level shifts of a main-line series in commit order, one per shift.

    A commit in ``accepted`` starts a new reference: the series is cut there, so the shift it
    made is not alerted again and the levels before it are never compared with those after.
    A shift needs ``min_size`` commits on each side, a p-value below ``alpha`` and a relative
    size of at least ``min_relative``.
    """
    if min_size < 2:
        raise ValueError("min_size must be at least 2 (a t-test needs a spread on each side)")
    cuts = [0, *(i for i, p in enumerate(points) if i and p.commit in accepted), len(points)]
    found: list[ChangePoint] = []
    for start, stop in pairwise(cuts):
        segment = points[start:stop]
        for index, stats in _segment_shifts([p.level for p in segment], min_size, alpha,
                                            penalty, min_relative):
            found.append(ChangePoint(
                index=start + index, commit=segment[index].commit, before=stats.before,
                after=stats.after, change=stats.after - stats.before, relative=stats.relative,
                p_value=stats.p_value, test="welch-t", n_before=stats.n_before,
                n_after=stats.n_after))
    return found


def compare_to_base(head: Sequence[float], base: Sequence[float], *, threshold: float = 0.10,
                    floor: float | None = None, alpha: float = 0.05,
                    kind: Kind = Kind.NUMBER) -> PullRequestVerdict:
    """A pull request's repeats (``head``) against a window of the base branch's values.

    A regression (or improvement) needs both a significant test at ``alpha`` and a practical
    size: at least ``threshold`` x the base median and at least ``floor`` (default: 3 x the
    base's noise sigma). Where neither the rank test nor the permutation test can reach alpha
    with so few values, Welch's t-test decides (it assumes normal noise); with fewer than two
    value on each side no test can, and the verdict is "inconclusive".
    """
    if not head or not base:
        raise ValueError("compare_to_base needs at least one head and one base value")
    base_noise = noise(base)
    head_median = statistics.median(head)
    change = head_median - base_noise.median
    relative = _relative(change, base_noise.median) if change else 0.0
    floor = 3.0 * base_noise.sigma if floor is None else floor
    p_value, test = two_sample_test(head, base, alpha)
    significant = p_value < alpha
    large = abs(relative) >= threshold and abs(change) >= floor
    verdict: Verdict
    if significant and large:
        verdict = "regression" if change > 0 else "improvement"
    elif math.isnan(p_value):
        verdict = "inconclusive"
    else:
        verdict = "unchanged"
    size = (f"{format_value(kind, change, signed=True)} ({format_percent(relative, signed=True)}): "
            f"{format_value(kind, base_noise.median)} -> {format_value(kind, head_median)}")
    bounds = (f"threshold {format_percent(threshold)} and {format_value(kind, floor)}, "
              f"base noise ±{format_percent(base_noise.relative)}")
    if verdict == "inconclusive":
        why = f"too few values to test ({len(head)} head, {len(base)} base)"
    else:
        why = (f"p={p_value:.2g} ({test}) {'<' if significant else '>='} {alpha:g}, "
               f"size {'beyond' if large else 'within'} {bounds}")
    message = f"{verdict}: {size}; {why}"
    return PullRequestVerdict(verdict, head_median, base_noise.median, change, relative, p_value,
                              test, significant, threshold, floor, base_noise, message)


def two_sample_test(a: Sequence[float], b: Sequence[float], alpha: float) -> tuple[float, str]:
    """A two-sided p-value for "a and b come from one distribution", and the test's name.

    Mann-Whitney U (exact) without ties; an exact permutation test of the difference of means
    with ties; Welch's t-test where the smallest p-value either can give (2 / C(n+m, n)) is not
    below ``alpha``; a t prediction interval for a single value against several. NaN where
    each side has a single value.
    """
    from scipy import stats

    n, m = len(a), len(b)
    if _same(a, b):
        return 1.0, "identical"
    if n == 1 and m == 1:
        return math.nan, "none"
    if min(n, m) == 1:
        return _prediction(*((a[0], b) if n == 1 else (b[0], a))), "t-prediction"
    smallest = 2.0 / math.comb(n + m, n)
    if smallest < alpha:
        if len(set(a) | set(b)) == n + m:
            result = stats.mannwhitneyu(a, b, alternative="two-sided", method="exact")
            return float(result.pvalue), "mann-whitney-u"
        return _permutation(a, b), "permutation"
    return welch(a, b), "welch-t"


def _prediction(value: float, sample: Sequence[float]) -> float:
    """How likely a new draw of ``sample``'s law lies as far from its mean as ``value``."""
    from scipy import stats

    mean, spread = statistics.fmean(sample), statistics.stdev(sample)
    if spread <= TINY * max(abs(mean), 1e-300):
        return 1.0 if abs(value - mean) <= TINY * max(abs(mean), 1e-300) else 0.0
    t = (value - mean) / (spread * math.sqrt(1 + 1 / len(sample)))
    return float(2 * stats.t.sf(abs(t), len(sample) - 1))


def welch(a: Sequence[float], b: Sequence[float]) -> float:
    """Welch's two-sided t-test; with no spread on either side, 0 if the means differ."""
    from scipy import stats

    mean_a, mean_b = statistics.fmean(a), statistics.fmean(b)
    var_a = statistics.variance(a) if len(a) > 1 else 0.0
    var_b = statistics.variance(b) if len(b) > 1 else 0.0
    scale = max(abs(mean_a), abs(mean_b), 1e-300)
    if var_a + var_b <= (TINY * scale) ** 2:
        return 1.0 if abs(mean_a - mean_b) <= TINY * scale else 0.0
    result = stats.ttest_ind(a, b, equal_var=False)
    return float(result.pvalue)


# --- the main-line detector -------------------------------------------------------------------


@dataclass(frozen=True)
class _Stats:
    before: float
    after: float
    p_value: float
    n_before: int
    n_after: int

    @property
    def relative(self) -> float:
        return _relative(self.after - self.before, self.before) if self.after != self.before \
            else 0.0


def _segment_shifts(levels: list[float], min_size: int, alpha: float, penalty: float,
                    min_relative: float) -> list[tuple[int, _Stats]]:
    """Pelt's breaks over one segment, then the weakest removed until every one is
    significant (and large enough)."""
    n = len(levels)
    if n < 2 * min_size:
        return []
    breaks = _pelt(levels, min_size, penalty)
    while breaks:
        bounds = [0, *breaks, n]
        tested = [
            _Stats(statistics.median(levels[bounds[i - 1]:b]),
                   statistics.median(levels[b:bounds[i + 1]]),
                   welch(levels[bounds[i - 1]:b], levels[b:bounds[i + 1]]),
                   b - bounds[i - 1], bounds[i + 1] - b)
            for i, b in enumerate(bounds[1:-1], start=1)
        ]
        weakest = max(range(len(breaks)), key=lambda i: (tested[i].p_value,
                                                         -abs(tested[i].relative)))
        small = [i for i, s in enumerate(tested) if abs(s.relative) < min_relative]
        if tested[weakest].p_value >= alpha:
            del breaks[weakest]
        elif small:
            del breaks[min(small, key=lambda i: abs(tested[i].relative))]
        else:
            return list(zip(breaks, tested, strict=True))
    return []


def _pelt(levels: list[float], min_size: int, penalty: float) -> list[int]:
    """The first index of every new level of the best piecewise-constant fit (L2 cost) with
    ``penalty`` x sigma^2 x log(n) per break, in relative units."""
    import numpy as np
    import ruptures

    signal = _scaled(levels)
    sigma = max(_difference_sigma(list(signal)), TINY)
    cost = penalty * sigma**2 * math.log(len(levels))
    # the linear kernel's cost is the L2 cost; ruptures runs Pelt on it in C
    algo = ruptures.KernelCPD(kernel="linear", min_size=min_size).fit(np.asarray(signal))
    return [int(b) for b in algo.predict(pen=cost)[:-1]]


def _scaled(levels: list[float]) -> npt.NDArray[np.float64]:
    """The levels relative to their median (the scale of their largest one when that is 0)."""
    import numpy as np

    values = np.asarray(levels, dtype=np.float64)
    scale = abs(float(np.median(values))) or float(np.max(np.abs(values))) or 1.0
    return values / scale


def _difference_sigma(levels: Sequence[float]) -> float:
    """The noise of a series with level shifts: the MAD of successive differences / sqrt(2)."""
    if len(levels) < 2:
        return 0.0
    diffs = [b - a for a, b in pairwise(levels)]
    middle = statistics.median(diffs)
    return MAD_TO_SIGMA * statistics.median(abs(d - middle) for d in diffs) / math.sqrt(2)


# --- small helpers ----------------------------------------------------------------------------


def _relative(value: float, reference: float) -> float:
    if reference:
        return value / abs(reference)
    return 0.0 if not value else math.copysign(math.inf, value)


def _same(a: Sequence[float], b: Sequence[float]) -> bool:
    return len(set(a) | set(b)) == 1


def _permutation(a: Sequence[float], b: Sequence[float]) -> float:
    """Exact (or, past 20,000 splits, sampled with a fixed seed) two-sided permutation test of
    the difference of means."""
    import numpy as np
    from scipy import stats

    def mean_difference(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64],
                        axis: int) -> npt.NDArray[np.float64]:
        return np.mean(x, axis=axis) - np.mean(y, axis=axis)  # type: ignore[no-any-return]

    result = stats.permutation_test(
        (np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)), mean_difference,
        permutation_type="independent", alternative="two-sided", n_resamples=20_000,
        vectorized=True, rng=np.random.default_rng(0))
    return float(result.pvalue)
