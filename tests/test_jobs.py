"""``runner check --jobs``: cases at once on the local cgroup backend, each confined to CPUs of
its own (read back from inside the build), never more limits at once than the budget holds,
the same peaks as one at a time, and the scheduler's rules on a fake executor."""

from __future__ import annotations

import re
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from runner import scheduler
from runner.inbuild.cgroups.cpuset import format_cpus, parse_cpus
from runner.plan import build_plan
from runner.results import Case, Run
from runner.slafile import load_suite
from tests.conftest import run_cli

MiB = 1024 * 1024

# Plants a touched allocation, then says from inside the build which CPUs it may use and what
# its cpuset cgroup holds, and holds the allocation while its neighbours run.
HOLD = '''
import sys, time
mib, seconds = int(sys.argv[1]), float(sys.argv[2])
block = bytearray(b"\\x01") * (mib * 1024 * 1024)
status = open("/proc/self/status").read()
allowed = [line.split(":", 1)[1].strip() for line in status.splitlines()
           if line.startswith("Cpus_allowed_list")][0]
fields = [line.split(":", 2) for line in open("/proc/self/cgroup").read().splitlines()]
path = next(p for _, controllers, p in fields if "cpuset" in controllers.split(","))
cpus = open("/sys/fs/cgroup/cpuset" + path + "/cpuset.cpus").read().strip()
sys.stderr.write("allowed=%s cpuset=%s path=%s\\n" % (allowed, cpus, path))
time.sleep(seconds)
'''


def _write(folder: Path, text: str) -> None:
    (folder / "hold.py").write_text(HOLD)
    (folder / "sla.yaml").write_text(textwrap.dedent(text))


def _spans(results: dict[str, Any]) -> list[tuple[str, int | None, float, float]]:
    return [(case["scenario"] + str(case["params"]), case["limit"], run["started"], run["ended"])
            for case in results["cases"] for run in case["runs"]]


def _overlapping_sets(spans: list[tuple[str, int | None, float, float]]
                      ) -> list[list[tuple[str, int | None, float, float]]]:
    """At each run's start, the runs on the host at that moment."""
    return [[other for other in spans if other[2] <= span[2] < other[3]] for span in spans]


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_four_cases_two_at_a_time_each_on_its_own_cpu(tmp_path: Path) -> None:
    _write(tmp_path, """\
        version: 1
        defaults: {backend: cgroup, repeats: 1, tracker: none, limit: 256MiB}
        scenarios:
          hold:
            command: [python3, hold.py, "64", "1.5"]
            matrix: {n: [1, 2, 3, 4]}
            slas: [peak < 200MiB]
        """)
    serial = run_cli(["check", "sla.yaml"], tmp_path, timeout=300)
    assert serial.exit_code == 0, serial.stderr
    parallel = run_cli(["check", "sla.yaml", "--jobs", "2", "--memory-budget", "600MiB"],
                       tmp_path, timeout=300)
    assert parallel.exit_code == 0, parallel.stderr
    results = parallel.results
    assert results is not None
    assert results["jobs"] == 2 and results["memory_budget"] == 600 * MiB
    # results stay in plan order
    assert [c["params"]["n"] for c in results["cases"]] == [1, 2, 3, 4]
    shared = False
    for case in results["cases"]:
        serial_case = serial.case(n=case["params"]["n"])
        peak, alone = case["metrics"]["peak"]["median"], serial_case["metrics"]["peak"]["median"]
        assert abs(peak - alone) / alone < 0.02, (case["params"], peak / MiB, alone / MiB)
        for run in case["runs"]:
            seen = re.search(r"allowed=(\S+) cpuset=(\S+) path=(\S+)", run["stderr_tail"])
            assert seen is not None, run["stderr_tail"]
            allowed, cpuset, path = seen.groups()
            # confined, read back during the run: one CPU of its own, in its own cpuset cgroup
            assert parse_cpus(allowed) == parse_cpus(cpuset) == run["cpus"]
            assert len(run["cpus"]) == 1 and "memsla-" in path
            shared = shared or bool(run["neighbours"])
    assert shared, "no two cases ran at the same time"
    # at no moment two cases on the same CPU, nor limits beyond the budget
    spans = {(s[0], s[2]): s for s in _spans(results)}
    cpus = {(c["scenario"] + str(c["params"]), r["started"]): r["cpus"][0]
            for c in results["cases"] for r in c["runs"]}
    for group in _overlapping_sets(list(spans.values())):
        assert sum(limit or 0 for _, limit, _, _ in group) <= 600 * MiB
        used = [cpus[(label, started)] for label, _, started, _ in group]
        assert len(used) == len(set(used)), group


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_limits_beyond_the_budget_never_run_at_once(tmp_path: Path) -> None:
    _write(tmp_path, """\
        version: 1
        defaults: {backend: cgroup, repeats: 1, tracker: none}
        scenarios:
          small:
            limit: 128MiB
            command: [python3, hold.py, "1", "0.4"]
            matrix: {n: [1, 2]}
            slas: [peak < 100MiB]
          big:
            limit: 256MiB
            command: [python3, hold.py, "1", "0.4"]
            matrix: {n: [1, 2]}
            slas: [peak < 100MiB]
          unlimited:
            command: [python3, hold.py, "1", "0.4"]
            slas: [duration < 60s]
        """)
    run = run_cli(["check", "sla.yaml", "--jobs", "2", "--memory-budget", "300MiB"], tmp_path,
                  timeout=300)
    assert run.exit_code == 0, run.stderr
    assert run.results is not None
    spans = _spans(run.results)
    for group in _overlapping_sets(spans):
        assert sum(limit or 0 for _, limit, _, _ in group) <= 300 * MiB, group
        if any(limit is None for _, limit, _, _ in group):
            assert len(group) == 1, group  # a case without a limit runs alone
    small = [s for s in spans if s[0].startswith("small")]
    assert small[0][2] < small[1][3] and small[1][2] < small[0][3], "the small ones shared"
    unlimited = next(c for c in run.results["cases"] if c["scenario"] == "unlimited")
    assert unlimited["runs"][0]["neighbours"] == []
    # alone, it has every CPU of the slots
    assert len(unlimited["runs"][0]["cpus"]) == len(scheduler.usable_cpus()) // 2 * 2


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_ctrl_c_with_jobs_stops_every_build_and_keeps_what_ended(tmp_path: Path) -> None:
    import sys

    from tests.conftest import interrupt_when_running, running

    (tmp_path / "sleeper.py").write_text("import time, sys\ntime.sleep(int(sys.argv[1]))\n")
    (tmp_path / "sla.yaml").write_text(textwrap.dedent("""\
        version: 1
        defaults: {backend: cgroup, repeats: 1, tracker: none, limit: 128MiB}
        scenarios:
          quick: {command: [python3, -c, "pass"], slas: [duration < 60s]}
          sleepy:
            command: [sleep, "{seconds}"]
            matrix: {seconds: [301, 302]}
            slas: [duration < 600s]
        """))
    marker = ["sleep", "302"]
    run = interrupt_when_running(
        [sys.executable, "-m", "runner", "check", "sla.yaml", "--jobs", "2",
         "--memory-budget", "1GiB"], tmp_path, marker)
    assert run.exit_code == 130, run.stderr
    assert run.results is not None and run.results["status"] == "interrupted"
    assert [c["scenario"] for c in run.results["cases"]] == ["quick"]
    deadline = time.monotonic() + 10
    while (running(marker) or running(["sleep", "301"])) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running(marker) and not running(["sleep", "301"])
    import psutil

    left = [p.name for p in Path("/sys/fs/cgroup/cpuset").glob("memsla-*")
            if not psutil.pid_exists(int(p.name.split("-")[1]))]
    assert left == [], "cpuset cgroups left behind"


# -- the scheduler's rules, on a fake executor ---------------------------------------------------

@dataclass
class _FakeExecutor:
    """Records when each case ran (in ``spans``, shared by its copies); a case takes
    ``seconds``."""

    seconds: float = 0.05
    on_progress: Callable[[str], None] = lambda message: None
    lock: Any = field(default_factory=threading.Lock)
    spans: dict[str, tuple[float, float, tuple[int, ...] | None]] = field(default_factory=dict)

    def prepare(self, plan: Any) -> None:
        return None

    def run_case(self, plan: Any, cpus: tuple[int, ...] | None = None) -> Case:
        start = time.monotonic()
        self.on_progress(f"{plan.label}: timed run 1/1")
        time.sleep(self.seconds)
        end = time.monotonic()
        with self.lock:
            self.spans[plan.label] = (start, end, cpus)
        return Case(scenario=plan.scenario_name, params=plan.params, backend="fake",
                    limit=plan.settings.limit,
                    runs=[Run(kind="timed", index=0, exit_code=0, duration=end - start,
                              started=start, ended=end, cpus=list(cpus or ()))])


def _plans(tmp_path: Path, limits: list[str | None]) -> list[Any]:
    lines = ["version: 1", "defaults: {backend: process, repeats: 1, tracker: none}",
             "scenarios:"]
    for index, limit in enumerate(limits):
        lines.append(f"  s{index}:")
        lines.append("    command: [python3, -c, pass]")
        if limit:
            lines.append(f"    limit: {limit}")
    path = tmp_path / "sla.yaml"
    path.write_text("\n".join(lines) + "\n")
    return build_plan(load_suite(path))


def _run_fake(plans: list[Any], jobs: int, budget: int, cpus: list[int]
              ) -> tuple[_FakeExecutor, list[int]]:
    fake = _FakeExecutor()
    order: list[int] = []
    scheduler.run(plans, fake, [], jobs, budget, cpus=cpus,  # type: ignore[arg-type]
                  on_case=lambda index, case: order.append(index))
    return fake, order


def test_the_scheduler_keeps_limits_within_the_budget_and_cpus_apart(tmp_path: Path) -> None:
    plans = _plans(tmp_path, ["100MiB", "100MiB", "250MiB", None, "100MiB", "2GiB", "100MiB"])
    fake, order = _run_fake(plans, 3, 300 * MiB, [0, 1, 2, 3, 4, 5])
    assert sorted(order) == list(range(len(plans)))
    spans = {p.label: (p.settings.limit, *fake.spans[p.label]) for p in plans}
    for label, (limit, start, _end, cpus) in spans.items():
        at_once = [(lim, c) for lim, s, e, c in spans.values() if s <= start < e]
        if limit is None or limit > 300 * MiB:
            assert len(at_once) == 1, label  # alone, on every CPU
            assert cpus == (0, 1, 2, 3, 4, 5)
        else:
            assert sum(lim or 0 for lim, _ in at_once) <= 300 * MiB
            assert cpus is not None and len(cpus) == 2
            taken = [c for _, c in at_once]
            assert len(taken) == len(set(taken))
    starts = [spans[p.label][1] for p in plans]
    assert starts == sorted(starts), "cases start in plan order"


def test_auto_jobs_and_cpu_slots() -> None:
    assert scheduler.cpu_slots(2, [0, 1]) == [(0,), (1,)]
    assert scheduler.cpu_slots(2, [0, 1, 2, 3, 4]) == [(0, 1), (2, 3)]
    with pytest.raises(Exception, match="each case needs one of its own"):
        scheduler.cpu_slots(3, [0, 1])
    assert format_cpus([3, 0, 1]) == "0-1,3" and parse_cpus("0-1,3\n") == [0, 1, 3]


def test_auto_jobs_fit_cpus_and_memory(tmp_path: Path) -> None:
    plans = _plans(tmp_path, ["1GiB", "1GiB", "1GiB", "1GiB"])
    assert scheduler.auto_jobs(plans, 2, 8 * 1024 * MiB) == 2
    assert scheduler.auto_jobs(plans, 8, 3 * 1024 * MiB) == 3
    assert scheduler.auto_jobs(plans, 8, 512 * MiB) == 1  # every case runs alone anyway
