"""Rules across matrix values and version sweeps in an SLA file: ``peak(a=x) / peak(a=y) <
1.3`` read into a metric comparing two cases (ratio or difference), a side no case of the
matrix has refused at its line, ``python:`` and ``requirements:`` filled per case, and the
compared or swept axes varying fastest in the plan."""

from __future__ import annotations

import pytest

from runner.backends.registry import explicit_settings
from runner.errors import SpecError
from runner.metrics import Kind, Source
from runner.plan import build_plan
from runner.slafile import parse_suite
from runner.slafile.rules import parse_rule

SUITE = """\
version: 1
scenarios:
  build:
    command: ["true"]
    python: "{py}"
    requirements: ["jinja2=={jinja}", "markdown"]
    matrix: {py: ["3.11", "3.12"], pages: [500, 1000], jinja: ["3.1.4"]}
    slas:
      - duration(py=3.12) <= duration(py=3.11)
      - rule: peak(py=3.12) / peak(py=3.11) < 1.3
        when: {pages: 1000}
  modes:
    command: ["true"]
    matrix: {parallel: ["true", "false"], pages: [500, 1000]}
slas: [peak(parallel=true) / peak(parallel=false) < 1.3]
"""


def test_rules_across_matrix_values_parse() -> None:
    ratio = parse_rule("peak(parallel=true) / peak(parallel=false) < 1.3")
    assert ratio.metric.source is Source.ACROSS and ratio.metric.kind is Kind.NUMBER
    assert ratio.bound == 1.3 and ratio.metric.key == "peak(parallel=true) / peak(parallel=false)"
    difference = parse_rule("peak(mode=a, n=2) - peak(mode=b, n=2) < 50MiB")
    assert difference.metric.kind is Kind.BYTES and difference.bound == 50 * 2**20
    assert difference.metric.across is not None
    assert difference.metric.across.keys == ("mode", "n")
    compare = parse_rule("duration(py=3.13) <= duration(py=3.11)")
    assert (compare.metric.key, compare.op, compare.bound) == (
        "duration(py=3.13) - duration(py=3.11)", "<=", 0.0)
    assert compare.holds(-0.5) and not compare.holds(0.5)


@pytest.mark.parametrize(("text", "message"), [
    ("peak(a=1) < 1GiB", "names matrix values, so it compares two cases"),
    ("peak(a=1) / rss_peak(a=2) < 1.3", "both sides take the same metric"),
    ("peak(a=1) / peak(b=2) < 1.3", "both sides name the same matrix parameters"),
    ("peak(a=1) / peak(a=1) < 1.3", "both sides name the same case"),
    ("per_page(a=1) / per_page(a=2) < 1.3", "compares a run metric"),
    ("peak(a=1) / peak(a=) < 1.3", "PARAMETER=VALUE"),
    ("peak(a=1) / peak(a=2) < 1GiB", "a plain number"),
])
def test_bad_rules_across_values(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rule(text)


@pytest.mark.parametrize(("text", "line", "message"), [
    # a side no case of the scenario's matrix has
    ("    matrix: {mode: [a, b]}\n    slas: [peak(mode=a) / peak(mode=c) < 2]\n", 6,
     "mode='c' is not in the matrix ('a', 'b')"),
    ("    matrix: {mode: [a, b]}\n    slas: [peak(py=3.12) / peak(py=3.11) < 2]\n", 6,
     "'py' is not a matrix parameter (the matrix has mode)"),
    ("    matrix: {mode: [a, b], n: [1, 2]}\n    slas:\n      - rule: peak(mode=a) / "
     "peak(mode=b) < 2\n        when: {mode: a}\n", 7, "'when' names 'mode'"),
    # python: and requirements: take matrix parameters
    ("    python: '{py}'\n", 5, "unknown placeholder {py}"),
    ("    requirements: ['jinja2=={jinja}']\n", 5, "unknown placeholder {jinja}"),
    ("    requirements: ['{output}/x.whl']\n", 5, "take matrix parameters"),
    # so do image: and dockerfile:
    ("    image: 'python:{py}'\n", 5, "unknown placeholder {py}"),
    ("    dockerfile: '{scratch}/Dockerfile'\n", 5, "take matrix parameters"),
])
def test_a_rule_or_sweep_naming_no_case_is_an_error_at_its_line(text: str, line: int,
                                                                 message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_suite('version: 1\nscenarios:\n  s:\n    command: ["true"]\n' + text,
                    file="bad.yaml")
    assert message in caught.value.message, caught.value.message
    assert (caught.value.file, caught.value.line) == ("bad.yaml", line), caught.value.message


def test_a_suite_wide_rule_across_values_needs_a_scenario_with_both_sides() -> None:
    with pytest.raises(SpecError) as caught:
        parse_suite('version: 1\nscenarios:\n  s:\n    command: ["true"]\n'
                    "    matrix: {mode: [a, b]}\nslas:\n  - peak(mode=a) / peak(mode=z) < 2\n",
                    file="bad.yaml")
    assert caught.value.line == 7 and "applies to no scenario" in caught.value.message


def test_sweeps_fill_each_case_and_vary_fastest() -> None:
    suite = parse_suite(SUITE)
    plans = build_plan(suite)
    build = [p for p in plans if p.scenario_name == "build"]
    # py (swept) changes fastest; each case keeps the matrix's order of keys in its label
    assert [p.label for p in build] == [
        "build[py=3.11, pages=500, jinja=3.1.4]", "build[py=3.12, pages=500, jinja=3.1.4]",
        "build[py=3.11, pages=1000, jinja=3.1.4]", "build[py=3.12, pages=1000, jinja=3.1.4]"]
    assert [p.python for p in build[:2]] == ["3.11", "3.12"]
    assert build[0].requirements == ["jinja2==3.1.4", "markdown"]
    # the suite-wide rule compares parallel: its values sit side by side
    modes = [p.params for p in plans if p.scenario_name == "modes"]
    assert modes[:2] == [{"parallel": "true", "pages": 500}, {"parallel": "false", "pages": 500}]


def test_a_python_sweep_of_versions_is_honoured_by_every_backend() -> None:
    suite = parse_suite(SUITE)
    assert "python" not in explicit_settings(suite.scenarios["build"], suite.defaults)
    paths = parse_suite('version: 1\nscenarios:\n  s:\n    command: ["true"]\n'
                        '    python: "{py}"\n    matrix: {py: ["3.12", /opt/py/bin/python]}\n')
    assert "python" in explicit_settings(paths.scenarios["s"], paths.defaults)


def test_an_image_or_dockerfile_per_matrix_value_is_filled_per_case() -> None:
    suite = parse_suite('version: 1\ndefaults: {image: "memsla-{py}:x"}\nscenarios:\n'
                        '  s:\n    command: ["true"]\n    matrix: {py: ["3.11", "3.12"]}\n'
                        '    dockerfile: "docker/{py}/Dockerfile"\n'
                        '  t:\n    command: ["true"]\n    image: "img:{v}"\n'
                        '    matrix: {n: [1, 2], v: [a, b]}\n')
    plans = build_plan(suite)
    assert [(p.settings.image, p.dockerfile) for p in plans if p.scenario_name == "s"] == [
        ("memsla-3.11:x", "docker/3.11/Dockerfile"), ("memsla-3.12:x", "docker/3.12/Dockerfile")]
    # the swept image's values sit side by side
    assert [(p.params["n"], p.settings.image) for p in plans if p.scenario_name == "t"] == [
        (1, "img:a"), (1, "img:b"), (2, "img:a"), (2, "img:b")]
