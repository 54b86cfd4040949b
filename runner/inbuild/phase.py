"""The phase API for measured programs: ``with runner.phase("render"): ...``.

Stdlib-only and CPython 3.8+ compatible: it is imported inside the measured build process. Under
memsla the injected probe (``runner/inbuild/probe``) registers itself as the module
``_memsla_probe`` and records each phase's own peaks; anywhere else ``phase`` does nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

PROBE_MODULE = "_memsla_probe"


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Mark a phase of the build; under memsla it gets its own heap and cgroup peak."""
    probe = sys.modules.get(PROBE_MODULE)
    if probe is None:
        yield
        return
    token = probe.enter_phase(str(name))
    try:
        yield
    finally:
        probe.exit_phase(token)
