"""Start-up: ``runner --version`` and every ``--help`` import no heavy module.

The CLI's entry point runs in a fresh interpreter (``python -X importtime -m runner ...``) and
the modules it imported are read from the import-time log: a heavy third-party package
(pydantic, rich, docker, psutil, ...) or one of memsla's model-building modules in that list
fails the test, whatever the machine's speed. No wall-clock assertion: the timings are
``benchmarks/startup.py``'s.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import runner

# Third-party packages (top-level names) a parser needs none of.
BANNED_PACKAGES = frozenset({
    "pydantic", "pydantic_core", "annotated_types", "rich", "docker", "psutil", "yaml",
    "matplotlib", "scipy", "numpy", "ruptures", "filelock", "jinja2", "memray", "requests",
    "urllib3", "sqlite3", "_sqlite3", "psycopg", "psycopg2",
})
# memsla's own modules that build models or pull in the measuring stack.
BANNED_MODULES = frozenset({
    "runner.results", "runner.slafile", "runner.slafile.model", "runner.plan",
    "runner.session", "runner.execute", "runner.scheduler", "runner.capacity", "runner.merge",
    "runner.measure", "runner.workload", "runner.judging", "runner.reports",
    "runner.history.model", "runner.history.store", "runner.history.outlook",
    "runner.backends.local", "runner.backends.docker", "runner.backends.process",
    "runner.backends.forked", "runner.backends.fence",
})

COMMANDS = [
    ["--version"],
    ["--help"],
    ["check", "--help"],
    ["merge", "--help"],
    ["report", "--help"],
    ["capacity", "--help"],
    ["history", "--help"],
    ["history", "backfill", "--help"],
    ["history", "push", "--help"],
]


def imported_by(args: list[str]) -> list[str]:
    """The modules ``python -m runner ARGS`` imports, in order, from ``-X importtime``."""
    package_root = str(Path(runner.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [package_root, *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "runner", *args],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = [line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
             if line.startswith("import time:") and "|" in line]
    assert "runner.cli" in names, proc.stderr[-2000:]  # the log is the one we think it is
    return names


def heavy(names: list[str]) -> list[str]:
    return [name for name in names if name.split(".")[0] in BANNED_PACKAGES
            or any(name == banned or name.startswith(banned + ".")
                   for banned in BANNED_MODULES)]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_the_parser_imports_no_heavy_module(args: list[str]) -> None:
    assert heavy(imported_by(args)) == []


def test_the_check_imports_them_so_the_list_can_fail(tmp_path: Path) -> None:
    """The same reading sees the heavy modules where a command needs them: a check of a bad
    SLA file loads the SLA file's models (and fails with exit 2 before measuring)."""
    sla = tmp_path / "sla.yaml"
    sla.write_text("version: 1\nscenarios: {}\nbogus: 1\n")
    package_root = str(Path(runner.__file__).resolve().parents[1])
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "runner", "check", str(sla)],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "PYTHONPATH": package_root})
    assert proc.returncode == 2, proc.stderr[-2000:]
    names = [line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
             if line.startswith("import time:")]
    assert {"pydantic", "runner.slafile.model"} <= set(heavy(names))
