"""Plugin tests run pytest in a subprocess (pytester) with the plugin loaded by ``-p``, so they
test this checkout's plugin whether or not its entry point is installed (PYTHONPATH decides
which ``runner`` it imports)."""

from __future__ import annotations

import importlib.metadata
import json
from dataclasses import dataclass
from typing import Any

import pytest

MiB = 1 << 20
MODULE = "runner.pytest_plugin"


def plugin_arg() -> str:
    """What ``-p`` names: the installed entry point where there is one (loading the module under
    a second name would register it twice), else the module itself."""
    for entry in importlib.metadata.entry_points(group="pytest11"):
        if entry.value == MODULE:
            return entry.name
    return MODULE


@dataclass
class PluginRun:
    outcome: pytest.RunResult
    results: dict[str, Any] | None

    @property
    def text(self) -> str:
        return str(self.outcome.stdout) + str(self.outcome.stderr)

    def case(self, test: str) -> dict[str, Any]:
        assert self.results is not None, self.text
        found = [c for c in self.results["cases"] if c["scenario"].endswith("::" + test)]
        assert len(found) == 1, (test, [c["scenario"] for c in self.results["cases"]])
        return found[0]

    def peak(self, test: str) -> float:
        return float(self.case(test)["metrics"]["peak"]["max"])


@pytest.fixture
def run_plugin(pytester: pytest.Pytester) -> Any:
    """Write the test file, run pytest on it with the plugin and ``--memsla-json``."""

    def run(source: str, *args: str) -> PluginRun:
        pytester.makepyfile(test_measured=source)
        out = pytester.path / "memsla.json"
        outcome = pytester.runpytest_subprocess(
            "-p", plugin_arg(), "-p", "no:cacheprovider", "--memsla-json", str(out),
            *args)
        results = json.loads(out.read_text()) if out.exists() else None
        return PluginRun(outcome, results)

    return run
