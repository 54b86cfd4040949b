"""The change detector's quality on synthetic series with real noise, against the anchors'
methods. Prints a markdown table (docs/detection.md has the last run's). Run once, when quiet:
python3 benchmarks/detector.py [--series 300] [--seed 17] [--otava /tmp/otava-venv/bin/python]
python3 benchmarks/detector.py --extract /tmp/before.json   # refresh benchmarks/data/noise.json

Series: 100 commits of 2 repeats each (memsla's default), value = level x (1 + step after
commit k) x (1 + e), e drawn from memsla's own repeats (benchmarks/data/noise.json: the timed
runs of a ``runner check sla.yaml``) as residuals around each case's median, scaled to one
value's spread (x sqrt(k/(k-1)) for k repeats), smoothed bootstrap (a Gaussian kernel of
Silverman's bandwidth on each draw, so a handful of residuals give a continuous law). Steps of
0 (no step), 3, 5, 10 and 20% at a commit k drawn uniformly in [5, 95).

Methods, each on the median of every commit's repeats, counting increases only (a step is an
increase; memory and time are worse higher):
  pelt      runner.judging.changes.change_points (ruptures Pelt L2, Welch t-test per break)
  otava     Apache Otava 0.8.0's E-Divisive means + t-test (compute_change_points, its defaults:
            window 50, p < 0.001), run in its own venv (--otava; skipped if absent)
  prev-200% github-action-benchmark: alert when a value exceeds the previous by the threshold
  prev-10%
  t-window  Bencher's t-test: a value above the 99th percentile of a t-distribution fitted to
            the previous <= 64 values (at least 5)
Scores: found = an alert within +-1 commit of the step; exact = on the step's commit; extra =
alerts elsewhere per series with a step; false = alerts per 1,000 commits with no step.
Then the pull request comparison: compare_to_base with 2-3 head repeats against 10-20 base
values (the raw repeats of the base branch's last 5-10 commits), at true changes of 0-20%.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from runner.judging.changes import SeriesPoint, change_points, compare_to_base

DATA = Path(__file__).parent / "data" / "noise.json"
METRICS = ("peak", "rss_peak", "duration")
STEPS = (0.0, 0.03, 0.05, 0.10, 0.20)
COMMITS, REPEATS = 100, 2
OTAVA_SCRIPT = """
import json, sys
from otava.analysis import compute_change_points
out = []
for series in json.load(sys.stdin):
    cps, _ = compute_change_points(series, window_len=50, max_pvalue=0.001)
    out.append([int(cp.index) for cp in cps if cp.stats.forward_rel_change() > 0])
json.dump(out, sys.stdout)
"""


def extract(results: Path) -> None:
    """The timed repeats of every case with two or more, per metric, into DATA."""
    data = json.loads(results.read_text())
    cases = []
    for case in data["cases"]:
        values = {m: case["metrics"][m]["values"] for m in METRICS if m in case["metrics"]}
        if all(len(v) >= 2 for v in values.values()):
            cases.append({"scenario": case["scenario"], "params": case["params"],
                          "values": values})
    DATA.write_text(json.dumps({
        "source": f"runner check sla.yaml (memsla {data.get('memsla_version')}, "
                  f"{data.get('created')}): timed repeats of each case", "cases": cases},
        indent=1) + "\n")
    print(f"{len(cases)} cases -> {DATA}")


class NoiseModel:
    """A smoothed bootstrap of relative residuals of one metric."""

    def __init__(self, cases: list[dict[str, object]], metric: str, scale: float = 1.0) -> None:
        residuals: list[float] = []
        for case in cases:
            values = case["values"][metric]  # type: ignore[index]
            k, middle = len(values), statistics.median(values)
            residuals += [(v / middle - 1) * math.sqrt(k / (k - 1)) * scale for v in values]
        self.residuals = np.asarray(residuals)
        spread = float(np.std(self.residuals))
        self.bandwidth = 1.06 * spread * len(residuals) ** -0.2
        self.sigma = math.sqrt(spread**2 + self.bandwidth**2)

    def draw(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return rng.choice(self.residuals, size=shape) + rng.normal(0, self.bandwidth, shape)


def series(rng: np.random.Generator, noise: NoiseModel, step: float) -> tuple[np.ndarray, int]:
    k = int(rng.integers(5, COMMITS - 5))
    levels = np.where(np.arange(COMMITS) >= k, 1.0 + step, 1.0)
    return 1e8 * levels[:, None] * (1 + noise.draw(rng, (COMMITS, REPEATS))), k


def pelt(values: np.ndarray) -> list[int]:
    points = [SeriesPoint(str(i), tuple(map(float, row))) for i, row in enumerate(values)]
    return [cp.index for cp in change_points(points) if cp.change > 0]


def previous(threshold: float) -> Callable[[np.ndarray], list[int]]:
    def detect(values: np.ndarray) -> list[int]:
        y = np.median(values, axis=1)
        return [i for i in range(1, len(y)) if y[i] > y[i - 1] * (1 + threshold)]
    return detect


def t_window(values: np.ndarray, window: int = 64, least: int = 5) -> list[int]:
    y = np.median(values, axis=1)
    alerts = []
    for i in range(least, len(y)):
        past = y[max(0, i - window):i]
        bound = past.mean() + stats.t.ppf(0.99, len(past) - 1) * past.std(ddof=1)
        if y[i] > bound:
            alerts.append(i)
    return alerts


def otava(python: str, batch: Sequence[np.ndarray]) -> list[list[int]]:
    medians = [np.median(v, axis=1).tolist() for v in batch]
    out = subprocess.run([python, "-c", OTAVA_SCRIPT], input=json.dumps(medians), text=True,
                         capture_output=True, check=True).stdout
    return json.loads(out)  # type: ignore[no-any-return]


@dataclass
class Score:
    series: int = 0
    found: int = 0
    exact: int = 0
    alerts_elsewhere: int = 0

    def add(self, alerts: list[int], k: int | None) -> None:
        self.series += 1
        if k is None:
            self.alerts_elsewhere += len(alerts)
            return
        self.found += any(abs(a - k) <= 1 for a in alerts)
        self.exact += k in alerts
        self.alerts_elsewhere += sum(abs(a - k) > 1 for a in alerts)


def detection(models: dict[str, NoiseModel], n: int, seed: int, python: str | None) -> None:
    methods: dict[str, Callable[[np.ndarray], list[int]]] = {
        "pelt": pelt, "prev-200%": previous(2.0), "prev-10%": previous(0.10),
        "t-window": t_window}
    names = [*methods, *(["otava"] if python else [])]
    print(f"\n### Change points: {n} series of {COMMITS} commits per cell, seed {seed}\n")
    print("| metric (noise) | method | " + " | ".join(
        f"{s:.0%} found / exact / extra" for s in STEPS[1:]) + " | false per 1,000 |")
    print("|---|---|" + "---|" * len(STEPS))
    for metric, model in models.items():
        rng = np.random.default_rng([seed, METRICS.index(metric) if metric in METRICS else 9])
        scores = {name: {step: Score() for step in STEPS} for name in names}
        for step in STEPS:
            batch = [series(rng, model, step) for _ in range(n)]
            for name, method in methods.items():
                for values, k in batch:
                    scores[name][step].add(method(values), k if step else None)
            if python:
                for alerts, (_, k) in zip(otava(python, [v for v, _ in batch]), batch,
                                          strict=True):
                    scores["otava"][step].add(alerts, k if step else None)
        for name in names:
            cells = []
            for step in STEPS[1:]:
                s = scores[name][step]
                cells.append(f"{s.found / s.series:.0%} / {s.exact / s.series:.0%} / "
                             f"{s.alerts_elsewhere / s.series:.2f}")
            null = scores[name][0.0]
            false = 1000 * null.alerts_elsewhere / (null.series * COMMITS)
            print(f"| {metric} (±{model.sigma:.2%}) | {name} | " + " | ".join(cells)
                  + f" | {false:.2f} |")


def pull_requests(models: dict[str, NoiseModel], n: int, seed: int) -> None:
    changes = (0.0, 0.05, 0.10, 0.15, 0.20)
    print(f"\n### Pull requests: regression verdicts (significant / verdict) in {n} trials\n")
    print("| metric | head x base | " + " | ".join(f"{c:.0%}" for c in changes) + " |")
    print("|---|---|" + "---|" * len(changes))
    for metric, model in models.items():
        for heads, window in ((2, 10), (2, 20), (3, 10), (3, 20)):
            rng = np.random.default_rng([seed, heads, window])
            cells = []
            for change in changes:
                significant = verdicts = 0
                for _ in range(n):
                    base = 1 + model.draw(rng, (window,))
                    head = (1 + change) * (1 + model.draw(rng, (heads,)))
                    v = compare_to_base(head.tolist(), base.tolist())
                    significant += v.significant and v.change > 0
                    verdicts += v.verdict == "regression"
                cells.append(f"{significant / n:.0%} / {verdicts / n:.0%}")
            print(f"| {metric} | {heads} x {window} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=300, help="series per cell")
    parser.add_argument("--trials", type=int, default=1000, help="pull requests per cell")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--otava", default="/tmp/otava-venv/bin/python",
                        help="a Python with apache-otava installed")
    parser.add_argument("--noisy", type=float, default=5.0,
                        help="also a 'peak xN' row: peak's noise times N (0: none)")
    parser.add_argument("--extract", type=Path, help="write DATA from a results file and exit")
    args = parser.parse_args()
    if args.extract:
        extract(args.extract)
        return
    cases = json.loads(DATA.read_text())["cases"]
    models = {m: NoiseModel(cases, m) for m in METRICS}
    if args.noisy:
        models[f"peak x{args.noisy:g}"] = NoiseModel(cases, "peak", args.noisy)
    python = args.otava if Path(args.otava).exists() else None
    if python is None:
        print(f"(otava skipped: no {args.otava})", file=sys.stderr)
    detection(models, args.series, args.seed, python)
    pull_requests(models, args.trials, args.seed)


if __name__ == "__main__":
    main()
