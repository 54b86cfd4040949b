"""Phases: per case, each phase's heap peak and growth (traced run), cgroup peak and growth
(timed runs, where the host lets the build reset the peak) and duration (timed runs), and which
phase uses the most memory: the one that added the most, not the one whose own peak (which
includes everything held at its entry) is highest."""

from __future__ import annotations

from typing import Literal

from runner.results import Case, CasePhases, PhaseSummary

# Which figure decides the largest phase, in order of preference.
DECIDING: tuple[Literal["growth", "python_growth", "peak", "python_peak"], ...] = (
    "growth", "python_growth", "peak", "python_peak")


def phase_rows(case: Case) -> list[PhaseSummary]:
    """The case's phases in the order they first ran, with the medians of their metrics."""
    names = list(dict.fromkeys(p.name for r in case.runs for p in r.phases))
    return [PhaseSummary(name=name, python_peak=case.pick(f"phase({name}).python_peak"),
                         peak=case.pick(f"phase({name}).peak"),
                         duration=case.pick(f"phase({name}).duration"),
                         growth=case.pick(f"phase({name}).growth"),
                         python_growth=case.pick(f"phase({name}).python_growth"))
            for name in names]


def summarise(case: Case) -> CasePhases | None:
    """The case's phases and the one that added the most to the cgroup (else to the heap, else
    with the highest own peak); None without phases."""
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
