"""Which commit of the user's repository a check measured, read from git."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from runner.history.model import Commit


def _git(folder: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(folder), *args], capture_output=True,
                              text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def utc_iso(text: str) -> str:
    """git's strict ISO time (``2024-05-01T10:00:00+02:00``) as ISO 8601 in UTC."""
    return datetime.fromisoformat(text).astimezone(timezone.utc).isoformat()


def commit_of(folder: Path) -> Commit | None:
    """The commit checked out in ``folder``'s repository; None outside a git repository (or
    before its first commit). In CI the branch comes from GitHub's variables: a pull request's
    head branch, else the pushed branch (the checkout is often a detached head)."""
    folder = folder if folder.is_dir() else folder.parent
    sha = _git(folder, "rev-parse", "--verify", "-q", "HEAD")
    if not sha:
        return None
    info = _git(folder, "show", "-s", "--format=%cI%n%P%n%s", sha) or ""
    lines = [*info.split("\n"), "", "", ""]  # time, parents (none: a root commit), subject
    parents = lines[1].split()
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    branch = os.environ.get("GITHUB_HEAD_REF") or os.environ.get("GITHUB_REF_NAME") or None
    if branch is None:
        name = _git(folder, "rev-parse", "--abbrev-ref", "HEAD")
        branch = name if name and name != "HEAD" else None
    committed = utc_iso(lines[0]) if lines[0] else datetime.now(timezone.utc).isoformat()
    return Commit(sha=sha, dirty=bool(status), parent=parents[0] if parents else None,
                  branch=branch, committed=committed, subject=lines[2])
