"""Ctrl-C in the first moments of a real check on the local cgroup, while the runner imports,
loads the SLA file, picks its backend and starts the first build: exit 130, a results file that
says "interrupted" (never pass), and nothing left behind."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import interrupt_after, wait_until

SLA = """\
version: 1
defaults: {backend: cgroup, repeats: 1, tracker: none, limit: 128MiB}
scenarios:
  sleepy: {command: [python3, -c, "import time; time.sleep(30)"]}
slas: [peak < 1GiB]
"""


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
@pytest.mark.parametrize("seconds", [0.2, 0.5, 1.0, 2.0])
def test_an_early_interrupt_writes_an_interrupted_results_file(tmp_path: Path,
                                                               seconds: float) -> None:
    (tmp_path / "sla.yaml").write_text(textwrap.dedent(SLA))
    left = interrupt_after([sys.executable, "-m", "runner", "check", "sla.yaml"], tmp_path,
                           seconds)
    assert left.exit_code == 130, left.stderr
    assert left.results is not None, "no results file"
    assert left.results["status"] == "interrupted" and left.results["interrupted"] is True
    assert left.results["cases"] == []
    assert wait_until(lambda: not left.work_folders() and not left.cgroups(), 10)
