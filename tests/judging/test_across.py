"""The judging stage on rules across matrix values, from hand-built cases: one verdict per
pair of cases the other parameters match, the worst statistic on each side, a failed side
never passed, a side the selection left out skipped."""

from __future__ import annotations

import pytest

from runner.judging.across import judge, stats_for
from runner.results import Selection
from runner.slafile.rules import parse_rule
from tests.judging.helpers import MiB, case, judged

RULE = "peak(mode=parallel) / peak(mode=serial) < 1.3"


def _cases(oom_serial_at: int | None = None) -> list:
    return [case("s", [100 * MiB, 110 * MiB], params={"mode": "serial", "n": n})
            if n != oom_serial_at else
            case("s", [100 * MiB], params={"mode": "serial", "n": n}, oom=True)
            for n in (1, 2)] + [
        case("s", [120 * MiB, 125 * MiB], params={"mode": "parallel", "n": 1}),
        case("s", [150 * MiB, 160 * MiB], params={"mode": "parallel", "n": 2})]


def test_one_verdict_per_pair_with_the_worst_of_each_side() -> None:
    report = judged(_cases(), [RULE])
    (scenario,) = report.scenarios
    verdicts = [v for v in scenario.verdicts if v.rule == RULE]
    # worst for an upper bound: the left side's largest over the right side's smallest
    assert [v.value for v in verdicts] == [pytest.approx(1.25), pytest.approx(1.6)]
    assert [v.passed for v in verdicts] == [True, False]
    assert verdicts[0].stat == "max/min"
    assert "[n=1]" in verdicts[0].reason and "peak(mode=serial) = 100 MiB (min)" in \
        verdicts[0].reason
    comparisons = scenario.analysis.comparisons
    assert [c.params for c in comparisons] == [{"n": 1}, {"n": 2}]
    assert comparisons[1].left == "s[mode=parallel, n=2]"
    assert (comparisons[1].left_value, comparisons[1].right_value) == (160 * MiB, 100 * MiB)


def test_a_side_that_did_not_complete_is_not_judged() -> None:
    report = judged(_cases(oom_serial_at=2), [RULE])
    verdicts = [v for v in report.scenarios[0].verdicts if v.rule == RULE]
    assert verdicts[0].passed is True
    assert verdicts[1].passed is None and "did not complete" in verdicts[1].reason


def test_a_side_the_selection_left_out_is_skipped() -> None:
    rule = parse_rule(RULE)
    cases = [c for c in _cases() if c.params["mode"] == "parallel"]
    _, verdicts = judge(rule, cases, Selection(sizes=[1]))
    assert all(v.skipped for v in verdicts) and len(verdicts) == 2
    _, unselected = judge(rule, cases)
    assert [v.passed for v in unselected] == [None, None]


def test_the_worst_statistic_follows_the_bound() -> None:
    assert stats_for(parse_rule("peak(a=1) / peak(a=2) > 0.5")) == ("min", "max")
    assert stats_for(parse_rule("peak(a=1) - peak(a=2) <= 1MiB")) == ("max", "min")
    mapping = parse_rule("peak(a=1) / peak(a=2) < 2", stat="median")
    assert stats_for(mapping) == ("median", "median")
