"""The plan: matrices expanded, settings resolved and overridden, rules scoped to cases. Plain
data: nothing runs here."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from runner.errors import UsageError
from runner.plan import build_plan, case_rules, expand_matrix, fill, with_size
from runner.slafile import parse_suite
from runner.slafile.model import Settings

SUITE = parse_suite("""
version: 1
defaults: {limit: 1GiB, repeats: 2}
scenarios:
  site:
    command: [build, "{pages}", "{theme}"]
    matrix: {pages: [100, 200], theme: [light, dark]}
    repeats: 4
    slas:
      - peak < 512MiB
      - rule: duration < 10s
        when: {pages: 100}
      - exit_code == 1
  tool:
    command: [tool]
slas: [rss_peak < 256MiB]
""")


def test_every_matrix_point_is_one_case_in_file_order() -> None:
    plans = build_plan(SUITE)
    assert [p.label for p in plans] == [
        "site[pages=100, theme=light]", "site[pages=100, theme=dark]",
        "site[pages=200, theme=light]", "site[pages=200, theme=dark]", "tool"]
    assert plans[0].size == 100 and plans[0].size_parameter == "pages"
    assert plans[-1].size is None
    assert expand_matrix({}) == [{}]


def test_settings_resolve_file_then_overrides() -> None:
    site = build_plan(SUITE)[0].settings
    assert (site.limit, site.repeats, site.backend) == (1 << 30, 4, "auto")
    overridden = build_plan(SUITE, overrides=Settings.model_validate(
        {"backend": "process", "repeats": 1}))[0].settings
    assert (overridden.backend, overridden.repeats, overridden.limit) == ("process", 1, 1 << 30)
    with pytest.raises(ValidationError):  # frozen: no layer below the plan changes a setting
        site.repeats = 9  # type: ignore[misc]


def test_only_and_sizes_narrow_the_cases() -> None:
    assert [p.label for p in build_plan(SUITE, only=["tool"])] == ["tool"]
    assert {p.size for p in build_plan(SUITE, sizes=[200]) if p.scenario_name == "site"} == {200}
    assert build_plan(SUITE, only=["site"], sizes=[12345]) == []
    with pytest.raises(UsageError, match="no scenario named 'nope'"):
        build_plan(SUITE, only=["nope"])


def test_rules_are_scoped_and_implicit_ones_give_way_to_written_ones() -> None:
    written, implicit = case_rules(SUITE, "site", {"pages": 100, "theme": "dark"})
    assert [r.text for r in written] == ["peak < 512MiB", "duration < 10s", "exit_code == 1",
                                         "rss_peak < 256MiB"]
    assert [r.text for r in implicit] == ["oom_kills == 0"]  # exit_code is written
    written, implicit = case_rules(SUITE, "site", {"pages": 200, "theme": "dark"})
    assert "duration < 10s" not in [r.text for r in written]
    _, implicit = case_rules(SUITE, "tool", {})
    assert [r.text for r in implicit] == ["exit_code == 0", "oom_kills == 0"]


def test_fill_and_with_size() -> None:
    plan = build_plan(SUITE)[0]
    assert fill("{pages}-{theme}", plan.params) == "100-light"
    bigger = with_size(plan, 5000)
    assert bigger.size == 5000 and bigger.params["theme"] == "light" and plan.size == 100
    with pytest.raises(UsageError, match="no size parameter"):
        with_size(build_plan(SUITE, only=["tool"])[0], 10)
