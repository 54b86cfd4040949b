"""The base branch's history a check is compared with: the base window (``window_of``, the one
window of both the regression rule and "Memory over time": per case and metric, the raw values
of the base branch's most recent commits in the case's own environment, from the newest change
point on, accepted or detected); the windows the regression rules are judged against
(``HistoryBase``, read from the store once the cases are measured); the base branch chosen by
default; and what ``runner check``'s flags (``--history-base``, ``--fail-on-regression``,
defined in ``runner.history.recording``) load (``base_loader``)."""

from __future__ import annotations

import argparse
import os
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from runner.errors import HistoryError, UsageError
from runner.metrics import DEFAULT_COMMITS

if TYPE_CHECKING:  # imported where used: runner check's start-up stays light
    from runner.history.model import Requirements
    from runner.history.series import Series
    from runner.history.store import Store
    from runner.judging.history_base import BaseWindow, HistoryBase
    from runner.results import Results
    from runner.slafile.model import Suite


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


def base_segment(segments: list[Series], environment: str,
                 exclude: str | None = None) -> Series | None:
    """The newest segment of ``environment`` (None where there is none), without the points
    of commit ``exclude`` (the commit being checked is never its own base)."""
    mine = [s for s in segments if s.environment == environment]
    if not mine:
        return None
    newest = mine[-1]
    return replace(newest, points=[p for p in newest.points
                                   if not (p.commit and p.commit.sha == exclude)])


def window_of(segments: list[Series], environment: str, accepted: Collection[str],
              commits: int = DEFAULT_COMMITS, exclude: str | None = None) -> BaseWindow:
    """The base window, the one both the regression rule and "Memory over time" compare with:
    the last ``commits`` commits of the newest segment of ``environment`` (several checks of
    one commit are one commit), from that segment's newest change point on, accepted (a commit
    in ``accepted``) or detected (``segment_shifts``), so that a window never mixes the levels
    either side of a shift; without commit ``exclude``. ``since`` names the change point where
    it cuts the window short."""
    from runner.history.detection import segment_shifts, series_points
    from runner.judging.history_base import BaseWindow

    segment = base_segment(segments, environment, exclude)
    if segment is None:
        return BaseWindow(values=(), commits=0)
    merged, _ = series_points(segment)
    marks: list[tuple[int, Literal["accepted", "detected"]]] = [
        (s.index, "accepted" if s.accepted else "detected")
        for s in segment_shifts(segment, accepted)]
    marks += [(i, "accepted") for i, p in enumerate(merged) if i and p.commit in accepted]
    start, why = max(marks, key=lambda mark: mark[0]) if marks else (0, None)
    kept = merged[start:][-commits:]
    cut = start > 0 and len(kept) < min(commits, len(merged))
    return BaseWindow(values=tuple(v for p in kept for v in p.values), commits=len(kept),
                      since=merged[start].commit if cut else None,
                      since_kind=why if cut else None)


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
