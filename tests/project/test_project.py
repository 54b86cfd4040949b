"""The project under test, on a real cgroup and a real Docker engine: a planted package whose
build allocates a known amount; edit its source and the measured peak follows, with the same SLA
file on both backends. Plus the fixture read-only to the build, its writable copy, leak mode on
a console script, and ``auto`` refusing to drop a setting."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli

MIB = 2**20

PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "plantedtool"
version = "0.1"

[project.scripts]
plantedtool = "plantedtool:main"

[tool.setuptools]
packages = ["plantedtool"]
"""

# The tool's CLI takes one folder and strict options, as real tools do: a stray positional
# argument is an error ("No such command"), so leak mode must set sys.argv, not pass arguments.
TOOL = """\
import sys, time

ALLOCATE_MIB = {mib}
_kept = []


def main():
    args = sys.argv[1:]
    leak = "--leak" in args
    args = [a for a in args if a != "--leak"]
    if len(args) != 1:
        print(f"No such command {{args!r}}", file=sys.stderr)
        sys.exit(2)
    block = bytearray(b"\\x01") * (ALLOCATE_MIB * 1024 * 1024)
    time.sleep(0.2)
    with open(args[0] + "/out.txt", "w") as handle:
        handle.write(str(len(block)))
    del block
    if leak:
        _kept.append(bytearray(b"\\x02") * (1024 * 1024))
    sys.exit(0)
"""

SLA = """\
version: 1
scenarios:
  tool:
    project: plantedtool
    command: [plantedtool, "{output}"]
    limit: 768MiB
    repeats: 1
    tracker: none
    slas: [peak < 700MiB]
"""


def plant(folder: Path, mib: int) -> Path:
    """The planted project in ``folder/plantedtool``, allocating ``mib`` MiB per build."""
    project = folder / "plantedtool"
    (project / "plantedtool").mkdir(parents=True, exist_ok=True)
    (project / "pyproject.toml").write_text(PYPROJECT)
    (project / "plantedtool" / "__init__.py").write_text(TOOL.format(mib=mib))
    return project


def peak(run: Any) -> float:
    assert run.exit_code == 0, (run.stderr, run.results and run.results.get("problems"))
    return float(run.case()["metrics"]["peak"]["median"])


def edit_and_measure(tmp_path: Path, backend: str) -> None:
    plant(tmp_path, 40)
    (tmp_path / "sla.yaml").write_text(SLA)
    first = peak(run_cli(["check", "sla.yaml", "--backend", backend], tmp_path))
    plant(tmp_path, 160)  # an edit of the source, nothing else
    second = peak(run_cli(["check", "sla.yaml", "--backend", backend], tmp_path))
    grown = (second - first) / MIB
    assert 120 * 0.95 < grown < 120 * 1.05, (first / MIB, second / MIB)


@pytest.mark.cgroup
def test_the_peak_follows_an_edit_of_the_project_on_a_cgroup(tmp_path: Path,
                                                             writable_cgroup: None) -> None:
    edit_and_measure(tmp_path, "cgroup")


@pytest.mark.docker
def test_the_peak_follows_an_edit_of_the_project_in_docker(tmp_path: Path,
                                                           docker_client: Any) -> None:
    edit_and_measure(tmp_path, "docker")


def test_only_a_change_of_the_project_changes_its_content_hash(tmp_path: Path) -> None:
    from runner.workload import project

    tree = plant(tmp_path, 1)
    first = project.scan(tree)
    (tree / "build").mkdir()  # build leftovers are not the project
    (tree / "build" / "junk.txt").write_text("x")
    assert project.scan(tree).content_hash == first.content_hash
    (tree / "plantedtool" / "__init__.py").write_text(TOOL.format(mib=2))
    assert project.scan(tree).content_hash != first.content_hash


FIXTURE_SLA = """\
version: 1
scenarios:
  writer:
    generate:
      sitegen: {{pages: 5}}
    command: [python3, -c, "import sys; open(sys.argv[1] + '/written.txt', 'w').write('x')",
              "{where}"]
    matrix: {{pages: [5]}}
    repeats: 1
    tracker: none
    limit: 256MiB
    slas: [peak < 200MiB]
"""


@pytest.mark.cgroup
@pytest.mark.docker
@pytest.mark.parametrize("backend", ["cgroup", "docker"])
def test_a_build_that_writes_into_its_fixture_is_caught(tmp_path: Path, backend: str,
                                                        request: pytest.FixtureRequest) -> None:
    request.getfixturevalue("writable_cgroup" if backend == "cgroup" else "docker_client")
    (tmp_path / "sla.yaml").write_text(FIXTURE_SLA.format(where="{fixture}"))
    run = run_cli(["check", "sla.yaml", "--backend", backend], tmp_path)
    assert run.exit_code != 0, run.stderr
    case = run.case()
    timed = [r for r in case["runs"] if r["kind"] == "timed"]
    if backend == "cgroup":  # the build could write: memsla saw it, and the run cannot pass
        assert "wrote into its input" in (timed[0]["fixture_changed"] or ""), timed[0]
    else:  # the container has it read-only: the write itself failed
        assert timed[0]["exit_code"] != 0
    again = run_cli(["check", "sla.yaml", "--backend", backend], tmp_path)
    assert again.exit_code != 0  # the spoilt fixture was made again, and is caught again


@pytest.mark.cgroup
@pytest.mark.docker
@pytest.mark.parametrize("backend", ["cgroup", "docker"])
def test_a_build_that_needs_a_writable_copy_gets_one(tmp_path: Path, backend: str,
                                                     request: pytest.FixtureRequest) -> None:
    request.getfixturevalue("writable_cgroup" if backend == "cgroup" else "docker_client")
    (tmp_path / "sla.yaml").write_text(FIXTURE_SLA.format(where="{fixture_copy}"))
    run = run_cli(["check", "sla.yaml", "--backend", backend], tmp_path)
    assert run.exit_code == 0, (run.stderr, run.results and run.results["problems"])
    assert all(r["fixture_changed"] is None for r in run.case()["runs"])


LEAK_SLA = """\
version: 1
scenarios:
  tool:
    project: plantedtool
    leak:
      entry: "plantedtool:main"
      console_script: true
      args: ["--leak", "{output}"]
      calls: 8
      warmup: 2
    limit: 768MiB
    slas: [leak_per_build < 256KiB]
"""


@pytest.mark.cgroup
def test_leak_mode_calls_a_console_script_with_its_argv(tmp_path: Path,
                                                        writable_cgroup: None) -> None:
    plant(tmp_path, 4)
    (tmp_path / "sla.yaml").write_text(LEAK_SLA)
    run = run_cli(["check", "sla.yaml", "--backend", "cgroup"], tmp_path)
    assert run.exit_code == 1, run.stderr  # the planted 1 MiB per call breaks the rule
    assert run.results is not None
    finding = run.results["scenarios"][0]["analysis"]["leaks"][0]
    assert finding["record"]["planned_calls"] == 8 and len(finding["record"]["calls"]) == 8
    assert 0.98 * MIB < finding["per_build"] < 1.02 * MIB, finding["per_build"]
    verdict = next(v for v in run.results["scenarios"][0]["verdicts"]
                   if v["rule"].startswith("leak_per_build"))
    assert verdict["passed"] is False, verdict


def sla_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sla.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_auto_refuses_settings_no_backend_honours_together(tmp_path: Path) -> None:
    sla_file(tmp_path, """\
        version: 1
        scenarios:
          both:
            command: [/bin/true]
            image: memsla-scenarios:latest
            python: /usr/bin/python3
        """)
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert run.exit_code == 2, run.stderr
    assert "sla.yaml:5:" in run.stderr and "no backend honours both" in run.stderr


def test_a_named_backend_that_cannot_honour_a_setting_is_an_error(tmp_path: Path) -> None:
    sla_file(tmp_path, """\
        version: 1
        defaults:
          backend: cgroup
        scenarios:
          boxed:
            command: [/bin/true]
            docker: {network: none}
        """)
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert run.exit_code == 2, run.stderr
    assert "sla.yaml:7:" in run.stderr and "docker:" in run.stderr, run.stderr


@pytest.mark.docker
def test_auto_builds_a_project_s_image_and_runs_it_in_a_container(
        tmp_path: Path, docker_client: Any) -> None:
    plant(tmp_path, 1)
    sla_file(tmp_path, SLA.replace("repeats: 1", "repeats: 1\n    backend: auto"))
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert run.exit_code == 0, run.stderr + run.stdout
    assert run.results is not None
    assert run.results["host"]["backend"] == "docker"
    assert [case["backend"] for case in run.results["cases"]] == ["docker"]
    assert "the scenario's image (its requirements, project or Python) is built there" in \
        run.results["host"]["backend_reason"]
    assert "backend auto: docker:" in run.stdout


@pytest.mark.cgroup
def test_auto_falls_back_to_a_local_cgroup_where_no_engine_answers(
        tmp_path: Path, writable_cgroup: None) -> None:
    plant(tmp_path, 1)
    sla_file(tmp_path, SLA.replace("repeats: 1", "repeats: 1\n    backend: auto"))
    run = run_cli(["check", "sla.yaml"], tmp_path,
                  env={"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"})
    assert run.exit_code == 0, run.stderr + run.stdout
    assert run.results is not None
    assert run.results["host"]["backend"] == "cgroup"
    reason = run.results["host"]["backend_reason"]
    assert "docker: no Docker engine answers" in reason and "local" in reason, reason


@pytest.mark.docker
@pytest.mark.cgroup
def test_auto_falls_back_to_a_local_cgroup_where_the_image_cannot_be_built(
        tmp_path: Path, docker_client: Any, writable_cgroup: None) -> None:
    plant(tmp_path, 1)
    # a requirement no index holds: Docker cannot make
    # the scenario's image, so auto moves it to the local cgroup, saying why; the case itself
    # then stops there with pip's reason
    sla_file(tmp_path, SLA.replace("repeats: 1",
                                   'repeats: 1\n    requirements: ["memsla-nowhere==1.0"]'))
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert run.exit_code == 3, run.stderr + run.stdout
    assert run.results is not None
    assert run.results["host"]["backend"] == "cgroup"
    reason = " ".join(run.results["host"]["backend_reason"].split())
    assert "Docker cannot build the scenario's image" in reason, reason
    assert "memsla-nowhere" in reason, reason
    assert run.results["status"] != "pass"


def test_a_generate_step_is_keyed_by_the_script_it_runs_and_its_inputs(tmp_path: Path) -> None:
    from runner.slafile.model import GenerateStep
    from runner.workload.cache import prepare_fixture

    script = tmp_path / "extra.py"
    script.write_text("import sys; open(sys.argv[1] + '/extra.txt', 'w').write('one')")
    (tmp_path / "theme").mkdir()
    (tmp_path / "theme" / "base.html").write_text("<html>")
    step = GenerateStep.model_validate({
        "sitegen": {"pages": 3}, "command": ["python3", "extra.py", "{fixture}"],
        "inputs": ["theme"]})
    cache = tmp_path / "cache"
    first = prepare_fixture(step, {}, tmp_path, cache)
    assert (first / "extra.txt").read_text() == "one"  # the tool's files beside the site
    assert (first / "content").is_dir()
    assert prepare_fixture(step, {}, tmp_path, cache) == first
    script.write_text("import sys; open(sys.argv[1] + '/extra.txt', 'w').write('two')")
    second = prepare_fixture(step, {}, tmp_path, cache)
    assert second != first and (second / "extra.txt").read_text() == "two"
    (tmp_path / "theme" / "base.html").write_text("<html lang=en>")
    assert prepare_fixture(step, {}, tmp_path, cache) not in (first, second)


@pytest.mark.docker
def test_image_build_builds_what_the_sla_file_needs(tmp_path: Path, docker_client: Any) -> None:
    import os
    import subprocess
    import sys

    plant(tmp_path, 40)
    (tmp_path / "sla.yaml").write_text(SLA)
    built = subprocess.run([sys.executable, "-m", "runner", "image", "build", "sla.yaml"],
                           cwd=tmp_path, capture_output=True, text=True, check=False,
                           env=os.environ, timeout=600)
    assert built.returncode == 0, built.stderr
    name, tag = built.stdout.strip().split("\t")
    assert name == "tool" and tag.startswith("memsla-project:")
    docker_client.images.get(tag)


@pytest.mark.docker
def test_a_users_dockerfile_is_built_and_chosen_by_auto(tmp_path: Path,
                                                        docker_client: Any) -> None:
    (tmp_path / "image").mkdir()
    (tmp_path / "image" / "Dockerfile").write_text(
        "FROM memsla-base:bookworm\nRUN echo planted > /etc/memsla-marker\n")
    sla_file(tmp_path, """\
        version: 1
        scenarios:
          mine:
            dockerfile: image/Dockerfile
            python: "3.11"
            command: [python3, -c, "assert open('/etc/memsla-marker').read() == 'planted\\\\n'"]
            repeats: 1
            tracker: none
            slas: [peak < 200MiB]
        """)
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert run.exit_code == 0, (run.stderr, run.results and run.results["problems"])
    assert run.results is not None and run.results["host"]["backend"] == "docker"
    assert "dockerfile" in run.results["host"]["backend_reason"]


@pytest.mark.docker
def test_an_image_without_the_python_named_is_refused(tmp_path: Path,
                                                      docker_client: Any) -> None:
    sla_file(tmp_path, """\
        version: 1
        scenarios:
          wrong:
            image: memsla-base:bookworm
            python: "3.12"
            command: [python3, -c, "pass"]
            repeats: 1
            tracker: none
        """)
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert run.exit_code == 3, run.stderr
    assert run.results is not None
    assert "names Python 3.12 but the image memsla-base:bookworm has 3.11" in run.case()["error"]
