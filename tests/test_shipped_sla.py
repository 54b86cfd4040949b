"""The shipped sla.yaml passes with real Pelican at the sizes it ships (local cgroup backend)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli


@pytest.mark.slow
@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_shipped_sla_passes_on_the_local_backend(tmp_path: Path) -> None:
    shutil.copy(REPO / "sla.yaml", tmp_path / "sla.yaml")
    run = run_cli(["check", "sla.yaml", "--backend", "cgroup"], tmp_path, timeout=1200)
    assert run.exit_code == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.results is not None
    sizes = sorted(c["params"]["pages"] for c in run.results["cases"])
    assert sizes == [500, 1000, 2000, 10000]
    headline = run.case(pages=10000)
    assert headline["metrics"]["peak"]["max"] < 2 * 1024**3
    assert all(v["passed"] for c in run.results["cases"] for v in c["verdicts"])
