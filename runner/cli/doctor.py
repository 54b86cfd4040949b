"""``runner doctor``'s checks: what this host can measure, and how to fix what is missing."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from runner.backends.interface import BackendError
from runner.backends.scope import ScopeBackend
from runner.inbuild import cgroups


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def doctor_checks() -> list[Check]:
    checks: list[Check] = []
    own = cgroups.own_cgroup()
    if own is None:
        checks.append(Check("cgroup", False, "no memory cgroup controller found",
                            "memsla falls back to the process backend (no hard limit)"))
    else:
        checks.append(Check("cgroup", True, f"cgroup v{own.version}, own cgroup {own.path}"))
        try:
            from runner.backends.local import find_parent

            find_parent()
            checks.append(Check("cgroup writable", True,
                                "can create child cgroups: backend 'cgroup' gives hard limits"))
        except Exception as exc:
            checks.append(Check("cgroup writable", False, str(exc), _cgroup_fix(own.version)))
    checks.append(_systemd_check())
    checks.append(_docker_check())
    return checks


def _cgroup_fix(version: int) -> str:
    if version == 2 and shutil.which("systemd-run"):
        return ("run as root; without root, backend 'cgroup' runs each build in a systemd user "
                "scope when that works (see 'systemd scope')")
    return "run as root (or in a container with a writable /sys/fs/cgroup)"


def _systemd_check() -> Check:
    """Runs the idle harness in a real user scope: the check a build would pass through."""
    if not shutil.which("systemd-run"):
        return Check("systemd scope", False, "systemd-run not found",
                     "only needed for non-root hard limits on systemd hosts")
    try:
        backend = ScopeBackend()
    except BackendError as exc:
        return Check("systemd scope", False, str(exc),
                     "needs a user systemd instance (loginctl enable-linger) on cgroup v2")
    baseline = backend.harness_baseline or 0
    return Check("systemd scope", True,
                 f"a user scope with MemoryMax runs the harness ({baseline >> 20} MiB idle): "
                 "backend 'cgroup' uses one per build when it cannot create cgroups itself")


def _docker_check() -> Check:
    try:
        import docker

        client = docker.from_env(timeout=5)
        version = client.version().get("Version", "?")
        info = client.info()
        client.close()
        return Check("docker", True, f"engine {version}, cgroup v{info.get('CgroupVersion', '?')}"
                                     f", driver {info.get('CgroupDriver', '?')}; "
                                     + _harness_placement(info))
    except Exception as exc:
        return Check("docker", False, f"no engine answers ({type(exc).__name__})",
                     "install and start Docker (docker/engine-up.sh), then runner image build")


def _harness_placement(info: dict[str, object]) -> str:
    """Whether builds in containers get a cgroup of their own beside the harness, or why the
    idle harness is subtracted instead."""
    from runner.backends.docker.backend import fence_parent
    from runner.inbuild import cgroups

    try:
        files = cgroups.files_for(int(str(info.get("CgroupVersion") or 1)))
    except ValueError:
        return "the idle harness is subtracted from the build's figures"
    _, refused = fence_parent(files, str(info.get("CgroupDriver") or "cgroupfs"))
    if refused is None:
        return "builds run in a cgroup of their own, beside the harness"
    return f"the idle harness is subtracted from the build's figures ({refused})"
