"""The history on a git branch, with real repositories: a bare origin and clones pushing."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from runner.errors import HistoryError
from runner.history import gitbranch
from runner.history.commit import commit_of
from runner.history.model import check_record
from runner.history.store import open_store
from tests.history.conftest import results


def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), "-c", "user.name=t", "-c",
                           "user.email=t@t", *args], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    bare = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    seed = tmp_path / "seed"
    subprocess.run(["git", "clone", "-q", str(bare), str(seed)], check=True,
                   capture_output=True)
    (seed / "README").write_text("project\n")
    git(seed, "add", "README")
    git(seed, "commit", "-qm", "first")
    git(seed, "push", "-q", "origin", "HEAD:main")
    return bare


def clone(origin: Path, where: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(origin), str(where)], check=True,
                   capture_output=True)
    return where


def test_lines_round_trip() -> None:
    record = check_record(results({"100": [1.5, 2.5], "200": [3.0]}), None)
    assert gitbranch.from_lines(gitbranch.to_lines(record)) == record
    name = gitbranch.file_name(record)
    assert gitbranch.check_id_of(name) == record.id and name.endswith(".jsonl")
    with pytest.raises(HistoryError, match="not a memsla history record"):
        gitbranch.from_lines('{"x": 1}\n', "f")


def test_push_leaves_the_work_tree_and_pull_imports_once(origin: Path, tmp_path: Path) -> None:
    mine = clone(origin, tmp_path / "mine")
    head, status = git(mine, "rev-parse", "HEAD"), git(mine, "status", "--porcelain")
    first = check_record(results({"100": [1.0, 2.0]}), commit_of(mine))
    second = check_record(results({"100": [3.0]}), None)
    gitbranch.push(mine, first)
    gitbranch.push(mine, [first, second])  # the first is there already: only the second
    assert git(mine, "rev-parse", "HEAD") == head and git(mine, "status", "--porcelain") == status
    assert git(mine, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    files = git(origin, "ls-tree", "--name-only", "memsla-history").splitlines()
    assert sorted(files) == sorted([gitbranch.file_name(first), gitbranch.file_name(second)])
    assert git(origin, "rev-list", "--count", "memsla-history") == "2"
    assert git(origin, "rev-list", "--max-parents=0", "memsla-history") != git(
        origin, "rev-list", "--max-parents=0", "main")  # an orphan branch

    theirs = clone(origin, tmp_path / "theirs")
    with open_store(tmp_path / "theirs.db") as store:
        assert gitbranch.pull(theirs, store) == 2
        assert gitbranch.pull(theirs, store) == 0  # idempotent by check id
        assert store.check(first.id) == first
        assert sorted(p.values[0] for p in store.points(metric="peak")) == [1.0, 3.0]


def test_pull_without_the_branch_imports_nothing(origin: Path, tmp_path: Path) -> None:
    mine = clone(origin, tmp_path / "mine")
    with open_store(tmp_path / "h.db") as store:
        assert gitbranch.pull(mine, store) == 0


def test_concurrent_pushers_lose_nothing(origin: Path, tmp_path: Path) -> None:
    clones = [clone(origin, tmp_path / f"clone{n}") for n in range(3)]
    pushed: dict[int, list[str]] = {n: [] for n in range(3)}
    errors: list[BaseException] = []

    def pusher(n: int) -> None:
        try:
            for index in range(6):
                record = check_record(results({"100": [float(n * 100 + index)]}), None)
                gitbranch.push(clones[n], record)
                pushed[n].append(record.id)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=pusher, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    names = git(origin, "ls-tree", "--name-only", "memsla-history").splitlines()
    assert sorted(gitbranch.check_id_of(n) for n in names) == sorted(
        i for ids in pushed.values() for i in ids)
    with open_store(tmp_path / "all.db") as store:
        assert gitbranch.pull(clones[0], store) == 18
        assert len(store.points(metric="peak")) == 18


def test_push_store_pushes_what_the_branch_lacks(origin: Path, tmp_path: Path) -> None:
    mine = clone(origin, tmp_path / "mine")
    with open_store(tmp_path / "h.db") as store:
        for value in (1.0, 2.0):
            store.record(results({"100": [value]}), None)
        assert gitbranch.push_store(mine, store) == 2
        assert gitbranch.push_store(mine, store) == 0
        store.record(results({"100": [3.0]}), None)
        assert gitbranch.push_store(mine, store) == 1
    assert len(git(origin, "ls-tree", "--name-only", "memsla-history").splitlines()) == 3


def test_a_push_to_no_remote_is_an_error(tmp_path: Path) -> None:
    lone = tmp_path / "lone"
    subprocess.run(["git", "init", "-q", str(lone)], check=True)
    with pytest.raises(HistoryError, match="origin"):
        gitbranch.push(lone, check_record(results({"100": [1.0]}), None))


def test_commit_of(origin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_HEAD_REF", raising=False)
    monkeypatch.delenv("GITHUB_REF_NAME", raising=False)
    assert commit_of(tmp_path) is None  # not a repository
    mine = clone(origin, tmp_path / "mine")
    found = commit_of(mine)
    assert found is not None
    assert found.sha == git(mine, "rev-parse", "HEAD") and found.parent is None
    assert found.branch == "main" and found.subject == "first" and not found.dirty
    assert found.committed.endswith("+00:00")
    (mine / "README").write_text("changed\n")
    (mine / "untracked").write_text("not a change of the commit\n")
    git(mine, "commit", "-qam", "second")
    (mine / "README").write_text("changed again\n")
    second = commit_of(mine)
    assert second is not None and second.dirty and second.parent == found.sha
    git(mine, "checkout", "-q", "--detach")
    assert commit_of(mine).branch is None  # type: ignore[union-attr]
    monkeypatch.setenv("GITHUB_HEAD_REF", "feature")
    assert commit_of(mine).branch == "feature"  # type: ignore[union-attr]
