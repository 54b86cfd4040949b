"""The project under test (``project:`` in a scenario): a source tree installed into the
scenario's environment on every backend, again exactly when its content changes.

- Its **content hash** covers the path and bytes (and the executable bit) of every file of the
  tree: in a git work tree the files git knows of, tracked or untracked but not ignored
  (``git ls-files -co --exclude-standard``), so uncommitted edits count and build leftovers do
  not; elsewhere every file but VCS folders, caches, virtualenvs and build output.
- Its **wheel** is built once per content hash (``pip wheel --no-deps``) from a copy of those
  files, so a build backend never writes into the user's tree: ``<cache>/projects/<hash>/``.
  The runner's pip builds it: a pure-Python project's wheel installs anywhere; one with
  compiled extensions is built for the runner's Python, which an image must then have too.
- Its **dependencies** (``Requires-Dist`` of the wheel's metadata) join the scenario's
  requirements in the cached virtualenv (local backends) or image layer (Docker), keyed by
  their text: editing the code does not reinstall them.
- On the local backends the wheel is installed with ``pip install --no-deps --target`` into
  ``<cache>/projects/<hash>/site``, which the build gets first on ``PYTHONPATH`` (its console
  scripts in ``site/bin`` first on ``PATH``): an edit costs one wheel build, seconds.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from runner.errors import FixtureError
from runner.workload.cache import (
    COMPLETE,
    _fail,
    _has_marker,
    _remembered,
    _run_logged,
    build_aside,
    log_path,
)

_SKIPPED_DIRS = {".git", ".hg", ".svn", "__pycache__", ".venv", "venv", ".tox", ".nox",
                 "build", "dist", ".mypy_cache", ".pytest_cache", ".ruff_cache", "node_modules"}


@dataclass(frozen=True)
class Project:
    """A project tree as of now: where it is, its files and their content hash."""

    root: Path
    files: tuple[str, ...]  # relative paths, sorted
    content_hash: str  # 16 hex digits


def resolve_path(text: str, spec_dir: Path) -> Path:
    """``project:`` as a folder: relative paths start at the SLA file's folder."""
    path = Path(text).expanduser()
    folder = (path if path.is_absolute() else spec_dir / path).resolve()
    if not folder.is_dir():
        raise FixtureError(f"project {text!r}: {folder} is not a folder (a path relative to the "
                           "SLA file's folder)")
    if not ((folder / "pyproject.toml").is_file() or (folder / "setup.py").is_file()):
        raise FixtureError(f"project {text!r}: {folder} has no pyproject.toml or setup.py, so "
                           "pip cannot install it")
    return folder


def _git_files(folder: Path) -> list[str] | None:
    """The files git knows of under ``folder`` (tracked, or untracked and not ignored); None
    outside a git work tree or without git."""
    if shutil.which("git") is None:
        return None
    try:
        listed = subprocess.run(
            ["git", "-C", str(folder), "ls-files", "-z", "-co", "--exclude-standard", "--", "."],
            capture_output=True, check=False, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if listed.returncode != 0:
        return None
    names = [name.decode() for name in listed.stdout.split(b"\0") if name]
    # deleted but still tracked files are listed too: only what exists is the tree
    return [name for name in names if (folder / name).is_file()]


def _walked_files(folder: Path) -> list[str]:
    files = []
    for parent, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in _SKIPPED_DIRS and not d.endswith(".egg-info")]
        for name in names:
            if name.endswith((".pyc", ".pyo")):
                continue
            files.append(os.path.relpath(os.path.join(parent, name), folder))
    return files


def scan(folder: Path) -> Project:
    """The tree's files and content hash (see the module docstring)."""
    names = _git_files(folder)
    files = sorted(names if names is not None else _walked_files(folder))
    digest = hashlib.sha256()
    for name in files:
        path = folder / name
        try:
            mode = path.stat().st_mode
            data = path.read_bytes()
        except OSError as exc:
            raise FixtureError(f"project {folder}: cannot read {name}: {exc.strerror}") from None
        digest.update(name.encode() + b"\0" + (b"x" if mode & 0o111 else b"-") + b"\0")
        digest.update(hashlib.sha256(data).digest())
    return Project(root=folder, files=tuple(files), content_hash=digest.hexdigest()[:16])


def dependencies(wheel: Path) -> list[str]:
    """The wheel's own requirements (``Requires-Dist`` of its METADATA, extras left out): they
    join the scenario's requirements, keyed by their text, not by the project's content."""
    from email.parser import Parser

    try:
        with zipfile.ZipFile(wheel) as archive:
            name = next(n for n in archive.namelist()
                        if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
            metadata = Parser().parsestr(archive.read(name).decode())
    except (OSError, zipfile.BadZipFile, StopIteration) as exc:
        raise FixtureError(f"cannot read the metadata of {wheel}: {exc!r}") from None
    return [req for req in metadata.get_all("Requires-Dist") or [] if "extra ==" not in req]


def project_folder(root: Path, project: Project) -> Path:
    return root / "projects" / project.content_hash


def build_wheel(project: Project, root: Path) -> Path:
    """The project's wheel (cached by content hash), built from a copy of its files."""
    target = project_folder(root, project)
    wheel_dir = target / "wheel"
    if _has_marker(wheel_dir):
        return _the_wheel(wheel_dir)
    _remembered(wheel_dir)

    def build(tmp: Path) -> None:
        source = tmp / "source"
        for name in project.files:
            destination = source / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(project.root / name, destination)
        out = tmp / "out"
        log = log_path(root, "project", project.content_hash)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.unlink(missing_ok=True)
        # the runner's pip only packs the project: its Python need not be the one it runs on
        code, start = _run_logged([sys.executable, "-m", "pip", "wheel", "--quiet",
                                   "--disable-pip-version-check", "--no-deps",
                                   "--ignore-requires-python", "--wheel-dir", str(out),
                                   str(source)], log)
        if code != 0:
            raise _fail(wheel_dir, f"building a wheel of the project {project.root} failed "
                                   f"(pip exited {code})", log, start)
        shutil.rmtree(source, ignore_errors=True)
        for wheel in out.glob("*.whl"):
            wheel.rename(tmp / wheel.name)
        out.rmdir()
        (tmp / COMPLETE).write_text(str(project.root))

    target.mkdir(parents=True, exist_ok=True)
    build_aside(root, "project", wheel_dir, build, complete=_has_marker)
    return _the_wheel(wheel_dir)


def _the_wheel(folder: Path) -> Path:
    wheels = sorted(folder.glob("*.whl"))
    if len(wheels) != 1:
        raise FixtureError(f"expected one wheel in {folder}, found {len(wheels)}")
    return wheels[0]


def install_overlay(project: Project, venv: Path, root: Path) -> Path:
    """Install the project (no dependencies) with the virtualenv's pip into its own folder,
    cached per content hash and virtualenv; returns the folder to put first on PYTHONPATH."""
    wheel = build_wheel(project, root)
    site = project_folder(root, project) / f"site-{venv.name}"
    if _has_marker(site):
        return site
    _remembered(site)

    def install(tmp: Path) -> None:
        log = log_path(root, "project", f"{project.content_hash}-{venv.name}")
        log.parent.mkdir(parents=True, exist_ok=True)
        log.unlink(missing_ok=True)
        code, start = _run_logged([str(venv / "bin" / "python"), "-m", "pip", "install",
                                   "--quiet", "--disable-pip-version-check", "--no-deps",
                                   "--no-index", "--target", str(tmp), str(wheel)], log)
        if code != 0:
            raise _fail(site, f"installing the project {project.root} failed (pip exited "
                              f"{code})", log, start)
        (tmp / COMPLETE).write_text(str(project.root))

    return build_aside(root, "project", site, install, complete=_has_marker)
