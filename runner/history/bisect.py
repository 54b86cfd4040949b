"""Bisect: the first commit of GOOD..BAD (first parents) that breaks a rule or moves a metric
by more than a given change against GOOD, in O(log n) checks.

A binary search over ``git rev-list --first-parent GOOD..BAD``. Each commit is judged from a
check of it: one the history store already holds for the same environment, else one measured
now (a clean worktree, as ``runner history backfill`` makes, and recorded). GOOD is checked
first (the reference of ``--metric``; a GOOD that already breaks the rule ends the bisect);
BAD is checked only if the search ends on it. A commit that cannot be judged (its build failed,
its check did not run, the metric is missing) is skipped as ``git bisect skip`` does: a
neighbour in the interval is tried instead.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from runner.errors import HostError, UsageError
from runner.history.backfill import (
    CheckOptions,
    CommitCheck,
    Target,
    records_by_sha,
    resolve,
    revisions,
)
from runner.history.model import CheckRecord, Commit
from runner.history.store import Store
from runner.metrics import MetricRef, parse_metric
from runner.slafile.rules import Rule, parse_rule
from runner.units import Kind, UnitError, parse, parse_ratio

Verdict = Literal["good", "bad", "skip"]


@dataclass(frozen=True)
class Change:
    """``--by``: how far a metric may move from GOOD: ``10%`` (relative) or ``20MiB``
    (absolute, in the metric's unit); ``+`` only up, ``-`` only down, no sign: either way."""

    text: str
    amount: float
    relative: bool
    direction: Literal["up", "down", "both"]

    def broken(self, reference: float, value: float) -> bool:
        delta = value - reference
        if self.relative:
            if reference == 0:
                return delta != 0
            delta /= abs(reference)
        if self.direction == "up":
            return delta > self.amount
        if self.direction == "down":
            return -delta > self.amount
        return abs(delta) > self.amount


def parse_change(text: str, kind: Kind) -> Change:
    stripped = text.strip()
    direction: Literal["up", "down", "both"] = "both"
    if stripped[:1] in "+-" and stripped:
        direction = "up" if stripped[0] == "+" else "down"
        stripped = stripped[1:].strip()
    try:
        if stripped.endswith("%"):
            return Change(text, parse_ratio(stripped), True, direction)
        return Change(text, parse(kind, stripped), False, direction)
    except UnitError as exc:
        raise UsageError(f"--by {text}: {exc}") from None


@dataclass(frozen=True)
class Criterion:
    """What makes a commit bad: a rule it breaks, or a metric moved by more than a change
    against GOOD; on every case, or on the cases of ``case`` (a label or a scenario)."""

    rule: Rule | None = None
    metric: MetricRef | None = None
    change: Change | None = None
    case: str | None = None

    @classmethod
    def of(cls, rule: str | None = None, metric: str | None = None, by: str | None = None,
           case: str | None = None) -> Criterion:
        """From the command line's words; UsageError (exit 2) for an unknown rule or metric."""
        if (rule is None) == (metric is None):
            raise UsageError("give --rule 'METRIC OP VALUE', or --metric M with --by X")
        if rule is not None:
            if by is not None:
                raise UsageError("--by goes with --metric, not --rule")
            try:
                return cls(rule=parse_rule(rule), case=case)
            except ValueError as exc:
                raise UsageError(f"--rule: {exc}") from None
        assert metric is not None
        if by is None:
            raise UsageError("--metric needs --by X (10%, or an amount such as 20MiB)")
        try:
            ref = parse_metric(metric)
        except ValueError as exc:
            raise UsageError(f"--metric: {exc}") from None
        return cls(metric=ref, change=parse_change(by, ref.kind), case=case)

    @property
    def key(self) -> str:
        if self.rule is not None:
            return self.rule.metric.key
        assert self.metric is not None
        return self.metric.key

    @property
    def text(self) -> str:
        if self.rule is not None:
            return f"breaks {self.rule.text}"
        assert self.change is not None
        return f"moves {self.key} by more than {self.change.text} against GOOD"


@dataclass
class Step:
    """One commit judged: its value (the rule's statistic, or the median), its verdict, and
    whether its check was measured now or found in the store."""

    commit: Commit
    verdict: Verdict
    value: float | None
    reference: float | None = None  # --metric: GOOD's median of the same case
    case: str | None = None  # the case the value is of
    measured: bool = False
    check_id: str | None = None
    reason: str = ""
    role: Literal["good", "bad", "probe"] = "probe"


@dataclass
class Bisection:
    """What a bisect found: the first bad commit and the last good one (None where it found
    none), each step in order, the checks measured, and why it ended."""

    criterion: Criterion
    good: Commit
    bad: Commit
    candidates: int  # commits in GOOD..BAD
    steps: list[Step] = field(default_factory=list)
    first_bad: Commit | None = None
    last_good: Commit | None = None
    between: list[Commit] = field(default_factory=list)  # not narrowed: skipped commits
    message: str = ""

    @property
    def found(self) -> bool:
        return self.first_bad is not None

    @property
    def checks_run(self) -> int:
        return sum(1 for step in self.steps if step.measured)


@dataclass(frozen=True)
class _Judged:
    verdict: Verdict
    value: float | None
    case: str | None
    reason: str = ""


def _cases(record: CheckRecord, criterion: Criterion) -> list[tuple[str, dict[str, list[float]],
                                                                     dict[str, int | str]]]:
    wanted = criterion.case
    return [(c.case, c.metrics, c.params) for c in record.cases
            if wanted is None or c.case == wanted or c.scenario == wanted]


def _unjudgeable(record: CheckRecord, criterion: Criterion) -> str:
    """Why a check says nothing about the criterion, or ""."""
    cases = _cases(record, criterion)
    if not cases:
        return ("the check measured no case" if not record.cases else
                f"the check has no case {criterion.case!r}")
    for label, metrics, _ in cases:
        if criterion.key != "exit_code" and any(v != 0 for v in metrics.get("exit_code", [])):
            return f"{label}: the build did not complete (exit code not 0)"
        if not metrics.get(criterion.key):
            return f"{label}: no {criterion.key} recorded"
    return ""


def references(record: CheckRecord, criterion: Criterion) -> dict[str, float]:
    """GOOD's median of the metric per case."""
    return {label: float(statistics.median(metrics[criterion.key]))
            for label, metrics, _ in _cases(record, criterion) if metrics.get(criterion.key)}


def judge(record: CheckRecord, criterion: Criterion,
          reference: dict[str, float] | None = None) -> _Judged:
    """A commit's verdict from a check of it: bad where a case breaks the rule (its own
    statistic across repeats, as the SLA file's rules are judged) or moves its median by more
    than the change against GOOD's (``reference``); skip where it cannot be judged."""
    why = _unjudgeable(record, criterion)
    if why:
        return _Judged("skip", None, None, why)
    worst: _Judged | None = None
    for label, metrics, params in _cases(record, criterion):
        values = metrics[criterion.key]
        if criterion.rule is not None:
            if not criterion.rule.applies_to(params):
                continue
            value = criterion.rule.pick(values)
            bad = not criterion.rule.holds(value)
        else:
            assert criterion.change is not None
            base = (reference or {}).get(label)
            if base is None:
                return _Judged("skip", None, label, f"{label}: GOOD has no {criterion.key}")
            value = float(statistics.median(values))
            bad = criterion.change.broken(base, value)
        judged = _Judged("bad" if bad else "good", value, label)
        if worst is None or (bad and worst.verdict != "bad"):
            worst = judged
    if worst is None:
        return _Judged("skip", None, None, f"{criterion.rule.text if criterion.rule else ''}"
                                           " applies to no case of the check")
    return worst


def _nearest(lo: int, hi: int, skipped: set[int]) -> int | None:
    """The untried index of (lo, hi) nearest its middle, or None."""
    mid = (lo + hi) // 2
    for offset in range(hi - lo):
        for index in (mid - offset, mid + offset):
            if lo < index < hi and index not in skipped:
                return index
    return None


def bisect(repo: Path, good: str, bad: str, sla_file: Path, store: Store,
           criterion: Criterion, *, options: CheckOptions | None = None,
           branch: str | None = None,
           on_step: Callable[[Step], object] | None = None) -> Bisection:
    """The first commit of ``good..bad`` (first parents) that ``criterion`` calls bad. Checks
    in the store for a commit (same environment) are used instead of measuring again; what is
    measured is recorded. UsageError for revisions that are no commits or GOOD not an
    ancestor of BAD; HostError when GOOD cannot be judged."""
    target = Target(repo, sla_file, store, options or CheckOptions(), branch)
    good_sha, bad_sha = resolve(target.top, good), resolve(target.top, bad)
    if _not_ancestor(target.top, good_sha, bad_sha):
        raise UsageError(f"GOOD {good} is not an ancestor of BAD {bad}")
    shas = revisions(target.top, f"{good_sha}..{bad_sha}", first_parent=True)
    records = records_by_sha(store)
    result = Bisection(criterion, target.commit(good_sha), target.commit(bad_sha), len(shas))
    reference: dict[str, float] = {}

    def check(sha: str) -> CheckRecord | CommitCheck:
        stored = target.stored(sha, records)
        if stored is not None:
            return stored
        measured = target.measure(target.commit(sha))
        assert measured.record is not None
        records.setdefault(sha, []).insert(0, measured.record)
        return measured

    def step(sha: str, role: Literal["good", "bad", "probe"],
             found: CheckRecord | CommitCheck | None = None) -> Step:
        found = found or check(sha)
        record = found if isinstance(found, CheckRecord) else found.record
        assert record is not None
        judged = judge(record, criterion, reference if criterion.change else None)
        reason = judged.reason
        if judged.verdict == "skip" and isinstance(found, CommitCheck) and found.problem:
            reason = f"{reason}: {found.problem}" if reason else found.problem
        done = Step(commit=target.commit(sha), verdict=judged.verdict, value=judged.value,
                    reference=reference.get(judged.case or ""), case=judged.case,
                    measured=isinstance(found, CommitCheck), check_id=record.id,
                    reason=reason, role=role)
        result.steps.append(done)
        if on_step is not None:
            on_step(done)
        return done

    # GOOD: the reference, and proof that it is good
    good_record = check(good_sha)
    record = good_record if isinstance(good_record, CheckRecord) else good_record.record
    assert record is not None
    if criterion.change is not None:
        reference.update(references(record, criterion))
    first = step(good_sha, "good", good_record)
    if first.verdict == "skip":
        raise HostError(f"GOOD {good_sha[:10]} cannot be judged: {first.reason}")
    if first.verdict == "bad":
        result.message = f"GOOD {good_sha[:10]} already {criterion.text}: nothing to bisect"
        return result
    # the search: lo is good (-1: GOOD), hi is bad (the last: BAD, until checked)
    lo, hi = -1, len(shas) - 1
    bad_known = False
    skipped: set[int] = set()
    while True:
        while hi - lo > 1:
            index = _nearest(lo, hi, skipped)
            if index is None:
                break
            verdict = step(shas[index], "probe").verdict
            if verdict == "skip":
                skipped.add(index)
            elif verdict == "bad":
                hi, bad_known = index, True
            else:
                lo = index
        if bad_known or hi in skipped:
            break
        # the search ended on BAD, never checked: it must prove bad
        verdict = step(shas[hi], "bad").verdict
        if verdict == "bad":
            bad_known = True
            break
        if verdict == "skip":
            skipped.add(hi)
            break
        result.message = f"BAD {bad_sha[:10]} is not bad: no commit of the range " \
                         f"{criterion.text}"
        result.last_good = target.commit(shas[hi])
        return result
    if not bad_known:
        result.between = [target.commit(s) for s in shas[lo + 1:hi + 1]]
        result.message = (f"BAD {bad_sha[:10]} could not be judged, nor any commit after "
                          "the last good one")
        return result
    untried = [i for i in range(lo + 1, hi) if i in skipped]
    result.last_good = target.commit(shas[lo]) if lo >= 0 else result.good
    if untried:
        result.between = [target.commit(shas[i]) for i in range(lo + 1, hi + 1)]
        result.message = (f"the first bad commit is one of {len(result.between)}: the commits "
                          "between the last good and the first bad one could not be judged")
        result.last_good = None
        return result
    result.first_bad = target.commit(shas[hi])
    result.message = f"{shas[hi][:10]} is the first commit that {criterion.text}"
    return result


def _not_ancestor(repo: Path, good: str, bad: str) -> bool:
    import subprocess

    if good == bad:
        return True
    proc = subprocess.run(["git", "-C", str(repo), "merge-base", "--is-ancestor", good, bad],
                          capture_output=True, check=False)
    return proc.returncode != 0
