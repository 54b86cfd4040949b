"""Version sweeps on the Docker backend, in real containers: one environment image per
combination of ``python:`` and ``requirements:`` (a version the Debian base lacks on the host's
interpreter of it); a version the host lacks, or pip cannot install, is that case's error
saying what to give, and the other cases run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runner.backends.docker import images
from runner.errors import FixtureError
from runner.history.model import environment_of
from runner.history.recording import requirements_of
from runner.results import Results
from runner.workload.cache import find_interpreter
from tests.conftest import run_cli, write_wheel

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def image(docker_client: Any) -> str:
    return images.ensure_images(lambda _message: None, docker_client)


def test_a_sweep_gets_an_image_per_combination_and_errors_per_case(
        image: str, tmp_path: Path, docker_client: Any) -> None:
    for version in ("3.11", "3.12"):
        try:
            find_interpreter(version)
        except FixtureError as exc:
            pytest.skip(f"no Python {version} here: {exc}")
    wheels = tmp_path / "wheels"
    write_wheel(wheels, "memsla-tiny", "1.0")
    check = ("import sys, memsla_tiny; v = '%d.%d' % sys.version_info[:2]; "
             "assert (v, memsla_tiny.VERSION) == ('{py}', '{tiny}'), v")
    (tmp_path / "sla.yaml").write_text(json.dumps({
        "version": 1, "defaults": {"backend": "docker", "repeats": 1, "tracker": "none",
                                   "limit": "512MiB"},
        "scenarios": {"env": {"python": "{py}", "requirements": ["memsla-tiny=={tiny}"],
                              "command": ["python3", "-c", check],
                              "matrix": {"py": ["3.11", "3.12", "3.99"],
                                         "tiny": ["1.0", "9.9"]}}}}))
    run = run_cli(["check", "sla.yaml"], tmp_path, env={
        "MEMSLA_CACHE_DIR": str(tmp_path / "cache"), "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheels)})
    assert run.results is not None, run.stderr
    # each runs in its own Python (the command asserts it), its environment recorded so
    results = Results.model_validate(run.results)
    settings = requirements_of(tmp_path / "sla.yaml")
    for py in ("3.11", "3.12"):
        good = run.case(py=py, tiny="1.0")
        assert good["error"] is None and all(v["passed"] for v in good["verdicts"]), good
        case = next(c for c in results.cases if c.params == {"py": py, "tiny": "1.0"})
        assert environment_of(results, case, settings["env"]).build_python == py
    # two environments: on the Debian base (3.11), and on the host's 3.12 copied into it
    bases = {image.labels.get("org.memsla.base", "")
             for image in docker_client.images.list(name="memsla-env")}
    assert any(base.startswith("memsla-python:3.12-") for base in bases), bases
    # a version the host lacks: its cases' error says what to give; the others ran
    for tiny in ("1.0", "9.9"):
        error = run.case(py="3.99", tiny=tiny)["error"]
        assert "Python 3.99" in error and "image:" in error, error
        assert "pyenv install 3.99" in error, error
    for py in ("3.11", "3.12"):
        unavailable = run.case(py=py, tiny="9.9")["error"]
        assert "pip could not download" in unavailable, unavailable
        assert "No matching distribution found for memsla-tiny==9.9" in unavailable, unavailable
    assert run.exit_code == 3, run.stderr + run.stdout


def test_an_image_and_a_dockerfile_per_matrix_value(image: str, tmp_path: Path) -> None:
    """Each case runs in its own image, checked and measured with the case: one that does not
    exist is that case's error, not the check's."""
    for flavour in ("a", "b"):
        (tmp_path / flavour).mkdir()
        (tmp_path / flavour / "Dockerfile").write_text(
            f"FROM memsla-base:bookworm\nENV FLAVOUR=flavour-{flavour}\n")
    (tmp_path / "sla.yaml").write_text(json.dumps({
        "version": 1, "defaults": {"backend": "docker", "repeats": 1, "tracker": "none",
                                   "limit": "256MiB"},
        "scenarios": {
            "img": {"image": "{img}", "command": ["python3", "-c", "pass"],
                    "matrix": {"img": [image, "memsla-base:bookworm", "memsla-missing:nope"]},
                    "slas": ["peak < 200MiB"]},
            "file": {"dockerfile": "{flavour}/Dockerfile",
                     "command": ["python3", "-c", "import os; assert os.environ['FLAVOUR'] == "
                                 "'flavour-{flavour}', os.environ.get('FLAVOUR')"],
                     "matrix": {"flavour": ["a", "b"]}, "slas": ["peak < 200MiB"]}}}))
    run = run_cli(["check", "sla.yaml"], tmp_path,
                  env={"MEMSLA_CACHE_DIR": str(tmp_path / "cache")})
    assert run.results is not None, run.stderr
    for params in ({"img": image}, {"img": "memsla-base:bookworm"}, {"flavour": "a"},
                   {"flavour": "b"}):
        case = run.case(**params)
        assert case["error"] is None and all(v["passed"] for v in case["verdicts"]), case
        assert case["backend"] == "docker"
    missing = run.case(img="memsla-missing:nope")["error"]
    assert "memsla-missing:nope does not exist" in missing, missing
    assert run.results["host"]["harness_baseline"] > 0
    assert run.exit_code == 3, run.stderr + run.stdout
