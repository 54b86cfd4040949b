"""``regression(M) < 10%`` in an SLA file: read into a history metric with a ratio bound,
scoped by ``when`` like any rule; a metric a history cannot hold, a missing argument or a
lower bound is refused with a message that says what to write."""

from __future__ import annotations

import pytest

from runner.errors import SpecError
from runner.metrics import HISTORIED, Source, all_names, parse_metric
from runner.slafile import parse_suite
from runner.slafile.rules import parse_rule

SUITE = """\
version: 1
scenarios:
  build:
    command: ["true"]
    matrix: {pages: [100, 200]}
    slas:
      - regression(peak) < 10%
      - rule: regression(duration) <= 25%
        when: {pages: [200]}
slas: [regression(rss_peak) < 0.05]
"""


def test_regression_rules_parse_with_ratio_bounds() -> None:
    suite = parse_suite(SUITE)
    scenario = suite.scenarios["build"]
    (peak, duration), (rss,) = scenario.slas, suite.slas
    assert (peak.metric.key, peak.op, peak.bound) == ("regression(peak)", "<", 0.10)
    assert peak.metric.source is Source.HISTORY and peak.metric.of == "peak"
    assert (duration.metric.key, duration.op, duration.bound) == ("regression(duration)", "<=",
                                                                  0.25)
    assert duration.applies_to({"pages": 200}) and not duration.applies_to({"pages": 100})
    assert rss.bound == 0.05 and peak.line is not None


def test_the_history_metrics() -> None:
    assert "regression(M)" in all_names()
    assert HISTORIED[:3] == ("peak", "rss_peak", "python_peak")
    assert "exit_code" not in HISTORIED and "pages" not in HISTORIED
    assert parse_metric("regression(python_peak)").key == "regression(python_peak)"


@pytest.mark.parametrize(("text", "message"), [
    ("regression < 10%", "takes the run metric it compares"),
    ("regression(pages) < 10%", "takes the run metric it compares"),
    ("regression(exit_code) < 10%", "takes the run metric it compares"),
    ("regression(peak) > 10%", "bounds the growth a change may have"),
    ("regression(peak) == 10%", "bounds the growth a change may have"),
    ("regression(peak) < 0%", "bounds the growth a change may have"),
    ("regression(peak) < 2GiB", "a ratio"),
])
def test_bad_regression_rules(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rule(text)


def test_a_bad_regression_rule_names_its_line() -> None:
    with pytest.raises(SpecError, match=r"sla.yaml:2.*bounds the growth"):
        parse_suite("version: 1\nslas: [regression(peak) > 10%]\n"
                    "scenarios: {build: {command: ['true']}}\n")
