"""What a killed or interrupted check on the Docker backend leaves, in real containers: nothing.
A runner killed with SIGKILL mid-build has its containers removed by its watchdog (no next
start needed); Ctrl-C in the first seconds exits 130 with an "interrupted" results file; a
missing image says what to do for that image and still writes the results file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runner.backends.docker import images
from runner.backends.docker.backend import LABEL, OWNER_LABEL
from runner.inbuild import cgroups
from tests.conftest import interrupt_after, kill_running, run_cli, running, wait_until

SLEEPER = "import subprocess, time\nsubprocess.Popen(['sleep', '{s}'])\ntime.sleep({s})\n"


@pytest.fixture(scope="module")
def image(docker_client: Any) -> str:
    """The scenarios image (built once if missing: CI builds it before the tests)."""
    return images.ensure_images(lambda _message: None, docker_client)


def _ours(client: Any, pid: int) -> list[Any]:
    return list(client.containers.list(
        all=True, filters={"label": [LABEL, f"{OWNER_LABEL}={pid}"]}, ignore_removed=True))


def _write(folder: Path, scenarios: dict[str, Any], **defaults: Any) -> None:
    document = {"version": 1, "defaults": {"backend": "docker", "repeats": 1,
                                           "tracker": "none", **defaults},
                "scenarios": scenarios, "slas": ["oom_kills == 0"]}
    (folder / "sla.yaml").write_text(json.dumps(document, indent=2))


@pytest.mark.docker
def test_a_killed_runner_s_containers_are_removed_by_its_watchdog(
        image: str, docker_client: Any, tmp_path: Path) -> None:
    _write(tmp_path, {"sleepy": {"command": ["python3", "-c", SLEEPER.format(s=305)]}},
           image=image)
    sleeping = ["sleep", "305"]  # the container's processes show on the host
    cache = tmp_path / "cache"
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "check", "sla.yaml", "--json", "results.json"],
        cwd=tmp_path, env={**os.environ, "MEMSLA_CACHE_DIR": str(cache)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert wait_until(lambda: running(sleeping) or proc.poll() is not None, 180)
        assert proc.poll() is None, "the runner ended before its build ran"
        containers = _ours(docker_client, proc.pid)
        assert len(containers) == 1
        build_cgroup = Path("/sys/fs/cgroup/memory/docker") / containers[0].id
        proc.kill()
        proc.wait()
        # no next start: the watchdog saw the runner go and removed what it ran (the next
        # runner on this host would too, later: the test below tells the two apart)
        assert wait_until(lambda: _ours(docker_client, proc.pid) == [], 10), \
            [c.status for c in _ours(docker_client, proc.pid)]
        assert not running(sleeping)
        assert wait_until(lambda: not list((cache / "runs").glob(f"memsla-{proc.pid}-*")), 30)
        assert not build_cgroup.exists()
        own = cgroups.own_cgroup()
        assert own is None or not list(Path(own.path).glob(f"memsla-{proc.pid}-*"))
        results = json.loads((tmp_path / "results.json").read_text())
        assert results["status"] == "running", "a killed runner's file never reads pass"
    finally:
        kill_running(sleeping)
        for container in _ours(docker_client, proc.pid):
            container.remove(force=True)


@pytest.mark.docker
@pytest.mark.parametrize("seconds", [0.2, 0.5, 1.0, 2.0, 3.0])
def test_an_early_interrupt_writes_an_interrupted_results_file(
        image: str, docker_client: Any, tmp_path: Path, seconds: float) -> None:
    _write(tmp_path, {"sleepy": {"command": ["python3", "-c", SLEEPER.format(s=306)]}},
           image=image)
    try:
        left = interrupt_after([sys.executable, "-m", "runner", "check", "sla.yaml"],
                               tmp_path, seconds)
        assert left.exit_code == 130, left.stderr
        assert left.results is not None, "no results file"
        assert left.results["status"] == "interrupted" and left.results["interrupted"] is True
        assert left.results["cases"] == []
        assert _ours(docker_client, left.pid) == []
        assert not running(["sleep", "306"])
        assert wait_until(lambda: not left.work_folders() and not left.cgroups(), 10)
    finally:
        kill_running(["sleep", "306"])


@pytest.mark.docker
def test_a_missing_image_says_what_to_do_for_it_and_writes_the_results_file(
        docker_client: Any, tmp_path: Path) -> None:
    _write(tmp_path, {"boxed": {"command": ["true"]}}, image="memsla-nowhere:1")
    run = run_cli(["check", "sla.yaml"], tmp_path,
                  env={"MEMSLA_CACHE_DIR": str(tmp_path / "cache")})
    assert run.exit_code == 3, run.stderr
    assert run.results is not None
    assert run.results["status"] == "error"
    # an image is checked with the case that runs in it: its error is that case's
    said = " ".join(str(run.case()["error"]).split())
    assert "the Docker image memsla-nowhere:1 does not exist" in said
    assert "runner image build" not in said, "that builds another image"
    assert "docker pull memsla-nowhere:1" in said and "dockerfile:" in said
    assert "memsla-nowhere:1 does not exist" in " ".join(run.stdout.split())


# A runner's stand-in: its watchdog (told of Docker, or not), one container of its own labelled
# as memsla labels them but for the "memsla" label itself, so that no other runner on this host
# takes it for a dead runner's leftover: only this runner's watchdog may remove it.
FAKE_RUNNER = """
import os, socket, sys, time
import docker
from runner.inbuild import reaper
reaper.ensure_watchdog(sys.argv[1])
if sys.argv[3] == "told":
    reaper.watch_docker()
client = docker.from_env()
container = client.containers.create(sys.argv[2], ["sleep", "307"], network_mode="none",
    labels={"memsla.owner": str(os.getpid()), "memsla.host": socket.gethostname()})
container.start()
print(container.id, flush=True)
time.sleep(300)
"""


def _watchdog_of(pid: int) -> list[str]:
    import psutil

    return [" ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])
            if p.info["cmdline"] and "runner.inbuild.reaper" in " ".join(p.info["cmdline"])
            and f"--owner {pid}" in " ".join(p.info["cmdline"])]


@pytest.mark.docker
@pytest.mark.parametrize("told", [True, False])
def test_the_watchdog_removes_the_containers_of_its_runner_when_told_it_uses_docker(
        image: str, docker_client: Any, tmp_path: Path, told: bool) -> None:
    runner = subprocess.Popen(
        [sys.executable, "-c", FAKE_RUNNER, str(tmp_path), image, "told" if told else "not"],
        stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert runner.stdout is not None
    container_id = runner.stdout.readline().strip()
    try:
        assert container_id, "the stand-in made no container"
        runner.kill()
        runner.wait()
        assert wait_until(lambda: not _watchdog_of(runner.pid), 30), "the watchdog lingers"

        def exists() -> bool:
            return bool(docker_client.containers.list(all=True, filters={"id": container_id}))

        assert exists() is not told
    finally:
        if container_id:
            for container in docker_client.containers.list(all=True,
                                                           filters={"id": container_id}):
                container.remove(force=True)
