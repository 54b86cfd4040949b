"""One cache shared by several runners, and failed steps: real processes on real files."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

from runner.errors import FixtureError
from runner.measure import staging
from runner.slafile.model import GenerateStep
from runner.workload.cache import COMPLETE, prepare_fixture, prepare_virtualenv

REPO = Path(__file__).resolve().parents[2]


def tiny_wheel(folder: Path, name: str, requires_python: str) -> Path:
    """A pure-Python wheel written by hand: pip installs it by path with no network."""
    info = f"{name}-1.0.dist-info"
    files = {f"{name}/__init__.py": "VALUE = 1\n",
             f"{info}/METADATA": (f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n"
                                  f"Requires-Python: {requires_python}\n"),
             f"{info}/WHEEL": ("Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                               "Tag: py3-none-any\n")}
    record = []
    for path, text in files.items():
        digest = hashlib.sha256(text.encode()).digest()
        encoded = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        record.append(f"{path},sha256={encoded},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    wheel = folder / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def temps(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if re.search(r"\.tmp\d+$", p.name)]


def pip_runs(pip_log: Path, name: str) -> int:
    """How many pip commands tried to install ``name`` (``PIP_LOG`` appends every run)."""
    text = pip_log.read_text() if pip_log.exists() else ""
    return len(re.findall(rf" Processing \S*{name}-1\.0-py3-none-any\.whl", text))


def in_python(code: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO), **env},
                            start_new_session=True)


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_two_runners_make_the_same_fixture_once_and_both_pass(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    # the generator notes each run and is slow, so that the two runners overlap
    (tmp_path / "sla.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        defaults: {{backend: cgroup, repeats: 1, warmup: 0, tracker: none}}
        scenarios:
          site:
            generate:
              command: [sh, -c, 'echo "$1" >> "$2/generated"; sleep 1; echo "$$" > "$0/data"',
                        "{{fixture}}", "{{n}}", "{tmp_path}"]
            command: [sh, -c, 'echo "$2 $0 $(cat "$0/data")" >> "$1/seen"',
                      "{{fixture}}", "{tmp_path}", "{{n}}"]
            matrix: {{n: [1, 2]}}
        slas: [oom_kills == 0]
        """))
    runners = [subprocess.Popen([sys.executable, "-m", "runner", "check", "sla.yaml", "--json",
                                 str(tmp_path / f"results{i}.json")], cwd=tmp_path, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, "MEMSLA_CACHE_DIR": str(cache)})
               for i in range(2)]
    outputs = [runner.communicate(timeout=300) for runner in runners]
    for runner, (out, err) in zip(runners, outputs, strict=True):
        assert runner.returncode == 0, out + err
    for i in range(2):
        results = json.loads((tmp_path / f"results{i}.json").read_text())
        assert [case["error"] for case in results["cases"]] == [None, None]
    assert sorted((tmp_path / "generated").read_text().split()) == ["1", "2"], \
        "each fixture was generated once"
    seen = sorted((tmp_path / "seen").read_text().splitlines())
    assert len(seen) == 4 and seen[0] == seen[1] and seen[2] == seen[3] and seen[1] != seen[2], \
        "both runners measured the same fixture of each size"
    assert temps(cache) == []


def test_a_fixture_half_made_by_a_killed_runner_is_removed_and_made_again(
        tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    step = {"command": ["sh", "-c", 'touch "$0/started"; if [ -n "$HANG" ]; then sleep 60; fi; '
                        'echo ok > "$0/data"', "{fixture}"]}
    dying = in_python(f"""
        from pathlib import Path
        from runner.slafile.model import GenerateStep
        from runner.workload.cache import prepare_fixture
        prepare_fixture(GenerateStep.model_validate({step!r}), {{}}, Path({str(tmp_path)!r}),
                        Path({str(cache)!r}))
        """, {"HANG": "1"})
    deadline = time.monotonic() + 60
    while not list(cache.glob(f"fixtures/*.tmp{dying.pid}/started")):
        assert dying.poll() is None and time.monotonic() < deadline, dying.communicate()
        time.sleep(0.05)
    os.killpg(dying.pid, signal.SIGKILL)  # the runner and its generator, mid-step
    dying.wait()
    assert len(temps(cache)) == 1

    # a probe folder staged aside by another dead runner, and one by a live one
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        dead_probe = cache / "probe" / f"0123456789abcdef.tmp{dying.pid}"
        live_probe = cache / "probe" / f"0123456789abcdef.tmp{sleeper.pid}"
        for folder in (dead_probe, live_probe):
            (folder / "runner").mkdir(parents=True)
        fixture = prepare_fixture(GenerateStep.model_validate(step), {}, tmp_path, cache)
        assert (fixture / "data").read_text() == "ok\n" and (fixture / COMPLETE).exists()
        staged = staging.stage(cache)
        assert (staged / "sitecustomize.py").exists()
        assert temps(cache) == [live_probe], "only the live runner's folder is left"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_failed_generate_step_shows_its_output_keeps_its_log_and_runs_once(
        tmp_path: Path) -> None:
    step = GenerateStep.model_validate({"command": [
        "sh", "-c", 'echo run >> "$1/runs"; for i in $(seq 40); do echo "line $i"; done; '
        'echo "reason: the disk is on fire" >&2; exit 2', "{fixture}", str(tmp_path)]})
    with pytest.raises(FixtureError) as first:
        prepare_fixture(step, {}, tmp_path, tmp_path / "cache")
    message = str(first.value)
    assert "exited 2" in message and "reason: the disk is on fire" in message
    assert "line 40" in message and "line 1\n" not in message, "only the tail is shown"
    log = Path(re.findall(r"all of it is in (\S+)\)", message)[0])
    assert log.is_relative_to(tmp_path / "cache" / "logs") and "line 1\n" in log.read_text()

    with pytest.raises(FixtureError) as again:
        prepare_fixture(step, {}, tmp_path, tmp_path / "cache")
    assert "reason: the disk is on fire" in str(again.value)
    assert "not tried again" in str(again.value)
    assert (tmp_path / "runs").read_text() == "run\n"
    assert temps(tmp_path / "cache") == []


def test_two_processes_make_the_same_virtualenv_once(tmp_path: Path) -> None:
    cache, pip_log = tmp_path / "cache", tmp_path / "pip.log"
    wheel = tiny_wheel(tmp_path, "tinyok", ">=3.8")
    code = f"""
        from pathlib import Path
        from runner.workload.cache import prepare_virtualenv
        print(prepare_virtualenv([{str(wheel)!r}], None, Path({str(cache)!r})))
        """
    makers = [in_python(code, {"PIP_LOG": str(pip_log)}) for _ in range(2)]
    outputs = [maker.communicate(timeout=300) for maker in makers]
    for maker, (out, err) in zip(makers, outputs, strict=True):
        assert maker.returncode == 0, out + err
    venvs = {out.strip() for out, _ in outputs}
    assert len(venvs) == 1
    venv = Path(venvs.pop())
    assert (venv / COMPLETE).exists()
    subprocess.run([venv / "bin" / "python", "-c", "import tinyok"], check=True)
    assert pip_runs(pip_log, "tinyok") == 1, "the second process reused the first one's"
    assert temps(cache) == []

    # one left without its marker (its runner died while building it) is made again
    (venv / COMPLETE).unlink()
    (venv / "half-built").touch()
    assert prepare_virtualenv([str(wheel)], None, cache) == venv
    assert (venv / COMPLETE).exists() and not (venv / "half-built").exists()


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_a_failed_pip_install_shows_pips_reason_and_runs_once_per_check(
        tmp_path: Path) -> None:
    cache, pip_log = tmp_path / "cache", tmp_path / "pip.log"
    wheel = tiny_wheel(tmp_path, "tinyfuture", ">=99")
    (tmp_path / "sla.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        defaults: {{backend: cgroup, repeats: 1, warmup: 0, tracker: none}}
        scenarios:
          needs-future:
            requirements: ["{wheel}"]
            command: [python3, -c, "import tinyfuture", "{{n}}"]
            matrix: {{n: [1, 2]}}
        """))
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "runner", "check", "sla.yaml", "--json",
                           str(out)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MEMSLA_CACHE_DIR": str(cache),
                               "PIP_LOG": str(pip_log)}, check=False)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    first, second = (case["error"] for case in json.loads(out.read_text())["cases"])
    assert "requires a different Python" in first and "'>=99'" in first, first
    log = Path(re.findall(r"all of it is in (\S+)\)", first)[0])
    assert log.is_relative_to(cache / "logs") and "requires a different Python" in log.read_text()
    assert "requires a different Python" in second and "not tried again" in second, second
    assert pip_runs(pip_log, "tinyfuture") == 1
    assert "requires a different Python" in proc.stdout + proc.stderr
    assert temps(cache) == [] and not list(cache.glob("venvs/*"))
