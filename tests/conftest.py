"""Shared test helpers: write an SLA file, run the real CLI, read its JSON results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
# pytester runs the pytest plugin's tests (tests/pytest_plugin); only a top-level conftest
# may load a plugin
pytest_plugins = ["pytester"]

# A program that plants touched allocations of known size, inside named phases.
PLANT = '''
import sys, time
import runner
held = []
for spec in sys.argv[1:]:
    name, mib = spec.split("=")
    with runner.phase(name):
        block = bytearray(b"\\x01") * (int(mib) * 1024 * 1024)
        time.sleep(0.3)
        del block
'''

# A build (root, or the owner of a delegated scope) lifts the limits of a cgroup, its own or the
# one above it, the way a user could by hand: memory+swap first (v1 refuses memory above
# memory+swap), then memory; then it allocates 400 MiB and holds it a while.
LIFT = """
import os, sys, time
from runner.inbuild import cgroups
own = cgroups.own_cgroup()
target = own if sys.argv[1] == "own" else cgroups.Cgroup(os.path.dirname(own.path), own.version)
for name, value in reversed(own.files.limit_writes(None)):
    with open(target.file(name), "w") as handle:
        handle.write(value)
print("limits now", target.limits(), flush=True)
block = bytearray(b"\\x01") * (400 * 1024 * 1024)
time.sleep(1)
"""


@dataclass
class CliRun:
    exit_code: int
    stdout: str
    stderr: str
    results: dict[str, Any] | None

    def case(self, **params: Any) -> dict[str, Any]:
        assert self.results is not None, self.stderr
        for case in self.results["cases"]:
            if all(case["params"].get(k) == v for k, v in params.items()):
                return case  # type: ignore[no-any-return]
        raise AssertionError(f"no case with {params}")


def run_cli(args: list[str], cwd: Path, timeout: float = 600,
            env: dict[str, str] | None = None) -> CliRun:
    out = cwd / "results.json"
    proc = subprocess.run([sys.executable, "-m", "runner", *args, "--json", str(out)],
                          cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, check=False)
    results = json.loads(out.read_text()) if out.exists() else None
    return CliRun(proc.returncode, proc.stdout, proc.stderr, results)


def write_lift_suite(folder: Path, which: str) -> None:
    """An SLA file whose one case lifts the limits of ``which`` cgroup ("own" or "fence")
    under a 256 MiB limit, then allocates 400 MiB."""
    (folder / "lift.py").write_text(LIFT)
    (folder / "sla.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        defaults: {{backend: cgroup, limit: 256MiB, repeats: 1, tracker: none}}
        scenarios:
          lift: {{command: [python3, lift.py, {which}]}}
        slas: [peak < 1GiB]
        """))


def assert_not_judged(run: CliRun, changed: str) -> None:
    """A check whose one case changed its limit: no pass anywhere, every verdict says why."""
    assert run.exit_code != 0, run.stdout
    assert run.results is not None and run.results["status"] == "error"
    verdicts = run.case()["verdicts"]
    assert verdicts and all(v["passed"] is None for v in verdicts)
    assert all(v["reason"] == changed for v in verdicts)
    assert "pass" not in run.stdout.lower()
    assert changed in " ".join(run.stdout.split()), "the terminal says why"


def write_interruptible_suite(folder: Path, seconds: int) -> list[str]:
    """An SLA file whose first case ends at once and whose second one sleeps ``seconds`` in a
    child process; returns the child's command line, to wait for and to look for after."""
    (folder / "sleeper.py").write_text(
        f"import subprocess, time\nsubprocess.Popen(['sleep', '{seconds}'])\n"
        f"time.sleep({seconds})\n")
    (folder / "sla.yaml").write_text(textwrap.dedent("""\
        version: 1
        defaults: {backend: cgroup, repeats: 1, tracker: none}
        scenarios:
          quick: {command: [python3, -c, "pass"]}
          sleepy: {command: [python3, sleeper.py]}
        """))
    return ["sleep", str(seconds)]


def interrupt_when_running(argv: list[str], cwd: Path, marker: list[str],
                           env: dict[str, str] | None = None) -> CliRun:
    """Run ``argv`` (a runner command line) with ``--json``, Ctrl-C it once a process whose
    command line is ``marker`` runs, and return what it left."""
    out = cwd / "results.json"
    proc = subprocess.Popen([*argv, "--json", str(out)], cwd=cwd, text=True,
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    _wait_for_build(proc, marker, 60)
    os.kill(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    results = json.loads(out.read_text()) if out.exists() else None
    return CliRun(proc.returncode, stdout, stderr, results)


def _wait_for_build(proc: subprocess.Popen[Any], marker: list[str], seconds: float) -> None:
    """Until a process whose command line is ``marker`` runs; fails if the runner ends first."""
    deadline = time.monotonic() + seconds
    while not running(marker):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail(f"the build never started: {proc.communicate()}")
        time.sleep(0.1)


def running(marker: list[str]) -> bool:
    import psutil

    return any(p.info["cmdline"] == marker for p in psutil.process_iter(["cmdline"]))


def kill_running(marker: list[str]) -> None:
    """Kill what a failed test left running (a test that passes leaves nothing)."""
    import psutil

    for process in psutil.process_iter(["cmdline"]):
        if process.info["cmdline"] == marker:
            try:
                process.kill()
            except psutil.Error:
                pass


@pytest.fixture
def sla(tmp_path: Path) -> Any:
    """Write ``sla.yaml`` (dedented) and the planting script into tmp_path; returns the path."""

    def write(text: str) -> Path:
        (tmp_path / "plant.py").write_text(PLANT)
        path = tmp_path / "sla.yaml"
        path.write_text(textwrap.dedent(text))
        return path

    return write


def assert_planted_within_2_percent(run: CliRun, mib: int) -> dict[str, Any]:
    """The cases ``mib=0`` and ``mib=MIB`` of a plant.py matrix: the cgroup and RSS peaks
    differ by the planted size, and the heap peak is it, each within 2%. Returns the planted
    case."""
    idle, planted = run.case(mib=0), run.case(mib=mib)
    truth = mib * 1024 * 1024

    def median(case: dict[str, Any], metric: str) -> float:
        return float(case["metrics"][metric]["median"])

    # the idle run carries the interpreter (and any harness): the difference is the allocation
    for metric in ("peak", "rss_peak"):
        delta = median(planted, metric) - median(idle, metric)
        assert abs(delta - truth) / truth < 0.02, (metric, delta / 2**20)
    heap = median(planted, "python_peak")
    assert abs(heap - truth) / truth < 0.02, ("python_peak", heap / 2**20)
    return planted


def require(kind: str, reason: str) -> None:
    """Skip on a laptop, fail in CI: ``MEMSLA_REQUIRE_<KIND>=1`` turns a skip into a failure."""
    if os.environ.get(f"MEMSLA_REQUIRE_{kind.upper()}") == "1":
        pytest.fail(f"{reason} (MEMSLA_REQUIRE_{kind.upper()}=1 is set)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def writable_cgroup() -> None:
    from runner.backends.interface import BackendError
    from runner.backends.local import find_parent

    try:
        find_parent()
    except BackendError as exc:
        require("cgroup", f"no writable memory cgroup here: {exc}")


@dataclass
class Killed:
    """What a runner killed with SIGKILL mid-build left: its pid, its results file, the cache
    its work folders were made in."""

    pid: int
    results: dict[str, Any] | None
    cache: Path

    def work_folders(self) -> list[Path]:
        return sorted((self.cache / "runs").glob(f"memsla-{self.pid}-*"))


def kill_when_running(argv: list[str], cwd: Path, marker: list[str],
                      env: dict[str, str] | None = None) -> Killed:
    """Run ``argv`` (a runner command line) with ``--json`` and a cache of its own (unless
    ``env`` names one), SIGKILL it once a process whose command line is ``marker`` runs, and
    return what it left."""
    out = cwd / "results.json"
    env = {"MEMSLA_CACHE_DIR": str(cwd / "cache"), **(env or {})}
    proc = subprocess.Popen([*argv, "--json", str(out)], cwd=cwd, env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    _wait_for_build(proc, marker, 120)
    proc.kill()
    proc.wait()
    assert proc.stderr is not None
    proc.stderr.close()
    results = json.loads(out.read_text()) if out.exists() else None
    return Killed(proc.pid, results, Path(env["MEMSLA_CACHE_DIR"]))


def wait_until(condition: Any, seconds: float = 20) -> bool:
    """Poll ``condition()`` until it holds or ``seconds`` pass; returns its last value."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return bool(condition())
        time.sleep(0.1)
    return True


def write_wheel(folder: Path, name: str, version: str) -> Path:
    """A pure-Python wheel of package ``name`` (one module of that name) in ``folder``, for
    installs that must not reach an index (``PIP_NO_INDEX=1``, ``PIP_FIND_LINKS=folder``)."""
    from runner.backends.docker.wheels import pack_wheel

    module = name.replace("-", "_")
    return pack_wheel(folder, module, version, {
        f"{module}/__init__.py": f"VERSION = {version!r}\n".encode(),
        f"{module}-{version}.dist-info/METADATA": (f"Metadata-Version: 2.1\nName: {name}\n"
                                                   f"Version: {version}\n").encode()})


@dataclass
class Interrupted:
    """What a runner sent SIGINT a fixed time after its start left: its exit code and stderr,
    its results file, its pid (its work folders and cgroups carry it) and its cache."""

    pid: int
    exit_code: int
    stderr: str
    results: dict[str, Any] | None
    cache: Path

    def work_folders(self) -> list[Path]:
        return sorted((self.cache / "runs").glob(f"memsla-{self.pid}-*"))

    def cgroups(self) -> list[Path]:
        from runner.inbuild import cgroups

        own = cgroups.own_cgroup()
        return sorted(Path(own.path).glob(f"memsla-{self.pid}-*")) if own is not None else []


def interrupt_after(argv: list[str], cwd: Path, seconds: float,
                    env: dict[str, str] | None = None) -> Interrupted:
    """Run ``argv`` (a runner command line) with ``--json`` and a cache of its own, send it
    SIGINT ``seconds`` after it starts (early: while it imports, loads or picks a backend), and
    return what it left once it exited."""
    out = cwd / "results.json"
    out.unlink(missing_ok=True)
    env = {"MEMSLA_CACHE_DIR": str(cwd / "cache"), **(env or {})}
    proc = subprocess.Popen([*argv, "--json", str(out)], cwd=cwd, env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    time.sleep(seconds)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    results = json.loads(out.read_text()) if out.exists() else None
    return Interrupted(proc.pid, proc.returncode, stderr, results, Path(env["MEMSLA_CACHE_DIR"]))
