"""Every kind of broken ``sla.yaml`` gives ONE SpecError at the right file:line(:col), never a
traceback; through the CLI that is one stderr line and exit 2."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.errors import EXIT_BAD_INPUT, SpecError
from runner.slafile import load_suite, parse_suite
from tests.conftest import REPO

ANY = object()  # the column is not checked (it depends on where YAML gives up)


def case(name: str, text: str, line: int | None, column: object,
         message: str) -> Any:
    return pytest.param(text, line, column, message, id=name)


CASES = [
    # --- YAML syntax
    case("tab-indent", "version: 1\nscenarios:\n\tsite:\n", 3, 1, "tabs"),
    case("tab-inside", "version: 1\nscenarios:\n  site:\n  \tcommand: [x]\n", 4, 3, "tabs"),
    case("unclosed-bracket", """\
version: 1
scenarios:
  site:
    command: [python, build.py
    repeats: 2
""", 4, 14, "flow sequence"),
    case("unclosed-bracket-at-end", """\
version: 1
scenarios:
  site:
    command: [python, build.py
""", 4, 14, "flow sequence"),
    case("unclosed-brace", "version: 1\nscenarios: {site: {command: [x]}\n", 2, 12, "flow mapping"),
    case("unclosed-quote", """\
version: 1
scenarios:
  site:
    command: ['python]
""", 4, 15, "quoted scalar"),
    case("bad-indentation-less", """\
version: 1
scenarios:
  site:
    command: [x]
   repeats: 2
""", 5, 4, "indentation"),
    case("bad-indentation-list", """\
version: 1
scenarios:
  site:
    command:
    - python
   - build.py
""", 6, 4, "indentation"),
    case("missing-colon", """\
version: 1
scenarios
  site:
    command: [x]
""", 2, 1, "could not find expected ':'"),
    case("bad-escape", 'version: 1\nscenarios:\n  site:\n    command: ["a\\q"]\n', 4, 18, "escape"),
    case("two-documents", "version: 1\n---\nversion: 1\n", 2, 1, "single document"),
    case("undefined-alias", "version: 1\nscenarios: *nothing\n", 2, 12, "undefined alias"),
    case("python-tag", "version: 1\nscenarios: !!python/object:os.system {}\n", 2, 12,
     "constructor"),
    case("control-character", "version: 1\nscenarios:\x07\n", 2, 11, "U+0007"),
    case("bad-date", "version: 1\nscenarios:\n  site:\n    description: 2024-13-45\n", 4, 18,
     "2024-13-45"),
    case("deep-nesting", "version: 1\nscenarios: " + "[" * 3000 + "]" * 3000 + "\n", 2, ANY,
     "nested too deeply"),
    # --- the document's shape
    case("empty-file", "", 1, 1, "empty"),
    case("only-comments", "# nothing here\n\n", 1, 1, "empty"),
    case("top-level-list", "- version: 1\n", 1, 1, "not a list"),
    case("top-level-scalar", "just text\n", 1, 1, "top level must be a mapping"),
    case("top-level-after-comment", "# sla\n\n42\n", 3, 1, "not 42"),
    case("missing-version", """\
scenarios:
  site:
    command: [x]
""", 1, 1, "missing 'version: 1'"),
    case("wrong-version", "version: 2\nscenarios:\n  site:\n    command: [x]\n", 1, 10,
     "schema version 1, not version 2"),
    case("version-string", "version: '1'\nscenarios:\n  site:\n    command: [x]\n", 1, 10,
     "not '1'"),
    case("version-bool", "version: yes\nscenarios:\n  site:\n    command: [x]\n", 1, 10,
     "not yes"),
    case("version-float", "version: 1.0\nscenarios:\n  site:\n    command: [x]\n", 1, 10,
     "not 1.0"),
    case("missing-scenarios", "version: 1\nslas: [peak < 1GiB]\n", 1, 1,
     "missing required key 'scenarios'"),
    case("no-scenarios", "version: 1\nscenarios: {}\n", 2, 1, "at least one scenario"),
    case("scenarios-null", "version: 1\nscenarios:\n", 2, 1, "should be a mapping"),
    case("scenarios-list", "version: 1\nscenarios:\n  - command: [x]\n", 2, 1,
     "should be a mapping, not a list"),
    case("scenario-null", "version: 1\nscenarios:\n  site:\n", 3, 3, "should be a mapping"),
    # --- unknown keys
    case("unknown-top-level", "version: 1\nscenario:\n  site:\n    command: [x]\n", 2, 1,
     "did you mean 'scenarios'"),
    case("setting-at-top-level", """\
version: 1
limit: 2GiB
scenarios:
  site:
    command: [x]
""", 2, 1, "under 'defaults'"),
    case("unknown-defaults-key", """\
version: 1
defaults:
  repeat: 5
scenarios:
  site:
    command: [x]
""", 3, 3, "did you mean 'repeats'"),
    case("scenario-key-in-defaults", """\
version: 1
defaults:
  command: [x]
scenarios:
  site:
    command: [x]
""", 3, 3, "belongs in a scenario"),
    case("unknown-scenario-key", """\
version: 1
scenarios:
  site:
    command: [x]
    timout: 60s
""", 5, 5, "did you mean 'timeout'"),
    case("unknown-generate-key", """\
version: 1
scenarios:
  site:
    command: [x]
    generate:
      comand: [make-site]
""", 6, 7, "did you mean 'command'"),
    case("unknown-sitegen-key", """\
version: 1
scenarios:
  site:
    command: [x, "{fixture}"]
    matrix: {pages: [10]}
    generate:
      sitegen:
        flavor: hugo
""", 8, 9, "did you mean 'flavour'"),
    case("unknown-docker-key", """\
version: 1
scenarios:
  site:
    command: [x]
    docker:
      netwrok: none
""", 6, 7, "did you mean 'network'"),
    case("unknown-leak-key", """\
version: 1
scenarios:
  site:
    leak:
      entry: site.build:main
      call: 10
""", 6, 7, "did you mean 'calls'"),
    case("unknown-key-no-suggestion", """\
version: 1
scenarios:
  site:
    command: [x]
    zzz: 1
""", 5, 5, "known keys:"),
    case("duplicate-top-level-key", """\
version: 1
scenarios:
  site:
    command: [x]
version: 1
""", 5, 1, "duplicate key 'version' (first on line 1)"),
    case("duplicate-scenario", """\
version: 1
scenarios:
  site:
    command: [x]
  site:
    command: [y]
""", 5, 3, "duplicate key 'site'"),
    case("duplicate-matrix-key", """\
version: 1
scenarios:
  site:
    command: [x]
    matrix: {pages: [1], pages: [2]}
""", 5, 26, "duplicate key 'pages'"),
    case("merge-key", """\
version: 1
base: &base
  command: [x]
scenarios:
  site:
    <<: *base
""", 6, 5, "merge keys"),
    case("number-key", """\
version: 1
scenarios:
  2024:
    command: [x]
""", 3, 3, "quote it"),
    case("bool-key", """\
version: 1
scenarios:
  site:
    command: [x]
    env:
      on: x
""", 6, 7, "true/false"),
    case("null-key", """\
version: 1
scenarios:
  site:
    command: [x]
    env: {~: x}
""", 5, 11, "null"),
    case("list-key", "version: 1\n? [a, b]\n: c\n", 2, 3, "plain name"),
    case("recursive-alias", "version: 1\nscenarios: &s\n  site: *s\n", 3, 9, "alias"),
    case("billion-laughs", "version: 1\n" + "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 7)), 5, ANY,
     "aliases"),  # a3 is the first to expand past the bound
    # --- metrics and rules
    case("unknown-metric", """\
version: 1
scenarios:
  site:
    command: [x]
    slas:
      - peak < 2GiB
      - heap < 1GiB
""", 7, 9, "unknown metric 'heap'"),
    case("misspelled-metric", """\
version: 1
scenarios:
  site:
    command: [x]
    slas:
      - rss_pek < 2GiB
""", 6, 9, "did you mean 'rss_peak'"),
    case("misspelled-suite-metric", """\
version: 1
scenarios:
  site:
    command: [x]
slas:
  - duraton < 60s
""", 6, 5, "did you mean 'duration'"),
    case("unknown-phase-metric", """\
version: 1
scenarios:
  site:
    command: [x]
    slas:
      - phase(render).pyhton_peak < 100MiB
""", 6, 9, "did you mean 'python_peak'"),
    case("phase-metric-not-per-phase", """\
version: 1
scenarios:
  site:
    command: [x]
    slas:
      - phase(render).oom_kills == 0
""", 6, 9, "unknown phase metric 'oom_kills'"),
    case("empty-phase-name", """\
version: 1
scenarios:
  site:
    command: [x]
    slas:
      - phase( ).peak < 100MiB
""", 6, 9, "phase name is empty"),
    case("fit-bad-argument", """\
version: 1
scenarios:
  site:
    command: [x, "{pages}"]
    matrix: {pages: [10, 100]}
    slas:
      - per_page(duration) < 1MiB
""", 7, 9, "per_page(duration)"),
    case("argument-on-plain-metric", """\
version: 1
scenarios:
  site:
    command: [x]
    slas:
      - peak(rss_peak) < 1GiB
""", 6, 9, "takes no argument"),
    case("growth-of-unknown", """\
version: 1
scenarios:
  site:
    command: [x]
    slas:
      - per_page_growth < 10%
""", 6, 9, "unknown metric"),
    case("size-with-seconds", """\
version: 1
scenarios:
  site:
    command: [x]
    slas:
      - peak < 20s
""", 6, 9, "peak is a size"),
    case("duration-with-size", """\
version: 1
scenarios:
  site:
    command: [x]
    slas:
      - duration < 2GiB
""", 6, 9, "duration is a duration"),
    case("fractional-count", """\
version: 1
scenarios:
  site:
    command: [x]
    slas:
      - oom_kills == 1.5
""", 6, 9, "not a whole number"),
    case("infinite-count", """\
version: 1
scenarios:
  site:
    command: [x]
    slas:
      - oom_kills < 1e999
""", 6, 9, "finite"),
    case("negative-size", """\
version: 1
scenarios:
  site:
    command: [x]
    slas:
      - peak < -1GiB
""", 6, 9, "non-negative"),
    case("infinite-size", """\
version: 1
scenarios:
  site:
    command: [x]
    slas:
      - peak < 1e999GiB
""", 6, 9, "finite"),
    case("unknown-size-unit", """\
version: 1
scenarios:
  site:
    command: [x]
    slas:
      - peak < 2Gi
""", 6, 9, "unknown size unit 'Gi'"),
    case("ratio-unit", """\
version: 1
scenarios:
  site:
    command: [x]
    slas:
      - peak_growth < 10MiB
""", 6, 9, "percentage"),
    case("rule-without-operator", """\
version: 1
scenarios:
  site:
    command: [x]
    slas:
      - peak 2GiB
""", 6, 9, "METRIC OP VALUE"),
    case("rule-single-equals", """\
version: 1
scenarios:
  site:
    command: [x]
    slas:
      - peak = 2GiB
""", 6, 9, "METRIC OP VALUE"),
    case("rule-without-bound", """\
version: 1
scenarios:
  site:
    command: [x]
    slas:
      - "peak <"
""", 6, 9, "METRIC OP VALUE"),
    case("rule-number", """\
version: 1
scenarios:
  site:
    command: [x]
    slas:
      - 42
""", 6, 9, "a rule is a string"),
    case("slas-not-a-list", """\
version: 1
scenarios:
  site:
    command: [x]
    slas: peak < 2GiB
""", 5, 11, "should be a list"),
    case("rule-mapping-unknown-key", """\
version: 1
scenarios:
  site:
    command: [x]
    slas:
      - rule: peak < 2GiB
        stats: max
""", 7, 9, "did you mean 'stat'"),
    case("rule-mapping-metric-as-key", """\
version: 1
scenarios:
  site:
    command: [x]
    slas:
      - peak: < 2GiB
""", 6, 9, "unknown key 'peak' in a rule"),
    case("rule-mapping-without-rule", """\
version: 1
scenarios:
  site:
    command: [x]
    slas:
      - stat: max
""", 6, 9, "needs 'rule: METRIC OP VALUE'"),
    case("rule-mapping-bad-rule", """\
version: 1
scenarios:
  site:
    command: [x]
    slas:
      - stat: max
        rule: peek < 2GiB
""", 7, 15, "did you mean 'peak'"),
    case("rule-mapping-bad-stat", """\
version: 1
scenarios:
  site:
    command: [x]
    slas:
      - rule: peak < 2GiB
        stat: p95
""", 7, 15, "stat must be one of"),
    case("rule-when-not-mapping", """\
version: 1
scenarios:
  site:
    command: [x, "{pages}"]
    matrix: {pages: [10, 100]}
    slas:
      - rule: peak < 2GiB
        when: pages=100
""", 8, 15, "'when' maps matrix parameters"),
    case("when-unknown-parameter", """\
version: 1
scenarios:
  site:
    command: [x, "{pages}"]
    matrix: {pages: [10, 100]}
    slas:
      - rule: peak < 2GiB
        when: {page: 100}
""", 8, 16, "'when' names 'page'"),
    case("when-value-not-in-matrix", """\
version: 1
scenarios:
  site:
    command: [x, "{pages}"]
    matrix: {pages: [10, 100]}
    slas:
      - rule: peak < 2GiB
        when:
          pages: [10, 1000]
""", 9, 23, "pages=1000 is not in the matrix"),
    case("when-value-wrong-type", """\
version: 1
scenarios:
  site:
    command: [x, "{pages}"]
    matrix: {pages: [10, 100]}
    slas:
      - rule: peak < 2GiB
        when: {pages: "100"}
""", 8, 23, "pages='100' is not in the matrix"),
    case("when-value-bool", """\
version: 1
scenarios:
  site:
    command: [x, "{pages}"]
    matrix: {pages: [1, 100]}
    slas:
      - rule: peak < 2GiB
        when: {pages: yes}
""", 8, 23, "not True"),
    case("when-empty-list", """\
version: 1
scenarios:
  site:
    command: [x, "{pages}"]
    matrix: {pages: [10, 100]}
    slas:
      - rule: peak < 2GiB
        when: {pages: []}
""", 8, 16, "no values"),
    case("suite-when-unknown-parameter", """\
version: 1
scenarios:
  site:
    command: [x, "{pages}"]
    matrix: {pages: [10, 100]}
slas:
  - rule: peak < 2GiB
    when: {flavour: hugo}
""", 8, 12, "no scenario's matrix"),
    case("suite-when-unknown-value", """\
version: 1
scenarios:
  site:
    command: [x, "{pages}"]
    matrix: {pages: [10, 100]}
slas:
  - rule: peak < 2GiB
    when: {pages: 5}
""", 8, 19, "pages=5 is in no scenario's matrix"),
    case("fit-without-size", """\
version: 1
scenarios:
  site:
    command: [x]
    slas:
      - per_page < 1MiB
""", 6, 9, "size parameter with at least 3 values"),
    case("leak-metric-without-leak", """\
version: 1
scenarios:
  site:
    command: [x]
    slas:
      - leak_per_build < 1MiB
""", 6, 9, "needs a 'leak' entry point"),
    case("suite-fit-rule-no-scenario-has-sizes", """\
version: 1
slas:
  - peak < 2GiB
  - per_page < 1MiB
scenarios:
  site:
    command: [x, "{pages}"]
    matrix: {pages: [10]}
""", 4, 5, "applies to no scenario: per_page(peak) is fitted across sizes"),
    case("suite-leak-rule-no-leak-scenario", """\
version: 1
scenarios:
  site: {command: [x]}
slas: [leak_per_build < 1MiB]
""", 4, 8, "applies to no scenario: leak_per_build needs a 'leak' entry point"),
    # --- commands and placeholders
    case("string-command-without-shell", """\
version: 1
scenarios:
  site:
    description: a site
    command: python build.py
""", 5, 14, "needs 'shell: true'"),
    case("empty-command-list", """\
version: 1
scenarios:
  site:
    description: a site
    command: []
""", 5, 5, "empty list"),
    case("blank-shell-command", """\
version: 1
scenarios:
  site:
    shell: true
    command: "  "
""", 5, 14, "'command' is empty"),
    case("empty-program", """\
version: 1
scenarios:
  site:
    command: ["", build.py]
""", 4, 15, "program name"),
    case("no-command", """\
version: 1
scenarios:
  site:
    description: nothing to run
""", 3, 3, "needs a 'command'"),
    case("command-not-list", """\
version: 1
scenarios:
  site:
    command: 5
""", 4, 14, "a list of strings or a string, not 5"),
    case("command-item-not-string", """\
version: 1
scenarios:
  site:
    command:
      - python
      - -j
      - 4
""", 7, 9, "should be a string, not 4"),
    case("unknown-placeholder-command", """\
version: 1
scenarios:
  site:
    matrix: {pages: [10]}
    command:
      - python
      - build.py
      - --pages={page}
""", 8, 9, "unknown placeholder {page}"),
    case("unknown-placeholder-shell", """\
version: 1
scenarios:
  site:
    shell: true
    command: make -C {fixtures}
""", 5, 14, "unknown placeholder {fixtures}"),
    case("unknown-placeholder-env", """\
version: 1
scenarios:
  site:
    command: [x]
    env:
      HOME: /tmp
      OUT: "{outptu}"
""", 7, 12, "unknown placeholder {outptu}"),
    case("unknown-placeholder-workdir", """\
version: 1
scenarios:
  site:
    command: [x]
    workdir: "{fixture}/{site}"
""", 5, 14, "unknown placeholder {site}"),
    case("unknown-placeholder-generate", """\
version: 1
scenarios:
  site:
    command: [x]
    generate:
      command: [make-site, --out, "{fixture}", --n, "{n}"]
""", 6, 53, "unknown placeholder {n}"),
    case("unknown-placeholder-generate-env", """\
version: 1
scenarios:
  site:
    command: [x]
    generate:
      command: [make-site]
      env: {SEED: "{seed}"}
""", 7, 19, "unknown placeholder {seed}"),
    case("unclosed-placeholder", """\
version: 1
scenarios:
  site:
    command: [x, "{fixture"]
""", 4, 18, "bad placeholder"),
    case("positional-placeholder", """\
version: 1
scenarios:
  site:
    command: [x, "{}"]
""", 4, 18, "unknown placeholder {}"),
    case("placeholder-bad-format-spec", """\
version: 1
scenarios:
  site:
    matrix: {pages: [10]}
    command: [x, "{pages:05d}"]
""", 5, 18, "without format specs"),
    case("bad-env-name", """\
version: 1
scenarios:
  site:
    command: [x]
    env:
      A=B: x
""", 6, 7, "not a valid environment variable name"),
    case("env-value-number", """\
version: 1
scenarios:
  site:
    command: [x]
    env:
      JOBS: 4
""", 6, 13, "should be a string, not 4"),
    # --- matrix and size
    case("empty-matrix-axis", """\
version: 1
scenarios:
  site:
    command: [x]
    matrix:
      pages: []
""", 6, 7, "has no values"),
    case("duplicate-matrix-value", """\
version: 1
scenarios:
  site:
    command: [x]
    matrix:
      pages:
        - 10
        - 100
        - 10
""", 9, 11, "repeats the value 10"),
    case("matrix-axis-not-list", """\
version: 1
scenarios:
  site:
    command: [x]
    matrix:
      pages: 100
""", 6, 14, "should be a list, not 100"),
    case("matrix-value-bool", """\
version: 1
scenarios:
  site:
    command: [x]
    matrix:
      debug: [yes, no]
""", 6, 15, "a whole number or a string, not yes"),
    case("matrix-value-float", """\
version: 1
scenarios:
  site:
    command: [x]
    matrix:
      scale: [1, 1.5]
""", 6, 18, "not 1.5"),
    case("non-identifier-matrix-key", """\
version: 1
scenarios:
  site:
    command: [x]
    matrix:
      page-count: [10]
""", 6, 7, "must be an identifier"),
    case("matrix-key-clashes-with-path", """\
version: 1
scenarios:
  site:
    command: [x]
    matrix:
      output: [a]
""", 6, 7, "clashes with the path placeholder"),
    case("size-not-in-matrix", """\
version: 1
scenarios:
  site:
    command: [x]
    matrix: {pages: [10, 100]}
    size: page
""", 6, 11, "size 'page' is not a matrix parameter"),
    case("size-not-integers", """\
version: 1
scenarios:
  site:
    command: [x, "{flavour}"]
    matrix:
      flavour: [pelican, hugo]
    size: flavour
""", 6, 17, "takes whole numbers, not 'pelican'"),
    # --- settings
    case("repeats-zero", """\
version: 1
scenarios:
  site:
    command: [x]
    repeats: 0
""", 5, 14, "greater than or equal to 1, not 0"),
    case("repeats-too-many", """\
version: 1
defaults:
  repeats: 1000
scenarios:
  site:
    command: [x]
""", 3, 12, "less than or equal to 100"),
    case("repeats-yes", """\
version: 1
scenarios:
  site:
    command: [x]
    repeats: yes
""", 5, 14, "whole number, not yes"),
    case("repeats-string", """\
version: 1
scenarios:
  site:
    command: [x]
    repeats: "3"
""", 5, 14, "whole number, not '3'"),
    case("repeats-float", """\
version: 1
scenarios:
  site:
    command: [x]
    repeats: 2.5
""", 5, 14, "not 2.5"),
    case("repeats-huge", "version: 1\nscenarios:\n  site:\n    command: [x]\n    repeats: "
     + "9" * 5000 + "\n", 5, 14, "too large"),
    case("timeout-zero", """\
version: 1
scenarios:
  site:
    command: [x]
    timeout: 0s
""", 5, 14, "greater than 0, not '0s'"),
    case("timeout-negative", """\
version: 1
scenarios:
  site:
    command: [x]
    timeout: -5min
""", 5, 14, "non-negative"),
    case("timeout-bad-unit", """\
version: 1
scenarios:
  site:
    command: [x]
    timeout: 10 minutes
""", 5, 14, "unknown duration unit"),
    case("timeout-bool", """\
version: 1
defaults:
  timeout: true
scenarios:
  site:
    command: [x]
""", 3, 12, "not a duration"),
    case("limit-negative", """\
version: 1
scenarios:
  site:
    command: [x]
    limit: -1GiB
""", 5, 12, "non-negative"),
    case("limit-infinite", """\
version: 1
scenarios:
  site:
    command: [x]
    limit: .inf
""", 5, 12, "finite"),
    case("limit-nan", """\
version: 1
scenarios:
  site:
    command: [x]
    limit: .nan
""", 5, 12, "finite"),
    case("limit-zero", """\
version: 1
scenarios:
  site:
    command: [x]
    limit: 0
""", 5, 12, "below 6 MiB"),
    # the kernel cannot make a cgroup that small ("Cannot allocate memory"), Docker refuses it
    case("limit-one-byte", """\
version: 1
scenarios:
  site:
    command: [x]
    limit: 1B
""", 5, 12, "a limit of 1 B is below 6 MiB, the least a build can run under"),
    case("limit-below-docker-minimum-in-defaults", """\
version: 1
defaults:
  limit: 5.9MiB
scenarios:
  site:
    command: [x]
""", 3, 10, "give at least 6MiB"),
    case("limit-huge", """\
version: 1
scenarios:
  site:
    command: [x]
    limit: 100000000000000000000000000000
""", 5, 12, "too large"),
    case("limit-huge-units", """\
version: 1
scenarios:
  site:
    command: [x]
    limit: 99999999TiB
""", 5, 12, "too large"),
    case("limit-unit-typo", """\
version: 1
scenarios:
  site:
    command: [x]
    limit: 2 gigs
""", 5, 12, "unknown size unit"),
    case("sample-interval-too-long", """\
version: 1
scenarios:
  site:
    command: [x]
    sample_interval: 10s
""", 5, 22, "less than or equal to 5"),
    case("unknown-backend", """\
version: 1
defaults:
  backend: dcoker
scenarios:
  site:
    command: [x]
""", 3, 12, "did you mean 'docker'"),
    case("unknown-tracker", """\
version: 1
scenarios:
  site:
    command: [x]
    tracker: tracemaloc
""", 5, 14, "did you mean 'tracemalloc'"),
    case("shell-number", """\
version: 1
scenarios:
  site:
    shell: 1
    command: make
""", 4, 12, "true or false, not 1"),
    case("docker-network", """\
version: 1
scenarios:
  site:
    command: [x]
    docker:
      network: internet
""", 6, 16, "'none', 'host' or 'bridge'"),
    case("docker-pids-limit", """\
version: 1
scenarios:
  site:
    command: [x]
    docker: {pids_limit: 2}
""", 5, 26, "greater than or equal to 16"),
    case("scenario-name-with-space", """\
version: 1
scenarios:
  my site:
    command: [x]
""", 3, 3, "scenario name 'my site'"),
    case("scenario-name-with-slash", """\
version: 1
scenarios:
  site:
    command: [x]
  a/b:
    command: [x]
""", 5, 3, "scenario name 'a/b'"),
    # --- generate
    case("generate-empty-input", """\
version: 1
scenarios:
  site:
    command: [x, "{fixture}"]
    matrix: {pages: [10]}
    generate:
      sitegen: {}
      command: [make-site]
      inputs: [""]
""", 9, 16, "an input is a path"),
    case("requirements-source-tree", """\
version: 1
scenarios:
  site:
    command: [x]
    requirements: [pelican, "."]
""", 5, 29, "write 'project: PATH'"),
    case("generate-neither", """\
version: 1
scenarios:
  site:
    command: [x]
    generate:
      env: {A: b}
""", 5, 5, "needs 'sitegen', 'command', or both"),
    case("generate-empty-command", """\
version: 1
scenarios:
  site:
    command: [x]
    generate:
      command: []
""", 6, 7, "at least 1 item"),
    case("sitegen-without-pages-axis", """\
version: 1
scenarios:
  site:
    command: [x]
    generate:
      sitegen: {flavour: hugo}
""", 6, 7, "needs a 'pages' parameter"),
    case("sitegen-pages-zero", """\
version: 1
scenarios:
  site:
    command: [x]
    generate:
      sitegen: {pages: 0}
""", 6, 24, "at least 1"),
    case("sitegen-pages-not-a-number", """\
version: 1
scenarios:
  site:
    command: [x, "{flavour}"]
    matrix: {flavour: [pelican, hugo]}
    generate:
      sitegen:
        pages: "{flavour}"
""", 8, 16, "gives 'pelican'"),
    case("sitegen-pages-path", """\
version: 1
scenarios:
  site:
    command: [x]
    generate:
      sitegen:
        pages: "{fixture}"
""", 7, 16, "not {fixture}"),
    case("sitegen-flavour", """\
version: 1
scenarios:
  site:
    command: [x, "{pages}"]
    matrix: {pages: [10]}
    generate:
      sitegen: {flavour: jekyll}
""", 7, 26, "'pelican' or 'hugo'"),
    case("sitegen-page-size", """\
version: 1
scenarios:
  site:
    command: [x, "{pages}"]
    matrix: {pages: [10]}
    generate:
      sitegen: {page_size: 10}
""", 7, 28, "greater than or equal to 200"),
    # --- leak
    case("leak-bad-entry", """\
version: 1
scenarios:
  site:
    leak:
      entry: site.build
""", 5, 14, "must be 'module:function'"),
    case("leak-missing-entry", """\
version: 1
scenarios:
  site:
    leak:
      calls: 10
""", 4, 5, "missing required key 'entry'"),
    case("leak-warmup-too-long", """\
version: 1
scenarios:
  site:
    leak:
      entry: site.build:main
      calls: 5
      warmup: 4
""", 7, 15, "fewer than 2 measured calls"),
    case("defaults-not-mapping", """\
version: 1
defaults: [repeats, 3]
scenarios:
  site:
    command: [x]
""", 2, 1, "defaults: should be a mapping, not a list"),
    case("read-only-string", """\
version: 1
scenarios:
  site:
    command: [x]
    docker: {read_only: "no"}
""", 5, 25, "true or false, not 'no'"),
    case("requirements-not-list", """\
version: 1
scenarios:
  site:
    command: [x]
    requirements: pelican==4.9
""", 5, 19, "should be a list"),
    case("suite-rule-mapping-unknown-key", """\
version: 1
scenarios:
  site:
    command: [x]
slas:
  - rule: peak < 2GiB
    wen: {pages: 10}
""", 7, 5, "did you mean 'when'"),
    case("error-in-second-scenario", """\
version: 1
scenarios:
  small:
    command: [x]
  large:
    command: [x]
    repeats: 0
""", 7, 14, "scenarios.large.repeats"),
    case("first-problem-in-the-file", """\
version: 1
scenarios:
  site:
    tracker: none
    repeats: 0
    command: [x]
    backend: nowhere
""", 5, 14, "repeats"),
    case("trace-sizes-not-a-size", """\
version: 1
scenarios:
  site:
    command: [x]
    matrix: {pages: [100, 200]}
    trace_sizes: [200, 300]
""", 6, 24, "trace_sizes: 300 is not a value of pages (100, 200)"),
    case("trace-sizes-empty", """\
version: 1
scenarios:
  site:
    command: [x]
    matrix: {pages: [100, 200]}
    trace_sizes: []
""", 6, 5, "give at least one"),
    case("trace-sizes-unknown-word", """\
version: 1
scenarios:
  site:
    command: [x]
    matrix: {pages: [100, 200]}
    trace_sizes: smallest
""", 6, 18, "trace_sizes"),
    case("trace-sizes-without-a-size", """\
version: 1
scenarios:
  site:
    command: [x]
    matrix: {theme: [a, b]}
    trace_sizes: [1]
""", 6, 5, "no size parameter"),
    case("heap-rule-at-an-untraced-size", """\
version: 1
scenarios:
  site:
    command: [x]
    matrix: {pages: [100, 200]}
    trace_sizes: largest
    slas:
      - peak < 1GiB
      - python_peak < 1GiB
""", 9, 9, "reads heap figures at pages=100 in scenario 'site', which trace_sizes: largest"),
    case("heap-fit-with-sizes-untraced", """\
version: 1
defaults: {trace_sizes: [200]}
scenarios:
  site:
    command: [x]
    matrix: {pages: [100, 200, 400]}
slas:
  - rule: python_peak < 1GiB
    when: {pages: 200}
  - per_page(python_peak) < 1MiB
""", 10, 5, "per_page(python_peak) < 1MiB' reads heap figures at pages=100"),
]


@pytest.mark.parametrize(("text", "line", "column", "message"), CASES)
def test_bad_input_points_at_the_line(text: str, line: int | None, column: object,
                                      message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_suite(text, file="bad.yaml")
    error = caught.value
    assert message in error.message
    assert (error.file, error.line) == ("bad.yaml", line), error.message
    if column is not ANY:
        assert error.column == column, error.message
    assert "\n" not in str(error)
    assert str(error).startswith(error.location_prefix())


def test_case_ids_are_unique() -> None:
    ids = [param.id for param in CASES]
    assert len(ids) == len(set(ids))


# --- reading the file


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_suite(tmp_path / "nope.yaml")
    assert caught.value.file == str(tmp_path / "nope.yaml")
    assert caught.value.line is None
    assert caught.value.message == "no such file"


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read"):
        load_suite(tmp_path)


def test_not_utf8_points_at_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "sla.yaml"
    path.write_bytes(b"version: 1\nscenarios:\n  site:\n    description: caf\xe9\n")
    with pytest.raises(SpecError) as caught:
        load_suite(path)
    assert (caught.value.line, caught.value.column) == (4, 21)
    assert "not UTF-8" in caught.value.message
    assert "0xe9" in caught.value.message


def test_utf16_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "sla.yaml"
    path.write_text("version: 1\n", encoding="utf-16")
    with pytest.raises(SpecError, match="not UTF-8"):
        load_suite(path)


def test_bom_is_accepted_and_columns_stay_right(tmp_path: Path) -> None:
    path = tmp_path / "sla.yaml"
    path.write_bytes(b"\xef\xbb\xbfversion: 2\nscenarios: {site: {command: [x]}}\n")
    with pytest.raises(SpecError) as caught:
        load_suite(path)
    assert (caught.value.line, caught.value.column) == (1, 10)


def test_load_suite_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sla.yaml"
    path.write_text("version: 1\nscenarios:\n  site:\n    command: [x]\n    repeat: 2\n")
    with pytest.raises(SpecError) as caught:
        load_suite(path)
    assert str(caught.value).startswith(f"{path}:5:5: unknown key 'repeat'")


def test_valid_file_after_the_checks(tmp_path: Path) -> None:
    path = tmp_path / "sla.yaml"
    path.write_text("version: 1\nscenarios:\n  site:\n    command: [x]\n")
    assert list(load_suite(path).scenarios) == ["site"]


def test_aliases_without_merge_keys_are_fine() -> None:
    suite = parse_suite("""\
version: 1
scenarios:
  a:
    command: &cmd [python, build.py]
  b:
    command: *cmd
""")
    assert suite.scenarios["b"].command == ["python", "build.py"]


def test_error_inside_an_alias_points_at_the_anchor() -> None:
    with pytest.raises(SpecError) as caught:
        parse_suite("""\
version: 1
scenarios:
  a:
    command: [x]
    matrix: &m {pages: [10, 10]}
  b:
    command: [x]
    matrix: *m
""")
    assert caught.value.line == 5


# --- the command line: one stderr line, exit 2, no traceback


@pytest.fixture
def restore_signals() -> Iterator[None]:
    # runner.cli.main takes SIGINT and SIGTERM; give them back to pytest afterwards
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.usefixtures("restore_signals")
@pytest.mark.parametrize(("text", "line", "column", "message"), CASES)
def test_cli_prints_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str], text: str, line: int | None,
                             column: object, message: str) -> None:
    from runner.cli import main

    monkeypatch.chdir(tmp_path)
    Path("BAD.yaml").write_text(text, encoding="utf-8")
    assert main(["check", "BAD.yaml"]) == EXIT_BAD_INPUT
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"BAD.yaml:{line}:" if line is not None else "BAD.yaml: ")
    assert message in err


SUBPROCESS_CASES = {
    "yaml-syntax": ("version: 1\nscenarios:\n  site:\n    command: [x\n", 4),
    "unknown-key": ("version: 1\nscenarios:\n  site:\n    command: [x]\n    limt: 1GiB\n", 5),
    "unknown-metric": ("version: 1\nscenarios:\n  site:\n    command: [x]\n"
                       "    slas: [peek < 1GiB]\n", 5),
    "model-validator": ("version: 1\nscenarios:\n  site:\n    matrix: {pages: [1]}\n"
                        "    command: [x, '{page}']\n", 5),
    "top-level-list": ("- 1\n", 1),
    "empty": ("", 1),
}


@pytest.mark.parametrize(("text", "line"), list(SUBPROCESS_CASES.values()),
                         ids=list(SUBPROCESS_CASES))
def test_python_m_runner_check(tmp_path: Path, text: str, line: int) -> None:
    (tmp_path / "BAD.yaml").write_text(text, encoding="utf-8")
    result = _run_cli(tmp_path, "BAD.yaml")
    assert result.returncode == EXIT_BAD_INPUT
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"BAD.yaml:{line}:"), result.stderr
    assert "Traceback" not in result.stderr


def test_python_m_runner_check_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "BAD.yaml").write_bytes(b"version: 1\n\xff\n")
    result = _run_cli(tmp_path, "BAD.yaml")
    assert result.returncode == EXIT_BAD_INPUT
    assert result.stderr.startswith("BAD.yaml:2:1: ")
    assert result.stderr.count("\n") == 1


def test_python_m_runner_check_missing_file(tmp_path: Path) -> None:
    result = _run_cli(tmp_path, "BAD.yaml")
    assert result.returncode == EXIT_BAD_INPUT
    assert result.stderr == "BAD.yaml: error: no such file\n"


def _run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "runner", "check", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
