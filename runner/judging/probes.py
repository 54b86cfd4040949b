"""The verdict on one capacity probe (``runner.capacity``): did the build, run once at one size
under one limit, complete within it, and how did it end."""

from __future__ import annotations

from dataclasses import dataclass

from runner.results import Case
from runner.units import format_bytes


@dataclass
class Probe:
    value: int  # a size or a limit in bytes
    ok: bool
    peak: int | None
    detail: str  # how the run ended


def probe_outcome(case: Case, limit: int | None, hard: bool) -> Probe:
    """``case``'s one untraced run judged: it passes when it completed and, on a backend with
    no hard limit (``hard`` false), its peak stayed under ``limit``. ``value`` is the case's
    size; a search over limits sets it."""
    run = case.runs[0] if case.runs else None
    value = case.size or 0
    if case.error is not None or run is None:
        return Probe(value, False, None, f"not measured: {case.error}")
    peak = run.cgroup_peak
    if run.oom_kills:
        return Probe(value, False, peak, "OOM-killed")
    if run.timed_out:
        return Probe(value, False, peak, "timed out")
    if run.exit_code != 0:
        return Probe(value, False, peak, f"exit {run.exit_code}")
    if not hard and limit is not None and (peak or 0) > limit:
        return Probe(value, False, peak, f"peak {format_bytes(peak)} over the limit (no hard "
                     "limit on this backend)")
    return Probe(value, True, peak, f"built, peak {format_bytes(peak)}")
