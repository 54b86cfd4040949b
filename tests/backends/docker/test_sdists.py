"""Requirements published only as source distributions, on the Docker backend in real
containers: downloaded on the host from a local index the test makes, built into wheels in a
builder container with the image's Python (a C extension included) and no network, then
measured in an image that installs wheels only; a source distribution that cannot build names
itself and pip's reason."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from runner.backends.docker import images, wheels
from runner.backends.docker.base_image import BaseParams, base_image_tag
from tests.conftest import CliRun, require, run_cli, write_wheel

pytestmark = pytest.mark.docker

PLANTED_MIB = 64
# The environment image is keyed by the requirements' text, not by the index's files: a version
# of this run's own makes every run build its packages from their sdists (an image left by an
# earlier run would build nothing), and the images it made are removed at the module's end.
VERSION = f"1.{time.time_ns()}"

# A C extension that touches ``mib`` MiB of malloc'd memory, holds it a moment and frees it
# (returning one byte per page read back): a planted allocation the Python heap does not see.
HOLD_C = r"""
#include <Python.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static PyObject *hold(PyObject *self, PyObject *args) {
    long mib;
    if (!PyArg_ParseTuple(args, "l", &mib)) return NULL;
    size_t size = (size_t)mib << 20;
    char *block = malloc(size ? size : 1);
    if (block == NULL) return PyErr_NoMemory();
    memset(block, 1, size);
    usleep(300000);
    long total = 0;  /* read back, or the compiler drops the allocation altogether */
    for (size_t at = 0; at < size; at += 4096) total += block[at];
    free(block);
    return PyLong_FromLong(total);
}

static PyMethodDef methods[] = {{"hold", hold, METH_VARARGS, "touch and hold MiB"},
                                {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "memsla_native", NULL, -1, methods};
PyMODINIT_FUNC PyInit_memsla_native(void) { return PyModule_Create(&module); }
"""


# A PEP 517 build backend of its own, published only as a source distribution: a project
# built by it needs it built first (a build requirement with no wheel).
BACKEND = r"""
import base64, hashlib, os, tomllib, zipfile

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    with open("pyproject.toml", "rb") as handle:
        project = tomllib.load(handle)["project"]
    name, version = project["name"], project["version"]
    module = name.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    with open(f"{module}.py", "rb") as handle:
        files = {f"{module}.py": handle.read()}
    files[f"{info}/METADATA"] = (f"Metadata-Version: 2.1\nName: {name}\n"
                                 f"Version: {version}\n").encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    digest = lambda data: base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    record = "".join(f"{path},sha256={digest(data).decode()},{len(data)}\n"
                     for path, data in files.items()) + f"{info}/RECORD,,\n"
    wheel = f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel), "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
        archive.writestr(f"{info}/RECORD", record)
    return wheel
"""


def write_sdist(folder: Path, name: str, version: str, files: dict[str, str]) -> Path:
    """A source distribution ``name-version.tar.gz`` holding ``files`` (dedented) under its
    top folder."""
    top = f"{name.replace('-', '_')}-{version}"
    files = {**files, "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"}
    sdist = folder / f"{top}.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        for path, text in files.items():
            data = textwrap.dedent(text).encode()
            info = tarfile.TarInfo(f"{top}/{path}")
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return sdist


def _setuptools_project(name: str, dependencies: list[str], extra: str = "") -> str:
    return textwrap.dedent(f"""\
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "{name}"
        version = "{VERSION}"
        dependencies = {json.dumps(dependencies)}
        """) + textwrap.dedent(extra)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local index (a find-links folder): setuptools and wheel as wheels (fetched once from
    the index pip is configured with), a wheel-only dependency, and three source
    distributions: pure Python, a C extension, and a C extension that does not compile."""
    folder = tmp_path_factory.mktemp("index")
    fetched = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
         "--only-binary=:all:", "--dest", str(folder), "setuptools>=70.1", "wheel"],
        capture_output=True, text=True, check=False)
    if fetched.returncode != 0:
        require("index", f"pip could not fetch setuptools and wheel: {fetched.stderr[-500:]}")
    write_wheel(folder, "memsla-tiny", "1.0")
    write_sdist(folder, "memsla-purely", VERSION, {
        "pyproject.toml": _setuptools_project("memsla-purely", ["memsla-tiny>=1"], """
            [tool.setuptools]
            py-modules = ["memsla_purely"]
            """),
        "memsla_purely.py": "import memsla_tiny\nTINY = memsla_tiny.VERSION\n"})
    native_setup = ("from setuptools import Extension, setup\n"
                    "setup(ext_modules=[Extension('{module}', ['{module}.c'])])\n")
    write_sdist(folder, "memsla-native", VERSION, {
        "pyproject.toml": _setuptools_project("memsla-native", [f"memsla-purely=={VERSION}"]),
        "setup.py": native_setup.format(module="memsla_native"),
        "memsla_native.c": HOLD_C})
    write_sdist(folder, "memsla-backend", VERSION, {
        "pyproject.toml": _setuptools_project("memsla-backend", [], """
            [tool.setuptools]
            py-modules = ["memsla_backend"]
            """),
        "memsla_backend.py": BACKEND})
    write_sdist(folder, "memsla-custom", VERSION, {
        "pyproject.toml": f"""
            [build-system]
            requires = ["memsla-backend=={VERSION}"]
            build-backend = "memsla_backend"
            [project]
            name = "memsla-custom"
            version = "{VERSION}"
            """,
        "memsla_custom.py": "BUILT_BY = 'memsla-backend'\n"})
    write_sdist(folder, "memsla-broken", VERSION, {
        "pyproject.toml": _setuptools_project("memsla-broken", []),
        "setup.py": native_setup.format(module="memsla_broken"),
        "memsla_broken.c": "#include <Python.h>\nthis is not C;\n"})
    return folder


@pytest.fixture(scope="module")
def image(docker_client: Any) -> Iterator[str]:
    def made() -> set[str]:
        return {i.id for repository in ("memsla-env", "memsla-project")
                for i in docker_client.images.list(name=repository)}

    before = made()
    yield images.ensure_images(lambda _message: None, docker_client)
    for left in made() - before:
        try:
            docker_client.images.remove(left, force=True)
        except docker.errors.DockerException:  # in use, or gone: the next run makes its own
            pass


def _check(folder: Path, index: Path, scenario: dict[str, Any], limit: str = "512MiB",
           **defaults: Any) -> CliRun:
    (folder / "sla.yaml").write_text(json.dumps({
        "version": 1,
        "defaults": {"backend": "docker", "repeats": 1, "tracker": "none", "limit": limit,
                     **defaults},
        "scenarios": {"sdist": scenario}, "slas": ["peak < 400MiB"]}))
    return run_cli(["check", "sla.yaml"], folder, env={
        "MEMSLA_CACHE_DIR": str(folder / "cache"), "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(index)})


def test_source_distributions_are_built_in_the_image_and_measured(
        image: str, index: Path, tmp_path: Path) -> None:
    # the measured image has the built extension and no compiler
    code = ("import shutil, memsla_custom, memsla_native, memsla_purely; "
            "assert memsla_purely.TINY == '1.0'; "
            "assert memsla_custom.BUILT_BY == 'memsla-backend'; "
            "assert shutil.which('cc') is None and shutil.which('gcc') is None, 'a compiler'; "
            "assert memsla_native.hold({mib}) == {mib} * 256")
    run = _check(tmp_path, index, {"requirements": [f"memsla-native=={VERSION}",
                                                    f"memsla-custom=={VERSION}"],
                                   "command": ["python3", "-c", code],
                                   "matrix": {"mib": [0, PLANTED_MIB]}})
    assert run.exit_code == 0, run.stderr + run.stdout
    idle, planted = run.case(mib=0), run.case(mib=PLANTED_MIB)
    for case in (idle, planted):
        assert case["error"] is None and all(v["passed"] for v in case["verdicts"]), case
    delta = planted["metrics"]["peak"]["median"] - idle["metrics"]["peak"]["median"]
    truth = PLANTED_MIB * 2**20
    assert abs(delta - truth) / truth < 0.02, delta / 2**20
    # every source distribution went through the builder, the build backend one included
    built = sorted(p.name for p in (tmp_path / "cache" / "built").glob("*/wheels/*.whl"))
    assert [name.split("-")[0] for name in built] == [
        "memsla_backend", "memsla_custom", "memsla_native", "memsla_purely"], built
    assert "-cp311-cp311-linux_x86_64.whl" in built[2], built


def test_the_host_downloads_source_distributions_and_what_builds_them(
        index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMSLA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    said: list[str] = []
    downloaded = wheels.download([f"memsla-custom=={VERSION}", f"memsla-purely=={VERSION}"],
                                 "3.11", said.append)
    # a build requirement before what it builds; the resolution's stand-ins are gone
    assert downloaded.sdists[:2] == (f"memsla_backend-{VERSION}.tar.gz",
                                     f"memsla_custom-{VERSION}.tar.gz"), downloaded
    assert set(downloaded.sdists) == {f"memsla_{name}-{VERSION}.tar.gz"
                                      for name in ("backend", "custom", "purely")}
    names = {path.name.split("-")[0] for path in downloaded.wheels()}
    assert {"memsla_tiny", "setuptools", "wheel"} <= names, names
    assert not names & {"memsla_backend", "memsla_custom", "memsla_purely"}, names
    assert wheels.download([f"memsla-custom=={VERSION}", f"memsla-purely=={VERSION}"],
                           "3.11", said.append) == downloaded  # cached
    assert wheels.build_requirements(index / f"memsla_custom-{VERSION}.tar.gz") == [
        f"memsla-backend=={VERSION}"]
    assert wheels.build_requirements(index / f"memsla_purely-{VERSION}.tar.gz") == [
        "setuptools>=61", "wheel"]


def test_a_source_distribution_that_does_not_build_names_itself_and_why(
        image: str, index: Path, tmp_path: Path) -> None:
    run = _check(tmp_path, index, {"requirements": [f"memsla-purely=={VERSION}",
                                                    f"memsla-broken=={VERSION}"],
                                   "command": ["python3", "-c", "pass"]})
    assert run.results is not None, run.stderr
    error = run.case()["error"]
    assert error is not None, run.stderr
    assert error.startswith(f"could not build memsla_broken {VERSION}"), error
    assert "memsla_broken.c" in error and "error" in error, error  # the compiler's own words
    assert "memsla_purely" not in error, error
    assert len(error) < 1000, error
    kept = list((tmp_path / "cache" / "logs").glob("sdist-memsla_broken-*.log"))
    assert len(kept) == 1 and str(kept[0]) in error, error
    assert "Failed building wheel for memsla-broken" in kept[0].read_text()  # pip's whole say
    assert run.exit_code == 3, run.stderr + run.stdout


def test_an_image_without_a_compiler_says_so_when_native_code_fails(
        image: str, index: Path, tmp_path: Path) -> None:
    # a user's own image: memsla's base (no compiler, no Python headers) under another id
    (tmp_path / "Dockerfile").write_text(f"FROM {base_image_tag(BaseParams())}\n"
                                         "LABEL org.memsla.test=no-compiler\n")
    run = _check(tmp_path, index, {"requirements": [f"memsla-native=={VERSION}"],
                                   "dockerfile": "Dockerfile",
                                   "command": ["python3", "-c", "pass"]})
    assert run.results is not None, run.stderr
    error = run.case()["error"]
    assert error is not None, run.stderr
    assert error.startswith(f"could not build memsla_native {VERSION}"), error
    assert "has no C compiler (cc) and no Python headers (Python.h)" in error, error
    assert "build-essential" in error, error


def test_pip_reason_keeps_the_compiler_error_without_pips_frame() -> None:
    log = textwrap.dedent("""\
        Processing /dists/memsla_broken-1.0.tar.gz
          error: subprocess-exited-with-error

          \u00d7 Building wheel for memsla-broken (pyproject.toml) did not run successfully.
          \u2502 exit code: 1
          \u2570\u2500> [5 lines of output]
              running build_ext
              memsla_broken.c:2:1: error: unknown type name 'this'
              error: command '/usr/bin/x86_64-linux-gnu-gcc' failed with exit code 1
              [end of output]

          note: This error originates from a subprocess, and is likely not a problem with pip.
          ERROR: Failed building wheel for memsla-broken
        ERROR: Failed to build one or more wheels
        """)
    assert wheels.pip_reason(log) == (
        "memsla_broken.c:2:1: error: unknown type name 'this'; "
        "error: command '/usr/bin/x86_64-linux-gnu-gcc' failed with exit code 1")
    long = "error: Command '['gcc', " + "'-O2', " * 100 + "]' returned non-zero exit status 1."
    assert wheels.pip_reason(long) == long[:200] + "..."


def test_a_named_python_builds_native_source_distributions_with_that_python(
        image: str, index: Path, tmp_path: Path) -> None:
    # python: "3.12" with no image: the base is the host's 3.12 on memsla's Debian base, and
    # its builder the same interpreter on the variant with a compiler; the extension imports
    # only if it was built for 3.12 (the image is kept by its requirements' text, so a second
    # run of this test finds it made and builds nothing)
    code = ("import sys, memsla_native; assert sys.version_info[:2] == (3, 12); "
            "assert memsla_native.hold(1) == 256")
    run = _check(tmp_path, index, {"requirements": [f"memsla-native=={VERSION}"],
                                   "python": "3.12", "command": ["python3", "-c", code]})
    assert run.exit_code == 0, run.stderr + run.stdout
    assert run.case()["error"] is None
