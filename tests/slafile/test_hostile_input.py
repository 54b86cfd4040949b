"""What a fuzz of 10,000 mutated SLA files found, one test each: tracebacks, blowups, errors
without a position, numbers without a bound. Whatever the file holds, it loads or is refused
with ONE SpecError at file:line:col, in well under a second and 100 MiB.

Time is measured without tracemalloc (it slows the pure-Python YAML parser ~5x), memory with
it; both bounds have a wide margin over what was measured on an idle 2-core machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.errors import EXIT_BAD_INPUT, SpecError
from runner.slafile import load_suite, parse_suite
from runner.slafile.loader import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES
from runner.slafile.model import MAX_CASES, MAX_FILLED, MAX_MATRIX_VALUES, PID_MAX_LIMIT
from tests.conftest import REPO

SECONDS = 1.0  # the required bound; the worst file measured ~0.27 s idle
MIB = 100  # the required bound; the worst file measured ~16 MiB under tracemalloc
TEN_MB = 10 * 1000 * 1000

HEAD = "version: 1\nscenarios:\n  site:\n    command: [x]\n"


def refused(text: str) -> SpecError:
    """The one SpecError the text gives, with a line and a column."""
    with pytest.raises(SpecError) as caught:
        parse_suite(text, file="bad.yaml")
    error = caught.value
    assert error.file == "bad.yaml"
    assert error.line is not None and error.column is not None, str(error)
    assert "\n" not in str(error)
    assert len(error.message) <= 500, "an error quotes the value, not the whole file"
    return error


def cost(load: Callable[[], object]) -> tuple[float, float]:
    """Seconds (untraced) and peak MiB (traced) of one load; it must raise SpecError or pass."""
    start = time.monotonic()
    try:
        load()
    except SpecError:
        pass
    seconds = time.monotonic() - start
    tracemalloc.start()
    try:
        load()
    except SpecError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return seconds, peak / 2**20


def assert_cheap(text: str) -> None:
    seconds, mib = cost(lambda: parse_suite(text, file="bad.yaml"))
    assert seconds < SECONDS, f"{seconds:.2f} s"
    assert mib < MIB, f"{mib:.1f} MiB"


# --- the 69 tracebacks


@pytest.mark.parametrize(("text", "where", "message"), [
    pytest.param(HEAD + "    limit: {a: 1}\n", (5, 5), "a size is a number with an optional "
                 "unit, not a mapping", id="limit-mapping"),
    pytest.param(HEAD + "    timeout: [1, 2]\n", (5, 5), "a duration is a number with an "
                 "optional unit, not a list", id="timeout-list"),
    pytest.param("version: 1\ndefaults: {limit: [2GiB]}\nscenarios: {site: {command: [x]}}\n",
                 (2, 12), "not a list", id="defaults-limit-list"),
    pytest.param("version: 1\nscenarios:\n  site:\n    command: make\n    shell: !!bool 30s\n",
                 (5, 12), "cannot read '30s' as bool", id="bool-tag"),
    pytest.param(HEAD + "    description: !!timestamp 'nope'\n", (5, 18),
                 "cannot read 'nope' as timestamp", id="timestamp-tag"),
    pytest.param(HEAD + "    repeats: !!int '_'\n", (5, 14), "as int", id="int-tag-underscore"),
    pytest.param(HEAD + "    repeats: !!int '-'\n", (5, 14), "as int", id="int-tag-sign"),
    pytest.param(HEAD + "    repeats: !!float ''\n", (5, 14), "as float", id="float-tag-empty"),
    pytest.param("version: 1\nscenarios:\n  site:\n    matrix: {pages: [1]}\n"
                 "    command: [x, '{pages:>999999999999}']\n", (5, 18),
                 "without format specs", id="huge-format-width"),
    pytest.param(HEAD + "    workdir: '{fixture!r}'\n", (5, 14), "or conversions",
                 id="conversion"),
])
def test_former_tracebacks(text: str, where: tuple[int, int], message: str) -> None:
    error = refused(text)
    assert (error.line, error.column) == where, str(error)
    assert message in error.message


# --- the blowups


def test_env_with_a_huge_format_width_is_refused_not_filled() -> None:
    # loaded fine and cost 1.9 GB
    text = HEAD + "    env: {A: '{output:>2000000000}'}\n"
    error = refused(text)
    assert (error.line, error.column, "format specs" in error.message) == (5, 14, True)
    assert_cheap(text)


def test_a_10_mb_flat_list_is_refused_before_parsing(tmp_path: Path) -> None:
    # took 58 s and 1.45 GB before being refused
    text = HEAD + "    requirements: [" + "a, " * (TEN_MB // 3) + "a]\n"
    error = refused(text)
    assert "larger than 256 KiB" in error.message
    assert error.line == 5  # the line the cap falls on
    assert_cheap(text)
    path = tmp_path / "sla.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match="larger than 256 KiB") as caught:
        load_suite(path)
    assert (caught.value.line, caught.value.column) == (error.line, error.column)
    seconds, mib = cost(lambda: load_suite(path))
    assert seconds < SECONDS and mib < MIB, (seconds, mib)


def test_a_file_just_under_the_cap_still_loads() -> None:
    text = HEAD + "    description: '" + "a" * (MAX_FILE_BYTES - len(HEAD) - 40) + "'\n"
    assert len(text) <= MAX_FILE_BYTES
    assert parse_suite(text).scenarios["site"].description.startswith("aaa")
    assert_cheap(text)


def test_a_rule_with_a_long_run_of_spaces_is_linear() -> None:
    # 'a', 100 KB of spaces, 'b' took 70 s in the rule regex
    text = HEAD + "    slas: ['a" + " " * 100_000 + "b']\n"
    assert "cannot read rule" in refused(text).message
    assert_cheap(text)


def test_a_quantity_with_a_long_run_of_spaces_is_linear() -> None:
    text = HEAD + "    limit: '1" + " " * 100_000 + "!'\n"
    assert "not a number with an optional unit" in refused(text).message
    assert_cheap(text)


def test_a_huge_matrix_with_templated_sitegen_pages_is_refused_quickly() -> None:
    # three axes of 3,000 values: every combination was enumerated at load, never finishing
    values = ", ".join(str(i) for i in range(1, 3001))
    text = ("version: 1\nscenarios:\n  site:\n    command: [x]\n    matrix:\n"
            f"      a: [{values}]\n      b: [{values}]\n      c: [{values}]\n"
            "    generate: {sitegen: {pages: '{a}{b}{c}'}}\n")
    error = refused(text)
    assert f"more than {MAX_NODES} values" in error.message
    assert error.line == 7  # where the node bound is crossed, in axis b
    assert_cheap(text)
    one_axis = text.replace("      b: [", "      #").replace("      c: [", "      #")
    error = refused(one_axis)
    assert f"has 3000 values; at most {MAX_MATRIX_VALUES}" in error.message
    assert error.line == 6
    assert_cheap(one_axis)


def test_matrix_combinations_are_bounded() -> None:
    axis = "[" + ", ".join(str(i) for i in range(1, 33)) + "]"
    text = HEAD + f"    matrix: {{a: {axis}, b: {axis}}}\n"  # 1,024 combinations
    error = refused(text)
    assert f"more than {MAX_CASES} combinations" in error.message
    assert error.line == 5


def test_templated_sitegen_pages_are_checked_within_the_bound() -> None:
    axis = ", ".join(str(i) for i in range(1, 11))
    suite = parse_suite("version: 1\nscenarios:\n  site:\n    command: [x]\n"
                        f"    matrix: {{a: [{axis}], b: [{axis}], c: [{axis}]}}\n"
                        "    generate: {sitegen: {pages: '{a}{b}{c}'}}\n")
    assert len(suite.scenarios["site"].matrix) == 3
    error = refused("version: 1\nscenarios:\n  site:\n    command: [x]\n"
                    "    matrix: {a: [1, 2], b: ['0000000']}\n"
                    "    generate:\n      sitegen: {pages: '{a}{b}'}\n")
    assert "at most 1_000_000" in error.message and error.line == 7


def test_a_filled_argument_is_bounded() -> None:
    # a long matrix value repeated by a template grows without a format width too
    value = "v" * 1000
    text = (HEAD.replace("[x]", "[x, '" + "{a}" * 200 + "']")
            + f"    matrix: {{a: ['{value}']}}\n")
    error = refused(text)
    assert f"at most {MAX_FILLED}" in error.message and error.line == 4
    assert_cheap(text)


def test_aliases_cannot_expand_past_the_node_bound() -> None:
    text = ("version: 1\nx: &a [" + ", ".join(["y"] * 100) + "]\n"
            "scenarios:\n  site:\n    command: [x]\n    requirements: ["
            + ", ".join(["*a"] * 100) + "]\n")
    error = refused(text)
    assert f"more than {MAX_NODES} values once YAML aliases are expanded" in error.message
    assert error.line == 6  # the alias that went over, not the anchor
    assert_cheap(text)


def test_nesting_is_bounded_before_python_recursion() -> None:
    text = HEAD + "    description: " + "[" * 10_000 + "]" * 10_000 + "\n"
    error = refused(text)
    assert f"nested too deeply (more than {MAX_DEPTH} levels)" in error.message
    assert error.line == 5
    assert_cheap(text)


def test_a_long_number_is_refused_before_it_is_computed() -> None:
    # a sexagesimal int ('1:1:1:...') is computed in quadratic time
    text = HEAD + "    repeats: 1" + ":1" * 100_000 + "\n"
    error = refused(text)
    assert "too large" in error.message and (error.line, error.column) == (5, 14)
    assert_cheap(text)


# --- errors without a line or column


def test_an_alias_cycle_inside_a_list_points_at_the_alias() -> None:
    error = refused("version: 1\nscenarios:\n  site: &s\n    command: [x]\n    slas: [*s]\n")
    assert "refers to a node that contains it" in error.message
    assert (error.line, error.column) == (5, 12)
    error = refused("version: 1\nscenarios:\n  site:\n    command: &c [x, *c]\n")
    assert (error.line, error.column) == (4, 21)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "\ufeff"])
def test_the_empty_file_has_a_column(text: str) -> None:
    error = refused(text)
    assert "empty" in error.message
    assert (error.line, error.column) == (1, 1)


# --- numbers without a bound


@pytest.mark.parametrize(("setting", "value", "message"), [
    ("docker: {pids_limit: %s}", str(2**70), f"less than or equal to {PID_MAX_LIMIT}"),
    ("docker: {pids_limit: %s}", str(PID_MAX_LIMIT + 1), "less than or equal to"),
    ("timeout: %s", "1e300", "too long for a duration"),
    ("timeout: %s", "200h", "too long for a duration"),
    ("sample_interval: %s", "1e-300", "greater than or equal to 0.001"),
    ("limit: %s", "1e300", "too large for a size"),
    ("leak: {entry: 'a:b', calls: 20, warmup: %s}", str(2**70), "less than or equal to 1000"),
    ("generate: {sitegen: {pages: %s}}", str(2**70), "at most 1_000_000"),
    ("generate: {sitegen: {pages: 5, page_size: %s}}", "1TiB", "less than or equal to"),
    ("generate: {sitegen: {pages: 5, sections: %s}}", str(2**70), "less than or equal to"),
    ("generate: {sitegen: {pages: 5, seed: %s}}", str(2**70), "less than or equal to"),
    ("matrix: {n: [%s]}", str(2**70), "too large"),
    ("matrix: {n: ['%s']}", "x" * 2000, "longer than 1024 characters"),
    ("slas: ['duration < %s']", "1e300s", "too long for a duration"),
    ("slas: ['oom_kills < %s']", "1e300", "too large for a count"),
    ("slas: ['peak_growth < %s']", "1e300%", "too large for a ratio"),
    ("slas: ['scaling_exponent < %s']", "1e300", "too large for a number"),
    ("repeats: %s", "0x" + "f" * 100, "too large"),
], ids=lambda value: value[:24] if isinstance(value, str) else None)
def test_every_number_has_a_bound(setting: str, value: str, message: str) -> None:
    text = (HEAD.replace("command: [x]", "command: [x, '{pages}']")
            + "    matrix: {pages: [1, 2, 3]}\n" if "matrix" not in setting
            and "leak" not in setting else HEAD)
    error = refused(text + "    " + setting % value + "\n")
    assert message in error.message, error.message
    assert error.line == text.count("\n") + 1


def test_scenarios_and_rules_per_list_are_bounded() -> None:
    scenarios = "".join(f"  s{i}: {{command: [x]}}\n" for i in range(257))
    assert "at most 256 items" in refused("version: 1\nscenarios:\n" + scenarios).message
    rules = ", ".join(["peak < 1GiB"] * 257)
    assert "at most 256 items" in refused(HEAD + f"    slas: [{rules}]\n").message


# --- fit rules that can never be judged, NUL bytes: load errors at their line


@pytest.mark.parametrize("rule", ["per_page < 1MiB", "fixed_overhead(rss_peak) < 1GiB",
                                  "scaling_exponent < 1.5"])
@pytest.mark.parametrize("sizes", ["[10]", "[10, 20]"])
def test_a_fit_rule_needs_three_sizes(rule: str, sizes: str) -> None:
    text = ("version: 1\nscenarios:\n  site:\n    command: [x, '{pages}']\n"
            f"    matrix: {{pages: {sizes}}}\n    slas:\n      - {rule}\n")
    error = refused(text)
    assert "at least 3 values" in error.message
    assert (error.line, error.column) == (7, 9)
    suite_wide = ("version: 1\nscenarios:\n  site:\n    command: [x, '{pages}']\n"
                  f"    matrix: {{pages: {sizes}}}\nslas: ['{rule}']\n")
    assert refused(suite_wide).line == 6
    three = text.replace(sizes, "[10, 20, 30]")
    assert parse_suite(three).scenarios["site"].slas[0].text == rule


def test_min_sizes_has_one_definition() -> None:
    from runner.metrics import MIN_SIZES

    assert MIN_SIZES == 3
    defined = [path for path in (REPO / "runner").rglob("*.py")
               if "MIN_SIZES = " in path.read_text(encoding="utf-8")]
    assert defined == [REPO / "runner" / "metrics.py"]


NUL = "\\0"  # a NUL in a double-quoted YAML string


@pytest.mark.parametrize(("field", "where"), [
    (f'python: "py{NUL}thon"', (5, 13)),
    (f'workdir: "a{NUL}b"', (5, 14)),
    (f'image: "img{NUL}"', (5, 12)),
    (f'requirements: ["pelican{NUL}"]', (5, 20)),
    (f'env: {{A: "x{NUL}"}}', (5, 14)),
    (f'generate: {{command: ["make{NUL}"]}}', (5, 26)),
    (f'leak: {{entry: "a:b", args: ["{NUL}"]}}', (5, 33)),
    (f'leak: {{entry: "a{NUL}:b"}}', (5, 19)),
    (f'matrix: {{n: ["{NUL}"]}}', (5, 18)),
    (f'docker: {{tmpfs: {{"/t{NUL}": size=1m}}}}', (5, 22)),
    (f'description: "{NUL}"', (5, 18)),
])
def test_a_nul_is_a_load_error_at_its_line(field: str, where: tuple[int, int]) -> None:
    # python: "py\0thon" was a ValueError at run time
    error = refused(HEAD + "    " + field + "\n")
    assert "NUL" in error.message
    assert (error.line, error.column) == where


def test_a_nul_in_the_command_itself() -> None:
    error = refused(f'version: 1\nscenarios:\n  site:\n    command: [x, "a{NUL}"]\n')
    assert (error.line, error.column, "NUL" in error.message) == (4, 18, True)


@pytest.mark.parametrize("field", ["python", "image", "workdir"])
def test_the_models_refuse_a_nul_without_the_loader(field: str) -> None:
    from pydantic import ValidationError

    from runner.slafile.model import Scenario

    with pytest.raises(ValidationError, match="NUL"):
        Scenario.model_validate({"command": ["x"], field: "a\0b"})


def test_leak_args_are_checked_like_the_command() -> None:
    error = refused(HEAD.replace("command: [x]", "leak: {entry: 'a:b', args: ['{nope}']}"))
    assert "unknown placeholder {nope}" in error.message and error.line == 4


# --- through the command line: exit 2, one stderr line, no traceback


HOSTILE = {
    "ten-megabytes": HEAD + "    requirements: [" + "a, " * (TEN_MB // 3) + "a]\n",
    "huge-format-width": HEAD + "    env: {A: '{output:>2000000000}'}\n",
    "bool-tag": "version: 1\nscenarios:\n  site:\n    command: make\n    shell: !!bool 30s\n",
    "mapping-for-a-size": HEAD + "    limit: {a: 1}\n",
    "alias-cycle-in-a-list": "version: 1\nscenarios:\n  site: &s\n    slas: [*s]\n",
    "empty": "",
}


@pytest.mark.parametrize("text", list(HOSTILE.values()), ids=list(HOSTILE))
def test_runner_check_hostile_file(tmp_path: Path, text: str) -> None:
    (tmp_path / "BAD.yaml").write_text(text, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "runner", "check", "BAD.yaml"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == EXIT_BAD_INPUT, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and result.stderr.endswith("\n"), result.stderr
    file, line, column, rest = lines[0].split(":", 3)
    assert (file, line.isdigit(), column.isdigit()) == ("BAD.yaml", True, True), lines[0]
    assert rest.startswith(" error: ")
    assert len(lines[0]) < 600
