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


__all__ = ["Backend", "BackendError", "BackendName", "RunRequest", "create",
           "select_auto"]
