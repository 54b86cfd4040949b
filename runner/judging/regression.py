"""Small, dependency-free statistics: least squares lines, the growth-exponent fit, Theil-Sen
slopes with Sen's confidence interval and the Mann-Kendall trend test."""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom (beyond: ~normal).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t975(df: int) -> float:
    if df < 1:
        return math.inf
    return _T975[df - 1] if df <= len(_T975) else 1.96


def r_squared(ys: list[float], fitted: list[float]) -> float:
    mean = math.fsum(ys) / len(ys)
    total = math.fsum((y - mean) ** 2 for y in ys)
    residual = math.fsum((y - f) ** 2 for y, f in zip(ys, fitted, strict=True))
    if total == 0:
        return 1.0 if residual == 0 else 0.0
    return 1.0 - residual / total


@dataclass(frozen=True)
class Line:
    """y = intercept + slope * x by ordinary least squares."""

    intercept: float
    slope: float
    r2: float
    n: int
    x_mean: float
    sxx: float
    residual_sd: float  # sqrt(SSres / (n - 2)); 0 with two points

    def interval(self, x: float) -> float:
        """Half-width of the 95% prediction interval of a new observation at x."""
        if self.n < 3:
            return math.inf
        spread = 1 + 1 / self.n + (x - self.x_mean) ** 2 / self.sxx
        return t975(self.n - 2) * self.residual_sd * math.sqrt(spread)


def repeats_interval(groups: list[tuple[float, list[float]]], x: float, center: float) -> float:
    """Half-width of a 95% prediction interval for one new build at ``x`` whose expected value is
    ``center``, from every repeat at every measured size (not one statistic per size).

    The line is fitted through all repeats, so its residual SD holds both the run-to-run noise
    and the points' distance from a line, with n - 2 degrees of freedom (t quantile). Memory
    noise is proportional to memory, so the SD used is the larger of that residual SD and the
    repeats' pooled relative SD (pure error) times ``center``: the noise where the prediction is,
    not where the small sizes were measured. Infinite with fewer than three values.
    """
    xs = [size for size, values in groups for _ in values]
    ys = [value for _, values in groups for value in values]
    if len(xs) < 3 or len({*xs}) < 2:
        return math.inf
    line = fit_line(xs, ys)
    squares, df = 0.0, 0
    for _, values in groups:
        mean = math.fsum(values) / len(values)
        if len(values) > 1 and mean:
            squares += math.fsum(((v - mean) / mean) ** 2 for v in values)
            df += len(values) - 1
    relative = math.sqrt(squares / df) if df else 0.0
    sd = max(line.residual_sd, relative * abs(center))
    spread = 1 + 1 / line.n + (x - line.x_mean) ** 2 / line.sxx
    return t975(line.n - 2) * sd * math.sqrt(spread)


def _spread(xs: list[float]) -> tuple[int, float, float]:
    """n, the mean and the sum of squared deviations of the x values."""
    n = len(xs)
    x_mean = math.fsum(xs) / n
    return n, x_mean, math.fsum((x - x_mean) ** 2 for x in xs)


def fit_line(xs: list[float], ys: list[float]) -> Line:
    """Needs at least two distinct x values."""
    n, x_mean, sxx = _spread(xs)
    y_mean = math.fsum(ys) / n
    if sxx == 0:
        raise ValueError("a line needs at least two distinct x values")
    sxy = math.fsum((x - x_mean) * (y - y_mean) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    intercept = y_mean - slope * x_mean
    fitted = [intercept + slope * x for x in xs]
    ss_res = math.fsum((y - f) ** 2 for y, f in zip(ys, fitted, strict=True))
    residual_sd = math.sqrt(ss_res / (n - 2)) if n > 2 else 0.0
    return Line(intercept, slope, r_squared(ys, fitted), n, x_mean, sxx, residual_sd)


@dataclass(frozen=True)
class PowerFit:
    """y = fixed + coefficient * x ** exponent: how the size-dependent part grows.

    A plain log-log fit of y would mix the fixed overhead into the exponent (a linear build with
    a large interpreter overhead would look sub-linear, a quadratic one almost linear), so the
    exponent is fitted with the overhead as a separate, non-negative term.
    """

    fixed: float
    coefficient: float
    exponent: float
    r2: float

    def __call__(self, x: float) -> float:
        return self.fixed + self.coefficient * math.pow(x, self.exponent)


def _power_at(xs: list[float], ys: list[float], k: float) -> tuple[float, float, float]:
    """Least squares fixed and coefficient for a given exponent (fixed >= 0); with SSres."""
    zs = [x**k for x in xs]
    try:
        line = fit_line(zs, ys)
        fixed, coefficient = line.intercept, line.slope
    except ValueError:
        fixed, coefficient = -1.0, 0.0
    if fixed < 0:
        fixed = 0.0
        coefficient = math.fsum(z * y for z, y in zip(zs, ys, strict=True)) / math.fsum(
            z * z for z in zs)
    ss = math.fsum((y - fixed - coefficient * z) ** 2 for z, y in zip(zs, ys, strict=True))
    return fixed, coefficient, ss


def fit_power(xs: list[float], ys: list[float], low: float = 0.05,
              high: float = 4.0) -> PowerFit:
    """Grid search over the exponent, then golden-section refinement (xs must be positive)."""
    grid = [low + i * (high - low) / 80 for i in range(81)]
    best = min(grid, key=lambda k: _power_at(xs, ys, k)[2])
    step = (high - low) / 80
    a, b = max(low, best - step), min(high, best + step)
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(60):
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        if _power_at(xs, ys, c)[2] <= _power_at(xs, ys, d)[2]:
            b = d
        else:
            a = c
    k = (a + b) / 2
    fixed, coefficient, _ = _power_at(xs, ys, k)
    fitted = [fixed + coefficient * x**k for x in xs]
    return PowerFit(fixed, coefficient, k, r_squared(ys, fitted))


def fit_loglog(xs: list[float], ys: list[float]) -> Line:
    """ln y = c + k ln x (positive values only)."""
    return fit_line([math.log(x) for x in xs], [math.log(y) for y in ys])


@dataclass(frozen=True)
class Trend:
    """A robust slope of y over x with its 95% confidence interval and a one-sided p-value
    for "y increases" (Mann-Kendall)."""

    slope: float
    low: float
    high: float
    p_increase: float
    n: int

    @property
    def significant(self) -> bool:
        """Growth is established: the whole confidence interval is above zero."""
        return self.low > 0


def theil_sen(xs: list[float], ys: list[float]) -> Trend:
    """Theil-Sen slope (median of pairwise slopes) with Sen's rank-based interval."""
    n = len(xs)
    if n < 2:
        raise ValueError("a trend needs at least two points")
    slopes = sorted((ys[j] - ys[i]) / (xs[j] - xs[i])
                    for i in range(n) for j in range(i + 1, n) if xs[j] != xs[i])
    count = len(slopes)
    middle = count // 2
    slope = slopes[middle] if count % 2 else (slopes[middle - 1] + slopes[middle]) / 2
    s, var_s = _mann_kendall(ys)
    z = NormalDist().inv_cdf(0.975)
    c = z * math.sqrt(var_s)
    lower_rank = max(0, math.floor((count - c) / 2))
    upper_rank = min(count - 1, math.ceil((count + c) / 2))
    low, high = slopes[lower_rank], slopes[upper_rank]
    if var_s > 0:
        z_s = (s - 1) / math.sqrt(var_s) if s > 0 else (s + 1) / math.sqrt(var_s) if s < 0 else 0
        p = 1 - NormalDist().cdf(z_s)
    else:
        p = 1.0
    return Trend(slope, low, high, p, n)


def _mann_kendall(ys: list[float]) -> tuple[int, float]:
    """The S statistic and its variance, corrected for tied values."""
    n = len(ys)
    s = sum((ys[j] > ys[i]) - (ys[j] < ys[i]) for i in range(n) for j in range(i + 1, n))
    ties: dict[float, int] = {}
    for y in ys:
        ties[y] = ties.get(y, 0) + 1
    var = (n * (n - 1) * (2 * n + 5)
           - sum(t * (t - 1) * (2 * t + 5) for t in ties.values() if t > 1)) / 18
    return s, var
