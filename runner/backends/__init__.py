"""Backends run one build isolated and measured. ``select`` picks one by name or, for ``auto``,
the best this host offers, and says why."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from enum import Enum

from runner.backends.interface import Backend, BackendError, RunRequest
from runner.slafile.model import BUILTIN_SETTINGS


class BackendName(str, Enum):
    CGROUP = "cgroup"
    DOCKER = "docker"
    PROCESS = "process"


def _cgroup() -> Backend:
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


def _docker(image: str | None = None) -> Backend:
    try:
        from runner.backends.docker import DockerBackend
    except ImportError as exc:
        raise BackendError(f"the docker backend is unavailable ({exc}): pip install "
                           "'docker>=7'") from None
    return DockerBackend(image_required=image)


def _process() -> Backend:
    from runner.backends.process import ProcessBackend

    return ProcessBackend()


FACTORIES: dict[BackendName, Callable[[], Backend]] = {
    BackendName.CGROUP: _cgroup,
    BackendName.DOCKER: _docker,
    BackendName.PROCESS: _process,
}


def create(name: str, image: str | None = None) -> Backend:
    """The backend called ``name``; Docker checks ``image`` (exists, fits the engine) now."""
    try:
        backend_name = BackendName(name)
    except ValueError:
        raise BackendError(f"unknown backend {name!r}") from None
    if backend_name is BackendName.DOCKER:
        return _docker(image)
    return FACTORIES[backend_name]()


def select_auto(image: str | None = None) -> tuple[Backend, str]:
    """The best backend this host offers: Docker with the image, else a local cgroup, else the
    process tree (approximate). Returns it with the reason in words."""
    reasons = []
    image = image or BUILTIN_SETTINGS.image
    try:
        backend = _docker(image)
        return backend, f"Docker engine answers and image {image} exists"
    except BackendError as exc:
        reasons.append(f"docker: {exc}")
    try:
        backend = _cgroup()
        return backend, f"{backend.where} (hard limit, kernel peak)" + (
            f"; {reasons[0]}" if reasons else "")
    except BackendError as exc:
        reasons.append(f"cgroup: {exc}")
    return _process(), "no hard limit available (" + "; ".join(reasons) + ")"


# Settings only some backends can honour, and why the others cannot (in words).
DOCKER_ONLY = {
    "image": "runs builds on this host, not in a Docker image",
    "docker": "runs builds on this host: the container options (network, read-only root, "
              "pids limit, tmpfs) do not apply",
    "dockerfile": "runs builds on this host, not in an image built from a Dockerfile",
}
HOST_ONLY = {
    "python": "runs the image's python3: a host interpreter cannot run in a container (name "
              "a version, e.g. python: '3.12', and memsla checks the image has it)",
}


def unhonoured(backend: str, explicit: set[str]) -> list[tuple[str, str]]:
    """The settings written for a scenario (``explicit``; a ``python:`` that names a version
    is left out by the caller: every backend honours one) that ``backend`` cannot honour, each
    with the reason; empty: it honours them all."""
    table = HOST_ONLY if backend == BackendName.DOCKER.value else DOCKER_ONLY
    return [(key, f"the {backend} backend {why}") for key, why in table.items()
            if key in explicit]


def auto_choice(explicit: set[str], has_environment: bool) -> tuple[str | None, str]:
    """What ``backend: auto`` may pick for a scenario that writes ``explicit`` settings:
    ``"docker"``, ``"host"`` (a local cgroup, else the process tree) or None (the best this
    host offers), with the reason in words. Raises ValueError for settings no backend honours
    together (the caller names their lines)."""
    docker_keys = sorted(k for k in DOCKER_ONLY if k in explicit)
    host_keys = sorted(k for k in HOST_ONLY if k in explicit)
    if docker_keys and host_keys:
        raise ValueError(f"{', '.join(docker_keys)} need the docker backend and "
                         f"{', '.join(host_keys)} a host backend: no backend honours both")
    if docker_keys:
        return "docker", f"the scenario sets {', '.join(docker_keys)}, which only Docker honours"
    if host_keys:
        return "host", f"the scenario sets {', '.join(host_keys)}, which only a host backend " \
                       "honours"
    if has_environment:
        return "host", ("the scenario's requirements and project install into a cached "
                        "virtualenv on this host (with --backend docker memsla builds an image "
                        "holding them instead)")
    return None, ""


def select_host() -> tuple[Backend, str]:
    """A local cgroup, else the process tree (approximate), with the reason in words."""
    try:
        backend = _cgroup()
        return backend, f"{backend.where} (hard limit, kernel peak)"
    except BackendError as exc:
        return _process(), f"no hard limit available (cgroup: {exc})"


__all__ = ["Backend", "BackendError", "BackendName", "RunRequest", "auto_choice", "create",
           "select_auto", "select_host", "unhonoured"]
