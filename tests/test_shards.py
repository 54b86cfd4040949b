"""Shards and ``runner merge``: two shards merged give the verdicts and fits of one run of the
same file; merges of shards that are not one plan measured one way are refused (exit 2); the
split is deterministic and balanced by earlier costs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from runner.plan import build_plan
from runner.shards import parse_shard, split
from runner.slafile import load_suite
from tests.conftest import run_cli

HOLD = '''
import sys, time
block = bytearray(b"\\x01") * (int(sys.argv[1]) * 1024 * 1024)
time.sleep(0.2)
'''

SLA = """\
    version: 1
    defaults: {backend: cgroup, repeats: 1, tracker: none, limit: 256MiB}
    scenarios:
      hold:
        command: [python3, hold.py, "{mib}"]
        size: mib
        matrix: {mib: [16, 32, 48, 64, 80]}
        slas:
          - peak < 200MiB
          - rule: peak < 60MiB
            when: {mib: [16, 32]}
          - per_page < 2MiB
          - per_page(rss_peak) < 2MiB
    """


def _merge(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runner", "merge", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)


def _verdicts(results: dict[str, Any]) -> dict[tuple[str, str], bool | None]:
    found = {(c["scenario"] + json.dumps(c["params"]), v["rule"]): v["passed"]
             for c in results["cases"] for v in c["verdicts"]}
    found.update({(s["scenario"], v["rule"]): v["passed"]
                  for s in results["scenarios"] for v in s["verdicts"]})
    return found


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One whole run and two shards of the same SLA file, measured once for every test here."""
    folder = tmp_path_factory.mktemp("shards")
    (folder / "hold.py").write_text(HOLD)
    (folder / "sla.yaml").write_text(textwrap.dedent(SLA))
    for name, extra in (("whole", []), ("shard1", ["--shard", "1/2"]),
                        ("shard2", ["--shard", "2/2"])):
        run = run_cli(["check", "sla.yaml", *extra], folder, timeout=300)
        assert run.exit_code == 0, run.stderr
        (folder / "results.json").rename(folder / f"{name}.json")
    return folder


def _load(folder: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / name).read_text())
    return data


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_two_shards_merged_judge_as_one_run(measured: Path) -> None:
    one, two = _load(measured, "shard1.json"), _load(measured, "shard2.json")
    assert one["shard"]["cases"] and two["shard"]["cases"]
    assert not set(one["shard"]["cases"]) & set(two["shard"]["cases"])
    merged = _merge(["shard2.json", "shard1.json", "--json", "merged.json", "--junit",
                     "junit.xml", "--markdown", "comment.md"], measured)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    result, whole = _load(measured, "merged.json"), _load(measured, "whole.json")
    assert result["status"] == whole["status"] == "pass"
    assert [c["params"] for c in result["cases"]] == [c["params"] for c in whole["cases"]]
    assert [s["index"] for s in result["merged_from"]] == [1, 2]
    assert _verdicts(result) == _verdicts(whole)
    assert len(result["scenarios"][0]["verdicts"]) == 2  # the fit rules, judged after merging
    fits = {f["metric"]: f for f in result["scenarios"][0]["analysis"]["scaling"]}
    judged = [f for f in whole["scenarios"][0]["analysis"]["scaling"] if f["problem"] is None]
    assert {f["metric"] for f in judged} == {"peak", "rss_peak"}  # untraced: no python_peak
    for fit in judged:
        mine = fits[fit["metric"]]
        assert mine["sizes"] == fit["sizes"] == [16, 32, 48, 64, 80]
        assert abs(mine["line"]["marginal"] / fit["line"]["marginal"] - 1) < 0.02, fit["metric"]
        for size in fit["sizes"]:
            at = fit["line"]["fixed"] + fit["line"]["marginal"] * size
            mine_at = mine["line"]["fixed"] + mine["line"]["marginal"] * size
            assert abs(mine_at / at - 1) < 0.02, (fit["metric"], size)
    assert (measured / "junit.xml").is_file() and (measured / "comment.md").is_file()


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_a_shard_alone_judges_its_cases_not_the_fits(measured: Path) -> None:
    one = _load(measured, "shard1.json")
    assert one["status"] == "measured" and one["shard"]["index"] == 1  # never a pass alone
    assert one["sla_digest"].startswith("sha256:")


def _edited(measured: Path, name: str, change: Any) -> str:
    data = _load(measured, name)
    change(data)
    target = f"edited-{name}"
    (measured / target).write_text(json.dumps(data))
    return target


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
@pytest.mark.parametrize(("name", "change", "message"), [
    ("sla", lambda d: d.update(sla_digest="sha256:0"), "different SLA files"),
    ("version", lambda d: d.update(memsla_version="0.0.1"), "different memsla versions"),
    ("backend", lambda d: d["host"].update(backend="docker"), "different backends"),
    ("host", lambda d: d["host"].update(cpus=64), "different kinds of host"),
    ("interrupted", lambda d: d.update(interrupted=True, status="interrupted"), "incomplete"),
    ("running", lambda d: d.update(status="running"), "never ended"),
    ("lost case", lambda d: d["cases"].pop(), "incomplete"),
    ("overlap", "take shard 1's first case", "overlap"),
    ("other plan", lambda d: d["shard"].update(count=3), "different plans"),
])
def test_a_merge_of_incompatible_shards_is_refused(measured: Path, name: str, change: Any,
                                                   message: str) -> None:
    if name == "overlap":  # shard 2 measured shard 1's first case too
        first = _load(measured, "shard1.json")["cases"][0]

        def change(data: dict[str, Any]) -> None:
            data["cases"].insert(0, first)
            data["shard"]["cases"].insert(0, "hold[mib=16]")

    edited = _edited(measured, "shard2.json", change)
    run = _merge(["shard1.json", edited, "--json", "refused.json"], measured)
    assert run.returncode == 2, run.stdout + run.stderr
    assert message in run.stderr, run.stderr
    assert not (measured / "refused.json").exists()


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_missing_and_repeated_shards_and_a_changed_sla_file_are_refused(measured: Path) -> None:
    missing = _merge(["shard1.json"], measured)
    assert missing.returncode == 2 and "shard(s) 2 of 2 are missing" in missing.stderr
    twice = _merge(["shard1.json", "shard1.json"], measured)
    assert twice.returncode == 2 and "both shard 1/2" in twice.stderr
    whole = _merge(["whole.json", "shard2.json"], measured)
    assert whole.returncode == 2 and "holds no shard" in whole.stderr
    changed = measured / "changed"
    changed.mkdir(exist_ok=True)
    (changed / "sla.yaml").write_text(textwrap.dedent(SLA).replace("200MiB", "201MiB"))
    moved = _merge(["shard1.json", "shard2.json", "--sla", str(changed / "sla.yaml")], measured)
    assert moved.returncode == 2 and "content hash differs" in moved.stderr


# -- the split -----------------------------------------------------------------------------------

def _plans(tmp_path: Path, sizes: list[int]) -> list[Any]:
    path = tmp_path / "sla.yaml"
    path.write_text(textwrap.dedent(f"""\
        version: 1
        defaults: {{backend: process}}
        scenarios:
          s:
            command: [python3, -c, pass]
            matrix: {{pages: {sizes}}}
        """))
    return build_plan(load_suite(path))


def test_without_costs_the_split_is_round_robin_in_plan_order(tmp_path: Path) -> None:
    plans = _plans(tmp_path, [1, 2, 3, 4, 5])
    assert split(plans, 2) == [[0, 2, 4], [1, 3]]
    assert split(plans, 3) == [[0, 3], [1, 4], [2]]
    assert split(plans, 7)[5:] == [[], []]


def test_costs_balance_the_split_and_unknown_cases_cost_the_median(tmp_path: Path) -> None:
    plans = _plans(tmp_path, [1, 2, 3, 4, 5])
    costs = {p.label: cost for p, cost in zip(plans, [100.0, 10.0, 10.0, 10.0], strict=False)}
    shares = split(plans, 2, costs)  # the 100 s case alone on one shard
    assert shares == [[0], [1, 2, 3, 4]]
    assert split(plans, 2, costs) == shares  # deterministic


@pytest.mark.parametrize("text", ["0/2", "3/2", "1/0", "a/b", "1"])
def test_bad_shards_are_usage_errors(text: str) -> None:
    from runner.errors import UsageError

    with pytest.raises(UsageError):
        parse_shard(text)
    assert parse_shard(" 2 / 3 ") == (2, 3)
