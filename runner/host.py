"""Facts about the host the numbers were measured on, and what it can measure (runner doctor)."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
from dataclasses import dataclass

import psutil

from runner import cgroups
from runner.results import Host


def host_facts(backend: str, reason: str, cgroup_version: int | None,
               docker_version: str | None = None, harness_baseline: int | None = None) -> Host:
    return Host(
        hostname=socket.gethostname(), kernel=platform.release(),
        os=_os_name(), python=platform.python_version(), cpus=os.cpu_count() or 1,
        memory_total=psutil.virtual_memory().total, cgroup_version=cgroup_version,
        backend=backend, backend_reason=reason, docker_version=docker_version,
        harness_baseline=harness_baseline)


def _os_name() -> str:
    try:
        info = platform.freedesktop_os_release()
        return info.get("PRETTY_NAME", platform.system())
    except OSError:
        return platform.system()


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def systemd_scope_command(argv: list[str], limit: int | None, unit: str) -> list[str]:
    """The delegated-cgroup command for a non-root user on a systemd cgroup v2 host."""
    command = ["systemd-run", "--user", "--scope", "--quiet", "--collect", f"--unit={unit}"]
    if limit is not None:
        command += ["-p", f"MemoryMax={limit}", "-p", "MemorySwapMax=0"]
    return [*command, "--", *argv]


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
        return ("run as root, or let memsla use a delegated scope: "
                + " ".join(systemd_scope_command(["CMD"], 2 * 1024**3, "memsla-test")))
    return "run as root (or in a container with a writable /sys/fs/cgroup)"


def _systemd_check() -> Check:
    if not shutil.which("systemd-run"):
        return Check("systemd scope", False, "systemd-run not found",
                     "only needed for non-root hard limits on systemd hosts")
    command = systemd_scope_command(["true"], 64 * 1024**2, f"memsla-doctor-{os.getpid()}")
    probe = subprocess.run(command, capture_output=True, text=True, timeout=20, check=False)
    if probe.returncode == 0:
        return Check("systemd scope", True, "systemd-run --user --scope with MemoryMax works")
    return Check("systemd scope", False, (probe.stderr or "failed").strip().splitlines()[-1],
                 "needs a user systemd instance (loginctl enable-linger) on cgroup v2")


def _docker_check() -> Check:
    try:
        import docker

        client = docker.from_env(timeout=5)
        version = client.version().get("Version", "?")
        info = client.info()
        client.close()
        return Check("docker", True, f"engine {version}, cgroup v{info.get('CgroupVersion', '?')}"
                                     f", driver {info.get('CgroupDriver', '?')}")
    except Exception as exc:
        return Check("docker", False, f"no engine answers ({type(exc).__name__})",
                     "install and start Docker (docker/engine-up.sh), then runner image build")
