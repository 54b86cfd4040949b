"""memsla: a cgroup-bounded memory SLA runner.

This module is imported inside measured build processes, so it must stay stdlib-only and
run on CPython 3.8+. The only public API here is :func:`phase`.
"""

from runner.inbuild.phase import phase

__all__ = ["__version__", "phase"]
__version__ = "0.1.0"
