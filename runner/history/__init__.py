"""The history of checks: a store of every recorded check's raw values (SQLite or PostgreSQL),
its series per case and metric, and its copy on a git branch. See docs/history.md."""

from __future__ import annotations

from runner.history.recording import record_check

__all__ = ["record_check"]
