"""Disk and cache figures against planted truths: a build that leaves a 64 MiB file in a named
folder (a real ``runner check`` on the local cgroup), a cache object of known size allocated in
a module under a named path prefix (tracemalloc's sites at the heap's peak), the folders' bytes
fitted across sizes, and the SLA file's checks of both keys."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runner.errors import SpecError
from runner.measure.assemble import cache_held, disk_usage
from runner.results import AllocationSite, PeakSites, PythonHeap
from runner.slafile import parse_suite
from tests.conftest import run_cli

MiB = 1024 * 1024

# Writes a 64 MiB file (and one small one) into the folder it is given, a cache a build keeps.
WRITE_CACHE = """
import os, sys
folder = sys.argv[1]
os.makedirs(os.path.join(folder, "objects"), exist_ok=True)
with open(os.path.join(folder, "objects", "big.bin"), "wb") as handle:
    handle.write(b"\\x05" * (int(sys.argv[2]) * 1024 * 1024))
with open(os.path.join(folder, "index"), "w") as handle:
    handle.write("x" * 1000)
"""

# A module under mycache/ that holds a planted object at the heap's peak.
STORE = """
import time

_held = {}


def remember(mib):
    _held["pages"] = bytearray(b"\\x07") * (mib * 1024 * 1024)
    time.sleep(0.5)
"""


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_planted_cache_folder_and_cache_object(tmp_path: Path) -> None:
    (tmp_path / "write_cache.py").write_text(WRITE_CACHE)
    (tmp_path / "mycache").mkdir()
    (tmp_path / "mycache" / "__init__.py").write_text("")
    (tmp_path / "mycache" / "store.py").write_text(STORE)
    (tmp_path / "build.py").write_text(
        "import sys\nsys.path.insert(0, sys.argv[1])\nimport mycache.store\n"
        "mycache.store.remember(int(sys.argv[2]))\n")
    (tmp_path / "sla.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        defaults: {{backend: cgroup, repeats: 2, tracker: none}}
        scenarios:
          folder:
            shell: true
            command: "python3 write_cache.py {{output}}/cache 64"
            disk: {{cache: "{{output}}/cache", empty: "{{scratch}}/nothing"}}
            slas: ["disk(cache) < 100MiB", "disk_files(cache) == 2", "disk(empty) == 0"]
          objects:
            command: [python3, build.py, "{tmp_path}", "24"]
            tracker: tracemalloc
            repeats: 1
            cache_sites: {{store: "mycache/", other: "nowhere/"}}
            slas: ["cache(store) < 32MiB", "cache(other) == 0"]
        """))
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert run.exit_code == 0, run.stdout + run.stderr
    assert run.results is not None
    by_scenario = {case["scenario"]: case["metrics"] for case in run.results["cases"]}
    folder, objects = by_scenario["folder"], by_scenario["objects"]
    written = 64 * MiB + 1000
    assert abs(folder["disk(cache)"]["median"] - written) / written < 0.01
    assert folder["disk_files(cache)"]["max"] == 2 and folder["disk(empty)"]["max"] == 0
    held = objects["cache(store)"]["median"]
    print(f"disk(cache) {folder['disk(cache)']['median'] / MiB:.4f} MiB of {written / MiB:.4f}; "
          f"cache(store) {held / MiB:.3f} MiB of 24")
    assert abs(held - 24 * MiB) / (24 * MiB) < 0.02, held / MiB
    assert objects["cache(other)"]["median"] == 0
    assert "disk(cache)" in run.stdout and "cache(store)" in run.stdout


def test_disk_usage_counts_regular_files_only(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one").write_bytes(b"x" * 3000)
    (tmp_path / "a" / "link").symlink_to(tmp_path / "a" / "one")
    sizes, files = disk_usage({"a": tmp_path / "a", "gone": tmp_path / "missing"})
    assert sizes == {"a": 3000, "gone": 0} and files == {"a": 1, "gone": 0}


def test_cache_sites_match_a_path_prefix_at_a_folder_boundary() -> None:
    sites = [AllocationSite(file="/venv/lib/site-packages/jinja2/env.py", line=1, size=5 * MiB,
                            count=1),
             AllocationSite(file="/venv/lib/site-packages/notjinja2/x.py", line=1, size=MiB,
                            count=1),
             AllocationSite(file="/app/mycache/store.py", line=3, size=2 * MiB, count=1)]
    heap = PythonHeap(pid=1, peak=9 * MiB, at_peak=PeakSites(heap=8 * MiB, sites=sites))
    held = cache_held([heap, heap], {"jinja": "jinja2/", "mine": "/app/mycache/"})
    assert held == {"jinja": 10 * MiB, "mine": 4 * MiB}
    assert cache_held([PythonHeap(pid=1, peak=1)], {"jinja": "jinja2/"}) == {}


SCENARIO = """\
version: 1
scenarios:
  site:
    command: [x]
    matrix: {{pages: [1, 2, 3]}}
    size: pages
{extra}
"""


@pytest.mark.parametrize(("extra", "line", "message"), [
    ('    disk: {cache: "/tmp/cache"}', 7, "must start with {output}, {scratch}, {fixture_copy}"),
    ('    disk: {"9bad": "{output}/c"}', 7, "disk name '9bad'"),
    ('    disk: {c: "{output}/{nope}"}', 7, "unknown placeholder {nope}"),
    ('    cache_sites: {jinja: ""}', 7, "cache site prefix"),
    ('    slas: ["disk(cache) < 1GiB"]', 7, "'disk:' names no 'cache'"),
    ('    disk: {out: "{output}"}\n    slas: ["cache(out) < 1GiB"]', 8,
     "'cache_sites:' names no 'out'"),
    ('    slas: ["disk < 1GiB"]', 7, "disk(NAME) takes the name"),
    ('    docker: {output: tmpfs}\n    disk: {out: "{output}/c"}', 8, "output: bind"),
])
def test_bad_disk_and_cache_keys_point_at_the_line(extra: str, line: int, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_suite(SCENARIO.format(extra=extra), file="bad.yaml")
    assert message in caught.value.message and caught.value.line == line, caught.value.message


def test_disk_figures_are_fitted_across_sizes(tmp_path: Path) -> None:
    from runner.judging import scaling
    from runner.results import Case, Run

    cases = []
    for pages in (100, 200, 400):
        case = Case(scenario="site", params={"pages": pages}, size_parameter="pages",
                    size=pages, backend="cgroup", limit=None)
        case.runs = [Run(kind="timed", index=i, exit_code=0, duration=1.0, cgroup_peak=MiB,
                         disk={"output": 10_000 + 3000 * pages + i})
                     for i in range(2)]
        cases.append(case)
    fit = next(f for f in scaling.analysis(cases) if f.metric == "disk(output)")
    assert fit.sizes == [100, 200, 400] and fit.line is not None
    assert fit.line.marginal == pytest.approx(3000) and fit.line.fixed == pytest.approx(10_000.5)
