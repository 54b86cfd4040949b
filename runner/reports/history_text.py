"""``runner history detect``'s text: one line per level shift (case, metric, first commit of the
new level, before -> after, size absolute and %, p-value, noise), then where and why a series
broke, then a summary line. An accepted shift is listed as accepted and counted apart: it is no
alert."""

from __future__ import annotations

from typing import TextIO

from runner.history.detection import Detection, Shift
from runner.judging.changes import MIN_SIZE
from runner.metrics import RUN_METRICS
from runner.units import Kind, format_percent, format_value


def shift_line(shift: Shift) -> str:
    """``regression  build[pages=100] peak  at 1a2b3c4d5e "cache pages": 200 MiB -> 230 MiB
    (+30 MiB, +15%), p=2e-09, noise ±0.6%``."""
    unit = RUN_METRICS[shift.metric].kind if shift.metric in RUN_METRICS else Kind.NUMBER
    subject = f' "{shift.subject[:60]}"' if shift.subject else ""
    kind = f"accepted {shift.kind}" if shift.accepted else shift.kind
    return (f"{kind:11} {shift.case} {shift.metric}  at {shift.short}{subject}: "
            f"{format_value(unit, shift.before)} -> {format_value(unit, shift.after)} "
            f"({format_value(unit, shift.change, signed=True)}, "
            f"{format_percent(shift.relative, signed=True)}), "
            f"p={shift.p_value:.2g} ({shift.test}), "
            f"noise ±{format_percent(shift.noise)}")


def render_detection(found: Detection, out: TextIO) -> None:
    for shift in found.shifts:
        out.write(shift_line(shift) + "\n")
    for broke in found.breaks:
        at = f"at {broke.commit[:10]}" if broke.commit else "at a check outside git"
        out.write(f"series broke  {broke.case} {broke.metric} {at}: the environment changed "
                  f"({'; '.join(broke.why)}); no shift is looked for across it\n")
    regressions = len(found.regressions)
    improvements = len(found.alerts) - regressions
    accepted = len(found.shifts) - len(found.alerts)
    branch = f" of branch {found.branch}" if found.branch else ""
    short = (f"; {found.too_short} too short to judge (fewer than {2 * MIN_SIZE} commits)"
             if found.too_short else "")
    out.write(f"detect: {found.series} series{branch} in {found.segments} environment "
              f"segments{short}: {regressions} regression{'' if regressions == 1 else 's'}, "
              f"{improvements} improvement{'' if improvements == 1 else 's'} not accepted"
              + (f" ({accepted} accepted)" if accepted else "") + "\n")
