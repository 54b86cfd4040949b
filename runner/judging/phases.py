"""Phases: per case, each ``runner.phase`` block's heap peak (traced run), cgroup peak (timed
runs, where the host lets the build reset it) and duration (timed runs), and which phase uses
the most memory."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from runner.results import Case


@dataclass
class PhaseRow:
    name: str
    python_peak: float | None  # medians across the runs that measured them
    peak: float | None
    duration: float | None


def phase_rows(case: Case) -> list[PhaseRow]:
    """The case's phases in the order they first ran."""
    names = list(dict.fromkeys(p.name for r in case.runs for p in r.phases))

    def median(name: str, metric: str) -> float | None:
        stats = case.metrics.get(f"phase({name}).{metric}")
        return None if stats is None else stats.median

    return [PhaseRow(name, median(name, "python_peak"), median(name, "peak"),
                     median(name, "duration")) for name in names]


def largest(rows: list[PhaseRow]) -> tuple[PhaseRow, str] | None:
    """The phase with the highest cgroup peak (else heap peak), with the metric that decided."""
    for metric in ("peak", "python_peak"):
        measured = [r for r in rows if getattr(r, metric) is not None]
        if measured:
            return max(measured, key=lambda r: getattr(r, metric)), metric
    return None


def analysis(cases: list[Case]) -> dict[str, object]:
    """Per case label: the phase rows and the phase that uses the most memory."""
    found: dict[str, object] = {}
    for case in cases:
        rows = phase_rows(case)
        if not rows:
            continue
        top = largest(rows)
        found[case.label] = {"phases": [asdict(r) for r in rows],
                             "largest": top[0].name if top else None,
                             "largest_by": top[1] if top else None}
    return found
