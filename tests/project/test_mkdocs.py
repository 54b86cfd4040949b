"""MkDocs (a second real static site generator, from PyPI) on memsla's generated content, with
the SLAs of examples/mkdocs/sla.yaml, on a real cgroup and a real Docker engine."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, run_cli

EXAMPLE = REPO / "examples" / "mkdocs"


@pytest.mark.slow
@pytest.mark.cgroup
@pytest.mark.docker
@pytest.mark.parametrize("backend", ["cgroup", "docker"])
def test_mkdocs_holds_its_slas(tmp_path: Path, backend: str,
                               request: pytest.FixtureRequest) -> None:
    request.getfixturevalue("writable_cgroup" if backend == "cgroup" else "docker_client")
    for name in ("sla.yaml", "mkdocs_config.py"):
        shutil.copy(EXAMPLE / name, tmp_path / name)
    run = run_cli(["check", "sla.yaml", "--backend", backend, "--repeats", "1"], tmp_path,
                  timeout=900)
    assert run.exit_code == 0, (run.stderr[-3000:], run.results and run.results["problems"])
    results: Any = run.results
    assert [c["params"]["pages"] for c in results["cases"]] == [100, 200, 400]
    assert all(c["backend"] == backend for c in results["cases"])
    # the fixture stayed MkDocs' read-only input: its output went to {output}
    assert all(r["fixture_changed"] is None for c in results["cases"] for r in c["runs"])
