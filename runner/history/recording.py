"""Recording a judged check into the history store: the ``--history URL`` flag of
``runner check`` and ``runner merge`` (default ``$MEMSLA_HISTORY``), and the exit code it
leaves: a store that cannot be opened or written is exit 3, never a silent pass. Also
``runner check``'s flags for the regression rules (``--history-base``,
``--fail-on-regression``), whose base ``runner.history.base`` loads. This module imports no
store, series or judging module: a check that names no history imports only it."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from runner.errors import EXIT_HOST, EXIT_INTERRUPTED, EXIT_OK, HistoryError, MemslaError

if TYPE_CHECKING:
    from runner.history.model import Requirements
    from runner.results import Results

ENV = "MEMSLA_HISTORY"


def add_history_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--history", metavar="URL", default=os.environ.get(ENV) or None,
                        help="record the results in this history store: a file, "
                             "sqlite:///PATH or postgresql://... (default: $MEMSLA_HISTORY)")


def add_regression_arguments(parser: argparse.ArgumentParser) -> None:
    """``runner check``'s flags for the regression rules (with ``--history URL``)."""
    parser.add_argument("--history-base", metavar="BRANCH",
                        help="judge regression(M) rules against this branch's recent history "
                             "(default: $GITHUB_BASE_REF on a pull request, else main, else "
                             "the store's most recorded branch)")
    parser.add_argument("--fail-on-regression", action="store_true",
                        help="judge regression(M) < 10%% on every recorded metric of every "
                             "case against --history (fails only where significant)")


def check_history(args: argparse.Namespace) -> None:
    """Open the asked-for store once before anything is measured: a bad URL or a foreign,
    corrupt or newer store fails now (exit 3), not after a long check."""
    url = getattr(args, "history", None)
    if url:
        from runner.history.store import open_store

        open_store(url).close()


def requirements_of(sla_file: Path) -> dict[str, Requirements]:
    """What each scenario runs with (interpreter, requirements, image), read from the SLA
    file; empty where it cannot be read any more (the environment then says less)."""
    from runner.history.model import Requirements
    from runner.slafile.loader import load_suite

    try:
        suite = load_suite(sla_file)
    except (MemslaError, OSError, ValueError):
        return {}
    found = {}
    for name, scenario in suite.scenarios.items():
        settings = suite.settings_for(scenario)
        found[name] = Requirements(python=scenario.python,
                                   requirements=list(scenario.requirements),
                                   image=scenario.dockerfile or settings.image)
    return found


def record_check(results: Results, url: str, folder: Path | None = None) -> str:
    """Record judged results into the store at ``url``, with the commit checked out in
    ``folder`` (default: the SLA file's folder). Returns the check id; HistoryError when the
    store cannot take it."""
    from runner.history.commit import commit_of
    from runner.history.store import open_store

    sla_file = Path(results.sla_file)
    commit = commit_of(folder or (sla_file.parent if str(sla_file.parent) else Path.cwd()))
    settings = requirements_of(sla_file) if sla_file.is_file() else {}
    with open_store(url) as store:
        return store.record(results, commit, settings)


def record_after(results: Results, args: argparse.Namespace, code: int,
                 say: Callable[[str], object] = print) -> int:
    """After a judged check: record it where ``--history`` says, and return the exit code
    the command ends with: ``code``, or 3 where recording failed after a pass."""
    url = getattr(args, "history", None)
    if not url or code == EXIT_INTERRUPTED or results.status in ("running", "interrupted"):
        return code
    if results.status == "measured":
        say("history: a shard is not recorded; runner merge records the merged check")
        return code
    try:
        check_id = record_check(results, url)
    except HistoryError as exc:
        print(f"runner: error: {exc}", file=sys.stderr)
        return EXIT_HOST if code == EXIT_OK else code
    say(f"history: recorded check {check_id[:12]}")
    return code
