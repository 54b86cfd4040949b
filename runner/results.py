"""The results model: every measured number, in bytes and seconds, as versioned JSON.

All result types live here. Reports and analysis read these models; only the executor writes them.
Format history (``schema_version``):
  1 - first version.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from runner.metrics import case_label

SCHEMA_VERSION = 1
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


class AllocationSite(_Model):
    file: str
    line: int
    size: int
    count: int


class PhaseResult(_Model):
    """One ``runner.phase`` block of one run. Peaks are the phase's own, reset at its start."""

    name: str
    depth: int = 0
    start: float  # seconds since the build started
    end: float | None = None  # None: the build died inside the phase
    python_peak: int | None = None
    cgroup_peak: int | None = None  # None where the host does not let the build reset the peak
    top_allocations: list[AllocationSite] = Field(default_factory=list)

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end - self.start


class PythonHeap(_Model):
    """tracemalloc figures of the traced run, one entry per Python process of the build."""

    pid: int
    peak: int
    final: int | None = None  # None: the process died before it could report
    blocks: int | None = None
    vm_hwm: int | None = None  # the process's own RSS high-water mark (VmHWM)
    complete: bool = True  # False: only periodic flushes were found (killed process)
    top_allocations: list[AllocationSite] = Field(default_factory=list)


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
    limit: int | None = None
    approximate: bool = False
    python: list[PythonHeap] = Field(default_factory=list)
    phases: list[PhaseResult] = Field(default_factory=list)
    timeline: Timeline | None = None
    leak: LeakRecord | None = None  # kind "leak": what the driver recorded (None: never started)
    stderr_tail: str = ""
    notes: list[str] = Field(default_factory=list)

    @property
    def completed(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and self.oom_kills == 0

    @property
    def python_peak(self) -> int | None:
        return max((p.peak for p in self.python), default=None)


class Stats(_Model):
    """One metric across the repeats of a case."""

    n: int
    min: float
    median: float
    max: float
    mean: float
    stdev: float
    values: list[float]

    @classmethod
    def of(cls, values: list[float]) -> Stats:
        return cls(n=len(values), min=min(values), median=float(statistics.median(values)),
                   max=max(values), mean=float(statistics.fmean(values)),
                   stdev=float(statistics.stdev(values)) if len(values) > 1 else 0.0,
                   values=list(values))


class Verdict(_Model):
    """The judgement of one rule on one case (or on a whole scenario for fit metrics)."""

    rule: str
    metric: str
    op: str
    bound: float
    stat: str  # the statistic across repeats that was judged
    value: float | None
    passed: bool | None  # None: could not be judged (see reason)
    reason: str = ""
    implicit: bool = False  # added by memsla (the build must complete), not written by the user
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

    @property
    def label(self) -> str:
        return case_label(self.scenario, self.params)


class ScenarioResult(_Model):
    """Verdicts and facts about a scenario as a whole (scaling fits, leaks)."""

    scenario: str
    verdicts: list[Verdict] = Field(default_factory=list)
    analysis: dict[str, object] = Field(default_factory=dict)


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


class Results(_Model):
    schema_version: int = SCHEMA_VERSION
    memsla_version: str
    created: str  # ISO 8601, UTC
    sla_file: str
    host: Host
    cases: list[Case] = Field(default_factory=list)
    scenarios: list[ScenarioResult] = Field(default_factory=list)
    interrupted: bool = False
    # "running" until the check ends: a file left by a killed runner never reads as a pass
    status: Literal["running", "pass", "fail", "error", "interrupted"] = "running"
    problems: list[str] = Field(default_factory=list)  # why the check as a whole is no pass

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
        import json

        data = json.loads(path.read_text(encoding="utf-8"))
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"{path}: results schema version {version!r}; this memsla reads "
                             f"version {SCHEMA_VERSION}")
        return cls.model_validate(data)
