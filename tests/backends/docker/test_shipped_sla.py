"""The shipped sla.yaml passes with --backend docker at the sizes it ships (real containers)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, run_cli


@pytest.mark.slow
@pytest.mark.docker
def test_shipped_sla_passes_with_the_docker_backend(docker_client: Any, tmp_path: Path) -> None:
    shutil.copy(REPO / "sla.yaml", tmp_path / "sla.yaml")
    run = run_cli(["check", "sla.yaml", "--backend", "docker"], tmp_path, timeout=1500)
    assert run.exit_code == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.results is not None
    assert {c["backend"] for c in run.results["cases"]} == {"docker"}
    assert sorted(c["params"]["pages"] for c in run.results["cases"]) == [500, 1000, 2000, 10000]
    assert run.results["host"]["harness_baseline"] > 0
    assert run.case(pages=10000)["metrics"]["peak"]["max"] < 2 * 1024**3
