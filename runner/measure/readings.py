"""What a backend read about one build, and nothing derived from it.

Every backend returns a ``Readings``; ``runner.measure.assemble`` alone turns it (with the
probe's records) into the figures of a ``Run``. A reading a backend cannot take stays None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from runner.results import LimitChange, Timeline

# How a duration was taken: "build" - next to the build, from its start to its wait4 (by the
# runner, or by the harness inside a container or scope); "outside" - the wall clock around a
# container or scope whose harness left no report, its start-up included.
DurationSource = Literal["build", "outside"]


@dataclass
class Readings:
    """The raw readings of one build: exit status, clocks, kernel files, samplers, engine."""

    exit_code: int | None
    duration: float
    duration_source: DurationSource = "build"
    signal: int | None = None
    timed_out: bool = False
    cpu_time: float | None = None  # user + system of the build's process tree (wait4)
    # -- the cgroup (local, scope, container) ---------------------------------------------------
    kernel_peak: int | None = None  # the cgroup's peak file, read after the build
    sampled_max_usage: int | None = None  # the sampler's largest charged memory
    sampled_max_anon: int | None = None  # the sampler's largest anonymous memory
    anon_at_end: int | None = None  # anonymous memory read after the build
    cache_at_max: int | None = None  # page cache in the sample of the largest charged memory
    oom_kill_counter: int | None = None  # the kernel's oom_kill count for the cgroup
    limit_read: int | None = None  # the hard limit read back from the cgroup after the build
    # every change of a limit of the build's cgroups, seen during the build or after it
    limit_changes: list[LimitChange] = field(default_factory=list)
    swap_allowed: bool | None = None  # the cgroup (or engine) lets the build swap
    # -- outside the cgroup -----------------------------------------------------------------------
    tree_rss_max: int | None = None  # process backend: largest sampled sum of the tree's RSS
    engine_oom_killed: bool = False  # Docker: State.OOMKilled
    limit_set: int | None = None  # the hard limit the backend asked for (None: none enforced)
    timeline: Timeline | None = None
    stderr_tail: str = ""
    notes: list[str] = field(default_factory=list)  # what the backend alone can say
    # the idle harness's own peak, shared with the build's cgroup where the engine cannot give
    # the build a cgroup of its own: assemble subtracts it from the cgroup's figures
    harness_share: int | None = None
