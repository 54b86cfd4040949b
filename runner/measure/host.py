"""Facts about the host the numbers were measured on."""

from __future__ import annotations

import os
import platform
import socket

import psutil

from runner.results import Host


def host_facts(backend: str, reason: str, cgroup_version: int | None,
               docker_version: str | None = None, harness_baseline: int | None = None,
               harness_kept_out: bool = False) -> Host:
    return Host(
        hostname=socket.gethostname(), kernel=platform.release(),
        os=_os_name(), python=platform.python_version(), cpus=os.cpu_count() or 1,
        memory_total=psutil.virtual_memory().total, cgroup_version=cgroup_version,
        backend=backend, backend_reason=reason, docker_version=docker_version,
        harness_baseline=harness_baseline, harness_kept_out=harness_kept_out)


def _os_name() -> str:
    try:
        info = platform.freedesktop_os_release()
        return info.get("PRETTY_NAME", platform.system())
    except OSError:
        return platform.system()
