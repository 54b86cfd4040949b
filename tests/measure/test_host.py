"""Host facts: what the numbers were measured on, read from the machine itself."""

from __future__ import annotations

import os
import platform

import psutil

from runner.measure.host import host_facts


def test_host_facts_are_this_machines() -> None:
    host = host_facts("cgroup", "asked for by name", 1, None, 9 << 20)
    assert host.kernel == platform.release()
    assert host.cpus == os.cpu_count()
    assert host.memory_total == psutil.virtual_memory().total
    assert (host.backend, host.cgroup_version, host.harness_baseline) == ("cgroup", 1, 9 << 20)
    assert host.os and host.python == platform.python_version()
