"""memsla from Python: the same engine as ``runner check``, called from code.

- :func:`check` runs scenarios of an SLA file (at chosen sizes), exactly as ``runner check``;
- :func:`measure_command` measures one command, built into a one-scenario suite in memory and
  run through the same session, executor, backends and judging;
- :func:`measure_callable` measures a Python callable in a forked child that joins a fresh
  memory cgroup first (``runner.backends.forked``), so only what the call adds is charged;
- :func:`save` / :func:`load` write and read the results JSON (the versioned schema);
- :func:`across_sizes` puts results at several sizes side by side: the per-size table, the
  growth between sizes and the scaling fits the judging stage made (``compare``, its old name,
  is a deprecated alias).

Every function returns (or reads) ``runner.results.Results``: all memory in bytes, durations in
seconds, every figure born in ``runner.measure.assemble``, every rule judged and every status
given by ``runner.judging``, every text made by ``runner.reports.plain``. :class:`Figures` is a
small read-only view of one case for assertions.

Not imported by ``runner/__init__.py``: ``import runner`` stays cheap inside measured builds.
"""

from __future__ import annotations

import itertools
import os
import statistics
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from runner.backends.forked import CallError, ForkedCaller
from runner.backends.interface import BackendError
from runner.errors import MemslaError, UsageError
from runner.execute import run_callable
from runner.judging.stage import analyse_scenario, judge_rules
from runner.judging.status import settle
from runner.judging.verdicts import CASE_SOURCES
from runner.measure.assemble import assemble
from runner.measure.host import host_facts
from runner.reports import plain
from runner.results import Case, Results, ScalingFit, Verdict
from runner.session import Session
from runner.slafile import load_suite
from runner.slafile.model import Suite, limit_problem
from runner.slafile.rules import Rule, parse_rule
from runner.units import format_bytes, parse_bytes, parse_seconds

Size = int | str  # bytes, or a text such as "256MiB"
Duration = float | str  # seconds, or a text such as "10min"
Tracker = Literal["none", "tracemalloc", "memray"]
CallableBackend = Literal["local", "auto", "cgroup", "process"]
RuleText = str | Rule

__all__ = ["CallError", "CallableFailed", "Figures", "Scaling", "SizeRow", "Step",
           "across_sizes", "check", "compare", "figures", "fork_baseline", "load",
           "measure_callable", "measure_command", "save"]

# What a results file made by this module says it came from, in place of an SLA file.
API_SOURCE = "runner.api"


# -- measuring ------------------------------------------------------------------------------------
def check(sla_file: str | Path, *, scenarios: str | Sequence[str] | None = None,
          sizes: Sequence[int] | None = None, backend: str | None = None,
          repeats: int | None = None, limit: Size | None = None, tracker: Tracker | None = None,
          baseline: Results | str | Path | None = None,
          json_path: str | Path | None = None) -> Results:
    """``runner check SLA_FILE --only ... --size ...``: the scenarios measured and judged.
    ``limit`` and ``tracker`` replace what the file sets, for every scenario.

    Raises ``runner.errors.MemslaError`` subclasses where the CLI exits 2 or 3; an SLA that
    does not hold is no exception: read ``results.status`` and the verdicts."""
    path = Path(sla_file)
    suite = load_suite(path)
    overrides: dict[str, Any] = {}
    if limit is not None:
        overrides["limit"] = _limit_bytes(limit)
    if tracker is not None:
        overrides["tracker"] = tracker
    if overrides:
        suite = suite.model_copy(update={"scenarios": {
            name: scenario.model_copy(update=overrides)
            for name, scenario in suite.scenarios.items()}})
    session = Session(path, suite=suite)
    if baseline is not None:
        session.baseline = baseline if isinstance(baseline, Results) else load(baseline)
    only = [scenarios] if isinstance(scenarios, str) else list(scenarios or []) or None
    return session.check(backend=backend, only=only, sizes=list(sizes) if sizes else None,
                         repeats=repeats, json_path=Path(json_path) if json_path else None)


def measure_command(command: Sequence[str] | str, *, name: str = "command",
                    limit: Size | None = None, rules: Iterable[RuleText] = (),
                    size: int | None = None, size_parameter: str = "pages", repeats: int = 1,
                    warmup: int = 0, tracker: Tracker = "none", native: bool = False,
                    backend: str = "local", env: Mapping[str, str] | None = None,
                    workdir: str | Path | None = None, timeout: Duration = "30min",
                    json_path: str | Path | None = None) -> Results:
    """Measure one command as a one-scenario suite: what ``runner check`` gives for

        scenarios: {NAME: {command: COMMAND, limit: LIMIT, slas: RULES, matrix: {pages: [SIZE]}}}

    A string command runs through ``/bin/sh -c``. ``size`` makes the case comparable across
    sizes (:func:`across_sizes`); placeholders ``{output}``, ``{scratch}`` and the size work as
    in an SLA file. Relative paths start at ``workdir`` (default: the current folder).

    ``backend="local"`` (the default) runs the command on this host: a local memory cgroup, or
    where none can be had the process backend (every figure approximate); ``"auto"`` prefers
    Docker as ``runner check`` does, where the command must exist inside the image."""
    folder = Path(workdir) if workdir is not None else Path.cwd()
    scenario: dict[str, Any] = {
        "command": command if isinstance(command, str) else list(command),
        "shell": isinstance(command, str), "env": dict(env or {}), "workdir": str(folder),
        "slas": [_rule_text(rule) for rule in rules], "repeats": repeats, "warmup": warmup,
        "tracker": tracker, "native": native, "backend": backend, "timeout": timeout,
    }
    if limit is not None:
        scenario["limit"] = limit
    if size is not None:
        scenario["matrix"] = {size_parameter: [size]}
        scenario["size"] = size_parameter
    if backend == "local":
        try:
            results = _check_one(name, {**scenario, "backend": "cgroup"}, folder)
        except BackendError as exc:
            results = _check_one(name, {**scenario, "backend": "process"}, folder)
            results.host.backend_reason = f"no local cgroup ({exc}): the process tree sampled"
    else:
        results = _check_one(name, scenario, folder)
    results.sla_file = f"{API_SOURCE}: measure_command"
    return _written(results, json_path)


def _check_one(name: str, scenario: dict[str, Any], folder: Path) -> Results:
    suite = _suite({"version": 1, "scenarios": {name: scenario}})
    return Session(folder / API_SOURCE, suite=suite).check()


class CallableFailed(MemslaError):
    """The measured callable raised in its child: ``error`` is what it raised (type name,
    message, traceback as text), ``results`` what was measured all the same."""

    def __init__(self, error: CallError, results: Results) -> None:
        super().__init__(f"the measured callable raised {error.type}: {error.message}\n"
                         f"{error.traceback}")
        self.error = error
        self.results = results


def measure_callable(func: Callable[[], object], *, name: str = "callable",
                     limit: Size | None = None, rules: Iterable[RuleText] = (),
                     size: int | None = None, size_parameter: str = "pages", repeats: int = 1,
                     tracker: Tracker = "none", native: bool = False,
                     backend: CallableBackend = "local",
                     timeout: Duration = "30min", params: Mapping[str, int | str] | None = None,
                     raise_errors: bool = True, json_path: str | Path | None = None) -> Results:
    """Measure ``func()`` in a forked child that joins a fresh memory cgroup under ``limit``
    before the call: what this process made before (imports, fixtures, data) is not charged,
    only what the call adds (see ``runner.backends.forked``). The call's return value and side
    effects stay in the child. ``tracker="tracemalloc"`` or ``"memray"`` adds one traced call for
    the heap figures (memray: also ``allocated`` and ``allocation_calls``; ``native`` keeps
    native stacks of the sites at the peak). The figures include the fork's own cost, measured
    once per process as an empty callable the same way: ``results.host.harness_baseline``
    (and :attr:`Figures.baseline`).

    With ``backend="local"`` (or ``"auto"``) and no writable cgroup the child is sampled from
    outside (its unique set size) without a hard limit, and every figure is marked approximate.

    Where the callable raises, :class:`CallableFailed` is raised after the measurement (with
    ``raise_errors=False`` the results say so instead: a failed ``exit_code == 0`` verdict).

    The calls are run by ``runner.execute.run_callable`` and judged by the judging stage
    (``runner.judging.stage.judge_rules``), as ``runner check`` judges a scenario's cases."""
    parsed = [_rule(rule) for rule in rules]
    for rule in parsed:
        if rule.metric.source not in CASE_SOURCES:
            raise UsageError(f"rule {rule.text!r}: a measured callable judges run metrics "
                             f"only; {rule.metric.key} needs a scenario (runner.api.check)")
    limit_bytes = _limit_bytes(limit) if limit is not None else None
    seconds = parse_seconds(timeout)
    caller = _caller(backend)
    baseline = _fork_baseline(caller)
    case_params: dict[str, int | str] = dict(params or {})
    if size is not None:
        case_params[size_parameter] = size
    case = Case(scenario=name, params=case_params, size_parameter=size_parameter
                if size is not None else None, size=size, backend=caller.name,
                limit=limit_bytes, approximate=caller.approximate)
    note = (f"fork baseline: an empty callable measured the same way peaks at "
            f"{format_bytes(baseline)}; these figures include it") if baseline else ""
    raised = run_callable(caller, func, case, repeats=repeats, timeout=seconds, native=native,
                          tracker=None if tracker == "none" else tracker, note=note)
    results = Results.new(
        sla_file=f"{API_SOURCE}: measure_callable",
        host=host_facts(caller.name, caller.reason, caller.cgroup_version,
                        harness_baseline=baseline),
        cases=[case])
    judge_rules(results, parsed)
    settle(results)
    _written(results, json_path)
    if raised is not None and raise_errors:
        raise CallableFailed(raised, results)
    return results


# -- results files -------------------------------------------------------------------------------
def save(results: Results, path: str | Path) -> Path:
    """Write the results JSON (the same schema as ``runner check --json``)."""
    target = Path(path)
    results.write(target)
    return target


def load(path: str | Path) -> Results:
    """Read a results file (schema 1 is upgraded)."""
    return Results.read(Path(path))


# -- one case at a glance ------------------------------------------------------------------------
@dataclass(frozen=True)
class Figures:
    """One case's figures for assertions: the worst across its repeats (``max``), in bytes and
    seconds; None where not measured. ``peak`` includes ``baseline`` (a callable's fork cost,
    None for commands); ``added`` is the peak above it."""

    case: Case
    baseline: int | None = None

    def _worst(self, metric: str) -> float | None:
        return self.case.pick(metric, "max")

    def _bytes(self, metric: str) -> int | None:
        value = self._worst(metric)
        return None if value is None else int(value)

    @property
    def peak(self) -> int | None:
        """The cgroup peak: everything charged, page cache included."""
        return self._bytes("peak")

    @property
    def rss_peak(self) -> int | None:
        return self._bytes("rss_peak")

    @property
    def python_peak(self) -> int | None:
        return self._bytes("python_peak")

    @property
    def allocated(self) -> int | None:
        """``tracker="memray"``: bytes requested over the call, freed or not."""
        return self._bytes("allocated")

    @property
    def allocation_calls(self) -> int | None:
        """``tracker="memray"``: allocation calls over the call."""
        return self._bytes("allocation_calls")

    @property
    def added(self) -> int | None:
        """The peak above the baseline (the peak itself where there is none)."""
        peak = self.peak
        return None if peak is None else peak - (self.baseline or 0)

    @property
    def duration(self) -> float | None:
        return self._worst("duration")

    @property
    def oom_kills(self) -> int:
        return int(self._worst("oom_kills") or 0)

    @property
    def exit_code(self) -> int | None:
        value = self._worst("exit_code")
        return None if value is None else int(value)

    @property
    def limit(self) -> int | None:
        return self.case.limit

    @property
    def approximate(self) -> bool:
        return self.case.approximate

    @property
    def verdicts(self) -> list[Verdict]:
        return self.case.verdicts

    @property
    def failures(self) -> list[Verdict]:
        return [v for v in self.case.verdicts if v.passed is False]

    @property
    def passed(self) -> bool:
        return not self.failures and self.case.error is None

    def describe(self) -> str:
        """One line: ``peak 50.2 MiB (baseline 0.5 MiB), rss peak ..., under a 256 MiB limit``."""
        return plain.describe(self.case, self.baseline)

    def explain_failures(self) -> str:
        """Each failed rule with its value and bound, one per line."""
        return plain.explain_failures(self.case)


def figures(results: Results, scenario: str | None = None) -> Figures:
    """The figures of the only case of ``results`` (or of ``scenario``'s only case)."""
    cases = [c for c in results.cases if scenario is None or c.scenario == scenario]
    if len(cases) != 1:
        raise UsageError(f"{len(cases)} cases match; pick one: "
                         + ", ".join(c.label for c in results.cases))
    return Figures(cases[0], results.host.harness_baseline)


# -- several sizes side by side ------------------------------------------------------------------
@dataclass(frozen=True)
class SizeRow:
    """One size: medians across its repeats (bytes, seconds)."""

    size: int
    peak: float | None
    rss_peak: float | None
    python_peak: float | None
    duration: float | None
    peak_per_page: float | None  # peak / size, fixed overhead included
    rss_per_page: float | None


@dataclass(frozen=True)
class Step:
    """From one measured size to the next: how much larger, and how much more memory."""

    from_size: int
    to_size: int
    size_ratio: float
    memory_ratio: float | None  # peak at to_size / peak at from_size
    marginal: float | None  # extra peak per extra unit of size between the two


@dataclass(frozen=True)
class Scaling:
    """A scenario across its sizes: the table, the steps and the fits (``runner.judging``)."""

    scenario: str
    size_parameter: str
    rows: list[SizeRow]
    steps: list[Step]
    fits: list[ScalingFit]

    def fit(self, metric: str = "peak") -> ScalingFit | None:
        return next((f for f in self.fits if f.metric == metric), None)

    @property
    def per_page(self) -> float | None:
        """The marginal peak per unit of size (the linear fit's slope)."""
        fit = self.fit()
        return None if fit is None or fit.line is None else fit.line.marginal

    @property
    def fixed_overhead(self) -> float | None:
        fit = self.fit()
        return None if fit is None or fit.line is None else fit.line.fixed

    @property
    def exponent(self) -> float | None:
        """k in peak = fixed + c x size^k (1: linear; 0 where peak is flat)."""
        fit = self.fit()
        return None if fit is None else fit.exponent

    def table(self) -> str:
        """The sizes one per row (medians), then the peak's fit or why there is none."""
        return plain.size_table(self.size_parameter, self.rows, self.fit())


def across_sizes(results: Results | Iterable[Results], *, scenario: str | None = None
                 ) -> Scaling:
    """One scenario across the sizes measured in ``results`` (one results object, or several:
    e.g. one :func:`measure_command` per size). Fits need three sizes; the table and the steps
    need one and two. The fits are the judging stage's: those stored in ``results`` for the
    scenario, or, for cases gathered from several results, those it makes of them together."""
    batches = [results] if isinstance(results, Results) else list(results)
    cases = [c for batch in batches for c in batch.cases if c.size is not None]
    names = list(dict.fromkeys(c.scenario for c in cases))
    if not names:
        raise UsageError("no case with a size to compare (measure with size=N, or a scenario "
                         "with a size parameter)")
    if scenario is None:
        if len(names) > 1:
            raise UsageError(f"the results hold scenarios {', '.join(names)}: pick one "
                             "with scenario=")
        scenario = names[0]
    chosen = sorted((c for c in cases if c.scenario == scenario), key=lambda c: c.size or 0)
    if not chosen:
        raise UsageError(f"no case of scenario {scenario!r} with a size")
    seen: set[str] = set()
    for case in chosen:
        if case.label in seen:
            raise UsageError(f"{case.label} was measured twice: compare one results per size")
        seen.add(case.label)
    rows = [_row(case) for case in chosen]
    steps = [_step(a, b) for a, b in itertools.pairwise(rows)]
    return Scaling(scenario=scenario, size_parameter=chosen[0].size_parameter or "size",
                   rows=rows, steps=steps, fits=_fits(batches, scenario, chosen))


def compare(results: Results | Iterable[Results], *, scenario: str | None = None) -> Scaling:
    """Deprecated: :func:`across_sizes` (``compare`` named three things; ``runner compare``
    compares two results files)."""
    warnings.warn("runner.api.compare is deprecated: use runner.api.across_sizes",
                  DeprecationWarning, stacklevel=2)
    return across_sizes(results, scenario=scenario)


def _fits(batches: list[Results], scenario: str, cases: list[Case]) -> list[ScalingFit]:
    """The judging stage's fits of ``scenario``: stored where one results holds every case,
    else made of the gathered cases by the stage's scenario analysis."""
    holding = [batch for batch in batches if any(c.scenario == scenario for c in batch.cases)]
    stored = holding[0].scenario(scenario) if len(holding) == 1 else None
    if stored is not None:
        return stored.analysis.scaling
    return analyse_scenario(scenario, cases, []).analysis.scaling


def _row(case: Case) -> SizeRow:
    assert case.size is not None
    return SizeRow(size=case.size, peak=case.pick("peak"), rss_peak=case.pick("rss_peak"),
                   python_peak=case.pick("python_peak"), duration=case.pick("duration"),
                   peak_per_page=case.pick("peak_per_page"),
                   rss_per_page=case.pick("rss_per_page"))


def _step(low: SizeRow, high: SizeRow) -> Step:
    ratio = high.size / low.size if low.size else float("inf")
    memory = (high.peak / low.peak if high.peak is not None and low.peak else None)
    marginal = ((high.peak - low.peak) / (high.size - low.size)
                if high.peak is not None and low.peak is not None and high.size != low.size
                else None)
    return Step(low.size, high.size, ratio, memory, marginal)


# -- helpers -------------------------------------------------------------------------------------
def _rule_text(rule: RuleText) -> str:
    return rule.text if isinstance(rule, Rule) else rule


def _limit_bytes(limit: Size) -> int:
    """A limit given to the API, in bytes; a UsageError below what any build runs under."""
    value = parse_bytes(limit)
    problem = limit_problem(value)
    if problem:
        raise UsageError(f"limit={limit!r}: {problem}")
    return value


def _rule(rule: RuleText) -> Rule:
    if isinstance(rule, Rule):
        return rule
    try:
        return parse_rule(rule)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _suite(data: dict[str, Any]) -> Suite:
    """A suite built in memory, validated as a loaded SLA file is."""
    try:
        return Suite.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"][2:])  # below scenarios.NAME
        message = str(first["msg"]).removeprefix("Value error, ")
        raise UsageError(f"{where + ': ' if where else ''}{message}") from None


def _written(results: Results, json_path: str | Path | None) -> Results:
    if json_path is not None:
        save(results, json_path)
    return results


# One caller (and one fork baseline) per process and backend: a forked or xdist worker process
# makes its own cgroups.
_CALLERS: dict[tuple[int, str], ForkedCaller] = {}
_BASELINES: dict[tuple[int, str], int | None] = {}


def _caller(backend: CallableBackend) -> ForkedCaller:
    if backend not in ("local", "auto", "cgroup", "process"):
        raise UsageError(f"a callable runs on backend local, cgroup or process (a fork cannot "
                         f"enter a container), not {backend!r}")
    key = (os.getpid(), backend)
    if key not in _CALLERS:
        if backend == "process":
            caller = ForkedCaller(allow_process=True, cgroup=False)
        else:
            caller = ForkedCaller(allow_process=backend != "cgroup")
        _CALLERS[key] = caller
    return _CALLERS[key]


BASELINE_CALLS = 3


def fork_baseline(backend: CallableBackend = "local") -> int | None:
    """What an empty callable peaks at, measured as :func:`measure_callable` measures: the
    fork's own cost in this process (median of three; measured once per process)."""
    return _fork_baseline(_caller(backend))


def _fork_baseline(caller: ForkedCaller) -> int | None:
    """The median peak of an empty callable measured the same way: the fork's own cost."""
    key = (os.getpid(), caller.name)
    if key not in _BASELINES:
        peaks = []
        for index in range(BASELINE_CALLS):
            outcome = caller.call(_empty, limit=None, timeout=60.0)
            peak = assemble("warmup", index, outcome.readings, outcome.probe).cgroup_peak
            if peak is not None:
                peaks.append(peak)
        _BASELINES[key] = int(statistics.median(peaks)) if peaks else None
    return _BASELINES[key]


def _empty() -> None:
    return None
