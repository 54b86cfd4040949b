"""The change points of the store's series, found in one place (``segment_shifts``): for
``runner history detect``'s findings (``Detection``: the level shifts of every main-line series,
and where and why a series broke, as one typed model that the text reporter and ``--json``
share), the history page (``history_findings``) and the base window of the regression rule and
of "Memory over time" (``runner.history.base.window_of``). Several checks of one commit are one
point of a series (all their repeats); a shift at an accepted commit is listed, marked
accepted, and is no alert."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from runner.history.model import Point
from runner.history.series import Series, series
from runner.history.store import Store
from runner.judging.changes import MIN_SIZE, SeriesPoint, change_points, series_noise
from runner.metrics import HISTORIED


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Shift(_Model):
    """A level shift: ``commit`` (at ``index`` of the segment's commits, ``series_points``) is
    the first commit of the new level. Every memsla metric is one where more is worse, so an
    increase is a regression. ``accepted``: the store accepted it (its new level is the
    reference), so it is no alert."""

    scenario: str
    case: str
    metric: str
    environment: str
    kind: Literal["regression", "improvement"]
    commit: str  # the full sha (a check's id where the check ran outside git)
    subject: str
    before: float  # median level before and after
    after: float
    change: float  # after - before
    relative: float  # change / |before|
    p_value: float
    test: str
    noise: float  # the series' relative noise (sigma / median)
    commits_before: int
    commits_after: int
    index: int  # its position in the segment's commits (several checks of one commit: one)
    accepted: bool = False

    @property
    def short(self) -> str:
        return self.commit[:10]


class Break(_Model):
    """Where a series broke: the environment changed at ``commit``; its segments are never
    compared."""

    scenario: str
    case: str
    metric: str
    commit: str | None
    environment: str
    why: list[str]


class Detection(_Model):
    """Every finding of one detection over a store."""

    store: str
    branch: str | None
    series: int = 0  # (scenario, case, metric) series looked at
    segments: int = 0  # their environment segments
    too_short: int = 0  # segments with too few commits for any shift to be found
    shifts: list[Shift] = Field(default_factory=list)
    breaks: list[Break] = Field(default_factory=list)

    @property
    def alerts(self) -> list[Shift]:
        """The shifts not accepted."""
        return [s for s in self.shifts if not s.accepted]

    @property
    def regressions(self) -> list[Shift]:
        """The regressions not accepted."""
        return [s for s in self.alerts if s.kind == "regression"]


@dataclass
class SeriesFindings:
    """One segment of a series (one environment) and the shifts found on it (the history
    page's input)."""

    series: Series
    changes: list[Shift] = field(default_factory=list)


def series_points(segment: Series) -> tuple[list[SeriesPoint], list[Point]]:
    """The segment's points merged per commit (several checks of one commit are one point of
    the series, all their repeats), each with the first stored point of its commit."""
    merged: dict[str, list[float]] = {}
    first: dict[str, Point] = {}
    for point in segment.points:
        if not point.values:
            continue
        key = point.commit.sha if point.commit else point.check_id
        merged.setdefault(key, []).extend(point.values)
        first.setdefault(key, point)
    return ([SeriesPoint(key, tuple(values)) for key, values in merged.items()],
            list(first.values()))


def segment_shifts(segment: Series, accepted: Collection[str] = (), *,
                   min_size: int = MIN_SIZE) -> list[Shift]:
    """The level shifts of one environment segment, in series order: those the detector
    alerts (the series cut at the accepted commits: ``change_points(points,
    accepted=...)``), and the shifts at accepted commits (found on the uncut series), marked
    accepted. Fewer than ``2 * min_size`` commits: none."""
    merged, firsts = series_points(segment)
    if len(merged) < 2 * min_size:
        return []
    alerts = change_points(merged, accepted=accepted, min_size=min_size)
    known = {c.commit for c in alerts}
    settled = [c for c in change_points(merged, min_size=min_size)
               if c.commit in accepted and c.commit not in known]
    noise = series_noise(merged).relative
    found = []
    for shift in sorted([*alerts, *settled], key=lambda c: c.index):
        point = firsts[shift.index]
        found.append(Shift(
            scenario=segment.scenario, case=segment.case, metric=segment.metric,
            environment=segment.environment,
            kind="regression" if shift.change > 0 else "improvement",
            commit=shift.commit, subject=point.commit.subject if point.commit else "",
            before=shift.before, after=shift.after, change=shift.change,
            relative=shift.relative, p_value=shift.p_value, test=shift.test, noise=noise,
            commits_before=shift.n_before, commits_after=shift.n_after, index=shift.index,
            accepted=shift.commit in accepted))
    return found


def accepted_commits(store: Store, scenario: str | None = None, case: str | None = None,
                     metric: str | None = None) -> dict[tuple[str, str, str], set[str]]:
    """The store's accepted commits per (scenario, case, metric)."""
    accepted: dict[tuple[str, str, str], set[str]] = {}
    for acceptance in store.accepted(scenario, case, metric):
        accepted.setdefault((acceptance.scenario, acceptance.case, acceptance.metric),
                            set()).add(acceptance.sha)
    return accepted


def detect(store: Store, *, branch: str | None, scenario: str | None = None,
           case: str | None = None, metric: str | None = None,
           min_size: int | None = None) -> Detection:
    """The level shifts of every series of ``branch`` (its history metrics only: completion
    facts are no level), one environment segment at a time; the accepted ones are listed,
    marked accepted."""
    size = min_size or MIN_SIZE
    points = [p for p in store.points(scenario=scenario, case=case, metric=metric,
                                      branch=branch) if p.metric in HISTORIED]
    found = Detection(store=store.where, branch=branch)
    segments = series(points, store.environments())
    found.series = len({s.key for s in segments})
    found.segments = len(segments)
    accepted = accepted_commits(store, scenario, case, metric)
    for segment in segments:
        if segment.broke:
            first = segment.points[0].commit
            found.breaks.append(Break(scenario=segment.scenario, case=segment.case,
                                      metric=segment.metric,
                                      commit=first.sha if first else None,
                                      environment=segment.environment, why=segment.broke))
        if len(series_points(segment)[0]) < 2 * size:
            found.too_short += 1
            continue
        found.shifts += segment_shifts(segment, accepted.get(segment.key, set()),
                                       min_size=size)
    return found


def history_findings(store: Store, *, scenarios: Collection[str] = (),
                     metrics: Collection[str] = (), branch: str | None = None,
                     ) -> list[SeriesFindings]:
    """Every series of the store (only these scenarios, metrics and branch where given), one
    entry per environment segment, with its shifts (``segment_shifts``)."""
    points = [p for p in store.points(branch=branch)
              if (not scenarios or p.scenario in scenarios or p.case in scenarios)
              and (not metrics or p.metric in metrics)]
    accepted = accepted_commits(store)
    return [SeriesFindings(segment, segment_shifts(segment, accepted.get(segment.key, set())))
            for segment in series(points, store.environments())]


def resolve_commit(store: Store, scenario: str, case: str, metric: str, commit: str) -> str:
    """The full sha of ``commit`` (a sha or its start) among the series' commits; ValueError
    when none or several match, or the series is not in the store."""
    points = store.points(scenario=scenario, case=case, metric=metric)
    if not points:
        raise ValueError(f"no recorded {metric} for {case} of scenario {scenario} in "
                         f"{store.where}")
    shas = {p.commit.sha for p in points if p.commit}
    matches = sorted(s for s in shas if s.startswith(commit.lower()))
    if len(matches) != 1:
        raise ValueError(f"{commit!r} " + ("is no commit of the series" if not matches else
                                           f"matches {len(matches)} commits: give more digits"))
    return matches[0]
