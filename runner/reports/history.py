"""The text of ``runner history backfill`` and ``runner history bisect``: a line per commit as it
ends, and the summary. Presentation only: what is measured and judged is ``runner.history``'s."""

from __future__ import annotations

import statistics

from runner.history.backfill import Backfill, CommitCheck
from runner.history.bisect import Bisection, Step
from runner.reports.common import format_metric
from runner.units import format_count


def _key_figure(done: CommitCheck) -> str:
    """The first case's median peak (else RSS peak), for the eye."""
    record = done.record
    if record is None or not record.cases:
        return ""
    metrics = record.cases[0].metrics
    for metric in ("peak", "rss_peak"):
        if metrics.get(metric):
            median = statistics.median(metrics[metric])
            return f"{metric} {format_metric(metric, median)}"
    return ""


def backfill_line(done: CommitCheck, index: int, total: int) -> str:
    """``[3/12] 1a2b3c4d5e  pass    peak 58.1 MiB  subject``, and why where it is no pass."""
    width = len(str(total))
    status = "stored" if not done.measured else done.status
    parts = [f"[{index + 1:>{width}}/{total}]", done.short, f"{status:7}",
             f"{_key_figure(done):18}", done.commit.subject[:50]]
    line = "  ".join(parts).rstrip()
    if done.measured and done.status != "pass" and done.problem:
        line += f"\n{' ' * (width * 2 + 4)}{done.status}: {done.problem[:300]}"
    return line


def backfill_summary(result: Backfill) -> str:
    measured = result.measured
    statuses: dict[str, int] = {}
    for done in measured:
        statuses[done.status] = statuses.get(done.status, 0) + 1
    said = ", ".join(f"{count} {status}" for status, count in statuses.items())
    text = f"backfill: {format_count(len(measured), 'commit')} measured and recorded"
    text += f" ({said})" if said else ""
    if result.skipped:
        text += (f"; {format_count(len(result.skipped), 'commit')} already in the store (skipped; "
                 "--again measures them again)")
    return text


def _value(step: Step, metric: str) -> str:
    if step.value is None:
        return "-"
    shown = format_metric(metric, step.value)
    if step.reference:
        change = (step.value - step.reference) / step.reference
        shown += f" ({change:+.1%})"
    return shown


def step_line(step: Step, metric: str) -> str:
    """``good  1a2b3c4d5e  peak 58.1 MiB (+0.2%)  measured  subject``."""
    how = "measured" if step.measured else "stored"
    line = "  ".join([f"{step.verdict:4}", step.commit.sha[:10],
                      f"{metric} {_value(step, metric):22}", f"{how:8}",
                      step.commit.subject[:50]]).rstrip()
    if step.role != "probe":
        line += f"  [{step.role.upper()}]"
    if step.reason:
        line += f"\n      {step.reason[:300]}"
    return line


def bisect_summary(result: Bisection) -> str:
    """The first bad commit and the last good one (or why none was found), and the count of
    checks measured."""
    lines = [f"bisect: the first commit of {result.good.sha[:10]}..{result.bad.sha[:10]} "
             f"({format_count(result.candidates, 'commit')}) that {result.criterion.text}"]
    if result.first_bad is not None:
        bad = result.first_bad
        lines.append(f"first bad commit: {bad.sha}  {bad.subject}")
    if result.last_good is not None:
        good = result.last_good
        lines.append(f"last good commit: {good.sha}  {good.subject}")
    if result.between:
        lines.append("not narrowed further, one of:")
        lines += [f"  {c.sha[:10]}  {c.subject[:60]}" for c in result.between]
    if result.first_bad is None:
        lines.append(result.message)
    lines.append(f"{format_count(result.checks_run, 'check')} measured, "
                 f"{format_count(len(result.steps) - result.checks_run, 'check')} taken from the "
                 "store")
    return "\n".join(lines)
