"""The shipped sla.yaml, as shipped (``backend: auto``), runs in real containers where an engine
answers, and passes at the sizes it ships: auto builds its scenarios' image (Pelican) itself."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, run_cli


@pytest.mark.slow
@pytest.mark.docker
def test_shipped_sla_under_auto_runs_in_containers_and_passes(docker_client: Any,
                                                             tmp_path: Path) -> None:
    shutil.copy(REPO / "sla.yaml", tmp_path / "sla.yaml")
    run = run_cli(["check", "sla.yaml"], tmp_path, timeout=1500)
    assert run.exit_code == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.results is not None
    assert {c["backend"] for c in run.results["cases"]} == {"docker"}
    assert run.results["host"]["backend"] == "docker"
    assert "image" in run.results["host"]["backend_reason"]
    assert run.stdout.count("backend auto: docker:") == 2, "one choice per scenario, said"
    assert sorted(c["params"]["pages"] for c in run.results["cases"]) == [500, 1000, 2000, 10000]
    assert run.results["host"]["harness_baseline"] > 0
    assert run.case(pages=10000)["metrics"]["peak"]["max"] < 2 * 1024**3
