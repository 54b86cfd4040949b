"""Backfill and bisect on a planted truth, end to end with real checks on the local cgroup: a
git repository of twelve commits whose seventh raises the build's planted size by 15%
(tests/history/planted_repo.py). Backfill records every commit with its own commit; the
series steps by the planted 15% at the seventh and nowhere else; bisect names the seventh in
O(log n) checks; an interrupted backfill leaves no worktree; a failing build is recorded as a
failure and the backfill goes on."""

from __future__ import annotations

import itertools
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from runner.history.store import open_store
from tests.conftest import REPO
from tests.history.planted_repo import (
    COMMITS,
    PLANTED_KIB,
    RAISED_AT,
    RAISED_KIB,
    PlantedRepo,
    add_failing_commits,
    git,
    make_planted_repo,
)

MAX_CHECKS = math.ceil(math.log2(COMMITS)) + 1
BETWEEN = f"{(PLANTED_KIB + RAISED_KIB) // 2}KiB"  # a bound between the two levels


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str


def runner(args: list[str], cwd: Path, timeout: float = 600) -> Ran:
    proc = subprocess.run([sys.executable, "-m", "runner", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    return Ran(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> PlantedRepo:
    return make_planted_repo(tmp_path_factory.mktemp("planted") / "repo")


@pytest.fixture(scope="module")
def backfilled(planted: PlantedRepo, writable_cgroup: None,
               tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Ran]:
    """Every commit of the planted repository backfilled into a new store (the first commit
    by name, the eleven after it by range)."""
    store = tmp_path_factory.mktemp("store") / "history.db"
    first = runner(["history", "backfill", planted.shas[0], "--history", str(store)],
                   planted.path)
    assert first.code == 0, first.stdout + first.stderr
    ran = runner(["history", "backfill", f"{planted.shas[0]}..main", "--history", str(store)],
                 planted.path)
    return store, Ran(ran.code, first.stdout + ran.stdout, ran.stderr)


def medians(store: Path, metric: str) -> list[tuple[str, float]]:
    with open_store(store, create=False) as opened:
        points = opened.points(metric=metric)
    return [(p.commit.sha if p.commit else "", p.median) for p in points]


@pytest.mark.cgroup
def test_backfill_records_every_commit_with_its_own_commit(planted: PlantedRepo,
                                                           backfilled: tuple[Path, Ran]) -> None:
    store, ran = backfilled
    assert ran.code == 0, ran.stdout + ran.stderr
    with open_store(store, create=False) as opened:
        checks = list(reversed(opened.checks(None)))  # oldest first
    assert [c.commit.sha if c.commit else None for c in checks] == planted.shas
    for index, check in enumerate(checks):
        commit = check.commit
        assert commit is not None and check.status == "pass", check
        assert commit.parent == (planted.shas[index - 1] if index else None)
        assert commit.branch == "main" and not commit.dirty
        assert commit.committed == git(planted.path, "show", "-s", "--format=%cI",
                                       commit.sha).replace("Z", "+00:00")
        assert commit.subject == git(planted.path, "show", "-s", "--format=%s", commit.sha)
        assert check.sla_file == "sla.yaml"
    # nothing of the backfill is left in the repository
    assert git(planted.path, "worktree", "list").count("\n") == 0
    assert git(planted.path, "status", "--porcelain") == ""


@pytest.mark.cgroup
def test_the_series_steps_by_the_planted_15_percent_at_the_seventh_commit(
        planted: PlantedRepo, backfilled: tuple[Path, Ran]) -> None:
    store, _ = backfilled
    found = medians(store, "rss_peak")
    assert [sha for sha, _ in found] == planted.shas
    values = [value for _, value in found]
    before, after = values[:RAISED_AT - 1], values[RAISED_AT - 1:]
    step = statistics.median(after) / statistics.median(before) - 1
    assert abs(step - 0.15) < 0.02, [v / 2**20 for v in values]
    # the planted size itself, within 2%
    assert abs(statistics.median(before) - PLANTED_KIB * 1024) / (PLANTED_KIB * 1024) < 0.02
    # no other commit moves it by more than 2%
    changes = [abs(b / a - 1) for a, b in itertools.pairwise(values)]
    assert [i + 2 for i, c in enumerate(changes) if c > 0.02] == [RAISED_AT], changes
    # the cgroup's peak follows it, by the planted amount
    peaks = [value for _, value in medians(store, "peak")]
    grown = statistics.median(peaks[RAISED_AT - 1:]) - statistics.median(peaks[:RAISED_AT - 1])
    planted_bytes = (RAISED_KIB - PLANTED_KIB) * 1024
    assert abs(grown - planted_bytes) / planted_bytes < 0.1, grown / 2**20


@pytest.mark.cgroup
def test_detect_names_the_seventh_commit_and_nothing_else(planted: PlantedRepo,
                                                          backfilled: tuple[Path, Ran],
                                                          tmp_path: Path) -> None:
    store, _ = backfilled
    out = tmp_path / "detect.json"
    ran = runner(["history", "detect", "--history", str(store), "--branch", "main",
                  "--json", str(out)], planted.path)
    assert ran.code == 1, ran.stdout + ran.stderr  # a regression, and --fail-on regression
    found = json.loads(out.read_text())
    raised = planted.shas[RAISED_AT - 1]
    # every shift of a memory metric is at the planted commit: no other alert (the times are
    # left out: the load of whatever else runs on the host during the backfill moves them)
    memory = [s for s in found["shifts"] if s["metric"] not in ("duration", "cpu_time")]
    assert {(s["commit"], s["kind"]) for s in memory} == {(raised, "regression")}, memory
    [rss] = [s for s in found["shifts"] if s["metric"] == "rss_peak"]
    assert abs(rss["relative"] - 0.15) < 0.02, rss
    assert raised[:10] in ran.stdout


@pytest.mark.cgroup
def test_a_second_backfill_skips_every_commit(planted: PlantedRepo,
                                              backfilled: tuple[Path, Ran]) -> None:
    store, _ = backfilled
    again = runner(["history", "backfill", f"{planted.shas[0]}..main", "--history",
                    str(store)], planted.path)
    assert again.code == 0, again.stderr
    assert f"{COMMITS - 1} commits already in the store" in again.stdout, again.stdout
    assert "0 commits measured" in again.stdout
    with open_store(store, create=False) as opened:
        assert len(opened.checks(None)) == COMMITS


@pytest.mark.cgroup
def test_bisect_reuses_the_stored_checks(planted: PlantedRepo,
                                         backfilled: tuple[Path, Ran]) -> None:
    store, _ = backfilled
    ran = runner(["history", "bisect", planted.shas[0], "main", "--rule",
                  f"rss_peak < {BETWEEN}", "--history", str(store)], planted.path)
    assert ran.code == 0, ran.stdout + ran.stderr
    assert f"first bad commit: {planted.raised}" in ran.stdout
    assert f"last good commit: {planted.shas[RAISED_AT - 2]}" in ran.stdout
    assert "0 checks measured" in ran.stdout, ran.stdout


@pytest.mark.cgroup
def test_bisect_exits_1_when_bad_is_not_bad(planted: PlantedRepo,
                                            backfilled: tuple[Path, Ran]) -> None:
    store, _ = backfilled
    ran = runner(["history", "bisect", planted.shas[0], planted.shas[RAISED_AT - 2],
                  "--metric", "rss_peak", "--by", "10%", "--history", str(store)],
                 planted.path)
    assert ran.code == 1, ran.stdout + ran.stderr
    assert "is not bad" in ran.stdout and "0 checks measured" in ran.stdout


def _bisect_steps(stdout: str) -> list[str]:
    return [line.split()[1] for line in stdout.splitlines()
            if line.split()[:1] in (["good"], ["bad"], ["skip"])]


@pytest.mark.cgroup
@pytest.mark.parametrize("criterion", [["--metric", "rss_peak", "--by", "10%"],
                                       ["--rule", f"rss_peak < {BETWEEN}"]],
                         ids=["metric", "rule"])
def test_bisect_finds_the_raise_in_log_n_checks(planted: PlantedRepo, writable_cgroup: None,
                                                tmp_path: Path, criterion: list[str]) -> None:
    store = tmp_path / "fresh.db"
    ran = runner(["history", "bisect", planted.shas[0], planted.shas[-1], *criterion,
                  "--history", str(store)], planted.path)
    assert ran.code == 0, ran.stdout + ran.stderr
    assert f"first bad commit: {planted.raised}" in ran.stdout, ran.stdout
    steps = _bisect_steps(ran.stdout)
    assert 2 <= len(steps) <= MAX_CHECKS, ran.stdout
    assert f"{len(steps)} checks measured" in ran.stdout
    with open_store(store, create=False) as opened:  # what it measured is recorded
        assert len(opened.checks(None)) == len(steps)
    assert git(planted.path, "worktree", "list").count("\n") == 0


@pytest.mark.cgroup
def test_a_failing_build_is_recorded_as_a_failure_and_the_backfill_goes_on(
        planted: PlantedRepo, writable_cgroup: None, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(planted.path), str(clone))
    copy = PlantedRepo(clone, planted.shas)
    broken, repaired = add_failing_commits(copy)
    store = tmp_path / "history.db"
    ran = runner(["history", "backfill", f"{planted.shas[-1]}..HEAD", "--history",
                  str(store)], clone)
    assert ran.code == 0, ran.stdout + ran.stderr
    assert f"{broken[:10]}  fail" in ran.stdout and "the build failed" in ran.stdout
    assert f"{repaired[:10]}  pass" in ran.stdout
    with open_store(store, create=False) as opened:
        statuses = {c.commit.sha: c.status for c in opened.checks(None) if c.commit}
    assert statuses == {broken: "fail", repaired: "pass"}


@pytest.mark.cgroup
def test_an_interrupted_backfill_leaves_no_worktree(planted: PlantedRepo,
                                                    writable_cgroup: None,
                                                    tmp_path: Path) -> None:
    store = tmp_path / "history.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "history", "backfill", f"{planted.shas[0]}..main",
         "--history", str(store)], cwd=planted.path, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + 120
        while not _builds_of(proc.pid):  # Ctrl-C while a commit's build runs
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stdout + stderr
    assert git(planted.path, "worktree", "list").count("\n") == 0
    assert not list((planted.path / ".git").glob("worktrees/*"))
    from runner.workload.cache import cache_dir, work_root

    mine = f"memsla-{proc.pid}-"
    assert not list(work_root(cache_dir()).glob(f"{mine}*"))
    assert not [p for p in psutil.process_iter(["cmdline"])
                if mine in " ".join(p.info["cmdline"] or [])]
    with open_store(store, create=False) as opened:  # the interrupted commit is not recorded
        assert all(c.status == "pass" for c in opened.checks(None))


def _builds_of(pid: int) -> bool:
    """A build of the planted tool runs under the backfill ``pid``."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return False
    for child in children:
        try:
            if any("plantedbuild" in part for part in child.cmdline()):
                return True
        except psutil.Error:
            continue
    return False


@pytest.mark.parametrize("args, said", [
    (["bisect", "HEAD~3", "HEAD", "--rule", "peek < 1GiB"], "unknown metric"),
    (["bisect", "HEAD~3", "HEAD", "--metric", "rss_peak"], "--by"),
    (["bisect", "HEAD", "HEAD~3", "--rule", "peak < 1GiB"], "not an ancestor"),
    (["bisect", "nosuch", "HEAD", "--rule", "peak < 1GiB"], "names no commit"),
    (["backfill", "HEAD..HEAD~3"], "holds no commit"),
    (["backfill", "HEAD~2..HEAD", "--sla", "missing.yaml"], "no such file"),
], ids=["rule", "by", "ancestor", "revision", "range", "sla"])
def test_bad_input_is_exit_2_before_anything_is_measured(planted: PlantedRepo, tmp_path: Path,
                                                         args: list[str], said: str) -> None:
    store = tmp_path / "history.db"
    ran = runner(["history", *args, "--history", str(store)], planted.path)
    assert ran.code == 2, ran.stdout + ran.stderr
    assert said in ran.stderr, ran.stderr
    assert git(planted.path, "worktree", "list").count("\n") == 0
