"""The backend plug-in layer: what every backend takes (a RunRequest, with the backend's own
part in ``options``) and gives (the raw ``Readings`` of ``runner.measure.readings``, which
``runner.measure.assemble`` turns into a run)."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from runner.errors import HostError

if TYPE_CHECKING:  # annotations only: the CLI's parser reads the registry through this package
    from runner.measure.readings import Readings
    from runner.plan import CasePlan


@dataclass(frozen=True)
class BackendOptions:
    """A backend's own part of a run request, beyond what every backend takes (Docker: the
    image and the container settings). Made by the backend itself from the case
    (``Backend.case_options``); generic code carries it without looking inside."""


@dataclass
class RunRequest:
    """One build to run. Paths are host paths; a backend maps them where the build sees them."""

    argv: list[str]
    env: dict[str, str]  # added to (or, for containers, forming) the build's environment
    workdir: Path
    limit: int | None
    timeout: float
    sample_interval: float
    trace: bool  # switch tracemalloc on in the probe
    probe_stage: Path  # the staged probe folder (runner.measure.staging.stage)
    probe_out: Path  # an empty folder the probe writes into
    output: Path  # the build's writable output folder
    scratch: Path  # the runner's own scratch folder for this run (logs)
    fixture: Path | None = None
    fixture_copy: Path | None = None  # a per-run writable copy of the fixture, if asked for
    options: BackendOptions | None = None  # the backend's own part (Backend.case_options)
    cpus: tuple[int, ...] | None = None  # confine the build to these CPUs (confines_cpus only)


@dataclass(frozen=True)
class CaseEnvironment:
    """What a case needs besides its command: its plan (scenario and settings), the folder its
    relative paths start from, and the requirements and project it installs."""

    plan: CasePlan
    spec_dir: Path
    requirements: tuple[str, ...]
    project_wheel: Path | None  # built on the host (runner.workload.project)
    project_hash: str | None
    python: str | None = None  # X.Y the build's interpreter must be (python: naming a version)
    log: Callable[[str], None] = field(default=lambda message: None, compare=False)


class BackendError(HostError):
    """The backend cannot run builds on this host (exit 3)."""


class Backend(abc.ABC):
    """Runs one build at a time, isolated and measured; cleans up whatever it started."""

    name: str
    where: str = ""  # where builds run, in words: "a Docker container", ...
    approximate: bool = False
    hard_limit: bool = True
    cgroup_version: int | None = None
    engine_version: str | None = None  # Docker: the engine's version
    harness_baseline: int | None = None  # the idle harness's peak, where a harness runs builds
    # True: that idle harness is in no figure (kept out of the build's cgroup, or subtracted)
    harness_kept_out: bool = False
    # True: the build runs with the host's programs, so the runner provisions the scenario's
    # requirements in a virtualenv; False: the backend's environment (an image) brings them.
    uses_host_environment: bool = True
    # True: RunRequest.cpus confines the build to those CPUs, and ``run`` may be called from
    # several threads at once (runner check --jobs); False: one build at a time.
    confines_cpus: bool = False

    def placeholder_paths(self, fixture: Path | None, output: Path, scratch: Path,
                          fixture_copy: Path | None = None) -> dict[str, str]:
        """The path placeholders as the build sees them (containers mount them elsewhere)."""
        return {"fixture": str(fixture or ""), "output": str(output), "scratch": str(scratch),
                "fixture_copy": str(fixture_copy or "")}

    def case_options(self, case: CaseEnvironment) -> BackendOptions | None:
        """This backend's own part of every run request of ``case`` (None: it needs none). A
        backend that runs builds in images makes (or reuses) here the image holding the
        scenario's requirements and project; the others have them installed on the host."""
        return None

    @abc.abstractmethod
    def run(self, request: RunRequest) -> Readings:
        """Run the build to completion, timeout or kill, and say what was read about it (raw:
        no figure is derived here); never leave anything behind."""

    def interrupt(self) -> None:  # noqa: B027 - only backends that confine CPUs need it
        """Kill every build this backend runs now; called from another thread on Ctrl-C while
        several builds run (each ``run`` then returns, and cleans up as usual)."""

    def remove_leftovers(self) -> list[str]:
        """Remove what a crashed earlier runner left (cgroups, containers); says what."""
        return []

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release what the backend holds (clients, parent cgroups)."""
