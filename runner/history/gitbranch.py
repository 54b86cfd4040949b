"""History in CI without a server: one JSON-lines file per recorded check on an orphan branch
(``memsla-history``) of the user's repository, pushed and pulled without touching the work tree.

Each file is named by its record time and check id, so two writers never write the same file:
a rejected push is only ever a race on the branch tip, retried by committing the same files
again on top of the new tip. ``pull`` imports every file whose check the store lacks.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from runner.errors import HistoryError
from runner.history import BRANCH, REMOTE

if TYPE_CHECKING:  # imported where used
    from runner.history.model import CheckRecord
    from runner.history.store import Store

IDENTITY = {"GIT_AUTHOR_NAME": "memsla", "GIT_AUTHOR_EMAIL": "memsla@localhost",
            "GIT_COMMITTER_NAME": "memsla", "GIT_COMMITTER_EMAIL": "memsla@localhost"}
REJECTED = ("rejected", "non-fast-forward", "fetch first", "cannot lock ref",
            "failed to update ref", "incorrect old value")


def file_name(record: CheckRecord) -> str:
    """``20261207T161633.123456Z-<check id>.jsonl``: record time first, so names sort by it."""
    stamp = record.recorded.replace("+00:00", "Z").replace("-", "").replace(":", "")
    return f"{stamp}-{record.id}.jsonl"


def check_id_of(name: str) -> str | None:
    stem = name.rsplit("/", 1)[-1]
    if not stem.endswith(".jsonl") or "-" not in stem:
        return None
    return stem.removesuffix(".jsonl").rsplit("-", 1)[1]


def to_lines(record: CheckRecord) -> str:
    """The check without its cases on the first line, then one case per line."""
    head = record.model_dump(mode="json", exclude={"cases"})
    lines = [json.dumps(head, sort_keys=True)]
    lines += [json.dumps(case.model_dump(mode="json"), sort_keys=True) for case in record.cases]
    return "\n".join(lines) + "\n"


def from_lines(text: str, where: str = "record") -> CheckRecord:
    from runner.history.model import CaseRecord, CheckRecord

    lines = [line for line in text.splitlines() if line.strip()]
    try:
        record = CheckRecord.model_validate_json(lines[0])
        record.cases = [CaseRecord.model_validate_json(line) for line in lines[1:]]
    except (IndexError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise HistoryError(f"{where}: not a memsla history record: {first}") from None
    return record


def _git(repo: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None,
         check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(["git", "-C", str(repo), *args], input=stdin, text=True,
                              capture_output=True, check=False, timeout=600,
                              env={**os.environ, **(env or {})})
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HistoryError(f"git {args[0]} in {repo}: {exc}") from None
    if check and proc.returncode != 0:
        said = " ".join(proc.stderr.split()) or f"exit {proc.returncode}"
        raise HistoryError(f"git {' '.join(args[:2])} in {repo}: {said}")
    return proc


def fetch(repo: Path, branch: str = BRANCH, remote: str = REMOTE) -> str | None:
    """Fetch the history branch into ``refs/remotes/<remote>/<branch>``; its tip, or None
    where the remote has no such branch yet."""
    tracking = f"refs/remotes/{remote}/{branch}"
    proc = _git(repo, "fetch", "--quiet", "--no-tags", remote,
                f"+refs/heads/{branch}:{tracking}", check=False)
    if proc.returncode != 0:
        heads = _git(repo, "ls-remote", "--heads", remote, f"refs/heads/{branch}").stdout
        if heads.strip():
            said = " ".join(proc.stderr.split())
            raise HistoryError(f"git fetch {remote} {branch} in {repo}: {said}")
        return None
    return _git(repo, "rev-parse", "--verify", "-q", tracking).stdout.strip() or None


def files_on(repo: Path, tip: str | None) -> list[str]:
    if tip is None:
        return []
    return _git(repo, "ls-tree", "-r", "--name-only", tip).stdout.splitlines()


def push(repo: Path, records: CheckRecord | Sequence[CheckRecord], branch: str = BRANCH,
         remote: str = REMOTE, attempts: int = 30) -> str | None:
    """Commit a file per record (those not on the branch yet) on top of the remote branch and
    push it, never touching the work tree or the index; on a rejected push (another writer
    pushed first) fetch and commit again. Returns the pushed tip (None: nothing to push)."""
    from runner.history.model import CheckRecord

    todo = [records] if isinstance(records, CheckRecord) else list(records)
    for attempt in range(attempts):
        tip = fetch(repo, branch, remote)
        present = set(files_on(repo, tip))
        missing = [r for r in todo if file_name(r) not in present]
        if not missing:
            return tip
        commit = _commit(repo, tip, missing)
        proc = _git(repo, "push", "--quiet", remote, f"{commit}:refs/heads/{branch}",
                    check=False)
        if proc.returncode == 0:
            _git(repo, "update-ref", f"refs/remotes/{remote}/{branch}", commit)
            return commit
        said = " ".join(proc.stderr.split())
        if not any(word in said for word in REJECTED):
            raise HistoryError(f"git push {remote} {branch} in {repo}: {said}")
        time.sleep(random.uniform(0.05, 0.2) * min(attempt + 1, 10))
    raise HistoryError(f"git push {remote} {branch} in {repo}: rejected {attempts} times "
                       "(other writers kept pushing first)")


def _commit(repo: Path, parent: str | None, records: list[CheckRecord]) -> str:
    """A commit of ``parent``'s tree plus a file per record, built in a private index."""
    with tempfile.TemporaryDirectory(prefix="memsla-history-") as folder:
        env = {"GIT_INDEX_FILE": str(Path(folder) / "index"), **IDENTITY}
        if parent is not None:
            _git(repo, "read-tree", parent, env=env)
        entries = []
        for record in records:
            blob = _git(repo, "hash-object", "-w", "--stdin", stdin=to_lines(record)
                        ).stdout.strip()
            entries.append(f"100644 {blob}\t{file_name(record)}\n")
        _git(repo, "update-index", "--add", "--index-info", stdin="".join(entries), env=env)
        tree = _git(repo, "write-tree", env=env).stdout.strip()
        message = (f"memsla history: {len(records)} check{'s' if len(records) > 1 else ''}\n\n"
                   + "".join(f"{file_name(r)}\n" for r in records))
        parents = ["-p", parent] if parent else []
        return _git(repo, "commit-tree", tree, *parents, "-m", message,
                    env=env).stdout.strip()


def push_store(repo: Path, store: Store, branch: str = BRANCH, remote: str = REMOTE) -> int:
    """Push every check of the store that the branch lacks; returns how many."""
    tip = fetch(repo, branch, remote)
    present = {check_id_of(name) for name in files_on(repo, tip)}
    missing = [store.check(summary.id) for summary in reversed(store.checks())
               if summary.id not in present]
    if missing:
        push(repo, missing, branch, remote)
    return len(missing)


def pull(repo: Path, store: Store, branch: str = BRANCH, remote: str = REMOTE) -> int:
    """Fetch the branch and import every check the store lacks (by check id); returns how
    many were imported. Pulling twice imports nothing the second time."""
    tip = fetch(repo, branch, remote)
    known = store.check_ids()
    wanted = [name for name in files_on(repo, tip)
              if (check := check_id_of(name)) is not None and check not in known]
    imported = 0
    for name in wanted:
        text = _git(repo, "cat-file", "blob", f"{tip}:{name}").stdout
        if store.add(from_lines(text, f"{branch}:{name}")):
            imported += 1
    return imported
