"""The Python API over the engine of ``runner check``: the same figures for the same scenario,
commands at several sizes compared, callables measured after what the caller made, results
saved and read back."""

from __future__ import annotations

import os
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from runner import api
from runner.errors import UsageError
from runner.inbuild.reaper import work_prefix
from runner.results import Results
from runner.workload.cache import cache_dir, work_root
from tests.conftest import PLANT, run_cli

MiB = 1 << 20
pytestmark = pytest.mark.usefixtures("writable_cgroup")


def _planted_suite(folder: Path) -> Path:
    (folder / "plant.py").write_text(PLANT)
    path = folder / "sla.yaml"
    path.write_text(textwrap.dedent("""\
        version: 1
        defaults: {backend: cgroup, limit: 512MiB, repeats: 2, tracker: tracemalloc}
        scenarios:
          plant:
            command: [python3, plant.py, "main={mib}"]
            matrix: {mib: [0, 64]}
            slas: [peak < 256MiB]
        """))
    return path


def test_check_gives_the_figures_of_runner_check(tmp_path: Path) -> None:
    path = _planted_suite(tmp_path)
    cli = run_cli(["check", "sla.yaml"], tmp_path)
    assert cli.exit_code == 0, cli.stderr
    results = api.check(path)
    assert results.status == "pass"
    for mib in (0, 64):
        ours = next(c for c in results.cases if c.params["mib"] == mib)
        theirs = cli.case(mib=mib)
        # no rule reads heap figures: the traced run is made at the largest size only
        for metric in ("peak", "rss_peak", "python_peak")[:3 if mib == 64 else 2]:
            a, b = ours.pick(metric), theirs["metrics"][metric]["median"]
            assert a is not None and abs(a - b) < 0.02 * max(a, b) + MiB, (mib, metric, a, b)
        if mib == 0:
            assert "python_peak" not in theirs["metrics"] and ours.pick("python_peak") is None
            assert ours.trace == theirs["trace"] and (ours.trace or "").startswith("not traced")
        assert [v.rule for v in ours.verdicts] == [v["rule"] for v in theirs["verdicts"]]
    # the file's limit and tracker replaced for every scenario
    quick = api.check(path, sizes=[0], repeats=1, limit="256MiB", tracker="none")
    assert [c.limit for c in quick.cases] == [256 * MiB]
    assert [r.kind for r in quick.cases[0].runs] == ["timed"]
    # the same command measured on its own, as a one-scenario suite
    alone = api.measure_command(["python3", "plant.py", "main=64"], workdir=tmp_path,
                                limit="512MiB", repeats=2, tracker="tracemalloc",
                                rules=["peak < 256MiB"])
    figures = api.figures(alone)
    planted = next(c for c in results.cases if c.params["mib"] == 64)
    assert figures.passed and alone.status == "pass"
    assert abs(figures.peak - planted.pick("peak", "max")) < 0.02 * figures.peak + MiB
    assert abs(figures.python_peak - 64 * MiB) < 0.02 * 64 * MiB


def test_commands_at_several_sizes_compare_as_a_fit(tmp_path: Path) -> None:
    (tmp_path / "plant.py").write_text(PLANT)
    # steps of 64 MiB and more: the cgroup peak's noise (about 1 MiB of page cache and kernel
    # memory) stays well inside 3% of a step
    measured = [api.measure_command([sys.executable, "plant.py", f"main={n}"], size=n,
                                    workdir=tmp_path, limit="1GiB", name="plant")
                for n in (64, 128, 256)]
    scaling = api.across_sizes(measured)
    assert [row.size for row in scaling.rows] == [64, 128, 256]
    assert scaling.per_page is not None and abs(scaling.per_page - MiB) < 0.02 * MiB
    assert scaling.exponent is not None and abs(scaling.exponent - 1) < 0.1
    assert [step.size_ratio for step in scaling.steps] == [2.0, 2.0]
    assert all(abs(step.marginal - MiB) < 0.03 * MiB for step in scaling.steps
               if step.marginal is not None)
    assert "peak = " in scaling.table() and "x pages" in scaling.table()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DeprecationWarning)
        assert api.compare(measured) == scaling
    assert [w.category for w in caught] == [DeprecationWarning]
    saved = api.save(measured[0], tmp_path / "one.json")
    assert api.load(saved) == measured[0]


def test_a_callable_is_charged_only_for_what_it_adds(tmp_path: Path) -> None:
    fixture = bytearray(b"\x01") * (200 * MiB)  # made before: not the callable's

    def body() -> None:
        block = bytearray(b"\x01") * (50 * MiB)
        assert len(block) <= len(fixture)

    results = api.measure_callable(body, limit="256MiB", rules=["peak < 100MiB"],
                                   tracker="tracemalloc", json_path=tmp_path / "r.json")
    figures = api.figures(results)
    assert figures.baseline is not None and figures.baseline < 4 * MiB
    assert abs(figures.added - 50 * MiB) < 0.02 * 50 * MiB, figures.describe()
    assert abs(figures.python_peak - 50 * MiB) < 0.05 * 50 * MiB, figures.describe()
    assert results.status == "pass" and figures.passed
    assert Results.read(tmp_path / "r.json") == results


def test_a_callable_over_its_limit_or_raising(tmp_path: Path) -> None:
    results = api.measure_callable(lambda: bytearray(b"\x01") * (300 * MiB), limit="256MiB")
    figures = api.figures(results)
    assert figures.oom_kills >= 1 and not figures.passed and results.status == "fail"
    assert "OOM-killed a process at the 256 MiB limit" in figures.explain_failures()

    def broken() -> None:
        raise KeyError("missing page")

    with pytest.raises(api.CallableFailed, match="missing page") as raised:
        api.measure_callable(broken, limit="256MiB")
    assert raised.value.error.type == "builtins.KeyError"
    assert api.figures(raised.value.results).exit_code == 1
    with pytest.raises(UsageError, match="did you mean 'peak'"):
        api.measure_callable(lambda: None, rules=["peek < 1GiB"])
    with pytest.raises(UsageError, match="needs a scenario"):
        api.measure_callable(lambda: None, rules=["per_page < 1MiB"])


def test_a_callable_that_lifts_its_own_limit_is_still_held(tmp_path: Path) -> None:
    """The fence: the limit sits on a cgroup the child is not in, as for the local backend. The
    limit leaves room for what the child copies of this (large) test process on its first
    writes, so that the callable surely runs before the kernel steps in."""
    from runner.inbuild import cgroups

    def lift_and_grow() -> None:
        own = cgroups.own_cgroup()
        assert own is not None
        for name, value in reversed(own.files.limit_writes(None)):
            with open(own.file(name), "w") as handle:
                handle.write(value)
        held = bytearray(b"\x01") * (1536 * MiB)
        del held

    results = api.measure_callable(lift_and_grow, limit="1GiB", rules=["peak < 4GiB"],
                                   raise_errors=False)
    run = results.cases[0].runs[0]
    assert run.oom_kills >= 1 and (run.cgroup_peak or 0) <= 1024 * MiB, "the fence held"
    assert run.limit_changed is not None and "of its own cgroup" in run.limit_changed
    assert results.status != "pass"


def test_a_callable_traced_by_memray_gives_its_churn(tmp_path: Path) -> None:
    """1,000 x 1 MiB allocated and freed by the call: memray counts every one of them, the heap
    peak stays near 1 MiB, and what the process held before the call is not in the figures."""
    before = [bytearray(MiB) for _ in range(64)]  # made before the fork: not the callable's

    def churn() -> None:
        for _ in range(1000):
            block = bytearray(MiB)
            del block
        assert len(before) == 64

    results = api.measure_callable(churn, limit="256MiB", tracker="memray",
                                   rules=["allocation_calls >= 1000"],
                                   json_path=tmp_path / "r.json")
    figures = api.figures(results)
    assert figures.allocated is not None and figures.allocation_calls is not None
    assert abs(figures.allocated - 1000 * MiB) < 0.02 * 1000 * MiB, figures.describe()
    assert figures.allocation_calls >= 1000
    assert figures.python_peak is not None and MiB <= figures.python_peak < 4 * MiB
    assert results.status == "pass", results.problems
    left = list(work_root(cache_dir()).glob(f"{work_prefix(os.getpid())}*"))
    assert left == [], "the capture folder is removed"


def test_a_callable_whose_tracker_cannot_start_is_no_pass(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "memray", None)  # the import fails in the forked child
    results = api.measure_callable(lambda: bytearray(MiB), limit="256MiB", tracker="memray",
                                   rules=["allocated < 1GiB"])
    traced = [run for run in results.cases[0].runs if run.kind == "traced"]
    assert any("memray did not start in the forked child" in note for note in traced[0].notes)
    assert results.status == "error" and api.figures(results).allocated is None


def test_a_limit_below_what_any_build_runs_under_is_refused_before_any_run(
        tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"limit='1B': a limit of 1 B is below 6 MiB"):
        api.measure_callable(lambda: None, limit="1B")
    with pytest.raises(UsageError, match=r"limit='4MiB': a limit of 4 MiB is below 6 MiB"):
        api.check(_planted_suite(tmp_path), limit="4MiB")
