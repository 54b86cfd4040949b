"""Step scenarios and disk figures on the Docker backend, in real containers.

Each step is a container run of its own, on the run's one fixture copy and output folder
(bind mounts): an idle step, a full build holding 128 MiB that leaves a file in the copy and
one under ``{output}``, and an incremental build that needs both and holds 32 MiB. Each step's
peak minus the idle step's is the planted size; a first step that fails leaves the next one not
run and the case not passing. ``disk(NAME)`` reads the host side of a bind-mounted folder after
the run: a 64 MiB file written into ``{output}/cache`` inside the container, within 1%.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runner.backends.docker import images
from tests.conftest import CliRun, run_cli
from tests.measure.test_disk_and_cache import WRITE_CACHE

pytestmark = pytest.mark.docker

MiB = 1024 * 1024

# python3 -c GROW MIB [--write FILE...] [--need FILE...]: fails unless every --need FILE holds
# "built", holds MIB MiB (every page touched), then writes "built" into every --write FILE.
# No braces: commands are templates.
GROW = """
import os, sys, time
mib, args = int(sys.argv[1]), sys.argv[2:]
pairs = list(zip(args[::2], args[1::2]))
for flag, name in pairs:
    if flag == "--need" and not (os.path.exists(name) and open(name).read() == "built"):
        sys.exit("not built: " + name)
block = bytearray(b"\\x01") * (mib * 1024 * 1024)
time.sleep(0.3)
for flag, name in pairs:
    if flag == "--write":
        os.makedirs(os.path.dirname(name), exist_ok=True)
        with open(name, "w") as handle:
            handle.write("built")
"""


BUILT = ["{fixture_copy}/sub/built.txt", "{output}/state/built.txt"]


@pytest.fixture(scope="module")
def image(docker_client: Any) -> str:
    return images.ensure_images(lambda _message: None, docker_client)


def _grow(mib: int, flag: str, files: list[str], *more: str) -> list[str]:
    return ["python3", "-c", GROW, str(mib), *[part for name in files for part in (flag, name)],
            *more]


def _steps_check(folder: Path, image: str, full: list[str]) -> CliRun:
    steps = {
        "generate": {"command": ["sh", "-c", 'echo x > "$FIXTURE/page.md"'],
                     "env": {"FIXTURE": "{fixture}"}},
        "steps": [{"name": "idle", "command": _grow(0, "--write", [])},
                  {"name": "full", "command": full},
                  # an incremental build also writes into what the full build made
                  {"name": "incremental", "command": _grow(
                      32, "--need", BUILT, "--write", "{output}/state/again.txt",
                      "--write", "{fixture_copy}/sub/again.txt")}],
        "disk": {"state": "{output}/state"},
        "slas": ["step(incremental).peak < 100MiB", "step(full).peak < 100MiB",
                 "step(incremental).peak / step(full).peak < 0.5", "disk_files(state) == 2"]}
    cache = {"command": ["python3", "-c", WRITE_CACHE, "{output}/cache", "64"],
             "disk": {"cache": "{output}/cache"}, "tracker": "none",
             "slas": ["disk(cache) < 100MiB", "disk_files(cache) == 2"]}
    (folder / "sla.yaml").write_text(json.dumps({
        "version": 1, "defaults": {"backend": "docker", "image": image, "limit": "512MiB",
                                   "repeats": 2},
        "scenarios": {"site": steps, "cache": cache}}, indent=2))
    return run_cli(["check", "sla.yaml", "--backend", "docker", "--markdown", "report.md",
                    "--html", "report.html", "--junit", "report.xml"], folder,
                   env={"MEMSLA_CACHE_DIR": str(folder / "cache")})


def _median(case: dict[str, Any], metric: str) -> float:
    return float(case["metrics"][metric]["median"])


def test_planted_steps_and_a_cache_folder_in_containers(image: str, tmp_path: Path) -> None:
    run = _steps_check(tmp_path, image, _grow(128, "--write", BUILT))
    assert run.exit_code == 1, run.stdout + run.stderr  # step(full).peak < 100MiB breaks
    assert run.results is not None and run.results["host"]["backend"] == "docker"
    site = next(c for c in run.results["cases"] if c["scenario"] == "site")
    assert site["error"] is None, site["error"]
    measured = {}
    for step, mib in (("full", 128), ("incremental", 32)):
        for metric in ("peak", "rss_peak"):
            grown = _median(site, f"step({step}).{metric}") - _median(site, f"step(idle).{metric}")
            measured[f"step({step}).{metric} - idle"] = grown / MiB
            assert grown == pytest.approx(mib * MiB, rel=0.03), (step, metric, grown / MiB)
        heap = _median(site, f"step({step}).python_peak")
        measured[f"step({step}).python_peak"] = heap / MiB
        assert heap == pytest.approx(mib * MiB, rel=0.02), (step, heap / MiB)
    for whole in (r for r in site["runs"] if r["kind"] in ("timed", "traced")):
        assert [s["name"] for s in whole["steps"]] == ["idle", "full", "incremental"]
        assert all(s["run"]["exit_code"] == 0 for s in whole["steps"]), whole["steps"]
        assert whole["cgroup_peak"] == max(s["run"]["cgroup_peak"] for s in whole["steps"])
    verdicts = {v["rule"]: v["passed"] for v in site["verdicts"]}
    assert verdicts == {"step(incremental).peak < 100MiB": True,
                        "step(full).peak < 100MiB": False,
                        "step(incremental).peak / step(full).peak < 0.5": True,
                        "disk_files(state) == 2": True,
                        "exit_code == 0": True, "oom_kills == 0": True}
    # the folder written inside the container, read on the host after the run
    cache = next(c for c in run.results["cases"] if c["scenario"] == "cache")
    written = 64 * MiB + 1000
    measured["disk(cache)"] = _median(cache, "disk(cache)") / MiB
    print("measured (MiB):", {k: round(v, 3) for k, v in measured.items()})
    assert abs(_median(cache, "disk(cache)") - written) / written < 0.01
    assert cache["metrics"]["disk_files(cache)"]["max"] == 2
    assert all(v["passed"] for v in cache["verdicts"]), cache["verdicts"]
    # every report shows the steps
    markdown = (tmp_path / "report.md").read_text()
    assert "| site | full |" in markdown and "| site | incremental |" in markdown
    html = (tmp_path / "report.html").read_text()
    assert html.count("<h4>Steps</h4>") == 1 and "<td>incremental</td>" in html
    junit = (tmp_path / "report.xml").read_text()
    assert 'name="step(incremental).peak"' in junit and "step incremental: " in junit


def test_a_failing_first_step_leaves_the_next_not_run(image: str, tmp_path: Path) -> None:
    # the full build needs a file nothing wrote: it fails before writing what the next needs
    run = _steps_check(tmp_path, image, _grow(0, "--need", ["{output}/missing.txt"]))
    assert run.exit_code == 1, run.stdout + run.stderr
    assert run.results is not None and run.results["status"] != "pass"
    site = next(c for c in run.results["cases"] if c["scenario"] == "site")
    for whole in (r for r in site["runs"] if r["kind"] in ("timed", "traced")):
        idle, full, incremental = whole["steps"]
        assert idle["run"]["exit_code"] == 0 and full["run"]["exit_code"] != 0
        assert "not built" in full["run"]["stderr_tail"]
        assert incremental["run"] is None
        assert whole["exit_code"] == full["run"]["exit_code"]
    verdicts = {v["rule"]: v for v in site["verdicts"]}
    assert not any(v["passed"] for rule, v in verdicts.items() if rule.startswith("step("))
    for rule in ("step(incremental).peak < 100MiB",
                 "step(incremental).peak / step(full).peak < 0.5"):
        assert verdicts[rule]["passed"] is None and "not run" in verdicts[rule]["reason"]
    assert verdicts["exit_code == 0"]["passed"] is False
