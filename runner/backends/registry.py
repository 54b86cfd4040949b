"""The one list of backends, and the policy that picks one for a scenario.

Each backend is declared once (``BACKENDS``, in ``auto``'s order of preference): its name, where
its builds run, the settings it cannot honour and why, how it is made, and what ``auto`` says
when it picks it. Everything else is read from here: the CLI's ``--backend`` choices, what
``auto`` picks and why, the "not honoured" errors, and (checked by
``tests/test_backend_registry.py``) the SLA file's allowed values and the docs' tables.

``BackendPool`` holds the backends of one check: it gives every case a backend that honours
its scenario's settings, makes each backend once, and keeps why it was chosen. For a scenario
with requirements, a project or a Python version, ``auto`` prefers a container where the
scenario's image can be built there (memsla builds it now, before the first case) and falls
back to a host backend, saying why, where it cannot.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from runner.backends.interface import Backend, BackendError
from runner.errors import SpecError

if TYPE_CHECKING:  # imported where used: the CLI's --backend choices read this module
    from runner.plan import CasePlan
    from runner.slafile.model import Scenario, Settings

AUTO = "auto"


@dataclass(frozen=True)
class BackendSpec:
    """One backend, declared once."""

    name: str  # as written in sla.yaml and on the command line
    where: str  # where its builds run, in words
    title: str  # the backend in a few words, as auto's reasons name it
    make: Callable[[str | None], Backend]  # given the scenario's image (only some read it)
    picked: Callable[[Backend, str], str]  # auto's reason when it answers, given the image
    # settings it cannot honour, each with why ("the <name> backend <why>")
    cannot_honour: Mapping[str, str]
    # builds run with the host's programs (else in an image, which a scenario's requirements,
    # project or Python version must be built into before auto may pick it)
    on_host: bool = True


def _make_docker(image: str | None) -> Backend:
    """A client of the engine (with ``image`` checked); this runner's watchdog is told, so that
    it removes the runner's containers if the runner dies."""
    try:
        from runner.backends.docker import DockerBackend
    except ImportError as exc:
        raise BackendError(f"the docker backend is unavailable ({exc}): pip install "
                           "'docker>=7'") from None
    from runner.inbuild import reaper

    backend = DockerBackend(image_required=image)
    reaper.watch_docker()
    return backend


def _make_cgroup(image: str | None) -> Backend:
    """A child of the runner's own cgroup; failing that (no root), a systemd user scope."""
    from runner.backends.local import CgroupBackend

    try:
        return CgroupBackend()
    except BackendError as exc:
        if shutil.which("systemd-run") is None:
            raise
        from runner.backends.scope import ScopeBackend

        try:
            return ScopeBackend()
        except BackendError as scope_exc:
            raise BackendError(f"{exc}; {scope_exc}") from None


def _make_process(image: str | None) -> Backend:
    from runner.backends.process import ProcessBackend

    return ProcessBackend()


# Settings only a container backend honours: what a host backend says of each.
_CONTAINER_SETTINGS = {
    "image": "runs builds on this host, not in a Docker image",
    "docker": "runs builds on this host: the container options (network, read-only root, "
              "pids limit, tmpfs) do not apply",
    "dockerfile": "runs builds on this host, not in an image built from a Dockerfile",
}

BACKENDS: tuple[BackendSpec, ...] = (
    BackendSpec(
        name="docker", where="a Docker container", title="Docker", make=_make_docker,
        picked=lambda backend, image: f"Docker engine answers and image {image} exists",
        cannot_honour={
            "python": "runs the image's python3: a host interpreter's path cannot run in a "
                      "container (name a version, e.g. python: '3.12': memsla checks the "
                      "image: has it, or without one copies this host's Python of that "
                      "version into its base)",
        },
        on_host=False),
    BackendSpec(
        name="cgroup", where="a local memory cgroup (or a delegated systemd user scope)",
        title="a local cgroup", make=_make_cgroup,
        picked=lambda backend, image: f"{backend.where} (hard limit, kernel peak)",
        cannot_honour=_CONTAINER_SETTINGS),
    BackendSpec(
        name="process", where="the process tree, without a cgroup (approximate)",
        title="the process tree", make=_make_process,
        picked=lambda backend, image: "no hard limit available",
        cannot_honour=_CONTAINER_SETTINGS),
)

# Every setting some backend cannot honour.
RESTRICTED = frozenset(key for spec in BACKENDS for key in spec.cannot_honour)


def names() -> tuple[str, ...]:
    """The backends' names, in auto's order of preference."""
    return tuple(spec.name for spec in BACKENDS)


def choices() -> tuple[str, ...]:
    """What ``backend:`` and ``--backend`` accept."""
    return (AUTO, *names())


def spec_of(name: str) -> BackendSpec:
    for spec in BACKENDS:
        if spec.name == name:
            return spec
    raise BackendError(f"unknown backend {name!r}")


def create(name: str, image: str | None = None) -> Backend:
    """The backend called ``name``; one that runs images checks ``image`` (exists, fits the
    engine) now."""
    return spec_of(name).make(image)


def unhonoured(name: str, explicit: set[str]) -> list[tuple[str, str]]:
    """The settings written for a scenario (``explicit_settings``) that backend ``name`` cannot
    honour, each with the reason; empty: it honours them all."""
    return [(key, f"the {name} backend {why}") for key, why in spec_of(name).cannot_honour.items()
            if key in explicit]


def explicit_settings(scenario: Scenario, defaults: Settings) -> set[str]:
    """The settings the SLA file writes for ``scenario`` (its own and the defaults) that not
    every backend honours: a ``python:`` naming a version (at every matrix value, for a
    version sweep) is honoured by all."""
    from runner.slafile.model import python_version

    explicit = (set(scenario.model_fields_set) | set(defaults.model_fields_set)) & RESTRICTED
    choices = scenario.python_choices
    if choices and all(python_version(python) is not None for python in choices):
        explicit.discard("python")
    return explicit


def candidates(explicit: set[str]) -> tuple[list[BackendSpec], str]:
    """The backends ``auto`` may pick for a scenario that writes ``explicit`` settings, best
    first, and the reason when that is not every backend. Raises ValueError for settings no
    backend honours together (the caller names their lines)."""
    able = [spec for spec in BACKENDS if not explicit & set(spec.cannot_honour)]
    if not able:
        honoured_by: dict[tuple[str, ...], list[str]] = {}  # backends -> the keys they honour
        for key in sorted(explicit):
            honoured_by.setdefault(tuple(s.name for s in BACKENDS if key not in s.cannot_honour),
                                   []).append(key)
        raise ValueError(" and ".join(
            f"{', '.join(keys)} need {_in_words([spec_of(name) for name in names])}"
            for names, keys in honoured_by.items()) + ": no backend honours both")
    if len(able) < len(BACKENDS):
        return able, (f"the scenario sets {', '.join(sorted(explicit))}, which only "
                      f"{_in_words(able)} honours")
    return able, ""


def _in_words(specs: Sequence[BackendSpec]) -> str:
    if all(spec.on_host for spec in specs) and len(specs) > 1:
        return "a host backend"
    return " or ".join(spec.title for spec in specs)


def select(among: Sequence[BackendSpec] = BACKENDS, image: str | None = None,
           why: str = "") -> tuple[Backend, str]:
    """The first of ``among`` this host can make, with the reason in words (``why`` first).
    A backend the settings left no choice of needs no further reason."""
    from runner.slafile.model import BUILTIN_SETTINGS

    image = image or BUILTIN_SETTINGS.image
    failures: list[str] = []
    for spec in among:
        try:
            # a backend the settings leave no choice of checks each case's image with the case
            backend = spec.make(image if len(among) > 1 else None)
        except BackendError as exc:
            if spec is among[-1]:
                raise
            failures.append(f"{spec.name}: {exc}")
            continue
        if len(among) == 1 and why:
            return backend, why
        found = spec.picked(backend, image)
        if failures:
            found += f" ({'; '.join(failures)})" if spec is among[-1] else f"; {failures[0]}"
        return backend, f"{why}; {found}" if why else found
    raise BackendError("no backend to choose from")


def needs_image(plans: Sequence[CasePlan]) -> bool:
    """Whether a container backend must build an image of its own for these cases (of one
    scenario): they install requirements or a project, or name a Python version."""
    return any(plan.requirements or plan.python or plan.scenario.project is not None
               for plan in plans)


class BackendPool:
    """The backends of one check: each made once, on first use, and kept with why it was
    chosen. ``before_new(first)`` runs before each is made (the session's housekeeping) and
    says what it removed; ``note`` shows auto's choices; ``prepare(case, backend)`` makes
    what a case needs on a container backend (its image), raising BackendError when it cannot
    be made there (anything else is left for the case to report when it runs)."""

    def __init__(self, before_new: Callable[[bool], list[str]],
                 note: Callable[[str], None],
                 prepare: Callable[[CasePlan, Backend], None] | None = None) -> None:
        self._before_new = before_new
        self._note = note
        self._prepare = prepare
        self._open: dict[str, Backend] = {}
        self._reasons: dict[str, str] = {}
        self._auto: dict[tuple[str, ...], str] = {}  # what auto picked, by its candidates

    def get(self, name: str, image: str | None = None) -> Backend:
        """The backend called ``name`` (``auto``: the best this host offers)."""
        if name not in self._open:
            removed = self._before_new(not self._open)
            if name == AUTO:
                backend, reason = select(image=image)
            else:  # each case's image is checked with the case (a sweep may vary it)
                backend = create(name)
                reason = f"asked for by name; builds run in {backend.where}"
            self._adopt(name, backend, reason, removed)
        return self._open[name]

    def reason(self, name: str) -> str:
        """Why the backend called ``name`` runs the builds, in words."""
        return self._reasons[name]

    def resolve(self, plans: list[CasePlan], defaults: Settings, sla_file: Path
                ) -> list[CasePlan]:
        """Give every case a backend that honours every setting of its scenario: ``auto``
        picks one per scenario and says why; a named one that cannot honour a setting is an
        error naming the setting's line."""
        resolved = []
        picked: dict[str, str] = {}  # auto's choice for each scenario
        for plan in plans:
            scenario = plan.scenario
            explicit = explicit_settings(scenario, defaults)
            name: str = plan.settings.backend
            if name == AUTO and plan.scenario_name in picked:
                name = picked[plan.scenario_name]
            elif name == AUTO:
                try:
                    among, why = candidates(explicit)
                except ValueError as exc:
                    raise _setting_error(scenario, plan.scenario_name, sorted(explicit)[0],
                                         str(exc), sla_file) from None
                mine = [p for p in plans if p.scenario_name == plan.scenario_name
                        and p.settings.backend == AUTO]
                if self._prepare is not None and needs_image(mine) and not among[0].on_host \
                        and len(among) > 1:
                    name = self._pick_building(among, mine, why)
                else:
                    name = self._pick(among, plan.settings.image, why)
                picked[plan.scenario_name] = name
            else:
                for key, why in unhonoured(name, explicit):
                    raise _setting_error(scenario, plan.scenario_name, key,
                                         f"{why}: remove '{key}:' or choose another backend",
                                         sla_file)
            resolved.append(replace(plan, settings=plan.settings.model_copy(
                update={"backend": name})))
        return resolved

    def _pick(self, among: list[BackendSpec], image: str, why: str) -> str:
        """Make the backend ``auto`` picks among ``among``; returns its name."""
        key = (*(spec.name for spec in among), why)
        if key not in self._auto:
            removed = self._before_new(not self._open)
            backend, reason = select(among, image, why)
            name = backend.name
            if name in self._open:
                backend.close()
            else:
                self._adopt(name, backend, reason, removed)
            self._auto[key] = name
            self._note(f"backend auto: {name}: {reason}")
        return self._auto[key]

    def _pick_building(self, among: list[BackendSpec], plans: list[CasePlan], why: str) -> str:
        """Auto's pick for a scenario whose cases need an image of their own: the container
        backend first, with the image of every case built on it now; where the engine does
        not answer or an image cannot be built, the backends after it, saying why."""
        container, rest = among[0], among[1:]
        open_already = self._open.get(container.name)
        backend = open_already
        removed: list[str] = []
        try:
            if backend is None:
                removed = self._before_new(not self._open)
                backend = container.make(None)  # the scenario's image, not the default one
            assert self._prepare is not None
            for plan in _distinct_environments(plans):
                self._prepare(plan, backend)
        except BackendError as exc:
            if backend is not None and open_already is None:
                backend.close()
            failed = " ".join(str(exc).split())
            cause = (f"{container.title} cannot build the scenario's image ({_clip(failed)})"
                     if backend is not None else f"{container.name}: {_clip(failed)}")
            from runner.slafile.model import BUILTIN_SETTINGS

            return self._pick(rest, BUILTIN_SETTINGS.image, f"{why}; {cause}" if why else cause)
        reason = (f"{container.title} engine answers and the scenario's image (its requirements, "
                  "project or Python) is built there")
        reason = f"{why}; {reason}" if why else reason
        if open_already is None:
            self._adopt(container.name, backend, reason, removed)
        self._note(f"backend auto: {container.name}: {reason}")
        return container.name

    def _adopt(self, name: str, backend: Backend, reason: str, removed: list[str]) -> None:
        """Keep a new backend under ``name``, after removing the builds a dead runner left
        with it."""
        removed = removed + backend.remove_leftovers()
        if removed:
            self._note(f"removed {len(removed)} leftover(s) of an earlier run")
        self._open[name] = backend
        self._reasons[name] = reason

    def close(self) -> None:
        """Release every backend this pool opened."""
        for backend in self._open.values():
            backend.close()


def _distinct_environments(plans: list[CasePlan]) -> list[CasePlan]:
    """One case of each combination of image, Dockerfile, Python version and requirements among
    ``plans``."""
    seen: dict[tuple[str, ...], CasePlan] = {}
    for plan in plans:
        seen.setdefault((plan.settings.image, plan.dockerfile or "", plan.python or "",
                         *plan.requirements), plan)
    return list(seen.values())


def _clip(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _setting_error(scenario: Scenario, name: str, key: str, message: str,
                   sla_file: Path) -> SpecError:
    return SpecError(f"scenario {name}: {key}: {message}", file=scenario.file or str(sla_file),
                     line=scenario.line_of(key))
