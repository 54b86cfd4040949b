"""The Docker backend measured against planted truths, in real containers.

Each test writes a small SLA file and runs the real CLI with ``--backend docker``. Scripts reach
the container the way a site does: a generate step copies them into the fixture, which is
mounted read-only (the SLA file's folder is not mounted).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from runner.backends.docker import images
from runner.backends.docker.backend import LABEL, OWNER_LABEL, DockerBackend, DockerRunOptions
from runner.backends.interface import RunRequest
from runner.measure import staging
from runner.measure.assemble import assemble_run
from tests.conftest import (
    PLANT,
    CliRun,
    assert_planted_within_2_percent,
    kill_running,
    kill_when_running,
    run_cli,
    running,
    wait_until,
)
from tests.judging.helpers import LEAK_LINE, LEAKY

MiB = 1024 * 1024

# A parent whose grandchild grows past the limit; the parent survives and exits 0.
_GRANDCHILD = "bytearray(b'\\x01') * (400 * 1024 * 1024)"
_CHILD = ("import subprocess, sys; "
          f"sys.exit(subprocess.call([sys.executable, '-c', {_GRANDCHILD!r}]))")
FAMILY = ("import subprocess, sys\n"
          f"code = subprocess.call([sys.executable, '-c', {_CHILD!r}])\n"
          "sys.stderr.write('grandchild exited %d' % code)\n")


@pytest.fixture(scope="module")
def image(docker_client: Any) -> str:
    """The scenarios image (built once if missing: CI builds it before the tests)."""
    return images.ensure_images(lambda _message: None, docker_client)


def _write_sla(folder: Path, scenarios: dict[str, Any], **defaults: Any) -> Path:
    """sla.yaml (as JSON, which YAML reads) plus plant.py, with the docker backend."""
    (folder / "plant.py").write_text(PLANT)
    document = {"version": 1, "defaults": {"backend": "docker", **defaults},
                "scenarios": scenarios, "slas": ["oom_kills == 0"]}
    path = folder / "sla.yaml"
    path.write_text(json.dumps(document, indent=2))
    return path


def _with_script(script: str, *args: str) -> dict[str, Any]:
    """A scenario running a script of the SLA file's folder from the fixture."""
    return {"generate": {"command": ["sh", "-c", f'cp {script} "$FIXTURE"'],
                         "env": {"FIXTURE": "{fixture}"}},
            "workdir": "{fixture}", "command": ["python3", script, *args]}


def _check(folder: Path, *extra: str, env: dict[str, str] | None = None) -> CliRun:
    # a private cache: fixtures made here are keyed by this folder and would pile up
    return run_cli(["check", "sla.yaml", "--backend", "docker", *extra], folder,
                   env={"MEMSLA_CACHE_DIR": str(folder / "cache"), **(env or {})})


def _median(case: dict[str, Any], metric: str) -> float:
    return float(case["metrics"][metric]["median"])


def _ours(client: Any, pid: int) -> list[Any]:
    return list(client.containers.list(
        all=True, filters={"label": [LABEL, f"{OWNER_LABEL}={pid}"]}, ignore_removed=True))


@pytest.mark.docker
def test_planted_allocation_is_reported_within_two_percent(image: str, tmp_path: Path) -> None:
    _write_sla(tmp_path, {"plant": {**_with_script("plant.py", "main={mib}"),
                                    "matrix": {"mib": [0, 256]}}},
               image=image, limit="1GiB", repeats=2)
    run = _check(tmp_path)
    assert run.exit_code == 0, run.stderr + run.stdout
    planted = assert_planted_within_2_percent(run, 256)
    truth = 256 * MiB
    assert [r["kind"] for r in planted["runs"]] == ["timed", "timed", "traced"]
    timed = planted["runs"][0]
    assert timed["limit"] == 1024 * MiB
    assert max(timed["timeline"]["cgroup"]) > truth, "the harness samples the whole build"
    assert run.results is not None
    assert run.results["host"]["backend"] == "docker"
    assert run.results["host"]["cgroup_version"] in (1, 2)


@pytest.mark.docker
def test_planted_leak_is_found_inside_a_container(image: str, tmp_path: Path) -> None:
    (tmp_path / "leaky.py").write_text(textwrap.dedent(LEAKY))
    app = {**_with_script("leaky.py"),
           "leak": {"entry": "leaky:leak_entry", "calls": 12, "warmup": 2,
                    "args": ["{output}"]},
           "slas": ["leak_per_build < 256KiB"]}
    del app["command"]
    _write_sla(tmp_path, {"app": app}, image=image, limit="512MiB")
    run = _check(tmp_path)
    assert run.exit_code == 1, run.stdout + run.stderr
    assert run.results is not None and run.results["host"]["backend"] == "docker"
    (finding,) = run.results["scenarios"][0]["analysis"]["leaks"]
    assert finding["per_build"] == pytest.approx(MiB, rel=0.05)
    top = finding["record"]["sites"][0]
    assert (Path(top["file"]).name, top["line"]) == ("leaky.py", LEAK_LINE)
    (leak_run,) = run.case()["runs"]
    assert leak_run["kind"] == "leak" and leak_run["limit"] == 512 * MiB
    assert leak_run["cgroup_peak"] > 10 * MiB, "the container's peak holds the leaked MiBs"


@pytest.mark.docker
def test_harness_baseline_is_the_idle_harness(image: str, tmp_path: Path) -> None:
    backend = DockerBackend(image_required=image)
    try:
        baseline = backend.harness_baseline
        assert baseline is not None and 2 * MiB < baseline < 64 * MiB, baseline
        assert backend.engine_version and backend.cgroup_version in (1, 2)
        folders = [tmp_path / name for name in ("probe", "output", "scratch")]
        for folder in folders:
            folder.mkdir()
        readings = backend.run(RunRequest(
            argv=["true"], env={}, workdir=Path("/tmp"), limit=128 * MiB, timeout=60,
            sample_interval=0.02, trace=False, probe_stage=staging.stage(tmp_path / "cache"),
            probe_out=folders[0], output=folders[1], scratch=folders[2],
            options=DockerRunOptions(image=image)))
    finally:
        backend.close()
    # raw readings only: the harness read the kernel's peak and sampled, assemble combines
    assert readings.kernel_peak is not None and readings.sampled_max_usage is not None
    assert readings.oom_kill_counter == 0 and not readings.engine_oom_killed
    idle = assemble_run("timed", 0, readings, folders[0])
    assert idle.exit_code == 0 and idle.cgroup_peak is not None
    # the build has a cgroup of its own: `true` there holds far less than the idle harness
    assert backend.harness_shared is None, backend.harness_shared
    assert idle.cgroup_peak < baseline / 2 and idle.harness_subtracted is None, (
        idle.cgroup_peak / MiB, baseline / MiB)


@pytest.mark.docker
def test_build_over_its_limit_is_oom_killed_and_fails(image: str, tmp_path: Path) -> None:
    _write_sla(tmp_path, {"big": {**_with_script("plant.py", "main=300"),
                                  "slas": ["peak < 1GiB"]}},
               image=image, limit="128MiB", repeats=1, tracker="none")
    run = _check(tmp_path)
    assert run.exit_code == 1, run.stderr + run.stdout
    case = run.case()
    timed = case["runs"][0]
    assert timed["oom_kills"] >= 1 and timed["oom_killed"]
    assert timed["exit_code"] == 128 + signal.SIGKILL
    assert 64 * MiB < timed["cgroup_peak"] <= 128 * MiB
    failed = {v["rule"] for v in case["verdicts"] if v["passed"] is False}
    assert failed == {"exit_code == 0", "oom_kills == 0"}


@pytest.mark.docker
def test_grandchild_oom_kill_is_reported_while_parent_survives(image: str,
                                                              tmp_path: Path) -> None:
    _write_sla(tmp_path, {"family": {"command": ["python3", "-c", FAMILY]}},
               image=image, limit="160MiB", repeats=1, tracker="none")
    run = _check(tmp_path)
    timed = run.case()["runs"][0]
    assert timed["exit_code"] == 0, "the parent survives and exits 0"
    assert "grandchild exited" in timed["stderr_tail"]
    assert "grandchild exited 0" not in timed["stderr_tail"]
    assert timed["oom_kills"] >= 1
    assert run.exit_code == 1
    verdict = next(v for v in run.case()["verdicts"] if v["metric"] == "oom_kills")
    assert verdict["passed"] is False and verdict["value"] >= 1


def _request(tmp_path: Path, image: str, argv: list[str], limit: int | None,
             timeout: float = 60) -> RunRequest:
    folders = [tmp_path / name for name in ("probe", "output", "scratch")]
    for folder in folders:
        folder.mkdir()
    return RunRequest(argv=argv, env={}, workdir=Path("/tmp"), limit=limit, timeout=timeout,
                      sample_interval=0.02, trace=False,
                      probe_stage=staging.stage(tmp_path / "cache"), probe_out=folders[0],
                      output=folders[1], scratch=folders[2],
                      options=DockerRunOptions(image=image))


@pytest.mark.docker
def test_swap_is_held_to_the_limit(image: str, docker_client: Any, tmp_path: Path) -> None:
    limit = 200 * MiB
    # the build's own cgroup where it has one, else the container's
    script = ("cat /memsla/cgroup/memory.memsw.limit_in_bytes 2>/dev/null "
              "|| cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes 2>/dev/null "
              "|| cat /sys/fs/cgroup/memory.swap.max; sleep 2")
    inspected: list[dict[str, Any]] = []

    def inspect_while_running() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not inspected:
            for container in _ours(docker_client, os.getpid()):
                inspected.append(container.attrs["HostConfig"])
            time.sleep(0.05)

    backend = DockerBackend(image_required=image)  # its baseline containers are gone now
    watcher = threading.Thread(target=inspect_while_running)
    watcher.start()
    try:
        readings = backend.run(_request(tmp_path, image, ["sh", "-c", script], limit))
    finally:
        backend.close()
        watcher.join()
    assert readings.exit_code == 0, readings.stderr_tail
    assert inspected, "the container was never seen running"
    host_config = inspected[0]
    # the container holds the harness too: the limit plus its room where the build has a
    # cgroup of its own, which holds the limit itself
    room = 0 if backend.harness_shared else backend._room(image)
    assert host_config["Memory"] == limit + room
    assert host_config["MemorySwap"] == host_config["Memory"]
    inside = (tmp_path / "scratch" / "stdout.log").read_text().split()
    if backend.cgroup_version == 1:
        assert inside == [str(limit)]
    else:
        assert inside == ["0"]  # v2: memory.swap.max, the swap on top of memory.max
    assert readings.limit_read == limit and readings.swap_allowed is False
    run = assemble_run("timed", 0, readings, tmp_path / "probe")
    assert run.limit == limit
    assert not [n for n in run.notes if "swap" in n]


@pytest.mark.docker
def test_container_runs_locked_down_with_only_the_scenario_environment(
        image: str, tmp_path: Path) -> None:
    # no braces: commands are templates ({output}...)
    show = ("import json, os, sys\n"
            "sys.stderr.write(json.dumps(dict(env=sorted(os.environ), uid=os.getuid(),"
            " cwd=os.getcwd(), root_writable=os.access('/', os.W_OK),"
            " net=sorted(os.listdir('/sys/class/net')))))\n")
    _write_sla(tmp_path, {"show": {"command": ["python3", "-c", show],
                                   "env": {"SCENARIO_VALUE": "{output}"}}},
               image=image, limit="256MiB", repeats=1, tracker="none")
    run = _check(tmp_path, env={"MEMSLA_HOST_ONLY": "leaks if seen"})
    assert run.exit_code == 0, run.stderr + run.stdout
    seen = json.loads(run.case()["runs"][0]["stderr_tail"])
    assert "MEMSLA_HOST_ONLY" not in seen["env"]
    assert {"SCENARIO_VALUE", "PYTHONPATH", "MEMSLA_PROBE_DIR", "PATH"} <= set(seen["env"])
    assert seen["uid"] != 0
    assert seen["cwd"] == "/tmp", "the SLA file's folder is not mounted: fall back to /tmp"
    assert seen["root_writable"] is False
    assert seen["net"] == ["lo"]


@pytest.mark.docker
def test_phases_work_without_memsla_in_the_image(image: str, docker_client: Any,
                                                 tmp_path: Path) -> None:
    with pytest.raises(docker.errors.ContainerError):
        docker_client.containers.run(image, ["python3", "-c", "import runner"], remove=True,
                                     network_mode="none")
    _write_sla(tmp_path, {"phases": {
        **_with_script("plant.py", "parse=64", "render=192", "write=32"),
        "slas": ["phase(render).python_peak < 200MiB", "phase(parse).python_peak < 70MiB"]}},
        image=image, limit="1GiB", repeats=1)
    run = _check(tmp_path)
    assert run.exit_code == 0, run.stderr + run.stdout
    case = run.case()
    for name, mib in (("parse", 64), ("render", 192), ("write", 32)):
        # what the phase added is the planted size; its peak also holds what was there before
        added = _median(case, f"phase({name}).python_growth")
        assert abs(added - mib * MiB) / (mib * MiB) < 0.02, (name, added / MiB)
        assert _median(case, f"phase({name}).python_peak") >= added
    phases = case["runs"][0]["phases"]
    assert [p["name"] for p in phases] == ["parse", "render", "write"]
    # phase times share the harness timeline's zero (the build's start, not the container's)
    assert 0 <= phases[0]["start"] < 2


@pytest.mark.docker
def test_timeout_stops_the_container_and_keeps_the_harness_report(
        image: str, docker_client: Any, tmp_path: Path) -> None:
    sleeper = "import subprocess, time\nsubprocess.Popen(['sleep', '306'])\ntime.sleep(306)\n"
    _write_sla(tmp_path, {"slow": {"command": ["python3", "-c", sleeper]}},
               image=image, repeats=1, tracker="none", timeout="2s")
    started = time.monotonic()
    run = _check(tmp_path)
    assert time.monotonic() - started < 60
    assert not running(["sleep", "306"]), "the container's processes outlived the check"
    assert run.exit_code == 1, run.stderr + run.stdout
    timed = run.case()["runs"][0]
    assert timed["timed_out"] is True
    assert timed["cgroup_peak"], "SIGTERM let the harness kill the build and still report"
    assert timed["exit_code"] == 128 + signal.SIGKILL


@pytest.fixture
def runner_process(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.docker
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_removes_the_container_and_keeps_the_results(
        image: str, docker_client: Any, tmp_path: Path, signum: int,
        runner_process: list[subprocess.Popen[str]]) -> None:
    _write_sla(tmp_path, {
        "quick": {"command": ["python3", "-c", "pass"]},
        "sleepy": {"command": ["python3", "-c", "import time; time.sleep(300)"]}},
        image=image, repeats=1, tracker="none")
    out = tmp_path / "results.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "check", "sla.yaml", "--backend", "docker", "--json",
         str(out), "--only", "quick", "--only", "sleepy"], cwd=tmp_path, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        env={**os.environ, "MEMSLA_CACHE_DIR": str(tmp_path / "cache")})
    runner_process.append(proc)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        running = [c for c in _ours(docker_client, proc.pid) if c.status == "running"]
        # the second case's container: the first one's results are already written (the file
        # exists from the start, the baseline's containers run before any case)
        if running and out.exists() and json.loads(out.read_text() or "{}").get("cases"):
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    else:
        pytest.fail("the build's container never started")
    os.kill(proc.pid, signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert _ours(docker_client, proc.pid) == []
    results = json.loads(out.read_text())
    assert results["interrupted"] is True and results["status"] == "interrupted"
    assert [c["scenario"] for c in results["cases"]] == ["quick"], "measured results are kept"


@pytest.mark.docker
def test_killed_runner_leaves_no_running_container(image: str, docker_client: Any,
                                                   tmp_path: Path) -> None:
    sleeper = "import subprocess, time\nsubprocess.Popen(['sleep', '304'])\ntime.sleep(304)\n"
    _write_sla(tmp_path, {"quick": {"command": ["python3", "-c", "pass"],
                                    "slas": ["exit_code == 0"]},
                          "sleepy": {"command": ["python3", "-c", sleeper]}},
               image=image, repeats=1, tracker="none")
    sleeping = ["sleep", "304"]  # the container's processes show on the host
    env = {"MEMSLA_CACHE_DIR": str(tmp_path / "cache")}
    try:
        killed = kill_when_running(
            [sys.executable, "-m", "runner", "check", "sla.yaml", "--backend", "docker"],
            tmp_path, sleeping, env=env)
        # the engine closed the harness's stdin: it killed the build and the container exited
        assert wait_until(lambda: not [c for c in _ours(docker_client, killed.pid)
                                       if c.status == "running"]), "the container runs on"
        assert not running(sleeping)
        assert wait_until(lambda: not killed.work_folders())
        assert killed.results is not None and killed.results["status"] == "running"
        # the watchdog removed the container (tests/backends/docker/test_teardown.py); a next
        # run finds none of it left (any runner on this host may remove it: no count)
        run = _check(tmp_path, "--only", "quick")
        assert run.exit_code == 0, run.stderr + run.stdout
        assert _ours(docker_client, killed.pid) == []
    finally:
        kill_running(sleeping)
        for container in _ours(docker_client, killed.pid if "killed" in locals() else 0):
            container.remove(force=True)


@pytest.mark.docker
def test_leftover_container_of_a_dead_runner_is_removed(image: str, docker_client: Any) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    labels = {LABEL: "1", "memsla.host": socket.gethostname()}
    stale = docker_client.containers.create(
        image, ["sleep", "300"], labels={**labels, OWNER_LABEL: str(dead.pid)},
        network_mode="none")
    alive = docker_client.containers.create(
        image, ["sleep", "300"], labels={**labels, OWNER_LABEL: str(os.getpid())},
        network_mode="none")
    try:
        backend = DockerBackend()
        try:
            removed = backend.remove_leftovers()
        finally:
            backend.close()
        assert stale.name in removed
        with pytest.raises(docker.errors.NotFound):
            stale.reload()
        alive.reload()  # a live runner's container stays
    finally:
        for container in (stale, alive):
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass


def test_unreachable_engine_exits_3_with_one_line(tmp_path: Path) -> None:
    dead = tmp_path / "dead.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(dead))
    listener.close()  # the socket file stays; nothing answers on it
    _write_sla(tmp_path, {"x": {"command": ["true"]}}, repeats=1, tracker="none")
    run = _check(tmp_path, env={"DOCKER_HOST": f"unix://{dead}"})
    assert run.exit_code == 3, run.stderr + run.stdout
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "no Docker engine answers" in lines[0] and "DOCKER_HOST" in lines[0]


@pytest.mark.docker
def test_missing_image_exits_3_saying_how_to_get_it(docker_client: Any, tmp_path: Path) -> None:
    _write_sla(tmp_path, {"x": {"command": ["true"]}}, image="memsla-missing:nope",
               repeats=1, tracker="none")
    run = _check(tmp_path)
    assert run.exit_code == 3, run.stderr + run.stdout
    said = " ".join((run.stdout + run.stderr).split())
    assert "memsla-missing:nope" in said and "docker pull memsla-missing:nope" in said
    assert "runner image build" not in said, "it builds memsla's own image, not this one"


# Says from inside the container which CPUs it may use and what its own cpuset cgroup holds
# (cgroup v1: the container's cgroup is the mount root; v2: cpuset.cpus.effective).
CPUS = '''
import os, sys, time
status = open("/proc/self/status").read()
allowed = [l.split(":", 1)[1].strip() for l in status.splitlines()
           if l.startswith("Cpus_allowed_list")][0]
for name in ("/sys/fs/cgroup/cpuset/cpuset.cpus", "/sys/fs/cgroup/cpuset.cpus.effective"):
    if os.path.exists(name):
        cpus = open(name).read().strip()
        break
sys.stderr.write("allowed=%s cpuset=%s\\n" % (allowed, cpus))
time.sleep(1.0)
'''


@pytest.mark.docker
def test_jobs_give_each_container_cpus_of_its_own(image: str, tmp_path: Path) -> None:
    import re

    from runner.inbuild.cgroups.cpuset import parse_cpus

    (tmp_path / "cpus.py").write_text(CPUS)
    _write_sla(tmp_path, {"cpus": {**_with_script("cpus.py"), "matrix": {"n": [1, 2, 3]},
                                   "slas": ["peak < 200MiB"]}},
               image=image, limit="256MiB", repeats=1, tracker="none")
    run = _check(tmp_path, "--jobs", "2", "--memory-budget", "600MiB")
    assert run.exit_code == 0, run.stderr + run.stdout
    assert run.results is not None and run.results["jobs"] == 2
    shared = False
    for case in run.results["cases"]:
        (timed,) = case["runs"]
        seen = re.search(r"allowed=(\S+) cpuset=(\S+)", timed["stderr_tail"])
        assert seen is not None, timed["stderr_tail"]
        assert parse_cpus(seen.group(1)) == parse_cpus(seen.group(2)) == timed["cpus"]
        assert len(timed["cpus"]) == 1
        shared = shared or bool(timed["neighbours"])
    assert shared, "no two containers ran at the same time"
