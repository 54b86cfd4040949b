"""What the history says about a metric, for people to see: each series' change points (the
detector's, with the accepted ones marked) for the history page, and a check's key metrics
against the base line's recent checks (``HistoryOutlook``) for the markdown summary and the
pull-request comment. Reads the store once, here; reports take the typed results."""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from runner.history.model import Environment, Point, environment_of
from runner.history.series import Series, series
from runner.metrics import KEY_METRICS
from runner.results import HistoryChange, HistoryFigure, HistoryOutlook, Results

if TYPE_CHECKING:
    from runner.history.model import Requirements
    from runner.history.store import Store
    from runner.judging.changes import ChangePoint, SeriesPoint

WINDOW = 10  # the base line's most recent commits a check is compared with


@dataclass(frozen=True)
class MarkedChange:
    """A change point the detector names, and whether the store accepted it (its new level is
    the reference, so no alert)."""

    point: ChangePoint
    accepted: bool = False
    subject: str = ""


@dataclass
class SeriesFindings:
    """One segment of a series (one environment) and the change points found on it."""

    series: Series
    changes: list[MarkedChange] = field(default_factory=list)


def detector_points(segment: Series) -> list[SeriesPoint]:
    """The detector's input: one point per check, named by its commit (or check, outside
    git), with every repeat."""
    from runner.judging.changes import SeriesPoint

    return [SeriesPoint(p.commit.sha if p.commit else p.check_id, tuple(p.values))
            for p in segment.points if p.values]


def find_changes(segment: Series, accepted: Collection[str] = ()) -> list[MarkedChange]:
    """The change points detect names on the segment (the series cut at accepted commits),
    and the accepted shifts, marked as such, in commit order."""
    from runner.judging.changes import change_points

    points = detector_points(segment)
    subjects = {p.commit.sha: p.commit.subject for p in segment.points if p.commit}
    alerts = change_points(points, accepted=accepted)
    known = {c.commit for c in alerts}
    settled = [c for c in change_points(points) if c.commit in accepted and c.commit not in known]
    found = [MarkedChange(c, c.commit in accepted, subjects.get(c.commit, ""))
             for c in [*alerts, *settled]]
    return sorted(found, key=lambda m: m.point.index)


def history_findings(store: Store, *, scenarios: Collection[str] = (),
                     metrics: Collection[str] = (), branch: str | None = None,
                     ) -> list[SeriesFindings]:
    """Every series of the store (only these scenarios, metrics and branch where given), one
    entry per environment segment, with its change points."""
    points = [p for p in store.points(branch=branch)
              if (not scenarios or p.scenario in scenarios or p.case in scenarios)
              and (not metrics or p.metric in metrics)]
    accepted: dict[tuple[str, str, str], set[str]] = {}
    for acceptance in store.accepted():
        key = (acceptance.scenario, acceptance.case, acceptance.metric)
        accepted.setdefault(key, set()).add(acceptance.sha)
    return [SeriesFindings(segment, find_changes(segment, accepted.get(segment.key, set())))
            for segment in series(points, store.environments())]


def history_outlook(store: Store, results: Results, *, branch: str | None = None,
                    window: int = WINDOW, where: str = "",
                    settings: dict[str, Requirements] | None = None) -> HistoryOutlook:
    """Each case's key metrics against the median of the base line's last ``window`` commits
    measured in the same environment (``branch``: the base line; None: every check), from its
    last change point on (its current level), and the change points on that line. The
    results themselves are not in the store yet."""
    environments = store.environments()
    accepted = {(a.scenario, a.case, a.metric, a.sha) for a in store.accepted()}
    by_key: dict[tuple[str, str, str], list[Point]] = {}
    for point in store.points(branch=branch):
        if point.metric in KEY_METRICS:
            by_key.setdefault((point.scenario, point.case, point.metric), []).append(point)
    outlook = HistoryOutlook(store=where, branch=branch, window=window,
                             checks=len(store.checks(None)))
    for case in results.cases:
        environment = environment_of(results, case, (settings or {}).get(case.scenario))
        for metric in KEY_METRICS:
            stats = case.metrics.get(metric)
            if stats is None or not stats.values:
                continue
            figure = HistoryFigure(case=case.label, metric=metric, head=stats.median,
                                   head_noise=stats.noise)
            segments = series(by_key.get((case.scenario, case.label, metric), []), environments)
            _compare(figure, segments, environment, environments, window,
                     {sha for s, c, m, sha in accepted
                      if (s, c, m) == (case.scenario, case.label, metric)})
            outlook.figures.append(figure)
    return outlook


def _compare(figure: HistoryFigure, segments: Sequence[Series], environment: Environment,
             environments: dict[str, Environment], window: int, accepted: set[str]) -> None:
    fingerprint = environment.fingerprint
    mine = [s for s in segments if s.environment == fingerprint]
    if segments and segments[-1].environment != fingerprint:
        last = environments.get(segments[-1].environment)
        figure.environment_changed = (last.differences(environment) if last else []) or [
            f"environment {segments[-1].environment} -> {fingerprint}"]
    if not mine:
        return
    segment = mine[-1]
    from runner.judging.changes import series_noise

    changes = find_changes(segment, accepted)
    figure.changes = [HistoryChange(commit=m.point.commit, subject=m.subject,
                                    before=m.point.before, after=m.point.after,
                                    relative=m.point.relative, p_value=m.point.p_value,
                                    accepted=m.accepted)
                      for m in changes]
    # the line's current level: never a window mixing the levels either side of a shift
    start = changes[-1].point.index if changes else 0
    recent = detector_points(segment)[start:][-window:]
    if changes and len(recent) < len(detector_points(segment)[-window:]):
        figure.base_since = changes[-1].point.commit
    figure.base = statistics.median(p.level for p in recent)
    figure.base_noise = series_noise(recent).relative
    figure.base_commits = len(dict.fromkeys(p.commit for p in recent))
    if figure.base:
        figure.relative = (figure.head - figure.base) / abs(figure.base)


def attach_history(results: Results, args: argparse.Namespace,
                   say: Callable[[str], object] = print) -> None:
    """``runner check --history URL`` (and merge): the outlook against the store, attached to
    the results before the reports are written. The base line is ``--history-base`` where
    given, else the checked commit's branch. The ``--json`` file, written while measuring,
    is written again with it. A store that cannot be read raises HistoryError (exit 3)."""
    url = getattr(args, "history", None)
    if not url or results.status in ("running", "interrupted", "measured"):
        return
    from runner.history.commit import commit_of
    from runner.history.recording import requirements_of
    from runner.history.store import _redacted, open_store

    sla_file = Path(results.sla_file)
    branch = getattr(args, "history_base", None)
    if branch is None:
        commit = commit_of(sla_file.parent if str(sla_file.parent) else Path.cwd())
        branch = commit.branch if commit else None
    settings = requirements_of(sla_file) if sla_file.is_file() else {}
    with open_store(url) as store:
        results.history = history_outlook(store, results, branch=branch,
                                          where=_redacted(str(url)), settings=settings)
    json_path = getattr(args, "json", None)
    if json_path:  # written while measuring: now with the outlook
        results.write(Path(json_path))
    checks = results.history.checks
    say(f"history: compared with {checks} recorded check{'' if checks == 1 else 's'}"
        + (f" of {branch}" if branch else ""))
