"""The results model: every measured number, in bytes and seconds, as versioned JSON.

All result types live here. The executor writes the runs; the judging stage fills the metrics,
verdicts and each scenario's analysis; reports read them and compute nothing of their own.
Format history (``schema_version``; older files are upgraded on load, see ``Results.read``):
  1 - first version.
  2 - ``ScenarioResult.analysis`` typed (scaling fits, leak findings, phase summaries as lists);
      status "running" until the check ends, ``problems``, ``selection`` and skipped verdicts;
      a run's limit changes.
  3 - runs say when they ran and on which CPUs, and which other cases ran beside them
      (``--jobs``); the results say the SLA file's content hash, the memory budget and jobs,
      and which shard of a plan they hold or, merged, which shards they joined. Nothing of
      version 2 changed: a version 2 file is read as it is.
  4 - allocation sites carry their function and stack; a process's heap and each phase carry
      the sites held at their heap's high-water mark (``PeakSites``); a process's heap the heap
      and sites before the exit's full collection; phases their figures at entry and their
      growth; heaps say their tracker (memray: bytes and calls allocated, native stacks); a run
      says why its tracker could not run, and whether the build changed its fixture
      (``fixture_changed``), which makes it incomplete. Fields added with defaults only: a
      version 2 or 3 file is read as it is.
  5 - a run stores its heap figures across its Python processes (``python_peak``,
      ``python_final``, ``allocations``, ``allocated``, ``allocation_calls``), born in
      ``runner.measure.assemble`` like every other run figure (before, the judging stage
      derived them from the run's ``python`` heaps). A version 2 to 4 file gets them from its
      runs' heaps on load (``upgrade_heap_figures``). The judging stage also stores what
      reports used to work out while rendering: each scaling fit its ``outlook`` (the memory
      expected at a round size past the largest measured, and the size the scenario's budget
      holds up to), and each scenario, judged against a baseline, its ``grown_sites`` (fields
      with defaults: an older file reads without them).
  6 - each metric's ``Stats`` stores its ``noise``: the run-to-run noise of its repeats (MAD
      scaled to a standard deviation, relative to the median), born in the judging stage
      (``runner.judging.statistics.repeat_noise``); and results checked with a history store
      carry its ``history`` (``HistoryOutlook``: each case's key metrics against the base
      branch's recent checks, and the change points on that line), attached by
      ``runner.history.outlook``. Fields with defaults: a version 2 to 5 file reads without
      them (its reports show no noise, as they show no outlook of a version 4 file).
  7 - each scenario's analysis stores its ``comparisons``: the rules across matrix values
      (``peak(parallel=true) / peak(parallel=false) < 1.3``) judged on each pair of cases, with
      both sides' values (``runner.judging.across``). A field with a default: a version 2 to 6
      file reads without it.
  8 - a run of a step scenario stores its steps (``Run.steps``: each step's name and its own
      ``Run``, None for a step not run because one before it failed); the run's own figures
      are made of its steps' (``runner.measure.assemble.assemble_steps``). A field with a
      default: a version 2 to 7 file reads without it.
  9 - a scaling fit stores each size's completed ``repeats`` (its prediction intervals are made
      from them: ``runner.judging.regression.repeats_interval``), each prediction and outlook
      says whether it lies ``beyond_twice`` the largest measured size, and an outlook carries its
      interval (``low``, ``high``); a run carries the figures per declared name ``disk``,
      ``disk_files`` (a folder's bytes and files after the run) and ``cache`` (the bytes of
      the sites at the heap's peak under a path prefix). Fields with defaults: a version 2 to 8
      file reads without them (its fits' intervals then rest on one value per size).
  10 - a run says what was taken off its cgroup peak for a harness that shared the build's
      cgroup (``Run.harness_subtracted``: a container on an engine that could not give the
      build a cgroup of its own; None where the harness was kept out). A field with a default:
      a version 2 to 9 file reads without it.
  11 - a case says whether it got the traced run and why (``Case.trace``: ``trace_sizes``).
      A field with a default: a version 2 to 10 file reads without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from runner.metrics import STATISTICS, case_label, params_label, pick

SCHEMA_VERSION = 11
RunKind = Literal["warmup", "timed", "traced", "leak", "capacity"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Timeline(_Model):
    """Memory over time, sampled from the build's cgroup (or process tree) by the backend.

    ``t`` is seconds since the build started; ``cgroup`` is the cgroup's charged memory (page
    cache included) and ``anon`` its anonymous memory, both in bytes.
    """

    interval: float
    t: list[float] = Field(default_factory=list)
    cgroup: list[int] = Field(default_factory=list)
    anon: list[int | None] = Field(default_factory=list)


class StackFrame(_Model):
    file: str
    line: int
    function: str | None = None  # None: the source could not be read
    code: str | None = None  # the source line, read in the build (tracemalloc's stacks)


class AllocationSite(_Model):
    """Memory held by one line (the innermost frame), with its largest stack (innermost
    first)."""

    file: str
    line: int
    size: int
    count: int  # blocks
    function: str | None = None
    stack: list[StackFrame] = Field(default_factory=list)
    native_stack: list[StackFrame] = Field(default_factory=list)  # memray with native: true


class PeakSites(_Model):
    """The top allocation sites held at a heap's high-water mark. The probe polls the heap and
    takes them again whenever it has grown past the last ones by more than the tolerance
    (``tolerance`` of it, and at least ``tolerance_bytes``): ``heap`` is the heap they add up
    from, within that tolerance of ``peak`` unless the peak was shorter than the probe's poll
    (50 ms) or the summaries had spent their time budget (3% of the build's time and a fifth
    of a second)."""

    t: float | None = None  # seconds since the build started (None: memray's, not timed)
    heap: int  # the traced heap when the sites were taken
    peak: int | None = None  # the heap's high-water mark so far at that time
    tolerance: float = 0.05
    tolerance_bytes: int = 0
    sites: list[AllocationSite] = Field(default_factory=list)


class PhaseResult(_Model):
    """One ``runner.phase`` block of one run. Peaks are the phase's own, reset at its start."""

    name: str
    depth: int = 0
    start: float  # seconds since the build started
    end: float | None = None  # None: the build died inside the phase
    python_peak: int | None = None
    cgroup_peak: int | None = None  # None where the host does not let the build reset the peak
    top_allocations: list[AllocationSite] = Field(default_factory=list)  # at the phase's end
    # at entry, and what the phase added: its own peak minus the figure at its entry
    python_entry: int | None = None
    cgroup_entry: int | None = None
    python_growth: int | None = None
    cgroup_growth: int | None = None
    at_peak: PeakSites | None = None  # the sites held at the phase's own heap peak

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end - self.start


class PythonHeap(_Model):
    """The traced run's heap figures, one entry per Python process of the build: tracemalloc's
    (the Python heap) or memray's (every allocation, native ones included)."""

    pid: int
    tracker: Literal["tracemalloc", "memray"] = "tracemalloc"
    # memray only: bytes requested and allocation calls over the whole run (``memray stats``)
    allocated: int | None = None
    allocation_calls: int | None = None
    native: bool = False  # memray kept native stacks
    peak: int
    final: int | None = None  # None: the process died before it could report
    blocks: int | None = None
    vm_hwm: int | None = None  # the process's own RSS high-water mark (VmHWM)
    complete: bool = True  # False: only periodic flushes were found (killed process)
    top_allocations: list[AllocationSite] = Field(default_factory=list)  # at exit, collected
    # at exit before the full collection (``final`` is the heap then): what cyclic garbage
    # still held shows here
    top_before_collection: list[AllocationSite] = Field(default_factory=list)
    final_collected: int | None = None  # the heap after the collection
    at_peak: PeakSites | None = None  # the sites held at the heap's high-water mark


class LeakCall(_Model):
    """One call of the leak driver (``runner.inbuild.leak``)."""

    index: int
    warmup: bool
    duration: float
    traced: int  # Python heap still traced after the call and gc.collect()
    peak: int  # heap peak during the call (0 where Python < 3.9 cannot reset it)
    rss: int | None = None
    objects: int = 0  # GC-tracked objects after the call


class LeakSite(_Model):
    """An allocation site that grew between the end of the warm-up calls and the last call."""

    file: str
    line: int
    size_diff: int
    count_diff: int
    size: int
    count: int


class LeakRecord(_Model):
    """Everything one leak run recorded; ``complete`` is False when it did not finish."""

    entry: str = ""
    python: str = ""
    planned_calls: int = 0
    warmup: int = 0
    calls: list[LeakCall] = Field(default_factory=list)
    sites: list[LeakSite] = Field(default_factory=list)
    error: str | None = None
    complete: bool = False

    @property
    def measured(self) -> list[LeakCall]:
        return [c for c in self.calls if not c.warmup]


class LimitChange(_Model):
    """A hard memory limit of the cgroups holding a build that did not stay as it was set."""

    cgroup: Literal["own", "fence"]  # the build's own cgroup; or the ancestor holding its limit
    file: str | None = None  # the limit file read; None: the limit read after the build
    before: int | None  # None: no limit
    after: int | None
    at: float | None = None  # seconds since the build started; None: read after the build
    stopped: bool = False  # the runner stopped the build on seeing it: nothing held it any more


class Run(_Model):
    """One execution of a build command under a backend."""

    kind: RunKind
    index: int
    exit_code: int | None
    signal: int | None = None
    timed_out: bool = False
    oom_killed: bool = False
    oom_kills: int = 0
    duration: float
    cpu_time: float | None = None
    cgroup_peak: int | None = None
    rss_peak: int | None = None
    cache_peak: int | None = None  # page cache charged at the time of the cgroup's sampled max
    # the traced run's heap figures across its Python processes (version 5; None elsewhere)
    python_peak: int | None = None
    python_final: int | None = None
    allocations: int | None = None  # blocks held at exit
    allocated: int | None = None  # memray only: bytes and calls allocated over the run
    allocation_calls: int | None = None
    limit: int | None = None
    # The limit did not hold, in words ("the build changed its memory limit from 256 MiB to no
    # limit ..."): none of the run's figures was measured under the limit asked for.
    limit_changed: str | None = None
    limit_changes: list[LimitChange] = Field(default_factory=list)
    # The build changed memsla's cached fixture (its input, read-only to it), in words: the
    # run does not complete, so its case cannot pass (version 4)
    fixture_changed: str | None = None
    approximate: bool = False
    python: list[PythonHeap] = Field(default_factory=list)
    phases: list[PhaseResult] = Field(default_factory=list)
    timeline: Timeline | None = None
    leak: LeakRecord | None = None  # kind "leak": what the driver recorded (None: never started)
    stderr_tail: str = ""
    notes: list[str] = Field(default_factory=list)
    # the tracker asked for could not run in the build (memray not importable there): why
    tracker_error: str | None = None
    # -- where and when (version 3): seconds since the check began, around the backend's run
    started: float | None = None
    ended: float | None = None
    cpus: list[int] | None = None  # the CPUs the build was confined to (None: not confined)
    neighbours: list[str] = Field(default_factory=list)  # cases with a run at the same time
    # a step scenario's steps, in order, each measured on its own (version 7)
    steps: list[StepResult] = Field(default_factory=list)
    # -- version 9: per name the scenario declares (``disk:``, ``cache_sites:``), outside the
    # measurement: bytes and regular files left in the folder, bytes its sites hold at the peak
    disk: dict[str, int] = Field(default_factory=dict)
    disk_files: dict[str, int] = Field(default_factory=dict)
    cache: dict[str, int] = Field(default_factory=dict)
    # -- version 10: the idle harness's peak taken off cgroup_peak, where it shared the
    # build's cgroup (None: the build's cgroup held the build alone)
    harness_subtracted: int | None = None

    @property
    def completed(self) -> bool:
        """Ran to its end under the limit it is judged by: exit 0, no timeout, no OOM kill,
        the limit unchanged."""
        return (self.exit_code == 0 and not self.timed_out and self.oom_kills == 0
                and self.limit_changed is None and self.fixture_changed is None)

    @property
    def failure(self) -> str | None:
        """How the run failed to complete, in words with the last line of its stderr; None
        for a run that completed. Every report shows this next to the verdicts it touched."""
        if self.completed:
            return None
        if self.limit_changed:
            how = self.limit_changed
        elif self.fixture_changed:
            how = self.fixture_changed
        elif self.oom_kills:
            how = f"OOM-killed ({self.oom_kills} kill{'s' if self.oom_kills > 1 else ''})"
        elif self.timed_out:
            how = f"timed out after {self.duration:.1f} s"
        elif self.signal is not None:
            how = f"killed by signal {self.signal}"
        elif self.exit_code is None:
            how = "ended with no exit status"
        else:
            how = f"exit {self.exit_code}"
        last = [line.strip() for line in self.stderr_tail.splitlines() if line.strip()][-1:]
        return f"{self.kind} run {self.index + 1} did not complete: {how}" + (
            f" ({last[0][:200]})" if last else "")


class StepResult(_Model):
    """One step of a step scenario's run: its own build, in its own cgroup reading, on the
    fixture copy the steps before it left."""

    name: str
    run: Run | None = None  # None: not run, because a step before it did not complete

    @property
    def not_run(self) -> bool:
        return self.run is None


Run.model_rebuild()


class Stats(_Model):
    """One metric across the repeats of a case."""

    n: int
    min: float
    median: float
    max: float
    mean: float
    stdev: float
    values: list[float]
    # the run-to-run noise of the repeats: MAD x 1.4826 / |median| (0.006 is ±0.6%); None with
    # fewer than two values, or in a file older than version 6 (born in the judging stage)
    noise: float | None = None

    @classmethod
    def of(cls, values: list[float]) -> Stats:
        import statistics

        return cls(n=len(values), min=pick(values, "min"), median=pick(values, "median"),
                   max=pick(values, "max"), mean=pick(values, "mean"),
                   stdev=float(statistics.stdev(values)) if len(values) > 1 else 0.0,
                   values=list(values))

    def pick(self, stat: str) -> float:
        """The stored value of a statistic across repeats (``max``, ``min``, ``median``,
        ``mean``); raises ValueError for any other."""
        if stat not in STATISTICS:
            raise ValueError(f"unknown statistic {stat!r}")
        return float(getattr(self, stat))


class Verdict(_Model):
    """The judgement of one rule on one case (or on a whole scenario for fit metrics)."""

    rule: str
    metric: str
    op: str
    bound: float
    stat: str  # the statistic across repeats that was judged
    value: float | None
    passed: bool | None  # None: could not be judged, or skipped (see reason)
    reason: str = ""
    implicit: bool = False  # added by memsla (the build must complete), not written by the user
    skipped: bool = False  # left out by the selection (--only, --size): neither held nor broken
    file: str | None = None
    line: int | None = None
    approximate: bool = False


class Case(_Model):
    """One scenario at one point of its matrix: all its runs, metrics and verdicts."""

    scenario: str
    params: dict[str, int | str]
    size_parameter: str | None = None
    size: int | None = None
    backend: str
    limit: int | None
    approximate: bool = False
    runs: list[Run] = Field(default_factory=list)
    metrics: dict[str, Stats] = Field(default_factory=dict)
    verdicts: list[Verdict] = Field(default_factory=list)
    error: str | None = None  # the case could not be measured at all
    # "traced: why" or "not traced: why" (trace_sizes); None where every case is traced
    trace: str | None = None

    @property
    def label(self) -> str:
        return case_label(self.scenario, self.params)

    def pick(self, metric: str, stat: str = "median") -> float | None:
        """A metric's statistic across the repeats; None where the metric was not measured."""
        stats = self.metrics.get(metric)
        return None if stats is None else stats.pick(stat)


class LineFit(_Model):
    """memory = fixed + marginal x size, by least squares over the fit's sizes."""

    fixed: float
    marginal: float
    r2: float
    residual_sd: float  # sqrt(SSres / (n - 2)); 0 with two sizes

    def at(self, size: float) -> float:
        return self.fixed + self.marginal * size


class GrowthFit(_Model):
    """memory = fixed + coefficient x size^exponent: how the size-dependent part grows."""

    exponent: float
    r2: float
    fixed: float | None = None  # None (with coefficient): upgraded from version 1, which kept
    coefficient: float | None = None  # only the exponent and its R²


class LogLogFit(_Model):
    """ln memory = c + exponent x ln size: the plain log-log slope, fixed overhead mixed in."""

    exponent: float
    r2: float


class Prediction(_Model):
    """The fitted memory at a size that was not measured."""

    size: int
    value: float  # the linear fit
    low: float | None  # its 95% prediction interval; None: unbounded (fewer than 3 sizes)
    high: float | None
    power_value: float | None  # the growth model, which differs when the exponent is not ~1
    factor: float  # size / the largest measured size
    beyond_twice: bool = False  # more than 2x the largest measured size: trust it less

    @model_validator(mode="before")
    @classmethod
    def _far(cls, data: Any) -> Any:
        """A version 6 or older prediction says how far it reaches from its factor."""
        if isinstance(data, dict) and "beyond_twice" not in data and "factor" in data:
            return {**data, "beyond_twice": data["factor"] > 2}
        return data

    @property
    def extrapolated(self) -> bool:
        return self.factor > 1


class ScalingFit(_Model):
    """One memory metric of one scenario (one combination of its other matrix axes, ``params``)
    across its sizes: the statistic of each size's repeats, and the models fitted to them."""

    metric: str
    stat: str = "median"
    size_parameter: str
    params: dict[str, int | str] = Field(default_factory=dict)
    sizes: list[int] = Field(default_factory=list)  # ascending
    values: list[float] = Field(default_factory=list)  # one per size
    excluded: list[str] = Field(default_factory=list)  # why a size is not in the fit
    problem: str | None = None  # why the fit cannot be judged; None: it can
    line: LineFit | None = None
    growth: GrowthFit | None = None
    loglog: LogLogFit | None = None
    flat: bool = False  # memory does not measurably change across the sizes
    approximate: bool = False
    predictions: list[Prediction] = Field(default_factory=list)
    outlook: Outlook | None = None  # None: no fit to extrapolate from
    repeats: list[list[float]] = Field(default_factory=list)  # per size: its completed repeats

    @property
    def label(self) -> str:
        return params_label(self.params)

    @property
    def exponent(self) -> float | None:
        """The growth exponent as judged: 0 where memory is flat."""
        if self.flat:
            return 0.0
        return None if self.growth is None else self.growth.exponent


class Outlook(_Model):
    """What a fit says beyond the measured sizes: the memory the better model (the growth
    model where growth is not linear, else the line) expects at ``size``, the first power of ten
    at least 10x the largest measured size, and the size at which it reaches the scenario's
    ``budget`` (its lowest limit, else its tightest peak bound)."""

    size: int
    expected: float
    linear: bool  # the line is the model: the growth exponent is unknown or about 1
    budget: float | None = None
    budget_kind: Literal["limit", "peak bound"] | None = None
    holds_up_to: float | None = None  # None: no budget, or the model never reaches it
    low: float | None = None  # the 95% prediction interval at ``size`` (see Prediction)
    high: float | None = None
    beyond_twice: bool = True  # ``size`` is more than 2x the largest measured size (always,
    # today: the outlook looks 10x past it)


class GrownSite(_Model):
    """An allocation site held at the heap's peak (traced run) that grew from a baseline to
    these results. ``base`` is 0 where the site was not among the baseline's top sites."""

    label: str  # the case
    file: str
    line: int
    function: str | None = None
    base: int
    head: int

    @property
    def grown(self) -> int:
        return self.head - self.base


class LeakTrend(_Model):
    """A Theil-Sen slope per build with its 95% interval and the Mann-Kendall p for growth."""

    slope: float
    low: float
    high: float
    p_increase: float
    significant: bool  # growth is established: the whole interval is above zero
    n: int


class LeakFinding(_Model):
    """The trends of one case's leak run, over its measured calls."""

    case: str
    params: dict[str, int | str] = Field(default_factory=dict)
    per_build: float | None = None  # the heap slope where growth is established, else 0
    heap: LeakTrend | None = None
    rss: LeakTrend | None = None
    objects: LeakTrend | None = None
    problem: str | None = None  # why there is no heap trend to judge
    approximate: bool = False
    record: LeakRecord | None = None


class PhaseSummary(_Model):
    """One phase of a case: medians across the runs that measured each figure."""

    name: str
    python_peak: float | None = None
    peak: float | None = None
    duration: float | None = None
    growth: float | None = None  # cgroup: own peak minus the cgroup's memory at entry
    python_growth: float | None = None  # heap: own peak minus the heap at entry


class CasePhases(_Model):
    """A case's phases in the order they first ran, and the one that uses the most memory:
    the one that added the most (growth), else the one with the highest own peak."""

    case: str
    phases: list[PhaseSummary] = Field(default_factory=list)
    largest: str | None = None
    largest_by: Literal["growth", "python_growth", "peak", "python_peak"] | None = None

    @property
    def top(self) -> PhaseSummary | None:
        return next((p for p in self.phases if p.name == self.largest), None)


class Comparison(_Model):
    """A rule across matrix values judged on one pair of cases: the metric's statistic in the
    case at the left side's values and in the case at the right side's, every other matrix
    parameter (``params``) the same; ``value`` is their ratio or difference."""

    rule: str
    metric: str  # the run metric both sides take
    form: Literal["ratio", "difference"]
    params: dict[str, int | str] = Field(default_factory=dict)  # shared by both cases
    left: str  # the cases' labels
    right: str
    left_stat: str  # the statistic of the repeats taken on each side
    right_stat: str
    left_value: float | None = None
    right_value: float | None = None
    value: float | None = None
    passed: bool | None = None  # None: a side failed or was not measured (see reason)
    reason: str = ""


class ScenarioAnalysis(_Model):
    """What the judging stage found about a scenario, for reports to read."""

    scaling: list[ScalingFit] = Field(default_factory=list)  # by metric, then other axes
    leaks: list[LeakFinding] = Field(default_factory=list)
    phases: list[CasePhases] = Field(default_factory=list)
    grown_sites: list[GrownSite] = Field(default_factory=list)  # against the baseline, if any
    comparisons: list[Comparison] = Field(default_factory=list)  # rules across matrix values

    def fits(self, metric: str) -> list[ScalingFit]:
        return [f for f in self.scaling if f.metric == metric]

    def phases_of(self, case: str) -> CasePhases | None:
        return next((p for p in self.phases if p.case == case), None)


class ScenarioResult(_Model):
    """Verdicts and facts about a scenario as a whole (scaling fits, leaks, phases)."""

    scenario: str
    verdicts: list[Verdict] = Field(default_factory=list)
    analysis: ScenarioAnalysis = Field(default_factory=ScenarioAnalysis)


class Host(_Model):
    """What the numbers were measured on."""

    hostname: str
    kernel: str
    os: str
    python: str
    cpus: int
    memory_total: int
    cgroup_version: int | None
    backend: str
    backend_reason: str
    docker_version: str | None = None
    harness_baseline: int | None = None  # Docker: the idle harness's cgroup peak
    # version 10: the idle harness is in no peak (kept out of the build's cgroup, or subtracted
    # and said so in Run.harness_subtracted); False in older files, whose Docker peaks hold it
    harness_kept_out: bool = False


class Selection(_Model):
    """What ``--only`` and ``--size`` kept of the SLA file (empty: everything)."""

    only: list[str] = Field(default_factory=list)
    sizes: list[int] = Field(default_factory=list)

    @property
    def narrowed(self) -> bool:
        return bool(self.only or self.sizes)

    def describe(self) -> str:
        parts = [f"--only {name}" for name in self.only]
        parts += [f"--size {size}" for size in self.sizes]
        return " ".join(parts)


class Shard(_Model):
    """Which share of a plan one ``runner check --shard K/N`` measured."""

    index: int  # K, from 1
    count: int  # N
    cases: list[str] = Field(default_factory=list)  # this shard's case labels, in plan order
    planned: list[str] = Field(default_factory=list)  # every case of the plan split N ways
    costs_from: str | None = None  # the earlier results whose durations balanced the split


class HistoryChange(_Model):
    """A level shift the change-point detector names on the base line: ``commit`` is the
    first of the new level (``runner.history.detection.Shift``)."""

    commit: str
    subject: str = ""
    before: float  # median level of the segment before, and after
    after: float
    relative: float
    p_value: float
    accepted: bool = False  # accepted in the store: the new level is the reference


class HistoryFigure(_Model):
    """One key metric of one case: this check's median against the base line's recent checks
    in the same environment (never mixed with another environment's)."""

    case: str  # the case label
    metric: str
    head: float  # the median of this check's repeats
    head_noise: float | None = None  # their relative noise (``Stats.noise``)
    # the base window (runner.history.base.window_of, the regression rule's): the median of
    # its values (None: no history) and their relative noise, as the rule judges them
    base: float | None = None
    base_noise: float | None = None
    base_commits: int = 0  # commits in the window
    base_since: str | None = None  # the change point the window starts at, where it cut it
    relative: float | None = None  # (head - base) / |base|
    environment_changed: list[str] = Field(default_factory=list)  # why older points are apart
    changes: list[HistoryChange] = Field(default_factory=list)  # on the base line


class HistoryOutlook(_Model):
    """What a history store says about these results, for reports to show ("Memory over
    time"); attached by ``runner.history.outlook`` before the reports are written."""

    store: str  # where the history was read (a URL without its password)
    branch: str | None = None  # the base line; None: the store's every check in commit order
    window: int  # the most recent commits compared with
    checks: int = 0  # checks the store held
    figures: list[HistoryFigure] = Field(default_factory=list)


class Results(_Model):
    schema_version: int = SCHEMA_VERSION
    memsla_version: str
    created: str  # ISO 8601, UTC
    sla_file: str
    sla_digest: str | None = None  # sha256 of the SLA file's bytes when the check ran
    host: Host
    jobs: int = 1  # cases measured at the same time (--jobs)
    memory_budget: int | None = None  # the sum of limits that may run at once (--jobs > 1)
    shard: Shard | None = None  # this file holds one shard of a plan
    merged_from: list[Shard] = Field(default_factory=list)  # runner merge: the shards joined
    cases: list[Case] = Field(default_factory=list)
    scenarios: list[ScenarioResult] = Field(default_factory=list)
    interrupted: bool = False
    # "running" until the check ends: a file left by a killed runner never reads as a pass
    # "measured": a shard's cases, nothing broken; only ``runner merge`` judges the whole file
    status: Literal["running", "pass", "fail", "error", "interrupted", "measured"] = "running"
    problems: list[str] = Field(default_factory=list)  # why the check as a whole is no pass
    selection: Selection = Field(default_factory=Selection)
    history: HistoryOutlook | None = None  # checked against a history store (version 6)

    @classmethod
    def new(cls, *, sla_file: str, host: Host, memsla_version: str | None = None,
            **fields: Any) -> Results:
        """The results of a check starting now (or, with ``memsla_version``, of runs made by
        that memsla: a merge): the one place their header is filled."""
        import datetime

        from runner import __version__

        created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        return cls(memsla_version=memsla_version or __version__, created=created,
                   sla_file=sla_file, host=host, **fields)

    def scenario(self, name: str) -> ScenarioResult | None:
        return next((s for s in self.scenarios if s.scenario == name), None)

    def all_verdicts(self) -> list[Verdict]:
        verdicts = [v for case in self.cases for v in case.verdicts]
        return verdicts + [v for s in self.scenarios for v in s.verdicts]

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.model_dump_json(indent=1) + "\n", encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> Results:
        """Read a results file, upgrading an older schema version to this one."""
        import json

        data = json.loads(path.read_text(encoding="utf-8"))
        version = data.get("schema_version") if isinstance(data, dict) else None
        if version == 1:
            try:
                data = upgrade_v1(data)
            except (AttributeError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}: cannot upgrade version 1 results: {exc!r}") from None
            version = 2
        if version in (2, 3, 4):  # 2 -> 3 -> 4 only added fields
            data = {**upgrade_heap_figures(data), "schema_version": SCHEMA_VERSION}
        elif version in (5, 6, 7, 8, 9):  # 5 -> ... -> 10 only added fields
            data = {**data, "schema_version": SCHEMA_VERSION}
        elif version != SCHEMA_VERSION:
            raise ValueError(f"{path}: results schema version {version!r}; this memsla reads "
                             f"versions 1 to {SCHEMA_VERSION}")
        return cls.model_validate(data)


def upgrade_heap_figures(data: dict[str, Any]) -> dict[str, Any]:
    """Versions 2 to 4 -> 5: each run's heap figures, which the judging stage of those versions
    derived from the run's ``python`` heaps at judging time, stored as that stage derived them:
    the largest process's peak and final heap, the sums of blocks, bytes and calls (None where
    no process reported one). New runs get them from ``runner.measure.assemble``. Anything not
    shaped as memsla wrote it is left for validation to refuse."""
    cases = data.get("cases")
    for case in cases if isinstance(cases, list) else []:
        runs = case.get("runs") if isinstance(case, dict) else None
        for run in runs if isinstance(runs, list) else []:
            heaps = run.get("python") if isinstance(run, dict) else None
            if isinstance(heaps, list) and all(isinstance(h, dict) for h in heaps):
                for key, value in _heap_figures_v4(heaps).items():
                    run.setdefault(key, value)
    return data


def _heap_figures_v4(heaps: list[dict[str, Any]]) -> dict[str, int | None]:
    def figures(key: str) -> list[int]:
        return [h[key] for h in heaps if isinstance(h.get(key), int)]

    return {"python_peak": max(figures("peak"), default=None),
            "python_final": max(figures("final"), default=None),
            **{run_key: sum(figures(key)) if figures(key) else None
               for run_key, key in (("allocations", "blocks"), ("allocated", "allocated"),
                                    ("allocation_calls", "allocation_calls"))}}


def upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 -> 2: each scenario's untyped ``analysis`` ({"scaling": {group: {metric: fit}},
    "leak": {case: finding}, "phases": {case: summary}}) becomes ScenarioAnalysis's lists."""
    scenarios = []
    for scenario in data.get("scenarios") or []:
        old = dict(scenario.get("analysis") or {})
        unknown = set(old) - {"scaling", "leak", "phases"}
        if unknown:
            raise ValueError(f"version 1 analysis has unknown parts: {', '.join(sorted(unknown))}")
        fits = [_fit_v1(fit) for group in (old.get("scaling") or {}).values()
                for fit in group.values()]
        # Version 1 kept each group's metrics together; version 2 orders by metric first.
        order = list(dict.fromkeys(f["metric"] for f in fits))
        fits.sort(key=lambda f: order.index(f["metric"]))
        leaks = [{**finding, "case": label}
                 for label, finding in (old.get("leak") or {}).items()]
        phases = [{**summary, "case": label}
                  for label, summary in (old.get("phases") or {}).items()]
        scenarios.append({**scenario, "analysis": {"scaling": fits, "leaks": leaks,
                                                   "phases": phases}})
    return {**data, "scenarios": scenarios, "schema_version": 2}


def _fit_v1(old: dict[str, Any]) -> dict[str, Any]:
    """A version 1 ``ScalingFit.to_dict()``: figures flat beside each other."""
    kept = ("metric", "stat", "size_parameter", "params", "sizes", "values", "excluded",
            "problem", "approximate", "flat")
    fit: dict[str, Any] = {k: old[k] for k in kept if k in old}
    if old.get("marginal") is not None:
        fit["line"] = {"fixed": old["fixed"], "marginal": old["marginal"], "r2": old["r2"],
                       "residual_sd": old["residual_sd"]}
    if old.get("exponent") is not None:
        fit["growth"] = {"exponent": old["exponent"], "r2": old["exponent_r2"]}
    if old.get("loglog_exponent") is not None:
        fit["loglog"] = {"exponent": old["loglog_exponent"], "r2": old["loglog_r2"]}
    fit["predictions"] = [{k: v for k, v in p.items() if k != "extrapolated"}
                          for p in old.get("predictions") or []]
    return fit
