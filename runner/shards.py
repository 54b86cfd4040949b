"""Shards: ``runner check --shard K/N`` measures a deterministic share of a plan, so that N
machines measure one SLA file together and ``runner merge`` joins their results.

The split is a longest-processing-time greedy over the cases' expected costs: the dearest case
first, each to the shard with the least cost so far (ties: the lower shard). Without earlier
results every case costs the same and the split is round-robin in plan order. With them
(``--shard-costs``), a case costs what its runs took there; a case they do not hold costs the
median of those that they do. Every shard computes the same split from the same inputs.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping, Sequence

from runner.errors import UsageError
from runner.plan import CasePlan
from runner.results import Results

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(text: str) -> tuple[int, int]:
    """ "2/3" -> (2, 3): the second of three shards, counted from 1."""
    match = _SHARD.match(text)
    if match is None:
        raise UsageError(f"--shard takes K/N, e.g. 1/3 (the first of three shards), not {text!r}")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise UsageError(f"--shard {text}: K must be between 1 and N (N at least 1)")
    return index, count


def case_costs(previous: Results) -> dict[str, float]:
    """Each case's cost in ``previous``: the wall time of all its runs, in seconds."""
    return {case.label: sum(run.duration for run in case.runs) for case in previous.cases
            if case.runs}


def split(plans: Sequence[CasePlan], count: int,
          costs: Mapping[str, float] | None = None) -> list[list[int]]:
    """The plan's case indices of each shard, each list in plan order."""
    known = [costs[p.label] for p in plans if costs and p.label in costs]
    fallback = statistics.median(known) if known else 1.0
    cost = [(costs or {}).get(p.label, fallback) for p in plans]
    loads = [0.0] * count
    shares: list[list[int]] = [[] for _ in range(count)]
    for index in sorted(range(len(plans)), key=lambda i: (-cost[i], i)):
        shard = min(range(count), key=lambda k: (loads[k], k))
        loads[shard] += cost[index]
        shares[shard].append(index)
    return [sorted(share) for share in shares]


def select(plans: Sequence[CasePlan], index: int, count: int,
           costs: Mapping[str, float] | None = None) -> list[CasePlan]:
    """Shard ``index`` (from 1) of ``count``: its cases, in plan order."""
    return [plans[i] for i in split(plans, count, costs)[index - 1]]
