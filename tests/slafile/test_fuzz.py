"""Property-based fuzz of the SLA file loader.

Valid SLA files (the shipped ``sla.yaml`` and the examples of test_good_input) are mutated in
their structure (values replaced by hostile ones, keys dropped or added, lists blown up) and
then in their text (YAML tags, anchors and aliases, stray characters, cut and repeated lines).
Whatever comes out, ``parse_suite`` returns a Suite or raises ONE SpecError with a line and a
column, within a time and memory bound, and never anything else.

Deterministic by default (derandomize). For a longer hunt:
``MEMSLA_FUZZ_EXAMPLES=10000 MEMSLA_FUZZ_RANDOM=1 python3 -m pytest tests/slafile/test_fuzz.py``
"""

from __future__ import annotations

import itertools
import os
import time
import tracemalloc
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.errors import SpecError
from runner.slafile import Suite, parse_suite
from runner.slafile.model import MAX_CASES, MAX_FILLED, PATH_PLACEHOLDERS, Scenario
from tests.conftest import REPO
from tests.slafile.test_good_input import EXAMPLE

EXAMPLES = int(os.environ.get("MEMSLA_FUZZ_EXAMPLES", "400"))
# Generous: the worst file measured ~1.7 s traced (~0.3 s untraced) and 16 MiB.
SECONDS = 10.0  # per example, with tracemalloc on (it slows the YAML parser ~5x)
MIB = 100

SEEDS = [
    (REPO / "sla.yaml").read_text(encoding="utf-8"),
    EXAMPLE,
    """\
version: 1
scenarios:
  site:
    command: [python3, build.py, "{fixture}", "{output}", --pages, "{pages}"]
    generate:
      sitegen: {pages: "{pages}", page_size: 2KiB, sections: 3}
    matrix: {pages: [10, 20, 40], theme: [a, b]}
    env: {OUT: "{output}/x"}
    workdir: "{scratch}"
    python: python3
    docker: {pids_limit: 64, tmpfs: {/tmp: size=64m}}
    slas:
      - rule: peak < 1GiB
        when: {pages: [40], theme: a}
        stat: median
      - scaling_exponent < 1.5
  leak:
    leak: {entry: "mod:fn", calls: 8, warmup: 2, args: ["{output}"]}
    slas: [leak_per_build < 1MiB]
slas: [oom_kills == 0, "duration < 10min"]
""",
]
SEED_DATA = [yaml.safe_load(text) for text in SEEDS]

KEYS = sorted({*Scenario.model_fields, "version", "scenarios", "defaults", "slas", "rule",
               "when", "stat", "sitegen", "pages", "page_size", "sections", "seed", "flavour",
               "entry", "calls", "args", "pids_limit", "tmpfs", "network", "read_only"})

HOSTILE_TEXT = [
    "{pages:>999999999999}", "{output:>2000000000}", "{pages!r}", "{pages[0]}", "{pages.real}",
    "{0}", "{}", "{", "}", "{{", "{pages:{pages}}", "{nope}", "{fixture}/{output}", "a\0b",
    "1e999GiB", "-1", "0", "1e300", "-1e300s", "NaN", "30s", "1.5", "2 gigs", "512m", "10%",
    "yes", "peak <", "< 1", "peak < 1GiB", "per_page < 1MiB", "scaling_exponent < 1e300",
    "phase(x).peak < 1", "oom_kills == 1e30", "per_page(duration) < 1", "peak <= -1",
    "a" + " " * 20_000 + "b", "x" * 200_000, "1" + " " * 20_000 + "!", "9" * 5000,
    "1" + ":1" * 500, "mod:fn", "é" * 1000, "\t", "\u2028", "\ufeff", "--", "~", "null",
    "{pages}" * 2000, "{a}", "pages", "docker", "tracemalloc", "none", "bind",
]
NUMBERS = st.one_of(
    st.integers(),
    st.sampled_from([2**70, -(2**63), 2**63, 2**63 - 1, 10**18, 4_194_305, 1_000_001, 0, -1,
                     1, 3, 16, 100, 101, 1000, 1001]),
    st.floats(allow_nan=True, allow_infinity=True),
)
QUANTITIES = st.builds(
    lambda number, unit, space: f"{number}{space}{unit}",
    NUMBERS, st.sampled_from(["", "B", "KiB", "GiB", "TiB", "kb", "s", "ms", "min", "h", "%",
                              "x", "Gi"]),
    st.sampled_from(["", " ", "   "]))
SCALARS = st.one_of(
    NUMBERS, QUANTITIES, st.booleans(), st.none(), st.text(max_size=12),
    st.sampled_from(HOSTILE_TEXT),
    st.builds(lambda text: "{" + text + "}", st.text(max_size=10)),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), children,
                        max_size=4)),
    max_leaves=8)


def _paths(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into the data (keys and indexes), the root included."""
    found = [path]
    if isinstance(data, dict):
        for key, value in data.items():
            found.extend(_paths(value, (*path, key)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found.extend(_paths(value, (*path, index)))
    return found


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


@st.composite
def structure_mutations(draw: st.DrawFn, data: Any) -> Any:
    """A deep copy of ``data`` with 1-4 changes to its tree."""
    data = yaml.safe_load(yaml.safe_dump(data))
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(data)[1:] or [()]  # the root only now and then, below
        path = draw(st.sampled_from(paths)) if draw(st.integers(0, 19)) else ()
        kind = draw(st.sampled_from(["replace", "replace", "delete", "add", "blow-up", "wrap"]))
        if not path:
            if kind == "replace":
                data = draw(VALUES)
            continue
        parent, last = _get(data, path[:-1]), path[-1]
        value = parent[last]
        if kind == "replace":
            parent[last] = draw(VALUES)
        elif kind == "delete":
            del parent[last]
        elif kind == "add" and isinstance(value, dict):
            value[draw(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)))] = draw(VALUES)
        elif kind == "add" and isinstance(value, list):
            value.insert(draw(st.integers(0, len(value))), draw(VALUES))
        elif kind == "blow-up" and isinstance(value, list) and value:
            count = draw(st.sampled_from([3, 50, 101, 1001, 6000]))
            item = value[0]
            value[:] = [item if not isinstance(item, int | str) or isinstance(item, bool)
                        else (item if index == 0 else f"{item}{index}" if isinstance(item, str)
                              else item + index) for index in range(count)]
        elif kind == "wrap":
            parent[last] = draw(st.sampled_from([[value], {"a": value}, {"rule": value}]))
    return data


TAGS = ["!!bool ", "!!timestamp ", "!!int ", "!!float ", "!!str ", "!!null ", "!!binary ",
        "!!set ", "!!omap ", "!!pairs ", "!!map ", "!!seq ", "!!merge ", "!local ",
        "!!python/object:os.system ", "!!python/name:os.system ", "!<tag:x> "]
SNIPPETS = ["\t", "[", "]", "{", "}", "'", '"', ":", ": ", "- ", "\n", "# ", "&a ", "*a", "!",
            "%", "@", "`", "|", ">", "---\n", "...\n", "\x00", "\x07", "\ufeff", "\u2028",
            "<<: *a\n", "? ", "~", "&a [*a]", "*b", ",", "\\", '"\\0"', "\r", "  ", "{{}}",
            "0x" + "f" * 80, "9" * 70]


@st.composite
def text_mutations(draw: st.DrawFn, text: str) -> str:
    """``text`` with 0-3 changes to its characters."""
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3]))):
        kind = draw(st.sampled_from(["tag", "anchor", "insert", "delete", "line", "truncate"]))
        at = draw(st.integers(0, len(text)))
        if kind == "tag":
            # before a value: after a ': ' or a '- '
            spots = [i + 2 for i in range(len(text) - 1) if text[i:i + 2] in (": ", "- ")]
            if spots:
                at = draw(st.sampled_from(spots))
            text = text[:at] + draw(st.sampled_from(TAGS)) + text[at:]
        elif kind == "anchor":
            spots = [i + 2 for i in range(len(text) - 1) if text[i:i + 2] in (": ", "- ")]
            if len(spots) >= 2:
                first, second = sorted(draw(st.lists(st.sampled_from(spots), min_size=2,
                                                     max_size=2, unique=True)))
                end = min(len(text), *(i for i in (text.find("\n", second),
                                                   text.find(",", second)) if i >= 0),
                          len(text))
                text = text[:first] + "&x " + text[first:second] + "*x" + text[end:]
        elif kind == "insert":
            text = text[:at] + draw(st.sampled_from(SNIPPETS)) + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 20)):]
        elif kind == "line":
            lines = text.split("\n")
            index = draw(st.integers(0, len(lines) - 1))
            times = draw(st.sampled_from([2, 3, 1000, 30_000]))
            text = "\n".join([*lines[:index], *[lines[index]] * times, *lines[index + 1:]])
        else:
            text = text[:max(at, draw(st.integers(0, len(text))))]
    return text


@st.composite
def sla_files(draw: st.DrawFn) -> str:
    index = draw(st.integers(0, len(SEEDS) - 1))
    if draw(st.booleans()):
        data = draw(structure_mutations(SEED_DATA[index]))
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True,
                              default_flow_style=draw(st.sampled_from([None, False, True])),
                              width=draw(st.sampled_from([80, 10**6])))
    else:
        text = SEEDS[index]
    return draw(text_mutations(text))


def _check_accepted(suite: Suite) -> None:
    """An accepted suite can be planned and filled: what it holds is bounded."""
    for scenario in suite.scenarios.values():
        keys = list(scenario.matrix)
        combos = list(itertools.islice(
            itertools.product(*(scenario.matrix[k] for k in keys)), MAX_CASES + 1))
        assert len(combos) <= MAX_CASES
        for combo in combos[:20]:
            values = {**dict(zip(keys, map(str, combo), strict=True)),
                      **{name: f"/{name}" for name in PATH_PLACEHOLDERS}}
            for text in scenario._templates():
                filled = text.format_map(values)
                assert "\0" not in filled and len(filled) <= MAX_FILLED


def _load(text: str) -> Suite | SpecError:
    try:
        return parse_suite(text, file="fuzz.yaml")
    except SpecError as error:
        return error


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          derandomize=os.environ.get("MEMSLA_FUZZ_RANDOM") != "1",
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.filter_too_much, HealthCheck.large_base_example])
@given(sla_files())
def test_any_mutated_file_loads_or_gives_one_positioned_error(text: str) -> None:
    tracemalloc.start()
    start = time.monotonic()
    try:
        outcome = _load(text)  # anything but a Suite or a SpecError fails the test here
    finally:
        seconds = time.monotonic() - start
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    assert seconds < SECONDS, f"{seconds:.1f} s for {len(text)} characters"
    assert peak < MIB, f"{peak:.0f} MiB for {len(text)} characters"
    if isinstance(outcome, SpecError):
        assert outcome.file == "fuzz.yaml"
        assert outcome.line is not None and outcome.column is not None, str(outcome)
        assert outcome.line >= 1 and outcome.column >= 1
        assert outcome.line <= text.count("\n") + 2, str(outcome)
        assert "\n" not in str(outcome) and outcome.message
        assert len(outcome.message) <= 500
    else:
        assert isinstance(outcome, Suite)
        _check_accepted(outcome)


def test_the_seeds_are_valid() -> None:
    for text in SEEDS:
        assert isinstance(parse_suite(text), Suite)
