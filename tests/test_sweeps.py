"""Version sweeps and rules across matrix values, on real builds in the local cgroup: a planted
1.5x memory factor between two matrix values read back as a ratio within 2% and judged at
both sides of the bound; a sweep over two Python versions of this host building two
environments; a version pip cannot install failing its own case only."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from runner.errors import FixtureError
from runner.workload.cache import find_interpreter
from tests.conftest import run_cli, write_wheel

pytestmark = [pytest.mark.cgroup, pytest.mark.usefixtures("writable_cgroup")]

# base MiB serially, 1.5 x base "in parallel": the planted factor of the cross-value rules
FACTOR = """
import sys, time
base, mode = int(sys.argv[1]), sys.argv[2]
mib = base * 3 // 2 if mode == "parallel" else base
block = bytearray(b"\\x01") * (mib * 1024 * 1024)
time.sleep(0.3)
"""

CROSS = """\
version: 1
defaults: {backend: cgroup, limit: 1GiB, repeats: 2}
scenarios:
  plant:
    command: [python3, factor.py, "{base}", "{mode}"]
    matrix: {mode: [serial, parallel], base: [64, 128]}
    slas:
      - python_peak(mode=parallel) / python_peak(mode=serial) < 1.6
      - python_peak(mode=parallel) / python_peak(mode=serial) < 1.4
      - peak(mode=parallel) - peak(mode=serial) < 48MiB
"""


def _verdicts(run: Any, rule: str) -> list[dict[str, Any]]:
    assert run.results is not None, run.stderr
    return [v for s in run.results["scenarios"] for v in s["verdicts"] if v["rule"] == rule]


def test_a_planted_factor_is_judged_across_matrix_values(tmp_path: Path) -> None:
    (tmp_path / "factor.py").write_text(FACTOR)
    (tmp_path / "sla.yaml").write_text(CROSS)
    run = run_cli(["check", "sla.yaml", "--markdown", "out.md", "--junit", "out.xml"],
                  tmp_path, env={"MEMSLA_CACHE_DIR": str(tmp_path / "cache")})
    assert run.exit_code == 1, run.stderr + run.stdout  # the < 1.4 rule breaks
    assert run.results is not None
    # the compared axis varies fastest: its values sit side by side in every report
    assert [c["params"] for c in run.results["cases"]] == [
        {"mode": "serial", "base": 64}, {"mode": "parallel", "base": 64},
        {"mode": "serial", "base": 128}, {"mode": "parallel", "base": 128}]
    comparisons = run.results["scenarios"][0]["analysis"]["comparisons"]
    ratios = [c for c in comparisons if c["rule"].endswith("< 1.6")]
    assert [c["params"] for c in ratios] == [{"base": 64}, {"base": 128}]  # one per pair
    for comparison in ratios:
        assert abs(comparison["value"] - 1.5) / 1.5 < 0.02, comparison
        assert comparison["left"].startswith("plant[mode=parallel")
        assert comparison["value"] == pytest.approx(
            comparison["left_value"] / comparison["right_value"])
    holds = _verdicts(run, "python_peak(mode=parallel) / python_peak(mode=serial) < 1.6")
    breaks = _verdicts(run, "python_peak(mode=parallel) / python_peak(mode=serial) < 1.4")
    assert [v["passed"] for v in holds] == [True, True]
    assert [v["passed"] for v in breaks] == [False, False]
    # 32 MiB more at base 64, 64 MiB more at base 128: one verdict each side of 48 MiB
    differences = _verdicts(run, "peak(mode=parallel) - peak(mode=serial) < 48MiB")
    assert [v["passed"] for v in differences] == [True, False]
    assert abs(differences[0]["value"] - 32 * 2**20) / (32 * 2**20) < 0.05
    # both sides' values in every report, on a pass too
    for text in (run.stdout, (tmp_path / "out.md").read_text(),
                 (tmp_path / "out.xml").read_text()):
        assert "python_peak(mode=parallel) = 96" in text.replace("\\_", "_"), text
        assert "python_peak(mode=serial) = 64" in text.replace("\\_", "_"), text
    assert "pass: python_peak(mode=parallel) = 96" in run.stdout


def test_a_sweep_over_two_pythons_builds_an_environment_for_each(tmp_path: Path) -> None:
    for version in ("3.11", "3.12"):
        try:
            find_interpreter(version)
        except FixtureError as exc:
            pytest.skip(f"no Python {version} here: {exc}")
    # each run asserts it runs the case's own version
    (tmp_path / "sla.yaml").write_text("""\
version: 1
defaults: {backend: cgroup, repeats: 1, limit: 512MiB}
scenarios:
  hello:
    python: "{py}"
    requirements: ["memsla-tiny=={tiny}"]
    command: [python, -c, "import sys, memsla_tiny; v = '%d.%d' % sys.version_info[:2]; \\
assert v == '{py}', v"]
    matrix: {py: ["3.11", "3.12"], tiny: ["1.0"]}
    slas: ["duration(py=3.12) - duration(py=3.11) < 10s"]
""")
    wheels = tmp_path / "wheels"
    write_wheel(wheels, "memsla-tiny", "1.0")
    cache = tmp_path / "cache"
    run = run_cli(["check", "sla.yaml"], tmp_path, env={
        "MEMSLA_CACHE_DIR": str(cache), "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels)})
    assert run.exit_code == 0, run.stderr + run.stdout
    assert [c["error"] for c in run.results["cases"]] == [None, None]  # type: ignore[index]
    assert [c["params"]["py"] for c in run.results["cases"]] == ["3.11", "3.12"]  # type: ignore[index]
    venvs = [p for p in (cache / "venvs").iterdir() if (p / "pyvenv.cfg").is_file()]
    versions = sorted(next(line.split("=")[1].strip()
                           for line in (p / "pyvenv.cfg").read_text().splitlines()
                           if line.startswith("version"))[:4] for p in venvs)
    assert versions == ["3.11", "3.12"]
    verdict = _verdicts(run, "duration(py=3.12) - duration(py=3.11) < 10s")[0]
    assert verdict["passed"] is True and "duration(py=3.11) = " in verdict["reason"]


def test_a_version_pip_cannot_install_is_its_own_case_error(tmp_path: Path) -> None:
    (tmp_path / "sla.yaml").write_text("""\
version: 1
defaults: {backend: cgroup, repeats: 1, tracker: none, limit: 512MiB}
scenarios:
  dep:
    requirements: ["memsla-tiny=={v}"]
    command: [python, -c, "import memsla_tiny; assert memsla_tiny.VERSION == '{v}'"]
    matrix: {v: ["1.0", "9.9"]}
    slas: ["peak(v=9.9) / peak(v=1.0) < 2"]
""")
    wheels = tmp_path / "wheels"
    write_wheel(wheels, "memsla-tiny", "1.0")
    run = run_cli(["check", "sla.yaml"], tmp_path, env={
        "MEMSLA_CACHE_DIR": str(tmp_path / "cache"), "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheels)})
    assert run.exit_code == 3, run.stderr + run.stdout  # not judged: an error, not a failure
    good, bad = run.case(v="1.0"), run.case(v="9.9")
    assert good["error"] is None
    assert all(v["passed"] for v in good["verdicts"])
    assert "No matching distribution found for memsla-tiny==9.9" in bad["error"]
    assert "pip exited 1" in bad["error"]
    verdict = _verdicts(run, "peak(v=9.9) / peak(v=1.0) < 2")[0]
    assert verdict["passed"] is None  # never passed
    assert "dep[v=9.9] was not measured" in verdict["reason"]


def test_find_interpreter_names_what_to_give() -> None:
    with pytest.raises(FixtureError, match=r"no Python 3\.99 on this host .*give python: the path"):
        find_interpreter("3.99")
    found = find_interpreter("3.11")
    out = subprocess.run([found, "-c", "import sys; print(sys.version_info[:2])"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "(3, 11)" and shutil.which(found) is not None
