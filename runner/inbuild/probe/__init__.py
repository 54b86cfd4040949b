"""memsla's in-process probe, one module per job, installed by the entry point the measured
Python loads through PYTHONPATH (``runner/inbuild/site/sitecustomize.py``).

It must never change what the program does: stdlib-only, CPython 3.8+, every failure swallowed
(and reported), and it imports only what the run needs (an untraced run, which times the build,
only records phase marks). Under MEMSLA_PROBE_DIR it:
- appends JSON lines to MEMSLA_PROBE_DIR/probe-<pid>.jsonl (``records``);
- starts tracemalloc at interpreter start when MEMSLA_TRACE=1 (``heap``), or memray when
  MEMSLA_TRACKER=memray (``memray_tracker``);
- registers the module ``_memsla_probe`` that ``runner.phase`` calls: each phase gets its own
  heap and cgroup peak and the figures at its entry (``phases``, ``cgroup_peak``);
- wraps the callables MEMSLA_PHASES names as phases when their module is imported (``hooks``);
- in traced runs, takes the top allocation sites at the heap's high-water mark, globally and
  in each open phase (``flusher``, ``heap``, ``sites``), and at exit the heap and its top
  sites before and after a full collection (``process``).

The entry point imports this package under a private name, never as ``runner.inbuild.probe``:
memsla's ``runner`` package would then be in every build, shadowing a ``runner`` of its own.
So its modules import each other relatively, and nothing else of memsla.
"""

from __future__ import annotations

import os
import sys

# runner.inbuild.phase.PROBE_MODULE: the module the phase API looks for
PROBE_MODULE = "_memsla_probe"


def install(directory: str) -> None:
    from .process import Probe

    probe = Probe(directory, os.environ)
    module = type(sys)(PROBE_MODULE)  # types.ModuleType, without importing types
    module.__dict__.update(enter_phase=probe.phases.enter, exit_phase=probe.phases.exit,
                           probe=probe)
    sys.modules[PROBE_MODULE] = module
    phases = os.environ.get("MEMSLA_PHASES", "")
    if phases:
        from . import hooks

        targets = hooks.phase_targets(phases)
        if targets:
            finder = hooks.PhaseFinder(probe, targets)
            sys.meta_path.insert(0, finder)
            finder.wrap_imported()
