"""``runner check --history`` end to end on a planted build in a real git repository, the exit
codes a store that cannot be read or written leaves, and ``runner history list|show|export``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from runner.history.store import open_store
from tests.conftest import run_cli
from tests.reports.conftest import DATA

# the build allocates (and touches) 64 MiB; argv[1], when given, is a file it overwrites first
PLANTED = textwrap.dedent("""\
    import os, sys
    if len(sys.argv) > 1:
        for name in (sys.argv[1], sys.argv[1] + "-wal", sys.argv[1] + "-shm"):
            if os.path.exists(name):
                os.remove(name)
        open(sys.argv[1], "wb").write(b"not a database any more" * 400)
    block = bytearray(b"\\x01") * (64 << 20)
    """)


def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), "-c", "user.name=t", "-c",
                           "user.email=t@t", *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def planted_repo(folder: Path, *extra: str, scenarios: int = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plant.py").write_text(PLANTED)
    command = ", ".join(["python3", "plant.py", *extra])
    lines = "\n".join(f"  plant{n}: {{command: [{command}]}}" for n in range(scenarios))
    (folder / "sla.yaml").write_text(
        "version: 1\ndefaults: {backend: process, repeats: 2, tracker: none, limit: 1GiB}\n"
        f"scenarios:\n{lines}\nslas: [peak < 900MiB]\n")
    subprocess.run(["git", "init", "-q", "-b", "main", str(folder)], check=True)
    git(folder, "add", ".")
    git(folder, "commit", "-qm", "planted build")
    return folder


def runner(args: list[str], cwd: Path, env: dict[str, str] | None = None,
           ) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "runner", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2]),
                               **(env or {})})


def test_check_records_every_repeat_of_every_metric(tmp_path: Path) -> None:
    repo = planted_repo(tmp_path / "repo")
    store = tmp_path / "h.db"
    run = run_cli(["check", "sla.yaml", "--history", f"sqlite:///{store}"], cwd=repo)
    assert run.exit_code == 0, run.stdout + run.stderr
    assert "history: recorded check" in run.stdout
    assert run.results is not None
    case = run.results["cases"][0]
    with open_store(store) as opened:
        points = opened.points()
        checks = opened.checks()
    assert len(checks) == 1 and checks[0].status == "pass"
    recorded = {p.metric: p.values for p in points}
    assert recorded == {name: stats["values"] for name, stats in case["metrics"].items()
                        if stats["values"]}
    assert len(recorded["rss_peak"]) == 2 and min(recorded["rss_peak"]) > 64 << 20
    commit = points[0].commit
    assert commit is not None and commit.sha == git(repo, "rev-parse", "HEAD")
    assert commit.branch == "main" and commit.subject == "planted build" and not commit.dirty


def test_the_history_variable_is_the_default_store(tmp_path: Path) -> None:
    repo = planted_repo(tmp_path / "repo")
    store = tmp_path / "env.db"
    run = run_cli(["check", "sla.yaml"], cwd=repo, env={"MEMSLA_HISTORY": str(store)})
    assert run.exit_code == 0, run.stderr
    with open_store(store) as opened:
        assert len(opened.checks()) == 1


def test_a_store_that_cannot_be_read_fails_before_measuring(tmp_path: Path) -> None:
    repo = planted_repo(tmp_path / "repo")
    (tmp_path / "bad.db").write_bytes(b"garbage" * 1000)
    run = run_cli(["check", "sla.yaml", "--history", str(tmp_path / "bad.db")], cwd=repo)
    assert run.exit_code == 3
    assert run.results is None  # nothing was measured
    errors = run.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("runner: error: history store")
    assert "not a database" in errors[0]


def test_a_recording_failure_after_a_pass_is_exit_3(tmp_path: Path) -> None:
    store = tmp_path / "h.db"
    repo = planted_repo(tmp_path / "repo", str(store))  # the build ruins the store
    run = run_cli(["check", "sla.yaml", "--history", str(store)], cwd=repo)
    assert run.results is not None and run.results["status"] == "pass"
    assert run.exit_code == 3, run.stdout + run.stderr
    assert "runner: error: history store" in run.stderr and "not a database" in run.stderr


def test_merge_records_the_merged_check_and_shards_none(tmp_path: Path) -> None:
    repo = planted_repo(tmp_path / "repo", scenarios=2)
    url = f"sqlite:///{tmp_path / 'h.db'}"
    for k in (1, 2):
        shard = runner(["check", "sla.yaml", "--shard", f"{k}/2", "--json", f"s{k}.json",
                        "--history", url], repo)
        assert shard.returncode == 0, shard.stderr
        assert "a shard is not recorded" in shard.stdout
    merged = runner(["merge", "s1.json", "s2.json", "--history", url], repo)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    with open_store(tmp_path / "h.db") as opened:
        assert len(opened.checks()) == 1
        assert {p.scenario for p in opened.points()} == {"plant0", "plant1"}


def _schema(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text())  # type: ignore[no-any-return]


def test_history_list_show_and_export(tmp_path: Path) -> None:
    repo = planted_repo(tmp_path / "repo")
    url = f"sqlite:///{tmp_path / 'h.db'}"
    for _ in range(2):
        assert run_cli(["check", "sla.yaml", "--history", url], cwd=repo).exit_code == 0
    sha = git(repo, "rev-parse", "HEAD")

    listed = runner(["history", "list", "--history", url], repo)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.strip().splitlines()
    assert len(lines) == 2 and all(sha[:10] in line and "pass" in line for line in lines)
    as_json = runner(["history", "list", "--json", "--history", url], repo)
    assert [json.loads(line)["commit"]["sha"] for line in as_json.stdout.splitlines()] == [
        sha, sha]

    shown = runner(["history", "show", "plant0", "--metric", "rss_peak", "--history", url],
                   repo)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count(sha[:10]) == 2 and "MiB" in shown.stdout
    data = json.loads(runner(["history", "show", "plant0", "--metric", "rss_peak", "--json",
                              "--history", url], repo).stdout)
    assert len(data) == 1 and len(data[0]["points"]) == 2
    assert all(len(p["values"]) == 2 for p in data[0]["points"])

    gab = runner(["history", "export", "--format", "github-action-benchmark", "--history", url],
                 repo)
    assert gab.returncode == 0, gab.stderr
    entries = json.loads(gab.stdout)
    jsonschema.validate(entries, _schema("custom-smaller-is-better.schema.json"))
    names = {e["name"] for e in entries}
    assert "plant0 rss_peak" in names and "plant0 duration" in names
    newest = json.loads(as_json.stdout.splitlines()[0])["id"]
    out = tmp_path / "bencher.json"
    bencher = runner(["history", "export", "--format", "bencher", "--check", newest[:8],
                      "-o", str(out), "--history", url], repo)
    assert bencher.returncode == 0, bencher.stderr
    document = json.loads(out.read_text())
    jsonschema.validate(document, _schema("bencher-metric-format.schema.json"))
    assert document["plant0"]["rss-peak"]["value"] > 64 << 20


@pytest.mark.parametrize("action", ["list", "show plant0", "export --format bencher"])
def test_history_commands_on_a_missing_or_bad_store(tmp_path: Path, action: str) -> None:
    missing = runner(["history", *action.split(), "--history", str(tmp_path / "none.db")],
                     tmp_path)
    assert missing.returncode == 3 and "no history store at" in missing.stderr
    assert not (tmp_path / "none.db").exists()
    (tmp_path / "bad.db").write_bytes(b"garbage" * 1000)
    bad = runner(["history", *action.split(), "--history", str(tmp_path / "bad.db")],
                 tmp_path)
    assert bad.returncode == 3 and "not a database" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_history_pull_and_push_through_a_bare_origin(tmp_path: Path) -> None:
    repo = planted_repo(tmp_path / "repo")
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "origin.git")], check=True)
    git(repo, "remote", "add", "origin", str(tmp_path / "origin.git"))
    url = f"sqlite:///{tmp_path / 'h.db'}"
    assert run_cli(["check", "sla.yaml", "--history", url], cwd=repo).exit_code == 0
    pushed = runner(["history", "push", "--history", url], repo)
    assert pushed.returncode == 0, pushed.stderr
    assert "1 check pushed to origin/memsla-history" in pushed.stdout
    other = f"sqlite:///{tmp_path / 'other.db'}"
    pulled = runner(["history", "pull", "--history", other], repo)
    assert pulled.returncode == 0, pulled.stderr
    assert "1 check imported" in pulled.stdout
    with open_store(tmp_path / "h.db") as a, open_store(tmp_path / "other.db") as b:
        assert a.points() == b.points()
