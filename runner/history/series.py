"""Series: the store's points of one (scenario, case, metric) in commit order, split into
segments wherever the environment fingerprint changes, so that no two environments are ever
mixed in one series. Each segment says why it began."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from runner.history.model import Environment, Point


@dataclass
class Series:
    """One segment of a metric's history: points of one environment, in commit order."""

    scenario: str
    case: str
    metric: str
    environment: str  # the fingerprint every point shares
    points: list[Point] = field(default_factory=list)
    # why the segment began: "" for the first; else the fields that changed from the previous
    # segment's environment ("limit 268435456 -> 536870912"), or the fingerprints where the
    # environments are not known
    broke: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str]:
        return self.scenario, self.case, self.metric

    @property
    def values(self) -> list[list[float]]:
        """Every point's raw values (every repeat), in commit order: the detector's input."""
        return [list(p.values) for p in self.points]

    @property
    def medians(self) -> list[float]:
        return [p.median for p in self.points]

    @property
    def commits(self) -> list[str | None]:
        return [p.commit.sha if p.commit else None for p in self.points]


def series(points: Iterable[Point],
           environments: Mapping[str, Environment] | None = None) -> list[Series]:
    """Per (scenario, case, metric) in first-seen order, its points split into segments at
    every change of environment fingerprint. ``points`` must be in commit order (the store's
    ``points`` returns them so); ``environments`` (the store's) lets each break name the
    fields that changed."""
    grouped: dict[tuple[str, str, str], list[Point]] = {}
    for point in points:
        grouped.setdefault((point.scenario, point.case, point.metric), []).append(point)
    found: list[Series] = []
    for (scenario, case, metric), members in grouped.items():
        current: Series | None = None
        for point in members:
            if current is None or point.environment != current.environment:
                broke = [] if current is None else _why(current.environment, point.environment,
                                                        environments)
                current = Series(scenario, case, metric, point.environment, broke=broke)
                found.append(current)
            current.points.append(point)
    return found


def _why(before: str, after: str, environments: Mapping[str, Environment] | None) -> list[str]:
    known = environments or {}
    if before in known and after in known:
        changed = known[before].differences(known[after])
        if changed:
            return changed
    return [f"environment {before} -> {after}"]
