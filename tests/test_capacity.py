"""Capacity searches: the bisection itself against a known edge, then real runs of a planted
workload whose cost is measured without a limit first."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runner import capacity
from runner.cli import main
from runner.execute import Executor
from runner.judging.regression import fit_line
from runner.plan import CasePlan
from runner.session import Session
from tests.judging.helpers import LINEAR, PYTHON, MiB, case, judged, write

PER_PAGE, FIXED = MiB, 8 * MiB


@pytest.mark.parametrize("start", [1, 700, 12345, 10**6])
def test_bisection_brackets_a_known_edge(start: int) -> None:
    truth = 12345

    def fits(size: int) -> capacity.Probe:
        return capacity.Probe(size, size <= truth, None, "")

    search = capacity.bisect(fits, start, good_low=True, lowest=1, highest=10**9,
                             resolution=lambda good: max(1, good // 100))
    assert search.good is not None and search.step is not None
    assert search.good <= truth < search.good + search.step <= truth + 124


def test_bisection_on_limits_and_an_unreachable_edge() -> None:
    def builds(limit: int) -> capacity.Probe:
        return capacity.Probe(limit, limit >= 300 * MiB, None, "")

    search = capacity.bisect(builds, 64 * MiB, good_low=False, lowest=4096,
                             highest=1 << 40, resolution=lambda good: MiB)
    assert search.good is not None and search.bad is not None
    assert search.bad < 300 * MiB <= search.good <= search.bad + MiB
    never = capacity.bisect(lambda v: capacity.Probe(v, False, None, ""), 10, good_low=True,
                            lowest=1, highest=100, resolution=lambda good: 1)
    assert never.good is None and never.bad == 1


def write_planted(tmp_path: Path, sizes: tuple[int, ...]) -> Path:
    """The SLA file of one scenario that holds FIXED plus PER_PAGE per page, at ``sizes``."""
    write(tmp_path, "linear.py", LINEAR)
    return write(tmp_path, "sla.yaml", f"""
        version: 1
        defaults: {{backend: cgroup}}
        scenarios:
          planted:
            command: [{PYTHON}, linear.py, "{{pages}}", "{PER_PAGE}", "{FIXED}"]
            matrix: {{pages: [{', '.join(map(str, sizes))}]}}
        """)


@pytest.fixture
def planted(tmp_path: Path) -> Iterator[tuple[Session, Executor, CasePlan]]:
    write_planted(tmp_path, sizes=(10, 40))
    session = Session(tmp_path / "sla.yaml")
    executor = session.executor()
    plans = session.plan(only=["planted"])
    yield session, executor, plans[-1]
    session.close()


def _unlimited_peak(executor: Executor, plan: CasePlan, size: int) -> int:
    case = executor.run_case(capacity.measurement_plan(plan, limit=None, size=size))
    assert case.runs[0].completed and case.runs[0].cgroup_peak
    return case.runs[0].cgroup_peak


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_largest_size_under_a_limit_is_within_one_step(
        planted: tuple[Session, Executor, CasePlan]) -> None:
    _, executor, plan = planted
    line = fit_line([10.0, 40.0], [float(_unlimited_peak(executor, plan, n)) for n in (10, 40)])
    assert line.slope == pytest.approx(PER_PAGE, rel=0.05)
    limit = 120 * MiB
    truth = (limit - line.intercept) / line.slope  # ~ (120 - 8 - interpreter) pages
    search = capacity.largest_size(executor, plan, limit, guess=40, hard=True, precision=0.02)
    assert search.good is not None and search.step is not None
    # the edge itself is exact (good built, good + step did not); the truth predicted from two
    # unlimited runs carries their noise (page cache and kernel memory: about 1 MiB, a page
    # here, either way): within one step plus the 2% the search was asked for
    assert abs(search.good - truth) <= search.step + 0.02 * truth, (search.good, truth,
                                                                      search.probes)


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_smallest_limit_is_within_one_step(planted: tuple[Session, Executor, CasePlan]) -> None:
    _, executor, plan = planted
    truth = _unlimited_peak(executor, plan, 40)  # anonymous memory: nothing to reclaim
    search, _ = capacity.smallest_limit(executor, plan, highest=1 << 34, precision=0.01)
    assert search.good is not None and search.step is not None
    assert search.step <= capacity.MIN_LIMIT_STEP
    assert abs(search.good - truth) <= search.step, (search.good, truth, search.probes)
    assert all(not p.ok for p in search.probes if p.value < search.good)


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_capacity_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sla = write_planted(tmp_path, sizes=(10, 20))
    assert main(["capacity", str(sla), "planted", "--limit", "64MiB"]) == 0
    assert "largest pages under 64 MiB:" in capsys.readouterr().out
    assert main(["capacity", str(sla), "planted", "--min-limit", "--size", "5"]) == 0
    assert "smallest limit for planted[pages=5]:" in capsys.readouterr().out


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_capacity_starts_from_the_stored_fit_of_earlier_results(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sla = write_planted(tmp_path, sizes=(10, 20))
    earlier = tmp_path / "earlier.json"  # a fit of 24 MiB + 1 MiB per page: 40 pages in 64 MiB
    judged([case("planted", [24.0 * MiB + n * MiB], size=n) for n in (10, 20, 30)]).write(earlier)
    assert main(["capacity", str(sla), "planted", "--limit", "64MiB",
                 "--results", str(earlier)]) == 0
    out = capsys.readouterr().out
    assert f"starting at 40 (the fit of {earlier})" in out
    assert "largest pages under 64 MiB:" in out


def test_min_limit_refuses_the_process_backend(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    sla = write(tmp_path, "sla.yaml", """
        version: 1
        scenarios:
          s: {command: ["true"], matrix: {pages: [1]}}
        """)
    assert main(["capacity", str(sla), "s", "--min-limit", "--backend", "process"]) == 3
    assert "needs a backend with a hard memory limit" in capsys.readouterr().err


def test_a_limit_below_what_any_build_runs_under_is_refused_before_any_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sla = write_planted(tmp_path, sizes=(10,))
    assert main(["capacity", str(sla), "planted", "--limit", "1B"]) == 2
    assert "--limit 1B: a limit of 1 B is below 6 MiB" in capsys.readouterr().err

