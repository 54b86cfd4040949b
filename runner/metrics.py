"""The metric registry: every metric memsla measures or computes, declared once in ``METRICS``
(name, unit, meaning, title, where it is read from a run and where it is born); the statistics
across repeats; and how a case is labelled.

Everything else about a metric is derived from its declaration: the tables other modules read
(``RUN_METRICS``, ``KEY_METRICS``, ``METRIC_TITLES``, ``FITTABLE``, ...), the judging stage's
getters (``judging/statistics.py``), the plot labels, and the metric tables of the README and
``docs/architecture.md`` (``tests/test_metric_registry.py`` checks them). A misspelled metric in
``sla.yaml`` is an error and every report labels a value the same way. Across a case's repeats a
rule judges its ``stat`` (the worst value unless it says otherwise); reports show the median.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from runner.units import Kind, clip, did_you_mean


class Source(str, Enum):
    """Which measurement a metric's value comes from (for run metrics: the kind of run)."""

    TIMED = "timed"  # untraced runs: durations and kernel counters
    TRACED = "traced"  # the separate tracemalloc run: Python heap figures
    FIT = "fit"  # the scaling fit across a scenario's sizes
    LEAK = "leak"  # the repeated-call leak mode
    BASELINE = "baseline"  # a comparison with a baseline results file
    HISTORY = "history"  # a comparison with the base branch's recorded history
    ACROSS = "across"  # one case's figure against another's: ``peak(a=1) / peak(a=2)``


# What a metric describes, and so how a rule names it and where its values are read:
#   run   - one figure per run, the ``Run`` attribute ``field``: ``peak``
#   case  - from the case's size (``field`` of ``Case``), or a run metric per unit of size
#   phase - one figure per phase of a run, the ``PhaseResult`` attribute ``field``:
#           ``phase(NAME).peak``
#   fit   - the scaling fit across a scenario's sizes: ``per_page(rss_peak)``
#   leak  - the leak mode's trend over repeated calls in one process
#   history - a run metric's change against the base branch's recorded history:
#           ``regression(peak)``
#   step  - a run metric of one step of a step scenario, read from that step's own run:
#           ``step(incremental).peak``

#   named - one figure per run for each name the scenario declares, the ``Run`` attribute
#           ``field`` (a dict by name): ``disk(cache)``, ``cache(jinja)``
Scope = Literal["run", "case", "phase", "fit", "leak", "history", "step", "named"]


@dataclass(frozen=True)
class MetricDef:
    """One metric, declared once: every table, getter, report column, plot label and doc table
    of it is derived from this declaration."""

    name: str
    kind: Kind  # its unit
    source: Source
    description: str  # what it means, as the docs and ``runner explain`` say it
    scope: Scope = "run"
    title: str = ""  # its column title and plot label ("" - the name with spaces)
    # where its per-run value is read: the attribute of a ``Run`` (scope run), of a
    # ``PhaseResult`` (phase) or of a ``Case`` (case); a ``StepResult``'s ``run`` (step), read
    # as the run metric M; None - derived as ``per_size`` says
    field: str | None = None
    per_size: str | None = None  # case scope: this run metric divided by the case's size
    born: str = ""  # the function (module.name under runner/) where its per-run value is born
    every_run: bool = False  # about completion itself: judged on every run, failed ones too
    per_run: Literal["max", "sum"] = "max"  # phase scope: a phase entered several times in a run
    fittable: bool = False  # the fit metrics can take it: per_page(NAME)
    # which reports show it: "key" - every case, in this order; "tracker" - where a case has it
    shown: Literal["key", "tracker"] | None = None

    @property
    def label(self) -> str:
        """Its column title and plot label."""
        return self.title or self.name.replace("_", " ")

    @property
    def written(self) -> str:
        """How a rule writes it, with placeholders: ``phase(NAME).peak``, ``per_page(M)``."""
        if self.scope == "phase":
            return f"phase(NAME).{self.name}"
        if self.scope == "step":
            return "step(NAME).M"
        if self.scope in ("fit", "history"):
            return f"{self.name}(M)"
        if self.scope == "named":
            return f"{self.name}(NAME)"
        return self.name

    def read(self, holder: object) -> float | None:
        """Its value in a ``Run`` (``PhaseResult``, ``Case``), by its ``field``."""
        if self.field is None:
            raise ValueError(f"{self.name} is not read from one object: {self.per_size=}")
        value = getattr(holder, self.field)
        return None if value is None else float(value)


# Every metric memsla measures or computes, in the order reports and messages list them.
METRICS: tuple[MetricDef, ...] = (
    MetricDef("peak", Kind.BYTES, Source.TIMED,
              "the cgroup's memory peak (`memory.max_usage_in_bytes` on v1, `memory.peak` on "
              "v2): everything charged to the build, **page cache of the files it writes "
              "included**",
              title="cgroup peak", field="cgroup_peak", born="measure.assemble.cgroup_peak",
              fittable=True, shown="key"),
    MetricDef("rss_peak", Kind.BYTES, Source.TIMED,
              "the anonymous/RSS peak: the larger of the cgroup's anonymous memory sampled "
              "every 20 ms and the largest single process's own max RSS (VmHWM); no page cache",
              field="rss_peak", born="measure.assemble.rss_peak", fittable=True, shown="key"),
    MetricDef("python_peak", Kind.BYTES, Source.TRACED,
              "the traced run's heap peak: tracemalloc's Python heap, or with `tracker: "
              "memray` memray's high-water mark of every allocation, native ones included",
              field="python_peak", born="measure.assemble.python_peak", fittable=True,
              shown="key"),
    MetricDef("python_final", Kind.BYTES, Source.TRACED,
              "the traced run's heap at exit, before the exit's full collection",
              field="python_final", born="measure.assemble.python_final"),
    MetricDef("allocations", Kind.COUNT, Source.TRACED,
              "memory blocks the build's Python processes still hold at exit, after a full "
              "collection: a tripwire that moves when the program's allocations change "
              "(between identical runs: a few blocks in 40,000 for a small program, 0.4% "
              "for Pelican at 500 pages)",
              field="allocations", born="measure.assemble.allocations"),
    MetricDef("allocated", Kind.BYTES, Source.TRACED,
              "`tracker: memray` only: bytes requested by every allocation call over the whole "
              "run, freed or not (memray's total, as `memray stats` and pytest-benchmem report "
              "it; pymalloc's small objects are seen as the arenas it requests); tracemalloc "
              "sees the heap, not the calls",
              field="allocated", born="measure.assemble.allocated", shown="tracker"),
    MetricDef("allocation_calls", Kind.COUNT, Source.TRACED,
              "`tracker: memray` only: allocation calls over the whole run, deallocations not "
              "counted (memray's total, as `memray stats` reports it)",
              field="allocation_calls", born="measure.assemble.allocation_calls",
              shown="tracker"),
    MetricDef("oom_kills", Kind.COUNT, Source.TIMED,
              "processes of the build the kernel's OOM killer took (the cgroup's count: a "
              "grandchild killed while its parent lives counts)",
              field="oom_kills", born="measure.assemble.oom_kills", every_run=True),
    MetricDef("exit_code", Kind.COUNT, Source.TIMED,
              "the build command's exit status (128+N when killed by signal N)",
              field="exit_code", born="measure.assemble.assemble", every_run=True),
    MetricDef("duration", Kind.SECONDS, Source.TIMED,
              "wall-clock time of an untraced build (tracemalloc slows a build about 3.75x)",
              field="duration", born="measure.assemble.assemble", shown="key"),
    MetricDef("cpu_time", Kind.SECONDS, Source.TIMED,
              "user plus system CPU time of an untraced build and its waited-for children",
              field="cpu_time", born="measure.assemble.assemble"),
    MetricDef("pages", Kind.COUNT, Source.TIMED,
              "the case's size: the value of the scenario's size parameter",
              scope="case", field="size", born="judging.statistics.case_series"),
    MetricDef("peak_per_page", Kind.BYTES, Source.TIMED,
              "peak divided by the size (fixed overhead included; see per_page)",
              scope="case", per_size="peak", born="judging.statistics.case_series"),
    MetricDef("rss_per_page", Kind.BYTES, Source.TIMED,
              "rss_peak divided by the size (fixed overhead included; see per_page)",
              scope="case", per_size="rss_peak", born="judging.statistics.case_series"),
    MetricDef("python_peak", Kind.BYTES, Source.TRACED,
              "the phase's **own** heap peak, reset at its start, so it includes what was held "
              "at its entry (memray: the highest of its 10 ms snapshot intervals the phase "
              "overlaps)",
              scope="phase", field="python_peak", born="measure.probe_records.read_probe_dir"),
    MetricDef("peak", Kind.BYTES, Source.TIMED,
              "the phase's **own** cgroup peak, reset at its start, where the host lets the "
              "build reset it",
              scope="phase", field="cgroup_peak", born="measure.probe_records.read_probe_dir"),
    MetricDef("duration", Kind.SECONDS, Source.TIMED,
              "wall-clock time of the phase in an untraced build (its entries in a run summed)",
              scope="phase", field="duration", per_run="sum",
              born="measure.probe_records.read_probe_dir"),
    MetricDef("growth", Kind.BYTES, Source.TIMED,
              "what the phase **added** to the cgroup: its own cgroup peak minus the cgroup's "
              "memory at its entry, where the host lets the build reset the peak; the phase "
              "that uses the most memory is the one that added the most",
              scope="phase", field="cgroup_growth", born="measure.probe_records._growth"),
    MetricDef("python_growth", Kind.BYTES, Source.TRACED,
              "what the phase **added** to the heap: its own heap peak minus the heap at its "
              "entry",
              scope="phase", field="python_growth", born="measure.probe_records._growth"),
    MetricDef("per_page", Kind.BYTES, Source.FIT,
              "marginal memory per unit of size: the slope of memory = fixed + marginal x size "
              "across the matrix's sizes (M: peak, rss_peak or python_peak; peak if omitted)",
              scope="fit", born="judging.scaling.fits"),
    MetricDef("fixed_overhead", Kind.BYTES, Source.FIT,
              "memory at size zero: the intercept of that linear fit",
              scope="fit", born="judging.scaling.fits"),
    MetricDef("scaling_exponent", Kind.NUMBER, Source.FIT,
              "k in memory = fixed + c x size^k: how the size-dependent part grows (1 is "
              "linear; 0 where memory is flat)",
              scope="fit", born="judging.scaling.fits"),
    MetricDef("leak_per_build", Kind.BYTES, Source.LEAK,
              "heap retained per call over repeated calls in one process: the trend's slope "
              "where growth is established, else 0",
              scope="leak", born="judging.leaks.find"),
    MetricDef("regression", Kind.RATIO, Source.HISTORY,
              "relative change of run metric M (`peak`, `rss_peak`, `python_peak`, `duration`, "
              "...) against the base branch's recent history (`--history`): a rule on it fails "
              "only where a significance test says the change is real and it exceeds the bound",
              scope="history", born="judging.history_base.judge_regression"),
    MetricDef("step", Kind.BYTES, Source.TIMED,
              "run metric M (`peak`, `rss_peak`, `duration`, `cpu_time`, `python_peak`, ...) of "
              "one step of a step scenario, measured in its own cgroup reading (the whole run's "
              "figure is the largest of its steps' peaks, the sum of their times and kills)",
              scope="step", field="run", born="measure.assemble.assemble_steps"),
    MetricDef("disk", Kind.BYTES, Source.TIMED,
              "bytes of the regular files a build left in the folder the scenario names NAME "
              "under `disk:` (apparent sizes, symlinks not followed), measured after each "
              "untraced run, outside the measurement",
              scope="named", field="disk", born="measure.assemble.disk_usage"),
    MetricDef("disk_files", Kind.COUNT, Source.TIMED,
              "regular files a build left in that folder, counted with `disk(NAME)`",
              scope="named", field="disk_files", born="measure.assemble.disk_usage"),
    MetricDef("cache", Kind.BYTES, Source.TRACED,
              "the heap the program's cache objects hold at the heap's peak: the bytes of the "
              "allocation sites at the peak (the probe's top sites) whose file path starts, at "
              "a folder boundary, with the prefix the scenario names NAME under `cache_sites:`",
              scope="named", field="cache", born="measure.assemble.cache_held"),
)

# The tables other modules read, each derived from METRICS.
RUN_METRICS: dict[str, MetricDef] = {m.name: m for m in METRICS if m.scope in ("run", "case")}
PHASE_METRICS: dict[str, MetricDef] = {m.name: m for m in METRICS if m.scope == "phase"}
# Fit metrics take the memory metric they describe as an optional argument: per_page(rss_peak).
FIT_METRICS: dict[str, MetricDef] = {m.name: m for m in METRICS if m.scope == "fit"}
OTHER_METRICS: dict[str, MetricDef] = {m.name: m for m in METRICS if m.scope == "leak"}
# History metrics take the run metric they compare: regression(peak). Every memsla metric is
# one where more is worse (memory, time, counts), so an increase is a regression.
HISTORY_METRICS: dict[str, MetricDef] = {m.name: m for m in METRICS if m.scope == "history"}
# regression(M)'s base window: the base branch's most recent N commits (a default of the
# judging stage and of the history's readers, kept here so the CLI's parser imports neither).
DEFAULT_COMMITS = 20
# Metrics per name the scenario declares: disk(NAME), disk_files(NAME), cache(NAME).
NAMED_METRICS: dict[str, MetricDef] = {m.name: m for m in METRICS if m.scope == "named"}
# The run metrics a history can hold and judge: per-run figures, not completion facts.
HISTORIED = tuple(m.name for m in RUN_METRICS.values() if m.scope == "run" and not m.every_run)
# A step has every figure of a run (step(NAME).M): read from the step's own ``Run``.
STEP_METRICS: dict[str, MetricDef] = {m.name: m for m in RUN_METRICS.values() if m.scope == "run"}
FITTABLE = tuple(m.name for m in RUN_METRICS.values() if m.fittable)
# A fit is judged only across at least this many sizes: two points always fit a line exactly,
# so R^2 and the prediction interval mean nothing. The SLA file is checked against it at load.
MIN_SIZES = 3

GROWTH_SUFFIX = "_growth"


def baseline_growth(of: str) -> MetricDef:
    """``<metric>_growth``: the relative change of a run metric against a baseline results
    file (``of="<metric>"`` gives the template the docs list)."""
    return MetricDef(f"{of}{GROWTH_SUFFIX}", Kind.RATIO, Source.BASELINE,
                     f"relative change of `{of}` against the baseline (`--baseline BASE.json`)",
                     scope="case", born="judging.baseline.judge_growth")


_REF = re.compile(
    r"^(?:phase\((?P<phase>[^()]+)\)\.(?P<phase_metric>\w+)"
    r"|step\((?P<step>[^()]+)\)\.(?P<step_metric>\w+)"
    r"|(?P<name>\w+)(?:\((?P<arg>\w+)\))?)$"
)


@dataclass(frozen=True)
class MetricRef:
    """A metric as written in a rule: ``peak``, ``phase(render).python_peak``,
    ``per_page(rss_peak)`` or ``peak_growth``."""

    name: str
    phase: str | None = None
    of: str | None = None  # the metric a fit metric describes; a named metric's name
    across: Across | None = None  # a rule across matrix values: the two cases it compares
    step: str | None = None  # step(NAME).M: the run metric ``name`` of that step

    @property
    def key(self) -> str:
        if self.across is not None:
            return self.across.text(self.name)
        if self.step is not None:
            return f"step({self.step}).{self.name}"
        if self.phase is not None:
            return f"phase({self.phase}).{self.name}"
        if self.of is not None:
            return f"{self.name}({self.of})"
        return self.name

    @property
    def definition(self) -> MetricDef:
        return definition_of(self)

    @property
    def baseline_growth(self) -> bool:
        """``peak_growth``: a relative change against a baseline (a phase's ``python_growth``
        is bytes the phase added)."""
        return (self.phase is None and self.step is None and self.name.endswith(GROWTH_SUFFIX)
                and self.name not in RUN_METRICS)

    @property
    def kind(self) -> Kind:
        if self.across is not None and self.across.form == "ratio":
            return Kind.NUMBER
        if self.baseline_growth:
            return Kind.RATIO
        return self.definition.kind

    @property
    def source(self) -> Source:
        if self.across is not None:
            return Source.ACROSS
        if self.baseline_growth:
            return Source.BASELINE
        return self.definition.source


Selector = tuple[tuple[str, str], ...]  # (matrix parameter, value as written), in order


@dataclass(frozen=True)
class Across:
    """A rule across matrix values: the run metric of the case at ``left`` against the case at
    ``right``, every other matrix parameter the same; their ratio or their difference."""

    form: Literal["ratio", "difference"]
    left: Selector
    right: Selector

    @property
    def keys(self) -> tuple[str, ...]:
        """The matrix parameters the two sides choose values of."""
        return tuple(key for key, _ in self.left)

    def side_text(self, name: str, side: Selector) -> str:
        return f"{name}(" + ", ".join(f"{k}={v}" for k, v in side) + ")"

    def text(self, name: str) -> str:
        sign = "/" if self.form == "ratio" else "-"
        return f"{self.side_text(name, self.left)} {sign} {self.side_text(name, self.right)}"


_TERM = r"\s*(?P<{0}>\w+)\((?P<{0}_sel>[^()]*=[^()]*)\)\s*"
_ACROSS = re.compile(f"^{_TERM.format('a')}(?:(?P<sign>[/-]){_TERM.format('b')})?$")
_SELECTOR = re.compile(r"^\s*(?P<key>[^=,\s]+)\s*=\s*(?P<value>[^=,]*?)\s*$")


def is_across_term(text: str) -> bool:
    """Whether ``text`` is one side of a rule across matrix values: ``peak(py=3.12)``."""
    match = _ACROSS.match(text)
    return match is not None and match.group("sign") is None


def parse_across(text: str, right: str | None = None) -> MetricRef | None:
    """``peak(a=1) / peak(a=2)`` or ``peak(a=1) - peak(a=2)`` (or the two sides of
    ``peak(a=1) <= peak(a=2)``, given apart: their difference) as a metric; None where ``text``
    names no matrix values. Raises ValueError for a malformed one."""
    match = _ACROSS.match(text)
    if match is None:
        return None
    if match.group("sign") is None:
        if right is None:
            raise ValueError(
                f"{clip(text.strip())} names matrix values, so it compares two cases: write "
                "e.g. 'peak(parallel=true) / peak(parallel=false) < 1.3' or "
                "'duration(py=3.13) <= duration(py=3.11)' ('when:' scopes a rule to values)")
        other = _ACROSS.match(right)
        if other is None or other.group("sign") is not None:
            raise ValueError(f"{clip(text.strip())} is compared with {clip(right.strip())}: "
                             "write the same metric at other matrix values, e.g. "
                             "'duration(py=3.13) <= duration(py=3.11)'")
        form, names, sels = "difference", (match["a"], other["a"]), (match["a_sel"],
                                                                     other["a_sel"])
    else:
        form = "ratio" if match["sign"] == "/" else "difference"
        names, sels = (match["a"], match["b"]), (match["a_sel"], match["b_sel"])
    if names[0] != names[1]:
        raise ValueError(f"{clip(text.strip())}: both sides take the same metric "
                         f"({names[0]} and {names[1]} differ)")
    name = names[0]
    if name not in RUN_METRICS or RUN_METRICS[name].scope != "run":
        raise ValueError(f"{name}(...) at matrix values: a rule across matrix values compares "
                         "a run metric (" + ", ".join(m for m, d in RUN_METRICS.items()
                                                      if d.scope == "run") + ")")
    left, right_side = _selector(sels[0]), _selector(sels[1])
    if [k for k, _ in left] != [k for k, _ in right_side]:
        raise ValueError(f"{clip(text.strip())}: both sides name the same matrix parameters "
                         "in the same order, at other values")
    if left == right_side:
        raise ValueError(f"{clip(text.strip())}: both sides name the same case")
    return MetricRef(name=name, across=Across(form, left, right_side))  # type: ignore[arg-type]


def _selector(text: str) -> Selector:
    pairs: list[tuple[str, str]] = []
    for part in text.split(","):
        match = _SELECTOR.match(part)
        if match is None or not match["value"]:
            raise ValueError(f"cannot read {clip(part.strip())}: a side names matrix values as "
                             "PARAMETER=VALUE, separated by commas")
        if any(key == match["key"] for key, _ in pairs):
            raise ValueError(f"{clip(match['key'])} is named twice on one side")
        pairs.append((match["key"], match["value"]))
    return tuple(pairs)


def definition_of(ref: MetricRef) -> MetricDef:
    if ref.step is not None:  # a step's figure is defined as the run's
        return RUN_METRICS[ref.name]
    if ref.phase is not None:
        return PHASE_METRICS[ref.name]
    if ref.name in FIT_METRICS:
        return FIT_METRICS[ref.name]
    if ref.name in OTHER_METRICS:
        return OTHER_METRICS[ref.name]
    if ref.name in HISTORY_METRICS:
        return HISTORY_METRICS[ref.name]
    if ref.name in NAMED_METRICS:
        return NAMED_METRICS[ref.name]
    if ref.name.endswith(GROWTH_SUFFIX) and ref.name not in RUN_METRICS:
        return baseline_growth(RUN_METRICS[ref.name[: -len(GROWTH_SUFFIX)]].name)
    return RUN_METRICS[ref.name]


def all_names() -> list[str]:
    """Every name a rule may use, for error messages and 'did you mean'."""
    names = [*RUN_METRICS, *FIT_METRICS, *OTHER_METRICS]
    names += [f"{name}(M)" for name in HISTORY_METRICS]
    names += [f"{name}(NAME)" for name in NAMED_METRICS]
    names += [f"{name}{GROWTH_SUFFIX}" for name in RUN_METRICS]
    names += [f"phase(NAME).{name}" for name in PHASE_METRICS]
    names += [f"step(NAME).{name}" for name in STEP_METRICS]
    return names


def parse_metric(text: str) -> MetricRef:
    """Parse a metric reference; raises ValueError naming the accepted metrics."""
    match = _REF.match(text.strip())
    across = parse_across(text) if not match and "=" in text else None
    if across is not None:
        return across
    if not match:
        raise ValueError(f"cannot read metric {clip(text.strip())}")
    if match.group("phase") is not None:
        name, phase = match.group("phase_metric"), match.group("phase").strip()
        if not phase:
            raise ValueError(f"{clip(text.strip())}: the phase name is empty")
        if name not in PHASE_METRICS:
            hint = did_you_mean(name, PHASE_METRICS)
            raise ValueError(f"unknown phase metric {clip(name)}{hint}; phases have "
                             f"{', '.join(PHASE_METRICS)}")
        return MetricRef(name=name, phase=phase)
    if match.group("step") is not None:
        name, step = match.group("step_metric"), match.group("step").strip()
        if not step:
            raise ValueError(f"{clip(text.strip())}: the step name is empty")
        if name not in STEP_METRICS:
            hint = did_you_mean(name, STEP_METRICS)
            raise ValueError(f"unknown step metric {clip(name)}{hint}; steps have "
                             f"{', '.join(STEP_METRICS)}")
        return MetricRef(name=name, step=step)
    name, arg = match.group("name"), match.group("arg")
    if name in FIT_METRICS:
        if arg is not None and arg not in FITTABLE:
            raise ValueError(f"{name}({arg}): the fit takes one of {', '.join(FITTABLE)}")
        return MetricRef(name=name, of=arg or "peak")
    if name in HISTORY_METRICS:
        if arg not in HISTORIED:
            raise ValueError(f"{name}({arg or ''}) takes the run metric it compares: one of "
                             f"{', '.join(HISTORIED)}")
        return MetricRef(name=name, of=arg)
    if name in NAMED_METRICS:
        if arg is None:
            raise ValueError(f"{name}(NAME) takes the name the scenario gives it, e.g. "
                             f"{name}(cache)")
        return MetricRef(name=name, of=arg)
    if name in ("phase", "step") and arg is not None:
        raise ValueError(f"{clip(text.strip())} needs the {name}'s metric, e.g. "
                         f"{name}({arg}).peak; {name}s have "
                         f"{', '.join(PHASE_METRICS if name == 'phase' else STEP_METRICS)}")
    if arg is not None:
        raise ValueError(f"metric {clip(name)} takes no argument")
    known = name in RUN_METRICS or name in OTHER_METRICS or (
        name.endswith(GROWTH_SUFFIX) and name[: -len(GROWTH_SUFFIX)] in RUN_METRICS)
    if not known:
        hint = did_you_mean(name, all_names())
        raise ValueError(f"unknown metric {clip(name)}{hint}")
    return MetricRef(name=name)


# The metrics every report shows for a case, in this order, and the figures only some trackers
# give (memray), which every report shows where a case has them; with their column titles.
KEY_METRICS = tuple(m.name for m in RUN_METRICS.values() if m.shown == "key")
TRACKER_METRICS = tuple(m.name for m in RUN_METRICS.values() if m.shown == "tracker")
METRIC_TITLES = {m.name: m.label for m in RUN_METRICS.values()}

Statistic = Literal["max", "min", "median", "mean"]
STATISTICS: tuple[Statistic, ...] = ("max", "min", "median", "mean")


def pick(values: Sequence[float], stat: str) -> float:
    """The value of a statistic across repeats (``max``, ``min``, ``median`` or ``mean``)."""
    import statistics

    if not values:
        raise ValueError("no values to pick from")
    if stat == "min":
        return float(min(values))
    if stat == "median":
        return float(statistics.median(values))
    if stat == "mean":
        return float(statistics.fmean(values))
    if stat == "max":
        return float(max(values))
    raise ValueError(f"unknown statistic {stat!r}")


def params_label(params: Mapping[str, object]) -> str:
    """``pages=500, theme=dark``: a point of a scenario's matrix."""
    return ", ".join(f"{key}={value}" for key, value in params.items())


def case_label(scenario: str, params: Mapping[str, object]) -> str:
    """``pelican[pages=500]``: how every report and message names a case."""
    shown = params_label(params)
    return f"{scenario}[{shown}]" if shown else scenario


def reads_heap(ref: MetricRef) -> bool:
    """Whether a rule on ``ref`` needs the traced run's heap figures where it applies: a traced
    metric itself (of a run, a phase, a step or two cases across), or a fit, history or
    baseline figure made of one."""
    if ref.definition.source is Source.TRACED:
        return True
    if ref.phase is None and ref.step is None and (
            ref.name in FIT_METRICS or ref.name in HISTORY_METRICS):
        base = RUN_METRICS.get(ref.of or "peak")
        return base is not None and base.source is Source.TRACED
    if ref.baseline_growth:
        return RUN_METRICS[ref.name[: -len(GROWTH_SUFFIX)]].source is Source.TRACED
    return False


def reads_full_capture(ref: MetricRef) -> bool:
    """Whether a rule on ``ref`` reads what only memray's full capture holds: the totals over
    the run (``allocated``, ``allocation_calls``) or a phase's heap figures; the high-water
    mark, the heap at exit and the sites at the peak are in its aggregated capture too."""
    if ref.phase is not None:
        return ref.definition.source is Source.TRACED
    name = ref.of if ref.name in FIT_METRICS or ref.name in HISTORY_METRICS else ref.name
    if ref.baseline_growth:
        name = ref.name[: -len(GROWTH_SUFFIX)]
    return name in TRACKER_METRICS
