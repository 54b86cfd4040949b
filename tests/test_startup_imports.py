"""Start-up: ``runner --version`` and every ``--help`` import no heavy module, and a trivial
``runner check`` imports only what it uses.

The CLI's entry point runs in a fresh interpreter (``python -X importtime -m runner ...``) and
the modules it imported are read from the import-time log: a heavy third-party package
(pydantic, rich, docker, psutil, ...) or one of memsla's model-building modules in that list
fails the test, whatever the machine's speed; a check of one command with no tracker, sizes,
baseline, history or report fails it by importing what only those need (Docker, memray, the
history store, the change detector, HTML and plots, ...). No wall-clock assertion: the timings
are ``benchmarks/startup.py``'s.
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


def imported_by(args: list[str], cwd: Path | None = None,
                env: dict[str, str] | None = None) -> list[str]:
    """The modules ``python -m runner ARGS`` imports, in order, from ``-X importtime``."""
    package_root = str(Path(runner.__file__).resolve().parents[1])
    env = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join(
        [package_root, *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "runner", *args],
                          capture_output=True, text=True, env=env, timeout=120, check=False,
                          cwd=cwd)
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


# What a check of one command (no tracker, sizes, baseline, history or report flags) uses none
# of: other backends, trackers, stores, statistics packages and report formats.
UNUSED_PACKAGES = frozenset({
    "docker", "requests", "urllib3", "matplotlib", "memray", "psycopg", "psycopg2", "sqlite3",
    "_sqlite3", "ruptures", "scipy", "numpy", "jinja2",
    # stdlib, pulled in only by memsla modules such a check does not need: the background
    # reader's process pool, the leak driver, the SLA file's "did you mean"
    "concurrent", "multiprocessing", "tracemalloc", "difflib",
})
UNUSED_MODULES = frozenset({
    "runner.backends.docker", "runner.backends.forked", "runner.backends.scope",
    "runner.judging.baseline", "runner.judging.changes", "runner.judging.history_base",
    "runner.measure.leak_records", "runner.inbuild.leak", "runner.workload.project",
    "runner.workload.sitegen", "runner.shards", "runner.merge", "runner.capacity",
    "runner.api", "runner.cli.doctor",
})
# Of runner.history and runner.reports, only these: the --history flag (unset) and the
# terminal table.
USED_HISTORY = frozenset({"runner.history", "runner.history.recording"})
USED_REPORTS = frozenset({"runner.reports", "runner.reports.interface",
                          "runner.reports.terminal", "runner.reports.findings",
                          "runner.reports.common"})
TRIVIAL_SLA = """\
version: 1
defaults: {{backend: {backend}, tracker: none, limit: 256MiB, repeats: 1}}
scenarios:
  nothing: {{command: [/bin/true], slas: [duration < 60s]}}
"""


def unused(names: list[str]) -> list[str]:
    def within(name: str, packages: frozenset[str]) -> bool:
        return any(name == p or name.startswith(p + ".") for p in packages)

    return [name for name in dict.fromkeys(names)
            if name.split(".")[0] in UNUSED_PACKAGES or within(name, UNUSED_MODULES)
            or (within(name, frozenset({"runner.history"})) and name not in USED_HISTORY)
            or (within(name, frozenset({"runner.reports"})) and name not in USED_REPORTS)]


@pytest.mark.parametrize("backend", [pytest.param("cgroup", marks=pytest.mark.cgroup),
                                     "process"])
def test_a_trivial_check_imports_only_what_it_uses(tmp_path: Path, backend: str,
                                                   request: pytest.FixtureRequest) -> None:
    if backend == "cgroup":
        request.getfixturevalue("writable_cgroup")
    (tmp_path / "sla.yaml").write_text(TRIVIAL_SLA.format(backend=backend))
    names = imported_by(["check", "sla.yaml"], cwd=tmp_path,
                        env={"MEMSLA_CACHE_DIR": str(tmp_path / "cache")})
    # it measured and judged (exit 0: a pass), with the models and the table it needs
    assert {"pydantic", "yaml", "rich", "runner.results", "runner.slafile.model",
            "runner.judging.stage", "runner.reports.terminal"} <= set(names)
    assert unused(names) == []
