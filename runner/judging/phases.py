"""Phases: per case, each ``runner.phase`` block's heap peak (traced run), cgroup peak (timed
runs, where the host lets the build reset it) and duration (timed runs), and which phase uses
the most memory."""

from __future__ import annotations

from typing import Literal

from runner.results import Case, CasePhases, PhaseSummary

# Which figure decides the largest phase, in order of preference.
DECIDING: tuple[Literal["peak", "python_peak"], ...] = ("peak", "python_peak")


def phase_rows(case: Case) -> list[PhaseSummary]:
    """The case's phases in the order they first ran, with the medians of their metrics."""
    names = list(dict.fromkeys(p.name for r in case.runs for p in r.phases))
    return [PhaseSummary(name=name, python_peak=case.pick(f"phase({name}).python_peak"),
                         peak=case.pick(f"phase({name}).peak"),
                         duration=case.pick(f"phase({name}).duration")) for name in names]


def summarise(case: Case) -> CasePhases | None:
    """The case's phases and the one with the highest cgroup peak (else heap peak); None
    without phases."""
    rows = phase_rows(case)
    if not rows:
        return None
    summary = CasePhases(case=case.label, phases=rows)
    for metric in DECIDING:
        measured = [r for r in rows if getattr(r, metric) is not None]
        if measured:
            summary.largest = max(measured, key=lambda r: getattr(r, metric)).name
            summary.largest_by = metric
            break
    return summary


def analysis(cases: list[Case]) -> list[CasePhases]:
    """The phase summary of each case that has phases."""
    return [s for s in map(summarise, cases) if s is not None]
