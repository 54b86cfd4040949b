"""What several reports share: verdict rows, value formatting, and matching against a baseline."""

from __future__ import annotations

from dataclasses import dataclass

from runner.errors import EXIT_HOST, MemslaError
from runner.metrics import NAMED_METRICS, STATISTICS, parse_metric
from runner.results import Case, GrownSite, Results, Stats, Verdict
from runner.units import Kind, format_percent, format_value


class ReportError(MemslaError):
    """A report cannot be produced on this host (a missing optional dependency): exit 3."""

    exit_code = EXIT_HOST


def named_columns(results: Results) -> list[str]:
    """The named figures any case has (``disk(output)``, ``disk_files(output)``,
    ``cache(jinja)``), in the registry's order, then by name: columns beside the key metrics."""
    keys = {key for case in results.cases for key in case.metrics}
    order = {name: i for i, name in enumerate(NAMED_METRICS)}
    found = [(order[key.split("(", 1)[0]], key) for key in keys
             if key.split("(", 1)[0] in NAMED_METRICS and key.endswith(")")]
    return [key for _, key in sorted(found)]


def metric_kind(metric: str) -> Kind:
    try:
        return parse_metric(metric).kind
    except (ValueError, KeyError):
        return Kind.NUMBER


def compares_cases(verdict: Verdict) -> bool:
    """A rule across matrix values: its reason holds both sides' values, shown on a pass too."""
    try:
        return parse_metric(verdict.metric).across is not None
    except (ValueError, KeyError):
        return False


def format_metric(metric: str, value: float | None, *, signed: bool = False) -> str:
    return format_value(metric_kind(metric), value, signed=signed)


def format_noise(noise: float | None) -> str:
    """``'±0.6%'``: a stored relative noise; ``''`` where none is stored."""
    return "" if noise is None else f"±{format_percent(noise)}"


def with_noise(metric: str, stats: Stats | None) -> str:
    """``'242 MiB ±0.6%'``: the median of the repeats and their stored noise."""
    if stats is None:
        return format_metric(metric, None)
    noise = format_noise(stats.noise)
    return format_metric(metric, stats.median) + (f" {noise}" if noise else "")


def format_bound(verdict: Verdict) -> str:
    return f"{verdict.op} {format_metric(verdict.metric, verdict.bound)}"


def status_word(verdict: Verdict) -> str:
    if verdict.skipped:
        return "skipped"
    if verdict.passed is None:
        return "not judged"
    return "pass" if verdict.passed else "FAIL"


def verdict_text(verdict: Verdict) -> str:
    """``pass``, ``FAIL: why``, ``not judged: why`` or ``skipped: why``, as every report says it."""
    if verdict.skipped:
        return verdict.reason or "skipped"
    if verdict.passed is None:
        return f"not judged: {verdict.reason or 'no value'}"
    if verdict.passed:
        return f"pass: {verdict.reason}" if verdict.reason and compares_cases(verdict) else "pass"
    return f"FAIL: {verdict.reason}" if verdict.reason else "FAIL"


@dataclass(frozen=True)
class VerdictRow:
    """One verdict with what it judged: a case, or a whole scenario (``case`` is None)."""

    scenario: str
    label: str
    verdict: Verdict
    case: Case | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.label, self.verdict.rule


def verdict_rows(results: Results) -> list[VerdictRow]:
    rows = [VerdictRow(case.scenario, case.label, verdict, case)
            for case in results.cases for verdict in case.verdicts]
    rows += [VerdictRow(s.scenario, s.scenario, verdict)
             for s in results.scenarios for verdict in s.verdicts]
    return rows


def describe_value(row: VerdictRow) -> str:
    """``108 MiB (max of 2 runs)``: the judged value and which statistic picked it."""
    verdict = row.verdict
    text = format_metric(verdict.metric, verdict.value)
    stats = row.case.metrics.get(verdict.metric) if row.case else None
    if stats is not None and stats.n > 1:
        text += f" ({verdict.stat} of {stats.n} runs)"
    if verdict.passed and verdict.reason and compares_cases(verdict):
        text += f" ({verdict.reason})"
    return text


def failure_message(row: VerdictRow) -> str:
    verdict = row.verdict
    if verdict.passed is None:
        return f"{row.label}: {verdict.rule} {verdict_text(verdict)}"
    reason = f" - {verdict.reason}" if verdict.reason else ""
    return (f"{row.label}: {verdict.metric} = {describe_value(row)}, "
            f"bound {format_bound(verdict)} ({verdict.rule}){reason}")


def tally(results: Results) -> str:
    """``15 of 18 SLAs hold (3 broken, 0 not judged)``."""
    verdicts = results.all_verdicts()
    failed = sum(1 for v in verdicts if v.passed is False)
    unknown = sum(1 for v in verdicts if v.passed is None and not v.skipped)
    left_out = sum(1 for v in verdicts if v.skipped)
    passed = sum(1 for v in verdicts if v.passed)
    text = f"{passed} of {len(verdicts)} SLAs hold ({failed} broken, {unknown} not judged"
    return text + (f", {left_out} skipped)" if left_out else ")")


def summary_line(results: Results) -> str:
    line = f"{results.status.upper()}: {tally(results)}"
    return line + (" - interrupted, results so far" if results.interrupted else "")


def grown_sites(results: Results) -> list[GrownSite]:
    """The allocation sites that grew since the baseline the results were judged against (or a
    report attached, ``runner.judging.baseline.attach_grown_sites``), in case order."""
    return [site for scenario in results.scenarios for site in scenario.analysis.grown_sites]


def relative_change(new: float | None, old: float | None) -> float | None:
    if new is None or old is None or old == 0:
        return None
    return (new - old) / abs(old)


def format_change(new: float | None, old: float | None) -> str:
    if new is None or old is None:
        return "-"
    if old == 0:
        return "±0%" if new == 0 else "was 0"
    change = (new - old) / abs(old)
    return "±0%" if abs(change) < 0.0005 else f"{change * 100:+.1f}%"


class Baseline:
    """A baseline results file, indexed for lookups by case label and rule."""

    def __init__(self, results: Results) -> None:
        self.results = results
        self.cases = {case.label: case for case in results.cases}
        self.rows = {row.key: row for row in verdict_rows(results)}

    def value_for(self, row: VerdictRow) -> float | None:
        """The baseline's value of the same rule, else of the same metric and statistic."""
        old = self.rows.get(row.key)
        if old is not None and old.verdict.value is not None:
            return old.verdict.value
        case = self.cases.get(row.label)
        stat = row.verdict.stat
        # The worst value of an '==' or '!=' rule depends on the rule: take the largest.
        return None if case is None else case.pick(row.verdict.metric,
                                                   stat if stat in STATISTICS else "max")

    def median(self, label: str, metric: str) -> float | None:
        case = self.cases.get(label)
        return None if case is None else case.pick(metric)


# The columns of every report's step table: each step's figures, median of its repeats.
STEP_COLUMNS = ("peak", "rss_peak", "duration", "cpu_time", "python_peak")


@dataclass(frozen=True)
class StepRow:
    """One step of a step scenario's case, as the reports show it: its stored figures (median
    of the repeats, with their noise) and in how many runs it was not run."""

    case: str
    step: str
    figures: tuple[str, ...]  # formatted, in STEP_COLUMNS' order
    not_run: int
    runs: int


def step_rows(results: Results) -> list[StepRow]:
    return [row for case in results.cases for row in case_step_rows(case)]


def case_step_rows(case: Case) -> list[StepRow]:
    """The rows of one case's steps (none for a case without steps), in the steps' order."""
    measured = [run for run in case.runs if run.steps and run.kind in ("timed", "traced")]
    names = list(dict.fromkeys(step.name for run in measured for step in run.steps))
    rows = []
    for name in names:
        figures = tuple(with_noise(metric, case.metrics.get(f"step({name}).{metric}"))
                        for metric in STEP_COLUMNS)
        missed = sum(1 for run in measured for step in run.steps
                     if step.name == name and step.run is None)
        rows.append(StepRow(case.label, name, figures, missed, len(measured)))
    return rows



def traced_sizes(results: Results) -> list[str]:
    """For each scenario where ``trace_sizes`` left some cases without the traced run: where
    the traced run was made and why, and where not (their heap figures are not measured)."""
    lines = []
    scenarios = dict.fromkeys(case.scenario for case in results.cases)
    for scenario in scenarios:
        cases = [c for c in results.cases if c.scenario == scenario and c.trace]
        skipped = [c for c in cases if untraced(c)]
        if not skipped:
            continue
        traced = [f"{params_text(c)} ({c.trace.removeprefix('traced: ')})" for c in cases
                  if c not in skipped and c.trace]
        reasons = dict.fromkeys((c.trace or "").removeprefix("not traced: ") for c in skipped)
        lines.append(f"{scenario}: the traced run (heap figures) at "
                     + ("; ".join(traced) or "no size")
                     + f"; not at {', '.join(params_text(c) for c in skipped)} ("
                     + "; ".join(reasons) + "): heap figures there are not measured")
    return lines


def untraced(case: Case) -> bool:
    """Whether ``trace_sizes`` gave the case no traced run."""
    return bool(case.trace and case.trace.startswith("not traced"))


def params_text(case: Case) -> str:
    return ", ".join(f"{k}={v}" for k, v in case.params.items()) or case.label
