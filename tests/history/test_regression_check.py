"""``runner check --fail-on-regression`` end to end: real checks of a planted build (the local
cgroup: the kernel's peak, steady between repeats; the process backend's sampled peak moved 12%
once) in a real git repository, against a SQLite store holding the main branch's history: exit
1 on a planted +20% allocation, 0 on the same allocation, 3 when the store cannot be read
(before or after the cases were measured), 2 without a store."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from runner.history.model import Commit
from runner.history.store import open_store

PLANT = """\
import os, sys
MIB = {mib}
if len(sys.argv) > 1:  # break the store while the check runs
    for name in (sys.argv[1], sys.argv[1] + "-wal", sys.argv[1] + "-shm"):
        if os.path.exists(name):
            os.remove(name)
    open(sys.argv[1], "wb").write(b"not a database any more" * 400)
block = bytearray(b"\\x01") * (MIB << 20)
"""
SLA = """\
version: 1
defaults: {{backend: cgroup, repeats: 3, tracker: none, limit: 1GiB}}
scenarios:
  plant: {{command: [python3, plant.py{extra}]}}
slas: [peak < 900MiB]
"""
MEMORY = ("peak", "rss_peak")


def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), "-c", "user.name=t", "-c",
                           "user.email=t@t", *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def plant(repo: Path, mib: int, message: str) -> None:
    (repo / "plant.py").write_text(PLANT.format(mib=mib))
    git(repo, "add", ".")
    git(repo, "commit", "-qm", message)


def check(repo: Path, *args: str) -> tuple[int, dict[str, object] | None, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    env["PYTHONPATH"] = str(Path(__file__).parents[2])
    out = repo / "results.json"
    out.unlink(missing_ok=True)
    proc = subprocess.run([sys.executable, "-m", "runner", "check", "sla.yaml", "--json",
                           str(out), *args], cwd=repo, capture_output=True, text=True,
                          timeout=600, check=False, env=env)
    results = json.loads(out.read_text()) if out.exists() else None
    return proc.returncode, results, proc.stdout + proc.stderr


def verdicts(results: dict[str, object] | None) -> dict[str, dict[str, object]]:
    assert results is not None
    cases = results["cases"]
    assert isinstance(cases, list)
    return {v["metric"]: v for v in cases[0]["verdicts"]}


def main_history(repo: Path, store: Path) -> None:
    """A real check of main's commit, and six earlier commits made from it: memory within
    ±0.3%, times spread as a shared CI host spreads them (so only memory can regress here)."""
    code, _, out = check(repo, "--history", str(store))
    assert code == 0, out
    draw = random.Random(3)
    with open_store(store) as opened:
        real = opened.check(opened.checks()[0].id)
        for index in range(6):
            cases = [case.model_copy(update={"metrics": {
                metric: [v * (1 + draw.gauss(0, 0.003)) if metric in MEMORY
                         else v * draw.uniform(0.4, 2.5) for v in values]
                for metric, values in case.metrics.items()}}) for case in real.cases]
            opened.add(real.model_copy(update={
                "id": f"base{index}", "cases": cases,
                "commit": Commit(sha=f"{index:040x}", branch="main", subject=f"base {index}",
                                 committed=f"2020-01-0{index + 1}T00:00:00+00:00")}))


@pytest.mark.cgroup
def test_fail_on_regression_in_a_real_check(tmp_path: Path, writable_cgroup: None) -> None:
    repo, store = tmp_path / "repo", tmp_path / "history.db"
    repo.mkdir()
    (repo / "sla.yaml").write_text(SLA.format(extra=""))
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    plant(repo, 100, "the build")
    main_history(repo, store)
    git(repo, "checkout", "-qb", "feature")
    plant(repo, 120, "hold 20% more")
    code, results, out = check(repo, "--history", str(store), "--fail-on-regression")
    assert code == 1, out
    found = verdicts(results)
    peak = found["regression(rss_peak)"]
    assert peak["passed"] is False and 0.10 < float(peak["value"]) < 0.30  # type: ignore[arg-type]
    assert "base: main's last 7 commits (21 values)" in str(peak["reason"])
    assert found["peak"]["passed"] is True
    plant(repo, 100, "back to the old size")
    code, results, out = check(repo, "--history", str(store), "--fail-on-regression")
    assert code == 0, out
    assert all(v["passed"] for m, v in verdicts(results).items() if m.startswith("regression("))
    assert {"regression(peak)", "regression(rss_peak)", "regression(duration)"} <= set(
        verdicts(results))
    # without the flag or a rule nothing is judged against the history: the +20% passes
    plant(repo, 120, "hold 20% more again")
    code, results, out = check(repo, "--history", str(store))
    assert code == 0 and not any(m.startswith("regression(") for m in verdicts(results)), out


@pytest.mark.cgroup
def test_a_store_that_cannot_be_read_is_exit_3(tmp_path: Path, writable_cgroup: None) -> None:
    repo, store = tmp_path / "repo", tmp_path / "history.db"
    repo.mkdir()
    (repo / "sla.yaml").write_text(SLA.format(extra=f", {store}"))
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    plant(repo, 8, "the build")
    with open_store(store):
        pass
    code, results, out = check(repo, "--history", str(store), "--fail-on-regression")
    assert code == 3, out  # broken while the cases ran: no verdict, never a pass
    regression = verdicts(results)["regression(peak)"]
    assert regression["passed"] is None and "history store" in str(regression["reason"])
    code, results, out = check(repo, "--history", str(store), "--fail-on-regression")
    assert code == 3 and results is None and "history store" in out  # refused at the start
    code, _, out = check(repo, "--fail-on-regression")
    assert code == 2 and "--history" in out
