"""memsla's in-process probe: the entry point the measured Python loads at start-up, staged as
``sitecustomize.py`` beside a minimal ``runner`` package by ``runner.measure.staging``.

Under MEMSLA_PROBE_DIR it installs the probe (the package ``runner/inbuild/probe``, which says
what it records); then, always, it chains to the sitecustomize it shadows (Debian's python3
ships one). A failure of either is reported on stderr and the build runs on.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# The probe package is imported under this name, from the staged folder beside this file: as
# ``runner.inbuild.probe`` it would bring memsla's ``runner`` into every build, where it would
# shadow a ``runner`` package of the build's own.
PACKAGE = "_memsla_site"


def _module_from_spec(spec: Any) -> Any:
    try:  # the import system's own, loaded at start-up; importlib.util costs more imports
        import _frozen_importlib

        return _frozen_importlib.module_from_spec(spec)
    except (ImportError, AttributeError):
        import importlib.util

        return importlib.util.module_from_spec(spec)


def _import_probe() -> Any:
    import importlib.machinery

    here = os.path.dirname(os.path.abspath(__file__))
    folder = os.path.join(here, "runner", "inbuild", "probe")
    init = os.path.join(folder, "__init__.py")
    spec = importlib.machinery.ModuleSpec(
        PACKAGE, importlib.machinery.SourceFileLoader(PACKAGE, init), origin=init,
        is_package=True)
    spec.submodule_search_locations = [folder]
    spec.has_location = True
    module = _module_from_spec(spec)
    sys.modules[PACKAGE] = module
    spec.loader.exec_module(module)
    return module


def _chain_shadowed_sitecustomize() -> None:
    import importlib.machinery

    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = _module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


if os.environ.get("MEMSLA_PROBE_DIR"):
    try:
        _import_probe().install(os.environ["MEMSLA_PROBE_DIR"])
    except Exception as _error:  # the build must run even if the probe cannot
        sys.stderr.write(f"memsla probe disabled: {_error!r}\n")

try:
    _chain_shadowed_sitecustomize()
except Exception as _error:
    sys.stderr.write(f"memsla: the shadowed sitecustomize failed: {_error!r}\n")
