"""A valid ``sla.yaml`` parses into base units, merges its settings and locates its rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.metrics import MetricRef
from runner.slafile import Rule, Scenario, Suite, load_suite, parse_suite
from runner.slafile.model import BUILTIN_SETTINGS, placeholders

GiB, MiB, KiB = 1024**3, 1024**2, 1024

EXAMPLE = """\
# Memory SLAs for the docs site.
version: 1

defaults:
  backend: process
  limit: 4GiB
  repeats: 5
  timeout: 10min

scenarios:
  pelican-site:
    description: Pelican builds a synthetic site
    generate:
      sitegen:
        flavour: pelican
        pages: "{pages}"
        page_size: 4KiB
        seed: 7
    requirements: [pelican==4.12.0]
    command: [pelican, "{fixture}/content", -o, "{output}", -s, "{fixture}/pelicanconf.py"]
    env:
      PELICAN_CACHE: "{scratch}/cache"
    matrix:
      pages: [100, 500, 1000]
      theme: [simple, notmyidea]
    repeats: 2
    sample_interval: 50ms
    slas:
      - peak < 1.5GiB
      - rule: duration < 2min
        when: {pages: 1000, theme: [simple, notmyidea]}
        stat: median
      - per_page(rss_peak) < 200KiB
      - phase(render).python_peak <= 512MiB
      - oom_kills == 0

  shell-build:
    shell: true
    command: make -C {fixture} site
    generate:
      command: [./make-fixture.sh, "{fixture}"]
    timeout: 90s
    limit: 1.5GB
    docker: {network: bridge, read_only: false}

  "2024.leak-check":
    leak:
      entry: mysite.build:main
      calls: 20
    slas:
      - leak_per_build < 1MiB

slas:
  - exit_code == 0
  - rule: peak_growth < 10%
    when: {pages: 1000}
"""


@pytest.fixture(scope="module")
def suite() -> Suite:
    return parse_suite(EXAMPLE, file="example.yaml")


def test_scenarios_in_file_order(suite: Suite) -> None:
    assert list(suite.scenarios) == ["pelican-site", "shell-build", "2024.leak-check"]


def test_sizes_and_durations_are_in_base_units(suite: Suite) -> None:
    site = suite.scenarios["pelican-site"]
    assert suite.defaults.limit == 4 * GiB
    assert suite.defaults.timeout == 600.0
    assert site.sample_interval == pytest.approx(0.05)
    assert site.generate is not None and site.generate.sitegen is not None
    assert site.generate.sitegen.page_size == 4 * KiB
    assert suite.scenarios["shell-build"].limit == 1_500_000_000  # GB is decimal
    assert suite.scenarios["shell-build"].timeout == 90.0


def test_rules_are_parsed(suite: Suite) -> None:
    rules = suite.scenarios["pelican-site"].slas
    assert [(r.metric.key, r.op, r.bound) for r in rules] == [
        ("peak", "<", 1.5 * GiB),
        ("duration", "<", 120.0),
        ("per_page(rss_peak)", "<", 200 * KiB),
        ("phase(render).python_peak", "<=", 512 * MiB),
        ("oom_kills", "==", 0),
    ]
    duration = rules[1]
    assert duration.stat == "median"
    assert duration.when == {"pages": (1000,), "theme": ("simple", "notmyidea")}
    assert rules[3].metric == MetricRef(name="python_peak", phase="render")
    assert suite.slas[1].metric.key == "peak_growth"
    assert suite.slas[1].bound == pytest.approx(0.1)


def test_the_rest_of_the_scenario(suite: Suite) -> None:
    site = suite.scenarios["pelican-site"]
    assert site.command == ["pelican", "{fixture}/content", "-o", "{output}", "-s",
                            "{fixture}/pelicanconf.py"]
    assert site.matrix == {"pages": [100, 500, 1000], "theme": ["simple", "notmyidea"]}
    assert site.size_parameter == "pages"
    assert site.requirements == ["pelican==4.12.0"]
    assert site.docker.network == "none" and site.docker.read_only  # the safe defaults
    shell = suite.scenarios["shell-build"]
    assert shell.command == "make -C {fixture} site" and shell.shell
    assert shell.docker.network == "bridge" and not shell.docker.read_only
    leak = suite.scenarios["2024.leak-check"].leak
    assert leak is not None
    assert (leak.entry, leak.calls, leak.warmup) == ("mysite.build:main", 20, 2)


def test_settings_for_merges_builtin_defaults_scenario(suite: Suite) -> None:
    site = suite.settings_for(suite.scenarios["pelican-site"])
    assert site.model_dump() == {
        "backend": "process",  # defaults
        "limit": 4 * GiB,  # defaults
        "repeats": 2,  # scenario beats defaults
        "warmup": 0,  # built in
        "timeout": 600.0,  # defaults
        "tracker": "tracemalloc",  # built in
        "stack_depth": 1,  # built in
        "native": False,  # built in
        "image": BUILTIN_SETTINGS.image,  # built in
        "sample_interval": pytest.approx(0.05),  # scenario beats built in
        "trace_sizes": "auto",  # built in
    }
    shell = suite.settings_for(suite.scenarios["shell-build"])
    assert (shell.limit, shell.timeout, shell.repeats) == (1_500_000_000, 90.0, 5)


def test_settings_for_without_defaults() -> None:
    suite = parse_suite("version: 1\nscenarios:\n  a:\n    command: [x]\n")
    assert suite.settings_for(suite.scenarios["a"]) == BUILTIN_SETTINGS


def test_rules_carry_file_and_line(suite: Suite) -> None:
    lines = EXAMPLE.splitlines()
    rules: list[Rule] = [*suite.slas]
    for scenario in suite.scenarios.values():
        rules.extend(scenario.slas)
    assert len(rules) == 8
    for rule in rules:
        assert rule.file == "example.yaml"
        assert rule.line is not None
        assert rule.text in lines[rule.line - 1], rule


def test_mapping_rule_line_is_its_rule_line() -> None:
    suite = parse_suite("""\
version: 1
scenarios:
  a:
    command: [x, "{pages}"]
    matrix: {pages: [1, 2]}
    slas:
      - stat: max
        when: {pages: 2}
        rule: peak < 1GiB
""")
    assert suite.scenarios["a"].slas[0].line == 9


def test_load_suite_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "sla.yaml"
    path.write_text(EXAMPLE, encoding="utf-8")
    suite = load_suite(path)
    assert suite.slas[0].file == str(path)
    assert suite.slas[0].line == EXAMPLE.splitlines().index("  - exit_code == 0") + 1


@pytest.mark.parametrize(("text", "expected"), [
    ("peak < 2 GiB", 2 * GiB),
    ("peak<2gib", 2 * GiB),
    ("peak < 1.5GB", 1_500_000_000),
    ("peak < 512m", 512 * MiB),
    ("peak < 1000", 1000),
])
def test_bound_spellings(text: str, expected: int) -> None:
    suite = parse_suite(f"version: 1\nscenarios:\n  a:\n    command: [x]\n    slas: ['{text}']\n")
    assert suite.scenarios["a"].slas[0].bound == expected


def test_flow_style_and_quoted_values() -> None:
    suite = parse_suite(
        "{version: 1, scenarios: {a: {command: ['x', '{n}'], matrix: {n: [1, '2x']}, "
        "limit: '512MiB', timeout: 30}}}")
    scenario = suite.scenarios["a"]
    assert scenario.limit == 512 * MiB
    assert scenario.timeout == 30.0
    assert scenario.matrix == {"n": [1, "2x"]}
    assert scenario.size_parameter is None  # 'n' is not all integers


def test_literal_braces_are_not_placeholders() -> None:
    suite = parse_suite("version: 1\nscenarios:\n  a:\n    shell: true\n"
                        "    command: awk '{{print $1}}' {fixture}\n")
    assert suite.scenarios["a"].command == "awk '{{print $1}}' {fixture}"
    assert placeholders("awk '{{print $1}}' {fixture}") == ["fixture"]


@pytest.mark.parametrize(("matrix", "size", "expected"), [
    ({}, None, None),
    ({"pages": [1, 2]}, None, "pages"),
    ({"n": [1, 2], "theme": ["a"]}, None, "n"),
    ({"n": [1, 2], "m": [3]}, None, None),  # two integer axes: ambiguous
    ({"n": [1, 2], "m": [3]}, "m", "m"),
])
def test_size_parameter(matrix: dict[str, list[int | str]], size: str | None,
                        expected: str | None) -> None:
    scenario = Scenario.model_validate({"command": ["x"], "matrix": matrix, "size": size})
    assert scenario.size_parameter == expected


def test_sitegen_pages_may_be_a_fixed_number_or_derived() -> None:
    suite = parse_suite("""\
version: 1
scenarios:
  fixed:
    command: [x]
    generate: {sitegen: {pages: 50}}
  derived:
    command: [x]
    matrix: {k: [1, 2]}
    generate: {sitegen: {pages: "{k}00"}}
""")
    derived = suite.scenarios["derived"].generate
    assert derived is not None and derived.sitegen is not None
    assert derived.sitegen.pages == "{k}00"


def test_suite_rule_applies_where_its_metric_can_be_measured() -> None:
    suite = parse_suite("""\
version: 1
slas: [per_page < 64KiB, peak < 1GiB]
scenarios:
  sized: {command: [x, "{pages}"], matrix: {pages: [1, 2, 3]}}
  single: {command: [x]}
""", file="mixed.yaml")
    per_page, peak = suite.slas
    assert suite.scenarios["sized"].cannot_measure(per_page.metric) is None
    assert "size parameter" in (suite.scenarios["single"].cannot_measure(per_page.metric) or "")
    assert all(s.cannot_measure(peak.metric) is None for s in suite.scenarios.values())
