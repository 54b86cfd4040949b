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


TRACED = parse_suite("""
version: 1
scenarios:
  site:
    command: [build, "{pages}"]
    matrix: {pages: [100, 200, 400], py: ["3.11", "3.13"]}
    slas:
      - rule: python_peak < 1GiB
        when: {pages: 200}
      - peak < 1GiB
  plain:
    command: [build, "{pages}"]
    matrix: {pages: [10, 20]}
  everywhere:
    command: [build, "{pages}"]
    matrix: {pages: [10, 20, 30]}
    slas: [per_page(python_peak) < 1MiB]
  counted:
    command: [build, "{pages}"]
    matrix: {pages: [10, 20]}
    tracker: memray
    trace_sizes: all
    slas: [allocated < 1GiB]
  listed:
    command: [build, "{pages}"]
    matrix: {pages: [10, 20, 30]}
    trace_sizes: [10, 30]
  untraced:
    command: [build]
    tracker: none
""")


def _traced(name: str) -> dict[str, bool]:
    return {p.label: p.traced for p in build_plan(TRACED, only=[name])}


def test_auto_traces_where_a_rule_reads_heap_figures_and_the_largest_size() -> None:
    assert _traced("site") == {
        "site[pages=100, py=3.11]": False, "site[pages=100, py=3.13]": False,
        "site[pages=200, py=3.11]": True, "site[pages=200, py=3.13]": True,
        "site[pages=400, py=3.11]": True, "site[pages=400, py=3.13]": True}
    why = {p.label: p.trace_reason for p in build_plan(TRACED, only=["site"])}
    assert why["site[pages=100, py=3.11]"] == (
        "not traced: no rule at pages=100 reads heap figures (trace_sizes: auto)")
    assert why["site[pages=200, py=3.11]"] == (
        "traced: rule 'python_peak < 1GiB' reads heap figures at pages=200")
    assert why["site[pages=400, py=3.11]"].startswith("traced: the largest size")
    assert _traced("plain") == {"plain[pages=10]": False, "plain[pages=20]": True}
    assert all(_traced("everywhere").values())


def test_trace_sizes_written_is_followed() -> None:
    assert _traced("counted") == {"counted[pages=10]": True, "counted[pages=20]": True}
    assert _traced("listed") == {"listed[pages=10]": True, "listed[pages=20]": False,
                                 "listed[pages=30]": True}
    (off,) = build_plan(TRACED, only=["untraced"])
    assert not off.traced and off.trace_reason == ""


def test_the_largest_size_is_of_the_sizes_this_check_runs() -> None:
    assert {p.label: p.traced for p in build_plan(TRACED, only=["plain"], sizes=[10])} == {
        "plain[pages=10]": True}


def test_memray_captures_in_full_only_where_a_rule_reads_totals_or_phase_heaps() -> None:
    full = {p.scenario_name: p.full_capture for p in build_plan(TRACED)}
    assert full["counted"] and not full["site"] and not full["plain"]
    phases = parse_suite("""
version: 1
scenarios:
  a:
    command: [x]
    tracker: memray
    slas: [phase(render).python_growth < 1MiB]
  b:
    command: [x]
    tracker: memray
    phases: {render: "m:f"}
""")
    assert all(p.full_capture for p in build_plan(phases))
