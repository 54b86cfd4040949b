"""The layering of docs/architecture.md, checked by import-linter (contracts in pyproject.toml):
no module imports one above it, and the code staged into the build imports nothing else."""

from __future__ import annotations

import shutil
import subprocess

from tests.conftest import REPO


def test_no_module_imports_a_layer_above_it() -> None:
    lint_imports = shutil.which("lint-imports")
    assert lint_imports is not None, "import-linter is a dev dependency: pip install -e '.[dev]'"
    result = subprocess.run([lint_imports, "--no-cache"], cwd=REPO, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout
