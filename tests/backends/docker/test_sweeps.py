"""Version sweeps on the Docker backend, in real containers: one environment image per
combination of ``python:`` and ``requirements:``; a version the image cannot provide, or pip
cannot install, is that case's error saying what to give, and the other case runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runner.backends.docker import images
from tests.conftest import run_cli, write_wheel

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def image(docker_client: Any) -> str:
    return images.ensure_images(lambda _message: None, docker_client)


def test_a_sweep_gets_an_image_per_combination_and_errors_per_case(
        image: str, tmp_path: Path, docker_client: Any) -> None:
    wheels = tmp_path / "wheels"
    write_wheel(wheels, "memsla-tiny", "1.0")
    check = ("import sys, memsla_tiny; v = '%d.%d' % sys.version_info[:2]; "
             "assert (v, memsla_tiny.VERSION) == ('{py}', '{tiny}'), v")
    (tmp_path / "sla.yaml").write_text(json.dumps({
        "version": 1, "defaults": {"backend": "docker", "repeats": 1, "tracker": "none",
                                   "limit": "512MiB"},
        "scenarios": {"env": {"python": "{py}", "requirements": ["memsla-tiny=={tiny}"],
                              "command": ["python3", "-c", check],
                              "matrix": {"py": ["3.11", "3.12"], "tiny": ["1.0", "9.9"]}}}}))
    run = run_cli(["check", "sla.yaml"], tmp_path, env={
        "MEMSLA_CACHE_DIR": str(tmp_path / "cache"), "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheels)})
    assert run.results is not None, run.stderr
    good = run.case(py="3.11", tiny="1.0")
    assert good["error"] is None and all(v["passed"] for v in good["verdicts"]), good
    # the base image has Python 3.11 only: the error says what to give
    for tiny in ("1.0", "9.9"):
        error = run.case(py="3.12", tiny=tiny)["error"]
        assert "names Python 3.12 but the image" in error and "set image:" in error, error
    unavailable = run.case(py="3.11", tiny="9.9")["error"]
    assert "pip could not download" in unavailable, unavailable
    assert "No matching distribution found for memsla-tiny==9.9" in unavailable, unavailable
    assert run.exit_code == 3, run.stderr + run.stdout
