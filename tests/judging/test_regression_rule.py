"""The regression rule, ``regression(peak) < 10%``, judged by the judging stage against a base
window loaded from a real SQLite store of synthetic checks: a planted +15% head fails, +2%
passes, no history skips (never passes), an unreadable store is no verdict, the window starts
at the newest shift (detected or accepted; an accepted level is the new reference), another
environment is never mixed in, and "Memory over time" shows the same base window."""

from __future__ import annotations

import json
import random
import statistics
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.history.base import load_base
from runner.history.model import Commit, check_record
from runner.history.outlook import history_outlook
from runner.history.store import Store, open_store
from runner.judging.changes import noise
from runner.judging.history_base import DEFAULT_BOUND, HistoryBase
from runner.judging.stage import judge
from runner.judging.status import settle
from runner.results import Results, Verdict
from runner.slafile import parse_suite
from tests.judging.helpers import MiB, case, results

BASE = 200 * MiB


def commit(index: int, branch: str = "main") -> Commit:
    return Commit(sha=f"{index:040x}", branch=branch,
                  committed=f"2026-03-01T00:{index:02d}:00+00:00", subject=f"change {index}")


def head(level: float, seed: int = 1, limit: int | None = None) -> Results:
    draw = random.Random(seed)
    built = case("build", [level * (1 + draw.gauss(0, 0.003)) for _ in range(3)], size=100)
    built.limit = limit
    return results([built])


def fill(store: Store, levels: list[float], limit: int | None = None,
         branch: str = "main") -> None:
    for index, level in enumerate(levels):
        store.add(check_record(head(level, seed=100 + index, limit=limit),
                               commit(index, branch)))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(tmp_path / "history.db") as opened:
        yield opened


def judged(checked: Results, history: HistoryBase | None,
           slas: tuple[str, ...] = ("regression(peak) < 10%", "peak < 1GiB")) -> Results:
    suite = parse_suite(json.dumps({"version": 1, "scenarios": {"build": {
        "command": ["true"], "matrix": {"pages": [100]}, "slas": list(slas)}}}))
    judge(checked, suite, history=history)
    settle(checked)
    return checked


def rule(checked: Results, metric: str = "regression(peak)") -> Verdict:
    return next(v for v in checked.cases[0].verdicts if v.metric == metric)


def against(store: Store, checked: Results, every: float | None = None) -> Results:
    return judged(checked, load_base(store, checked, "main", every_metric=every))


def test_a_planted_step_fails_a_small_one_passes(store: Store) -> None:
    fill(store, [BASE] * 12)
    failed = rule(against(store, head(BASE * 1.15)))
    assert failed.passed is False and failed.value == pytest.approx(0.15, abs=0.01)
    assert failed.stat == "median" and not failed.skipped
    assert "regression: +" in failed.reason and "p=" in failed.reason
    assert "base noise ±" in failed.reason
    assert "base: main's last 12 commits (36 values)" in failed.reason
    small = rule(against(store, head(BASE * 1.02)))
    assert small.passed is True and small.value == pytest.approx(0.02, abs=0.01)
    assert "size within threshold 10%" in small.reason
    same = rule(against(store, head(BASE)))
    assert same.passed is True and "unchanged" in same.reason


def test_an_improvement_passes(store: Store) -> None:
    fill(store, [BASE] * 8)
    verdict = rule(against(store, head(BASE * 0.8)))
    assert verdict.passed is True and verdict.reason.startswith("improvement")


def test_the_window_is_the_last_commits_only(store: Store) -> None:
    fill(store, [BASE * 1.2] * 10 + [BASE] * 20)  # the old, higher level is out of the window
    checked = against(store, head(BASE * 1.15))
    assert rule(checked).passed is False
    assert "last 20 commits (60 values)" in rule(checked).reason


def test_no_history_is_skipped_never_passed(store: Store) -> None:
    for checked in (judged(head(BASE), None), against(store, head(BASE))):
        verdict = rule(checked)
        assert verdict.skipped and verdict.passed is None and verdict.value is None
        assert "no base history for build[pages=100] peak" in verdict.reason
        assert checked.status == "pass"  # judged by peak < 1GiB; the skip is listed
    fill(store, [BASE] * 1)
    verdict = rule(against(store, head(BASE)))
    assert verdict.skipped and "(3 values; 5 needed)" in verdict.reason
    only = judged(head(BASE), None, ("regression(peak) < 10%",))
    assert only.status == "error"  # a skipped rule alone is no pass


def test_an_unreadable_store_is_no_verdict(store: Store) -> None:
    problem = HistoryBase(branch="main", store="h.db", problem="history store h.db: corrupt")
    checked = judged(head(BASE), problem)
    verdict = rule(checked)
    assert verdict.passed is None and not verdict.skipped and "corrupt" in verdict.reason
    assert checked.status == "error"


def test_the_window_starts_after_a_detected_shift(store: Store) -> None:
    # a shift on the base branch that nobody accepted: the window never mixes the two levels
    fill(store, [BASE] * 10 + [BASE * 1.15] * 6)
    verdict = rule(against(store, head(BASE * 1.15)))
    assert verdict.passed is True and verdict.value == pytest.approx(0, abs=0.01)
    assert f"6 commits (18 values, since the shift at {commit(10).sha[:10]})" in verdict.reason
    assert rule(against(store, head(BASE * 1.15 * 1.15))).passed is False
    store.accept("build", "build[pages=100]", "peak", commit(10).sha, "bigger cache")
    accepted = rule(against(store, head(BASE * 1.15)))
    assert accepted.passed is True
    assert f"6 commits (18 values, since accepted {commit(10).sha[:10]})" in accepted.reason


def test_an_accepted_level_is_the_reference(store: Store) -> None:
    # two commits of the new level: too few for the detector to name the shift
    fill(store, [BASE] * 10 + [BASE * 1.15] * 2)
    assert rule(against(store, head(BASE * 1.15))).passed is False  # window holds both levels
    store.accept("build", "build[pages=100]", "peak", commit(10).sha, "bigger cache")
    verdict = rule(against(store, head(BASE * 1.15)))
    assert verdict.passed is True
    assert f"2 commits (6 values, since accepted {commit(10).sha[:10]})" in verdict.reason


def test_memory_over_time_shows_the_base_the_rule_judged(store: Store) -> None:
    fill(store, [BASE] * 10 + [BASE * 1.15] * 6 + [BASE * 2])
    checked = head(BASE * 1.2)
    this = commit(16).sha  # the commit being checked, already in the store: never its own base
    base = load_base(store, checked, "main", head=this)
    window = base.window("build", "build[pages=100]", "peak")
    assert window is not None and window.commits == 6 and window.since == commit(10).sha
    verdict = rule(judged(checked, base))
    outlook = history_outlook(store, checked, branch="main", head=this)
    figure = next(f for f in outlook.figures if f.metric == "peak")
    assert figure.base == statistics.median(window.values) == pytest.approx(BASE * 1.15,
                                                                             rel=0.01)
    assert figure.base_commits == window.commits and figure.base_since == window.since
    assert figure.base_noise == pytest.approx(noise(window.values).relative)
    assert figure.relative == pytest.approx(verdict.value) and outlook.window == base.commits


def test_another_environment_is_never_mixed_in(store: Store) -> None:
    fill(store, [BASE] * 10, limit=512 * MiB)
    verdict = rule(against(store, head(BASE * 1.5)))
    assert verdict.skipped and "(0 values; 5 needed)" in verdict.reason
    assert f"limit {512 * MiB} -> None" in verdict.reason


def test_other_branches_are_not_the_base(store: Store) -> None:
    fill(store, [BASE] * 10, branch="feature")
    assert rule(against(store, head(BASE * 1.5))).skipped


def test_fail_on_regression_judges_every_recorded_metric(store: Store) -> None:
    fill(store, [BASE] * 8)
    checked = against(store, head(BASE * 1.2), every=DEFAULT_BOUND)
    verdicts = {v.metric: v for v in checked.cases[0].verdicts
                if v.metric.startswith("regression(")}
    assert set(verdicts) == {"regression(peak)", "regression(rss_peak)",
                             "regression(duration)"}
    assert verdicts["regression(rss_peak)"].passed is False
    assert verdicts["regression(rss_peak)"].rule == "regression(rss_peak) < 10%"
    assert verdicts["regression(duration)"].passed is True  # 1 s every time
    assert checked.status == "fail"
    calm = against(store, head(BASE), every=DEFAULT_BOUND)
    assert calm.status == "pass"


def test_a_failed_case_is_not_judged(store: Store) -> None:
    fill(store, [BASE] * 8)
    checked = results([case("build", [BASE * 2] * 3, size=100, oom=True)])
    verdict = rule(judged(checked, load_base(store, checked, "main")))
    assert verdict.passed is None and "did not complete" in verdict.reason
