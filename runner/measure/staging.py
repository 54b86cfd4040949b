"""Staging the in-build code: ``runner/inbuild`` and the package's ``__init__`` copied into a
folder, keyed by content, that the build gets first on its PYTHONPATH; and the environment
variables that switch the probe on."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from runner.workload.cache import build_aside

_PACKAGE = Path(__file__).resolve().parent.parent
_INBUILD = _PACKAGE / "inbuild"
SITECUSTOMIZE = _INBUILD / "site" / "sitecustomize.py"


def staged_files() -> list[tuple[Path, Path]]:
    """(source, target in the staged folder): the probe as ``sitecustomize.py`` at the top, and
    a minimal ``runner`` package holding ``runner/__init__.py`` and every module of
    ``runner/inbuild``."""
    files = [(SITECUSTOMIZE, Path("sitecustomize.py")),
             (_PACKAGE / "__init__.py", Path("runner") / "__init__.py")]
    for source in sorted(_INBUILD.rglob("*.py")):
        if source != SITECUSTOMIZE:
            files.append((source, Path("runner") / source.relative_to(_PACKAGE)))
    return files


def stage(cache_dir: Path) -> Path:
    """Copy the probe and the in-build modules into a folder to put on the build's PYTHONPATH.

    The folder holds ``sitecustomize.py`` and a minimal ``runner`` package, and is keyed by the
    content hash, so it never mixes versions and can be mounted read-only into containers.
    """
    sources = staged_files()
    digest = hashlib.sha256()
    for source, target in sources:
        digest.update(str(target).encode() + b"\0" + source.read_bytes() + b"\0")
    root = cache_dir / "probe" / digest.hexdigest()[:16]

    def copy(tmp: Path) -> None:
        for source, target in sources:
            (tmp / target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, tmp / target)

    # under the key's lock, copied aside and renamed: a folder at ``root`` is always whole
    return build_aside(cache_dir, "probe", root, copy)


def environment(staged: str, out_dir: str, *, trace: bool, t0: float,
                cgroup_peak_file: str | None = None, reset_mode: str = "",
                existing_pythonpath: str | None = None) -> dict[str, str]:
    """The environment variables that switch the probe on inside the build."""
    pythonpath = staged + (os.pathsep + existing_pythonpath if existing_pythonpath else "")
    env = {
        "PYTHONPATH": pythonpath,
        "MEMSLA_PROBE_DIR": out_dir,
        "MEMSLA_TRACE": "1" if trace else "0",
        "MEMSLA_T0": repr(t0),
    }
    if cgroup_peak_file:
        env["MEMSLA_CGROUP_PEAK"] = cgroup_peak_file
        env["MEMSLA_CGROUP_RESET"] = reset_mode
    return env


def probe_settings(*, phases: dict[str, str], stack_depth: int, tracker: str = "tracemalloc",
                   native: bool = False, aggregate: bool = False) -> dict[str, str]:
    """The probe's settings of a scenario, as environment variables the build gets beside
    ``environment``'s: the tracker of its traced run (with native stacks or not; memray's
    aggregated capture where the check reads neither its totals nor phases' heap figures),
    its zero-code phases and the frames kept of each allocation's stack."""
    env = {"MEMSLA_TRACE_FRAMES": str(stack_depth), "MEMSLA_TRACKER": tracker,
           "MEMSLA_NATIVE": "1" if native else "0"}
    if aggregate and tracker == "memray":
        env["MEMSLA_MEMRAY_AGGREGATE"] = "1"
    if phases:
        env["MEMSLA_PHASES"] = ";".join(f"{name}={target}" for name, target in phases.items())
    return env
