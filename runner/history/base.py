"""The base branch's history a check's regression rules are judged against: per case and metric,
the raw values of the base branch's most recent commits in the case's own environment, from
the newest accepted shift on (``HistoryBase``, read from the store once the cases are
measured); the base branch chosen by default; and the ``runner check`` flags that ask for it
(``--history-base``, ``--fail-on-regression``)."""

from __future__ import annotations

import argparse
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from runner.errors import HistoryError, UsageError

if TYPE_CHECKING:  # imported where used: runner check's start-up stays light
    from runner.history.model import Point, Requirements
    from runner.history.series import Series
    from runner.history.store import Store
    from runner.judging.history_base import BaseWindow, HistoryBase
    from runner.results import Results
    from runner.slafile.model import Suite

DEFAULT_COMMITS = 20  # as runner.judging.history_base's


def add_regression_arguments(parser: argparse.ArgumentParser) -> None:
    """``runner check``'s flags for the regression rules (with ``--history URL``)."""
    parser.add_argument("--history-base", metavar="BRANCH",
                        help="judge regression(M) rules against this branch's recent history "
                             "(default: $GITHUB_BASE_REF on a pull request, else main, else "
                             "the store's most recorded branch)")
    parser.add_argument("--fail-on-regression", action="store_true",
                        help="judge regression(M) < 10%% on every recorded metric of every "
                             "case against --history (fails only where significant)")


def default_branch(store: Store) -> str:
    """The base branch: ``$GITHUB_BASE_REF`` (a pull request's base), else ``main`` where the
    store has checks of it, else the branch the store has the most checks of (``main`` for an
    empty store)."""
    named = os.environ.get("GITHUB_BASE_REF")
    if named:
        return named
    counts = Counter(c.commit.branch for c in store.checks() if c.commit and c.commit.branch)
    if "main" in counts or not counts:
        return "main"
    return counts.most_common(1)[0][0]


def window_of(segments: list[Series], environment: str, accepted: set[str],
              commits: int = DEFAULT_COMMITS, exclude: str | None = None) -> BaseWindow:
    """The last ``commits`` commits of the newest segment of ``environment``, from the newest
    accepted commit on (the accepted level is the reference), without commit ``exclude``."""
    from runner.judging.history_base import BaseWindow
    mine = [s for s in segments if s.environment == environment]
    if not mine:
        return BaseWindow(values=(), commits=0)
    points = [p for p in mine[-1].points if not (p.commit and p.commit.sha == exclude)]
    since = None
    marks = [i for i, p in enumerate(points) if p.commit and p.commit.sha in accepted]
    if marks:  # the newest accepted level is the reference
        points = points[marks[-1]:]
        since = points[0].commit.sha if points[0].commit else None
    by_commit: dict[str, list[Point]] = {}
    for point in points:
        by_commit.setdefault(point.commit.sha if point.commit else point.check_id,
                             []).append(point)
    kept = list(by_commit.values())[-commits:]
    values = tuple(v for group in kept for p in group for v in p.values)
    return BaseWindow(values=values, commits=len(kept), since=since)


def load_base(store: Store, results: Results, branch: str, *,
              settings: dict[str, Requirements] | None = None,
              commits: int = DEFAULT_COMMITS, head: str | None = None,
              every_metric: float | None = None) -> HistoryBase:
    """Every measured case's base window per history metric, read from ``store``: the
    points of ``branch``, split by environment, in the case's own environment; ``head`` (the
    commit measured) is left out of its own base."""
    from runner.history.model import environment_of
    from runner.history.series import series
    from runner.judging.history_base import BaseWindow, HistoryBase
    from runner.metrics import HISTORIED

    base = HistoryBase(branch=branch, store=store.where, every_metric=every_metric,
                       commits=commits)
    environments = store.environments()
    for case in results.cases:
        if case.error is not None:
            continue
        fingerprint = environment_of(results, case, (settings or {}).get(case.scenario))
        points = store.points(scenario=case.scenario, case=case.label, branch=branch)
        environments.setdefault(fingerprint.fingerprint, fingerprint)
        by_metric: dict[str, list[Series]] = {}
        for segment in series([p for p in points if p.metric in HISTORIED], environments):
            by_metric.setdefault(segment.metric, []).append(segment)
        for metric in HISTORIED:  # the case's own metrics are not computed yet
            accepted = {a.sha for a in store.accepted(case.scenario, case.label, metric)}
            window = window_of(by_metric.get(metric, []), fingerprint.fingerprint, accepted,
                               commits, head)
            if not window.values and by_metric.get(metric):
                last = environments.get(by_metric[metric][-1].environment)
                if last is not None:
                    changed = last.differences(fingerprint)
                    window = BaseWindow((), 0, note=(
                        f"{sum(len(p.values) for s in by_metric[metric] for p in s.points)} "
                        "values in another environment, never mixed: "
                        + "; ".join(changed or ["another environment"])))
            base.windows[(case.scenario, case.label, metric)] = window
    return base


def wants_history(suite: Suite, args: argparse.Namespace) -> bool:
    """Whether the check judges against the history: a regression rule, or the flag."""
    from runner.metrics import Source

    rules = [*suite.slas, *(r for s in suite.scenarios.values() for r in s.slas)]
    return bool(getattr(args, "fail_on_regression", False)) or any(
        r.metric.source is Source.HISTORY for r in rules)


def base_loader(args: argparse.Namespace, suite: Suite, sla_file: Path
                ) -> Callable[[Results], HistoryBase] | None:
    """What ``Session.history`` calls once the cases are measured, for ``runner check``'s
    flags; None where nothing asks for the history. A store that cannot be read gives a
    ``HistoryBase`` with its ``problem``: the rules are then not judged (exit 3)."""
    url = getattr(args, "history", None)
    flag = bool(getattr(args, "fail_on_regression", False))
    if flag and not url:
        raise UsageError("--fail-on-regression judges against a history store: give "
                         "--history URL (or set $MEMSLA_HISTORY)")
    if not url or not wants_history(suite, args):
        return None

    def load(results: Results) -> HistoryBase:
        from runner.history.commit import commit_of
        from runner.history.recording import requirements_of
        from runner.history.store import open_store
        from runner.judging.history_base import DEFAULT_BOUND, HistoryBase

        branch = getattr(args, "history_base", None) or "main"
        try:
            with open_store(url, create=False) as store:
                branch = getattr(args, "history_base", None) or default_branch(store)
                head = commit_of(sla_file.resolve().parent)
                return load_base(store, results, branch, settings=requirements_of(sla_file),
                                 head=head.sha if head else None,
                                 every_metric=DEFAULT_BOUND if flag else None)
        except HistoryError as exc:
            return HistoryBase(branch=branch, store=str(url), problem=str(exc),
                               every_metric=DEFAULT_BOUND if flag else None)

    return load
