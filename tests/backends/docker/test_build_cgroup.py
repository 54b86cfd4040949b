"""Only the build in a container's figures: the build in a cgroup of its own beside the harness
(root runner, cgroup v1, cgroupfs driver), or the idle harness subtracted where the engine
cannot do that; and the build's output read through the attachment, not charged to it.

Real containers on the real engine; the planted build is compared with the same build on the
local cgroup backend, run by the same interpreter (the image's and the host's Debian python3).
"""

from __future__ import annotations

import glob
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from runner.backends.docker import images
from runner.backends.docker.backend import OWNER_LABEL, DockerBackend, DockerRunOptions
from runner.backends.interface import RunRequest
from runner.inbuild import cgroups
from runner.measure import staging
from runner.measure.assemble import assemble_run
from tests.backends.test_output_capture import assert_output_not_charged, write_loud_suite
from tests.conftest import (
    PLANT,
    kill_running,
    kill_when_running,
    run_cli,
    running,
    wait_until,
)

MiB = 1024 * 1024
HOST_PYTHON = "/usr/bin/python3"  # Debian's, the interpreter the image has


@pytest.fixture(scope="module")
def image(docker_client: Any) -> str:
    return images.ensure_images(lambda _message: None, docker_client)


def _plant_suite(folder: Path, backend: str, python: str, image: str) -> None:
    (folder / "plant.py").write_text(PLANT)
    scenario: dict[str, Any] = {"command": [python, "plant.py", "main={mib}"],
                                "matrix": {"mib": [0, 64]}}
    # warmup: the first run reading an interpreter the host seldom runs is charged the page
    # cache of its files (6.1 MiB idle against 4.3 MiB warm, seen here)
    defaults: dict[str, Any] = {"backend": backend, "limit": "512MiB", "repeats": 2,
                                "warmup": 1, "tracker": "none"}
    if backend == "docker":
        scenario.update(generate={"command": ["sh", "-c", 'cp plant.py "$FIXTURE"'],
                                  "env": {"FIXTURE": "{fixture}"}}, workdir="{fixture}")
        defaults["image"] = image
    (folder / "sla.yaml").write_text(json.dumps({
        "version": 1, "defaults": defaults, "scenarios": {"plant": scenario},
        "slas": ["oom_kills == 0"]}))


def _peaks(folder: Path, backend: str) -> tuple[float, float]:
    """The median cgroup peaks of the idle and the planted case."""
    run = run_cli(["check", "sla.yaml"], folder, env={"MEMSLA_CACHE_DIR": str(folder / "c")})
    assert run.exit_code == 0, run.stderr + run.stdout
    idle, planted = (float(run.case(mib=mib)["metrics"]["peak"]["median"]) for mib in (0, 64))
    for case in (run.case(mib=0), run.case(mib=64)):
        assert all(r["harness_subtracted"] is None for r in case["runs"]), "nothing subtracted"
    return idle, planted


@pytest.mark.docker
@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_planted_64_mib_reads_the_same_peak_on_docker_and_local(image: str,
                                                               tmp_path: Path) -> None:
    if not os.path.exists(HOST_PYTHON):
        pytest.skip(f"no {HOST_PYTHON} to compare with the image's interpreter")
    figures = {}
    for backend, python in (("docker", "python3"), ("cgroup", HOST_PYTHON)):
        folder = tmp_path / backend
        folder.mkdir()
        _plant_suite(folder, backend, python, image)
        figures[backend] = _peaks(folder, backend)
    shown = {backend: [value / MiB for value in pair] for backend, pair in figures.items()}
    (docker_idle, docker_planted), (local_idle, local_planted) = figures.values()
    # the harness (8-10 MiB idle) is in neither: the same peak within 1 MiB
    assert abs(docker_planted - local_planted) < MiB, shown
    # each is the planted size plus the interpreter's own (the idle case), within 1 MiB
    for idle, planted in figures.values():
        assert abs(planted - (idle + 64 * MiB)) < MiB, shown
    assert docker_idle < 8 * MiB and local_idle < 8 * MiB, shown


@pytest.mark.docker
def test_printing_200_mb_is_not_charged_to_the_build_in_a_container(image: str,
                                                                   tmp_path: Path) -> None:
    write_loud_suite(tmp_path, "docker", f", image: {json.dumps(image)}")
    (tmp_path / "sla.yaml").write_text((tmp_path / "sla.yaml").read_text().replace(
        '    command: [python3, loud.py, "{mb}"]\n',
        '    generate: {command: [sh, -c, \'cp loud.py "$F"\'], env: {F: "{fixture}"}}\n'
        '    workdir: "{fixture}"\n'
        '    command: [python3, loud.py, "{mb}"]\n'))
    run = run_cli(["check", "sla.yaml"], tmp_path, env={"MEMSLA_CACHE_DIR": str(tmp_path / "c")})
    assert_output_not_charged(run, "docker")


def _request(tmp_path: Path, image: str, argv: list[str], limit: int) -> RunRequest:
    folders = [tmp_path / name for name in ("probe", "output", "scratch")]
    for folder in folders:
        folder.mkdir()
    return RunRequest(argv=argv, env={}, workdir=Path("/tmp"), limit=limit, timeout=60,
                      sample_interval=0.02, trace=False,
                      probe_stage=staging.stage(tmp_path / "cache"), probe_out=folders[0],
                      output=folders[1], scratch=folders[2],
                      options=DockerRunOptions(image=image))


ALLOCATE_32_MIB = ["python3", "-c", "block = bytearray(b'1') * (32 << 20)"]
# What the build may do to its own cgroup: each attempt's exit status, one per line.
TRIES = ("grep memory /proc/self/cgroup; "
         "echo -1 > /memsla/cgroup/memory.limit_in_bytes; echo raise=$?; "
         "echo -1 > /memsla/cgroup/memory.memsw.limit_in_bytes; echo raise_swap=$?; "
         "mkdir /memsla/cgroup/escape; echo mkdir=$?; "
         "echo $$ > /sys/fs/cgroup/memory/cgroup.procs; echo leave=$?")


@pytest.mark.docker
def test_the_build_is_in_its_own_cgroup_and_cannot_lift_or_leave_it(image: str,
                                                                    tmp_path: Path) -> None:
    backend = DockerBackend(image_required=image)
    try:
        if backend.harness_shared is not None:
            pytest.skip(f"this engine shares the build's cgroup: {backend.harness_shared}")
        readings = backend.run(_request(tmp_path, image, ["sh", "-c", TRIES], 128 * MiB))
    finally:
        backend.close()
    lines = (tmp_path / "scratch" / "stdout.log").read_text().split()
    assert lines[0].endswith("/build"), lines
    assert lines[1:] == ["raise=2", "raise_swap=2", "mkdir=1", "leave=2"], lines
    assert readings.limit_read == 128 * MiB and readings.swap_allowed is False
    assert readings.limit_changes == []
    assert _fences_of(os.getpid()) == [], "nothing of the run is left in any hierarchy"


@pytest.mark.docker
def test_where_the_build_shares_the_harness_cgroup_the_idle_harness_is_subtracted(
        image: str, tmp_path: Path) -> None:
    backend = DockerBackend(image_required=image)
    try:
        baseline = backend.harness_baseline
        assert baseline is not None
        runs = {}
        for shared in (False, True):
            if shared:  # as on cgroup v2 or with a non-root runner
                backend._fence_parent, backend.harness_shared = None, "cgroup v2 (pretended)"
            elif backend.harness_shared is not None:
                continue
            folder = tmp_path / str(shared)
            folder.mkdir()
            readings = backend.run(_request(folder, image, ALLOCATE_32_MIB, 128 * MiB))
            runs[shared] = assemble_run("timed", 0, readings, folder / "probe")
    finally:
        backend.close()
    shared_run = runs[True]
    assert shared_run.harness_subtracted == baseline
    assert any("subtracted" in note and "pretended" in note for note in shared_run.notes)
    assert shared_run.cgroup_peak is not None
    assert 32 * MiB < shared_run.cgroup_peak < 32 * MiB + baseline
    if False in runs:  # the same build with the harness kept out: about the same figure
        own = runs[False]
        assert own.harness_subtracted is None and own.cgroup_peak is not None
        assert abs(shared_run.cgroup_peak - own.cgroup_peak) < 4 * MiB


def _fences_of(pid: int) -> list[str]:
    """The run cgroups of runner ``pid`` above containers, in every hierarchy."""
    own = cgroups.own_cgroup()
    assert own is not None and own.hierarchy_path() is not None
    return glob.glob(f"{cgroups.CGROUP_ROOT}/*{own.hierarchy_path()}/memsla-{pid}-d*")


@pytest.mark.docker
def test_a_killed_runner_leaves_no_build_cgroup_in_any_hierarchy(
        image: str, docker_client: Any, tmp_path: Path) -> None:
    sleeping = ["sleep", "305"]  # the container's processes show on the host
    (tmp_path / "sla.yaml").write_text(json.dumps({
        "version": 1, "defaults": {"backend": "docker", "image": image, "repeats": 1,
                                   "tracker": "none", "limit": "256MiB"},
        "scenarios": {"sleepy": {"command": sleeping}}, "slas": ["exit_code == 0"]}))
    try:
        killed = kill_when_running(
            [sys.executable, "-m", "runner", "check", "sla.yaml", "--backend", "docker"],
            tmp_path, sleeping)
        assert wait_until(lambda: not _fences_of(killed.pid), 30), _fences_of(killed.pid)
        assert wait_until(lambda: not running(sleeping))
    finally:
        kill_running(sleeping)
        if "killed" in locals():  # its exited container, which the next runner would remove
            for container in docker_client.containers.list(
                    all=True, filters={"label": f"{OWNER_LABEL}={killed.pid}"}):
                container.remove(force=True)
