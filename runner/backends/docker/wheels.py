"""The wheels a scenario's environment image installs, for any requirement pip can install.

On the host (which has the package index): the binary wheels for the image's Python on
manylinux x86_64 where they exist; for a package with none, its source distribution, and the
build requirements it names (``build-system.requires``), themselves as wheels, or as source
distributions the same way. pip resolves the whole tree for the image's Python: a package
known only as a source distribution stands in the resolution as a metadata-only wheel (its
name, version and dependencies, read from the source distribution on the host), dropped after.

In a builder container (the image's own Python, a C compiler and the Python headers; no
network): each source distribution becomes a wheel with ``pip wheel --no-index --find-links``,
one at a time, so a failure names its package and pip's reason. The environment layer then
installs wheels only: no compiler in the measured image.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Only `import docker.errors`: ruff takes a bare `docker` for the repo's docker/ folder.
import docker.errors

from runner.backends.docker.base_image import BaseParams
from runner.backends.docker.imaging import (
    WHEEL_PLATFORMS,
    ImageError,
    Log,
    WheelDownloadError,
    pip_download_argv,
    sha12,
)
from runner.workload.cache import cache_dir, log_path

# memsla's offline base plus what turns a source distribution with native code into a wheel.
BUILDER_PARAMS = BaseParams(include=(*BaseParams().include, "build-essential", "python3-dev"))
MANIFEST = "sdists.json"  # the source distributions of a download folder, in build order
# PEP 517's fallback for a source distribution without [build-system]; setuptools before
# 70.1 also asks for wheel when it builds one.
LEGACY_BUILD_REQUIRES = ("setuptools>=40.8.0", "wheel")
_MISSING = re.compile(r"No matching distribution found for (\S.*?)\s*$", re.MULTILINE)
# pip's frame around a subprocess's output, and its repetitions of the same failure
_NOISE = ("subprocess-exited-with-error", "See above for output", "originates from a subprocess",
          "Failed building wheel for", "Failed to build", "Could not build wheels for",
          "did not run successfully", "[end of output]", "Running setup.py install",
          "finished with status 'error'")
_FRAME = "\u2502\u2570\u2500>\u00d7\u2551 "  # the box pip draws: vertical, corner, dash, cross


class WheelBuildError(ImageError):
    """A source distribution could not be built into a wheel in the builder."""


@dataclass(frozen=True)
class Downloaded:
    """A host download folder: wheels, and the source distributions to build (file names, in
    build order: a build requirement before what needs it)."""

    folder: Path
    sdists: tuple[str, ...]

    def wheels(self) -> list[Path]:
        return sorted(self.folder.glob("*.whl"))


def download(requirements: Sequence[str], python: str, log: Log) -> Downloaded:
    """What installing ``requirements`` for CPython ``python`` on manylinux x86_64 needs, cached
    by the requirements' text, the Python and the platforms."""
    key = sha12({"requirements": sorted(requirements), "platforms": list(WHEEL_PLATFORMS),
                 "python": python})
    folder = cache_dir() / "wheels" / key
    if (folder / ".complete").is_file():
        return _read(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{key}-", dir=folder.parent) as scratch:
        partial, stubs = Path(scratch) / "wheels", Path(scratch) / "stubs"
        partial.mkdir()
        stubs.mkdir()
        log(f"downloading wheels for Python {python}: {' '.join(requirements)}")
        sdists: list[str] = []
        _Resolver(python, partial, stubs, log, sdists).resolve(list(requirements))
        (partial / MANIFEST).write_text(json.dumps(sdists))
        (partial / ".complete").write_text("")
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
    return _read(folder)


def _read(folder: Path) -> Downloaded:
    manifest = folder / MANIFEST
    names = json.loads(manifest.read_text()) if manifest.is_file() else []
    return Downloaded(folder, tuple(names))


@dataclass
class _Resolver:
    python: str
    dest: Path
    stubs: Path  # metadata-only wheels standing for the source distributions
    log: Log
    order: list[str]  # source distributions, a build requirement before what needs it

    def resolve(self, requirements: list[str]) -> None:
        """Download wheels of ``requirements`` and their dependencies into ``dest``; for each
        package pip finds no wheel of, its source distribution (and what builds it) instead."""
        taken: set[str] = set()
        while True:
            with tempfile.TemporaryDirectory(prefix="pip-", dir=self.dest.parent) as scratch:
                done = _pip([*pip_download_argv(Path(scratch), self.python),
                             "--find-links", str(self.stubs), *requirements])
                if done.returncode == 0:
                    stubs = {path.name for path in self.stubs.iterdir()}
                    for path in Path(scratch).iterdir():
                        if path.name not in stubs and not (self.dest / path.name).exists():
                            shutil.move(str(path), self.dest / path.name)
                    return
            missing = _MISSING.findall(done.stderr)
            if not missing:
                kept = keep_log("wheels", sha12({"requirements": requirements}), done.stderr)
                raise WheelDownloadError(
                    f"pip could not download {' '.join(requirements)} for CPython "
                    f"{self.python} on manylinux x86_64: {pip_reason(done.stderr)} (pip's "
                    f"whole output: {kept})")
            requirement = missing[-1]
            name = _canonical(re.split(r"[\s\[<>=!~;@(]", requirement, maxsplit=1)[0])
            if name in taken:
                raise WheelDownloadError(
                    f"pip could not download {name} for CPython {self.python}: its source "
                    f"distribution does not satisfy {requirement}: {pip_reason(done.stderr)}")
            taken.add(name)
            self._take_sdist(requirement)

    def _take_sdist(self, requirement: str) -> None:
        """The source distribution of ``requirement``, its stand-in for the resolution, and
        its build requirements."""
        self.log(f"{requirement}: no wheel for CPython {self.python}; taking its source "
                 "distribution, to build in the image")
        with tempfile.TemporaryDirectory(prefix="sdist-", dir=self.dest.parent) as scratch:
            project = re.split(r"[\s\[<>=!~;@(]", requirement, maxsplit=1)[0]
            done = _pip([sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
                         "--no-deps", "--no-binary", project, "--dest", scratch,
                         "--implementation", "cp", "--python-version", self.python,
                         requirement])
            found = [path for path in Path(scratch).iterdir() if _is_sdist(path.name)]
            if done.returncode != 0 or not found:
                keep_log("sdist", _canonical(project), done.stderr)
                raise WheelDownloadError(
                    f"pip could not download {requirement}: it has no wheel for CPython "
                    f"{self.python} on manylinux x86_64, and no source distribution: "
                    f"{pip_reason(done.stderr)}")
            sdist = self.dest / found[0].name
            shutil.move(str(found[0]), sdist)
        metadata = _metadata(sdist)
        _write_stub(self.stubs, metadata)
        self.resolve(build_requirements(sdist))
        self.order.append(sdist.name)


def _pip(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _is_sdist(filename: str) -> bool:
    return filename.endswith((".tar.gz", ".zip", ".tar.bz2", ".tgz"))


def _metadata(sdist: Path) -> dict[str, Any]:
    """The core metadata of a source distribution, as pip prepares it on this host (its build
    backend, in an isolated environment)."""
    with tempfile.TemporaryDirectory(prefix="report-", dir=sdist.parent.parent) as scratch:
        report = Path(scratch) / "report.json"
        done = _pip([sys.executable, "-m", "pip", "install", "--disable-pip-version-check",
                     "--dry-run", "--no-deps", "--ignore-installed", "--quiet",
                     "--report", str(report), str(sdist)])
        if done.returncode != 0 or not report.is_file():
            kept = keep_log("sdist", sdist.name, done.stderr)
            raise WheelDownloadError(
                f"pip could not read the metadata of {sdist.name} on this host: "
                f"{pip_reason(done.stderr)} (pip's whole output: {kept})")
        installs = json.loads(report.read_text()).get("install") or [{}]
    metadata = installs[0].get("metadata")
    if not isinstance(metadata, dict) or "name" not in metadata or "version" not in metadata:
        raise WheelDownloadError(f"pip reported no metadata for {sdist.name}")
    return metadata


def _write_stub(folder: Path, metadata: dict[str, Any]) -> Path:
    """A wheel with only ``metadata``: what pip's resolver reads of a package."""
    module = re.sub(r"[-_.]+", "_", metadata["name"]).lower()
    info = f"{module}-{metadata['version']}.dist-info"
    lines = ["Metadata-Version: 2.1", f"Name: {metadata['name']}",
             f"Version: {metadata['version']}"]
    if metadata.get("requires_python"):
        lines.append(f"Requires-Python: {metadata['requires_python']}")
    lines += [f"Provides-Extra: {extra}" for extra in metadata.get("provides_extra") or []]
    lines += [f"Requires-Dist: {dep}" for dep in metadata.get("requires_dist") or []]
    files = {f"{info}/METADATA": ("\n".join(lines) + "\n").encode()}
    return pack_wheel(folder, module, metadata["version"], files)


def pack_wheel(folder: Path, module: str, version: str, files: dict[str, bytes]) -> Path:
    """A pure-Python wheel ``<module>-<version>-py3-none-any.whl`` in ``folder`` holding
    ``files`` (paths in the archive), with the WHEEL and RECORD files pip checks added."""
    info = f"{module}-{version}.dist-info"
    files = {**files, f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: memsla\n"
                                       b"Root-Is-Purelib: true\nTag: py3-none-any\n"}

    def digest(data: bytes) -> str:
        return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

    record = "".join(f"{path},sha256={digest(data)},{len(data)}\n"
                     for path, data in files.items()) + f"{info}/RECORD,,\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
        archive.writestr(f"{info}/RECORD", record)
    return wheel


def build_requirements(sdist: Path) -> list[str]:
    """``build-system.requires`` of the source distribution's ``pyproject.toml`` (PEP 517's
    setuptools fallback when it has none), plus wheel for a setuptools build."""
    text = _member(sdist, "pyproject.toml")
    system: dict[str, Any] = {}
    if text is not None:
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - pip's own copy on Python 3.10
            from pip._vendor import tomli as tomllib
        try:
            system = tomllib.loads(text).get("build-system") or {}
        except ValueError as exc:
            raise WheelDownloadError(f"{sdist.name}: its pyproject.toml does not parse: "
                                     f"{exc}") from None
    if "requires" not in system:
        return list(LEGACY_BUILD_REQUIRES)
    requires = [str(r) for r in system["requires"]]
    backend = str(system.get("build-backend") or "setuptools")
    if backend.startswith("setuptools") and not any(_canonical(r).startswith("wheel")
                                                    for r in requires):
        requires.append("wheel")
    return requires


def _member(sdist: Path, name: str) -> str | None:
    """The text of ``<top>/name`` in a source distribution, or None."""
    if sdist.name.endswith(".zip"):
        with zipfile.ZipFile(sdist) as archive:
            for member in archive.namelist():
                if member.count("/") == 1 and member.endswith("/" + name):
                    return archive.read(member).decode()
        return None
    with tarfile.open(sdist) as archive:
        for entry in archive:
            if entry.isfile() and entry.name.strip("./").count("/") == 1 \
                    and entry.name.endswith("/" + name):
                handle = archive.extractfile(entry)
                return None if handle is None else io.TextIOWrapper(handle).read()
    return None


def keep_log(kind: str, key: str, text: str) -> Path:
    """Keep a failed step's whole output in the cache's ``logs/``; its path."""
    path = log_path(cache_dir(), kind, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def pip_reason(text: str, most: int = 4) -> str:
    """pip's reason for a failure in a few lines: its error lines (a compiler's included),
    without the frame pip draws around a subprocess's output; else its last lines."""
    kept: list[str] = []
    lines = [line.strip().lstrip(_FRAME).strip() for line in text.splitlines()]
    for line in lines:
        if (re.search(r"\berror\b", line, re.IGNORECASE) and line not in kept
                and not any(noise in line for noise in _NOISE)):
            kept.append(line)
    if not kept:
        kept = [line for line in lines if line and not line.startswith("WARNING:")
                and not any(noise in line for noise in _NOISE)][-most:]
    shown = [re.sub(r"^ERROR:\s*", "", line) for line in kept[:most]]
    # a failed command's line may hold its whole argv (a compiler's): its start says enough
    return "; ".join(line if len(line) <= 200 else line[:200] + "..." for line in shown) \
        or "no output"


# The builder's script: "$@" are the source distributions in build order. It stops at the
# first one that fails and says which in /out/failed; what the image lacks for native code
# goes in /out/no-compiler and /out/no-headers. --use-pep517: an older pip would build a
# project without pyproject.toml with the venv's own setuptools, and no wheel package there.
_BUILD_SCRIPT = """
set -u
mkdir -p /out/wheels /out/logs
python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' >/out/python
command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || : >/out/no-compiler
python3 -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
    || : >/out/no-headers
python3 -m venv /tmp/venv >/out/logs/venv.log 2>&1 || { echo venv >/out/failed; exit 0; }
for sdist in "$@"; do
    /tmp/venv/bin/pip wheel --disable-pip-version-check --no-cache-dir --no-index \
        --use-pep517 --find-links /dists --find-links /out/wheels --no-deps \
        --wheel-dir /out/wheels \
        "/dists/$sdist" >"/out/logs/$sdist.log" 2>&1 || { echo "$sdist" >/out/failed; exit 0; }
done
"""


def build(client: docker.DockerClient, downloaded: Downloaded, builder: Callable[[], str],
          python: str, log: Log) -> list[Path]:
    """The wheels the environment layer installs: the downloaded ones, and the source
    distributions built in ``builder()`` (an image with the image's Python), cached by the
    download and the builder's image id."""
    if not downloaded.sdists:
        return downloaded.wheels()
    image = builder()
    try:
        image_id = client.images.get(image).id
    except docker.errors.ImageNotFound:
        raise WheelBuildError(f"the builder image {image} does not exist") from None
    key = sha12({"download": downloaded.folder.name, "builder": image_id})
    out = cache_dir() / "built" / key
    if not (out / ".complete").is_file():
        log(f"building {len(downloaded.sdists)} source distribution(s) for Python {python} "
            f"in {image}: {' '.join(downloaded.sdists)}")
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"{key}-", dir=out.parent) as scratch:
            partial = Path(scratch) / "out"
            partial.mkdir()
            _run_builder(client, image, downloaded, partial)
            _check_built(partial, image, python)
            (partial / ".complete").write_text("")
            shutil.rmtree(out, ignore_errors=True)
            partial.rename(out)
    return [*downloaded.wheels(), *sorted((out / "wheels").glob("*.whl"))]


def _run_builder(client: docker.DockerClient, image: str, downloaded: Downloaded,
                 out: Path) -> None:
    """The build script in a locked-down container of ``image``: no network, no
    capabilities, the runner's uid; labelled as memsla's, so an interrupt or the next start
    removes it."""
    from runner.backends.docker.backend import HOST_LABEL, LABEL, OWNER_LABEL

    container = client.containers.create(
        image, ["sh", "-c", _BUILD_SCRIPT, "build", *downloaded.sdists], entrypoint=[],
        user=f"{os.getuid()}:{os.getgid()}", network_mode="none", cap_drop=["ALL"],
        security_opt=["no-new-privileges"], pids_limit=1024,
        environment={"HOME": "/tmp", "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        volumes={str(downloaded.folder): {"bind": "/dists", "mode": "ro"},
                 str(out): {"bind": "/out", "mode": "rw"}},
        labels={LABEL: "1", OWNER_LABEL: str(os.getpid()), HOST_LABEL: socket.gethostname()})
    try:
        container.start()
        status = container.wait()
        if status.get("StatusCode") != 0:
            tail = container.logs(tail=20).decode(errors="replace")
            raise WheelBuildError(f"the builder container of {image} exited "
                                  f"{status.get('StatusCode')}: {pip_reason(tail)}")
    except docker.errors.DockerException as exc:
        raise WheelBuildError(f"the builder container of {image} failed: {exc}") from None
    finally:
        try:
            container.remove(force=True)
        except docker.errors.DockerException:
            pass


def _check_built(out: Path, image: str, python: str) -> None:
    """The builder's Python is the image's, and every source distribution built; else the one
    that failed, pip's reason, and what the builder lacks for native code."""
    found = (out / "python").read_text().strip() if (out / "python").is_file() else "?"
    if found != python:
        raise WheelBuildError(f"the builder image {image} has Python {found}, the image "
                              f"{python}: its wheels would not install")
    failed = (out / "failed").read_text().strip() if (out / "failed").is_file() else ""
    if not failed:
        return
    log_file = out / "logs" / f"{failed}.log"
    text = log_file.read_text(errors="replace") if log_file.is_file() else ""
    reason = f"{pip_reason(text)} (pip's whole output: {keep_log('sdist', failed, text)})"
    if failed == "venv":
        raise WheelBuildError(f"python3 -m venv failed in the builder image {image}: {reason}")
    missing = [what for what, marker in (("C compiler (cc)", "no-compiler"),
                                         ("Python headers (Python.h)", "no-headers"))
               if (out / marker).exists()]
    lacks = (f" (the image {image} has no {' and no '.join(missing)}: a source distribution "
             "with native code needs them; give an image: or dockerfile: with them, e.g. "
             "Debian's build-essential and python3-dev)") if missing else ""
    name, _, version = failed.removesuffix(".zip").removesuffix(".tar.gz").rpartition("-")
    raise WheelBuildError(f"could not build {name} {version} from its source distribution "
                          f"for Python {python}: {reason}{lacks}")
