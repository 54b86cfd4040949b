"""The history of checks: a store of every recorded check's raw values (SQLite or PostgreSQL),
its series per case and metric, and its copy on a git branch. See docs/history.md."""

from __future__ import annotations

from runner.history.recording import record_check

# The history branch (``runner.history.gitbranch``) and its remote: here, so that the CLI's
# parser shows them without importing the git code.
BRANCH = "memsla-history"
REMOTE = "origin"

__all__ = ["BRANCH", "REMOTE", "record_check"]
