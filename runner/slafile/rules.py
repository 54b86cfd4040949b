"""SLA rules: ``peak < 2GiB`` read into a metric, a comparison and a bound in base units."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from runner.metrics import MetricRef, Source, is_across_term, parse_across, parse_metric, pick
from runner.units import Kind, UnitError, clip, parse

Op = Literal["<", "<=", ">", ">=", "==", "!="]
Stat = Literal["worst", "max", "min", "median", "mean"]
STATS: tuple[Stat, ...] = ("worst", "max", "min", "median", "mean")

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
}
# The first operator after the metric's first character; two-character ones win at a position.
# Searched, not matched with ``\s*(.+?)\s*`` around it: that backtracks quadratically on long
# runs of spaces ('a', 100 KB of spaces, 'b' took 70 s).
_OP = re.compile(r"<=|>=|==|!=|<|>")


@dataclass(frozen=True)
class Rule:
    """One SLA: ``metric op bound``, optionally scoped to some matrix values."""

    text: str
    metric: MetricRef
    op: Op
    bound: float
    stat: Stat = "worst"
    when: Mapping[str, tuple[int | str, ...]] = field(default_factory=dict)
    file: str | None = None
    line: int | None = None
    # a ratio of two steps' figures, ``step(a).peak / step(b).peak < 0.5``: metric / over
    over: MetricRef | None = None

    @property
    def metric_key(self) -> str:
        """The metric as the rule writes it (a ratio: both sides)."""
        return self.metric.key if self.over is None else f"{self.metric.key} / {self.over.key}"

    def holds(self, value: float) -> bool:
        return OPERATORS[self.op](value, self.bound)

    def applies_to(self, params: Mapping[str, int | str]) -> bool:
        return all(params.get(key) in allowed for key, allowed in self.when.items())

    @property
    def resolved_stat(self) -> Literal["max", "min", "median", "mean", "worst"]:
        """The statistic across repeats: 'worst' means max for upper bounds, min for lower."""
        if self.stat != "worst":
            return self.stat
        if self.op in ("<", "<="):
            return "max"
        if self.op in (">", ">="):
            return "min"
        return "worst"

    def pick(self, values: list[float]) -> float:
        """The value across repeats this rule judges."""
        stat = self.resolved_stat
        if stat == "worst":
            return max(values, key=self._badness)
        return pick(values, stat)

    def _badness(self, value: float) -> tuple[bool, float]:
        # Failing values beat passing ones; among failing the farthest from the bound is worst,
        # among passing the nearest (for '!=' every passing value is some distance away).
        distance = abs(value - self.bound)
        return (not self.holds(value), distance if not self.holds(value) else -distance)


def parse_rule(text: str, *, stat: Stat = "worst",
               when: Mapping[str, tuple[int | str, ...]] | None = None) -> Rule:
    """Parse ``'peak < 2GiB'``; raises ValueError with a message fit for the user."""
    stripped = text.strip()
    match = _OP.search(stripped, 1)
    metric_text = stripped[:match.start()].strip() if match else ""
    bound_text = stripped[match.end():].strip() if match else ""
    if match is None or not metric_text or not bound_text:
        raise ValueError(
            f"cannot read rule {clip(stripped)}; write METRIC OP VALUE, e.g. 'peak < 2GiB' "
            "(OP is one of < <= > >= == !=)")
    op: Op = match.group()  # type: ignore[assignment]
    if "/" in metric_text and metric_text.startswith("step("):
        return _step_ratio(stripped, metric_text, op, bound_text, stat, when)
    if is_across_term(metric_text) and is_across_term(bound_text):  # peak(a=1) <= peak(a=2)
        across = parse_across(metric_text, bound_text)
        assert across is not None
        return Rule(text=stripped, metric=across, op=op, bound=0.0, stat=stat,
                    when=dict(when or {}))
    metric = parse_metric(metric_text)
    try:
        bound = parse(metric.kind, bound_text)
    except UnitError as exc:
        raise ValueError(f"{metric.key} is {_describe(metric.kind)}: {exc}") from None
    if metric.source is Source.HISTORY and (op not in ("<", "<=") or bound <= 0):
        raise ValueError(f"{clip(stripped)}: a regression rule bounds the growth a change may "
                         f"have, e.g. '{metric.key} < 10%'")
    return Rule(text=stripped, metric=metric, op=op, bound=bound, stat=stat,
                when=dict(when or {}))



def _describe(kind: Kind) -> str:
    return {
        Kind.BYTES: "a size (e.g. 512MiB, 2GiB, 1.5GB)",
        Kind.SECONDS: "a duration (e.g. 500ms, 120s, 10min)",
        Kind.COUNT: "a whole number",
        Kind.RATIO: "a ratio (e.g. 10%)",
        Kind.NUMBER: "a plain number",
    }[kind]


def _step_ratio(text: str, metric_text: str, op: str, bound_text: str, stat: Stat,
                when: Mapping[str, tuple[int | str, ...]] | None) -> Rule:
    """``step(incremental).peak / step(full).peak < 0.5``: two steps' figures of the same
    unit, divided in each run; the bound is a plain number or a percentage."""
    top_text, _, bottom_text = metric_text.partition("/")
    top, bottom = parse_metric(top_text), parse_metric(bottom_text)
    if top.step is None or bottom.step is None:
        raise ValueError(f"{clip(text)}: a ratio divides two steps' figures, e.g. "
                         "'step(incremental).peak / step(full).peak < 0.5'")
    if top.kind != bottom.kind:
        raise ValueError(f"{clip(text)}: {top.key} and {bottom.key} are not in the same unit")
    if top.source != bottom.source:
        raise ValueError(f"{clip(text)}: {top.key} and {bottom.key} come from different runs "
                         "(a heap figure from the traced run, the others from timed runs)")
    try:
        bound = parse(Kind.RATIO, bound_text)
    except UnitError as exc:
        raise ValueError(f"a ratio is a plain number or a percentage: {exc}") from None
    return Rule(text=text, metric=top, op=op, bound=bound,  # type: ignore[arg-type]
                stat=stat, when=dict(when or {}), over=bottom)
