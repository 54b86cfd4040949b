"""A Python version on the Docker backend without a registry: the host's interpreter of that
version copied into memsla's Debian base (``runner.backends.docker.python_base``), checked, and
a planted allocation measured in it; what is left out of the copy; the error for a version the
host lacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from runner.backends.docker import python_base
from runner.backends.docker.imaging import ImageBuildError
from runner.errors import FixtureError
from runner.workload.cache import find_interpreter
from tests.conftest import PLANT, assert_planted_within_2_percent, run_cli


def _host_python(minor: str) -> python_base.HostPython:
    try:
        find_interpreter(minor)
    except FixtureError as exc:
        pytest.skip(f"no Python {minor} here: {exc}")
    return python_base.host_python(minor)


def test_the_copy_keeps_the_interpreter_and_leaves_out_what_no_build_needs(
        tmp_path: Path) -> None:
    python = _host_python("3.12")
    tarball = tmp_path / "python.tar"
    python_base.write_tarball(python, tarball)
    with tarfile.open(tarball) as tar:
        members = {PurePosixPath(m.name): m for m in tar.getmembers()}
    names = set(members)
    stdlib = PurePosixPath("lib/python3.12")
    for kept in ("bin/python3.12", "lib/python3.12/os.py", "lib/python3.12/ensurepip/__init__.py",
                 "lib/python3.12/venv/__init__.py", "include/python3.12/Python.h"):
        assert PurePosixPath(kept) in names, kept
    assert any(n.parent == stdlib / "lib-dynload" and n.name.startswith("_ssl.") for n in names)
    assert any(n.name.startswith("libpython3.12.so") for n in names)
    assert any(n.parts[:3] == (*stdlib.parts, "ensurepip") and n.suffix == ".whl"
               for n in names), "venv's pip wheel"
    for n in names:
        assert "__pycache__" not in n.parts and n.suffix not in (".pyc", ".a"), n
        assert not {"test", "idlelib", "tkinter", "turtledemo"} & set(n.parts[2:]), n
        assert n.parts[:3] != (*stdlib.parts, "site-packages") or n == stdlib / "site-packages", \
            "the host's packages (and .pth files) stay on the host"
        assert not n.name.startswith(("_tkinter", "_testcapi")), n
        assert n.parts[0] in ("bin", "lib", "include"), n
        assert members[n].uid == 0 and members[n].mode & 0o004, n
    assert [n for n in names if n.parent.name == "bin"] == [PurePosixPath("bin/python3.12")]


def test_the_tag_follows_the_interpreter_and_the_base() -> None:
    python = _host_python("3.12")
    tag = python_base.python_base_tag(python, "sha256:aaa")
    assert tag.startswith("memsla-python:3.12-")
    assert tag == python_base.python_base_tag(python, "sha256:aaa")
    assert tag != python_base.python_base_tag(python, "sha256:bbb")
    other = python_base.HostPython(python.minor, python.version + "+", python.prefix,
                                   python.executable)
    assert python_base.python_base_tag(other, "sha256:aaa") != tag


def test_a_version_the_host_lacks_says_what_to_give() -> None:
    with pytest.raises(ImageBuildError) as caught:
        python_base.host_python("3.99")
    said = str(caught.value)
    assert "Python 3.99" in said and "image:" in said and "pyenv install 3.99" in said, said


@pytest.mark.docker
def test_python_312_without_an_image_runs_in_312_and_measures_a_planted_allocation(
        docker_client: Any, tmp_path: Path) -> None:
    _host_python("3.12")
    (tmp_path / "plant.py").write_text(
        "import sys\nassert sys.version_info[:2] == (3, 12), sys.version\n" + PLANT)
    (tmp_path / "sla.yaml").write_text(json.dumps({
        "version": 1, "defaults": {"backend": "docker", "limit": "1GiB", "repeats": 2},
        "scenarios": {"plant": {
            "python": "3.12",
            "generate": {"command": ["sh", "-c", 'cp plant.py "$FIXTURE"'],
                         "env": {"FIXTURE": "{fixture}"}},
            "workdir": "{fixture}", "command": ["python3", "plant.py", "main={mib}"],
            "matrix": {"mib": [0, 64]}, "slas": ["peak < 512MiB"]}}}))
    run = run_cli(["check", "sla.yaml"], tmp_path,
                  env={"MEMSLA_CACHE_DIR": str(tmp_path / "cache")})
    assert run.exit_code == 0, run.stderr + run.stdout
    assert run.results is not None
    assert {c["backend"] for c in run.results["cases"]} == {"docker"}
    assert_planted_within_2_percent(run, 64)
    assert run.results["host"]["harness_baseline"] > 0
    built = docker_client.images.list(name=python_base.PYTHON_REPOSITORY)
    assert any(t.startswith("memsla-python:3.12-") and not t.endswith("-unchecked")
               for image in built for t in image.tags)


@pytest.mark.docker
def test_image_build_makes_an_image_per_swept_version(docker_client: Any, tmp_path: Path) -> None:
    _host_python("3.12")
    (tmp_path / "sla.yaml").write_text(json.dumps({
        "version": 1, "scenarios": {"s": {
            "python": "{py}", "command": ["python3", "-c", "pass"],
            "matrix": {"py": ["3.11", "3.12", "3.99"], "pages": [1, 2]}}}}))
    built = subprocess.run([sys.executable, "-m", "runner", "image", "build", "sla.yaml"],
                           cwd=tmp_path, capture_output=True, text=True, check=False,
                           timeout=600, env={**os.environ,
                                             "MEMSLA_CACHE_DIR": str(tmp_path / "cache")})
    assert built.returncode == 3, built.stdout + built.stderr
    lines = dict(line.split("\t") for line in built.stdout.strip().splitlines())
    assert list(lines) == ["s[py=3.11]", "s[py=3.12]"], built.stdout
    assert lines["s[py=3.11]"].startswith("memsla-base:bookworm-")  # Debian's python3
    assert lines["s[py=3.12]"].startswith("memsla-python:3.12-")
    assert "s[py=3.99]: " in built.stderr and "pyenv install 3.99" in built.stderr, built.stderr
