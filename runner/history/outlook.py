"""What the history says about a check, for people to see: its key metrics against the base
line's recent checks (``HistoryOutlook``, "Memory over time") for the markdown summary and the
pull-request comment, with the same base window the regression rule judges
(``runner.history.base.window_of``) and the change points on that line
(``runner.history.detection.segment_shifts``). Reads the store once, here; reports take the
typed results."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from runner.history.base import base_segment, window_of
from runner.history.detection import accepted_commits, segment_shifts
from runner.history.model import Environment, Point, environment_of
from runner.history.series import Series, series
from runner.metrics import DEFAULT_COMMITS, KEY_METRICS
from runner.results import HistoryChange, HistoryFigure, HistoryOutlook, Results

if TYPE_CHECKING:
    from runner.history.model import Requirements
    from runner.history.store import Store


def history_outlook(store: Store, results: Results, *, branch: str | None = None,
                    commits: int = DEFAULT_COMMITS, where: str = "", head: str | None = None,
                    settings: dict[str, Requirements] | None = None) -> HistoryOutlook:
    """Each case's key metrics against the base window (``window_of``: the base line's last
    ``commits`` commits measured in the same environment, from its newest change point on,
    without commit ``head``; ``branch``: the base line, None: every check), and the change
    points on that line. The results themselves are not in the store yet."""
    environments = store.environments()
    accepted = accepted_commits(store)
    by_key: dict[tuple[str, str, str], list[Point]] = {}
    for point in store.points(branch=branch):
        if point.metric in KEY_METRICS:
            by_key.setdefault((point.scenario, point.case, point.metric), []).append(point)
    outlook = HistoryOutlook(store=where, branch=branch, window=commits,
                             checks=len(store.checks(None)))
    for case in results.cases:
        environment = environment_of(results, case, (settings or {}).get(case.scenario))
        for metric in KEY_METRICS:
            stats = case.metrics.get(metric)
            if stats is None or not stats.values:
                continue
            figure = HistoryFigure(case=case.label, metric=metric, head=stats.median,
                                   head_noise=stats.noise)
            key = (case.scenario, case.label, metric)
            segments = series(by_key.get(key, []), environments)
            _compare(figure, segments, environment, environments, commits,
                     accepted.get(key, set()), head)
            outlook.figures.append(figure)
    return outlook


def _compare(figure: HistoryFigure, segments: Sequence[Series], environment: Environment,
             environments: dict[str, Environment], commits: int, accepted: set[str],
             head: str | None) -> None:
    from runner.judging.changes import noise

    fingerprint = environment.fingerprint
    if segments and segments[-1].environment != fingerprint:
        last = environments.get(segments[-1].environment)
        figure.environment_changed = (last.differences(environment) if last else []) or [
            f"environment {segments[-1].environment} -> {fingerprint}"]
    segment = base_segment(list(segments), fingerprint, head)
    if segment is None:
        return
    figure.changes = [HistoryChange(commit=s.commit, subject=s.subject, before=s.before,
                                    after=s.after, relative=s.relative, p_value=s.p_value,
                                    accepted=s.accepted)
                      for s in segment_shifts(segment, accepted)]
    window = window_of(list(segments), fingerprint, accepted, commits, head)
    if not window.values:
        return
    level = noise(window.values)  # as the regression rule's compare_to_base has it
    figure.base = level.median
    figure.base_noise = level.relative
    figure.base_commits = window.commits
    figure.base_since = window.since
    if figure.base:
        figure.relative = (figure.head - figure.base) / abs(figure.base)


def attach_history(results: Results, args: argparse.Namespace,
                   say: Callable[[str], object] = print) -> None:
    """``runner check --history URL`` (and merge): the outlook against the store, attached to
    the results before the reports are written. The base line is the one the regression rule
    judges against (``runner.history.base.default_branch``: ``--history-base`` where given,
    else ``$GITHUB_BASE_REF``, else ``main``...). The ``--json`` file, written while measuring,
    is written again with it. A store that cannot be read raises HistoryError (exit 3)."""
    url = getattr(args, "history", None)
    if not url or results.status in ("running", "interrupted", "measured"):
        return
    from runner.history.commit import commit_of
    from runner.history.recording import requirements_of
    from runner.history.store import open_store, redacted

    sla_file = Path(results.sla_file)
    commit = commit_of(sla_file.parent if str(sla_file.parent) else Path.cwd())
    from runner.history.base import default_branch

    settings = requirements_of(sla_file) if sla_file.is_file() else {}
    with open_store(url) as store:
        branch = getattr(args, "history_base", None) or default_branch(store)
        results.history = history_outlook(store, results, branch=branch,
                                          where=redacted(str(url)), settings=settings,
                                          head=commit.sha if commit else None)
    json_path = getattr(args, "json", None)
    if json_path:  # written while measuring: now with the outlook
        results.write(Path(json_path))
    checks = results.history.checks
    say(f"history: compared with {checks} recorded check{'' if checks == 1 else 's'}"
        + (f" of {branch}" if branch else ""))
