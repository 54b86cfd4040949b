"""Ctrl-C in the first moments of a real check on the local cgroup, while the runner imports,
loads the SLA file, picks its backend and starts the first build: exit 130, a results file that
says "interrupted" (never pass), and nothing left behind. And, planted, the moments where
plain Python gets a signal wrong (inside an import, swallowed by a finalizer) or a runner did
(as the build's process starts); and the build holds no signal the runner held."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from runner import interrupts
from runner.inbuild import cgroups
from tests.conftest import interrupt_after, run_cli, running, wait_until

SLA = """\
version: 1
defaults: {backend: cgroup, repeats: 1, tracker: none, limit: 128MiB}
scenarios:
  sleepy: {command: [python3, -c, "import time; time.sleep(30)"]}
slas: [peak < 1GiB]
"""


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
@pytest.mark.parametrize("seconds", [0.2, 0.5, 1.0, 2.0])
def test_an_early_interrupt_writes_an_interrupted_results_file(tmp_path: Path,
                                                               seconds: float) -> None:
    (tmp_path / "sla.yaml").write_text(textwrap.dedent(SLA))
    left = interrupt_after([sys.executable, "-m", "runner", "check", "sla.yaml"], tmp_path,
                           seconds)
    assert left.exit_code == 130, left.stderr
    assert left.results is not None, "no results file"
    assert left.results["status"] == "interrupted" and left.results["interrupted"] is True
    assert left.results["cases"] == []
    assert wait_until(lambda: not left.work_folders() and not left.cgroups(), 10)


# Sends itself SIGINT, then keeps running bytecode: a plain handler raises in the middle of it
PLANTED_MODULE = """\
import os, signal, time
os.kill(os.getpid(), signal.SIGINT)
deadline = time.monotonic() + 0.3
while time.monotonic() < deadline:
    pass
WHOLE = True
"""

IMPORTER = """\
import time
from runner import interrupts
interrupts.install()
try:
    import planted
except KeyboardInterrupt:
    print("inside the import")
else:
    try:
        time.sleep(10)
        print("lost")
    except KeyboardInterrupt:
        print("after the import, whole:", planted.WHOLE)
"""


def _python(code: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_signal_inside_an_import_is_raised_once_the_import_ended(tmp_path: Path) -> None:
    (tmp_path / "planted.py").write_text(PLANTED_MODULE)
    assert _python(IMPORTER, tmp_path) == "after the import, whole: True"


SWALLOWER = """\
import os, signal, threading, time
from runner import interrupts
interrupts.install()

class Finalized:
    def __del__(self):  # Python prints and drops what a finalizer raises
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)

Finalized()
started = time.monotonic()
try:
    interrupts.wait(threading.Event().wait, 10)
    print("waited")
except KeyboardInterrupt:
    print("raised again", round(time.monotonic() - started) == 0)
"""


def test_an_interrupt_a_finalizer_swallowed_stops_the_next_wait(tmp_path: Path) -> None:
    assert _python(SWALLOWER, tmp_path) == "raised again True"


def test_the_waits_time_out_as_plain_waits_when_nothing_was_asked() -> None:
    assert interrupts.requested() is None  # the handler is the CLI's, not the tests'
    started = time.monotonic()
    assert interrupts.wait(threading.Event().wait, 0.6) is False
    assert 0.6 <= time.monotonic() - started < 5
    done = threading.Event()
    threading.Timer(0.3, done.set).start()
    assert interrupts.wait(done.wait, None) is True
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            interrupts.wait_process(sleeper, 0.3)
        sleeper.kill()
        assert interrupts.wait_process(sleeper, 10) == -9
    finally:
        sleeper.kill()
        sleeper.wait()


# Ctrl-C the moment the build's process exists, before the runner waits for it
AT_THE_BUILD_S_START = """\
import os, signal, sys
from runner.backends import capture
from runner.cli import main

started = capture.start_captured

def start_then_interrupt(*args, **kwargs):
    begun = started(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGINT)
    return begun

capture.start_captured = start_then_interrupt
sys.exit(main(["check", "sla.yaml", "--json", "results.json"]))
"""


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_an_interrupt_as_the_build_starts_stops_it_and_is_told(tmp_path: Path) -> None:
    (tmp_path / "sla.yaml").write_text(textwrap.dedent(SLA).replace("sleep(30)", "sleep(31)"))
    done = subprocess.run([sys.executable, "-c", AT_THE_BUILD_S_START], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "MEMSLA_CACHE_DIR": str(tmp_path / "cache")})
    results = json.loads((tmp_path / "results.json").read_text())
    # an interrupt, not "the build could not run" (a fence that could not go, say)
    assert done.returncode == 130, done.stdout + done.stderr
    assert results["status"] == "interrupted" and results["cases"] == []
    assert not running(["python3", "-c", "import time; time.sleep(31)"])
    own = cgroups.own_cgroup()
    assert own is None or wait_until(lambda: not list(Path(own.path).glob("memsla-*-*")), 10)


BLOCKED_SIGNALS = ("import sys; blocked = open('/proc/self/status').read().split('SigBlk:')[1]; "
                   "sys.exit(int(blocked.split()[0], 16) != 0)")


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_the_build_holds_no_signal_the_runner_held(tmp_path: Path) -> None:
    (tmp_path / "sla.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        defaults: {{backend: cgroup, repeats: 1, tracker: none}}
        scenarios:
          signals: {{command: [python3, -c, "{BLOCKED_SIGNALS}"]}}
        slas: [exit_code == 0]
        """))
    run = run_cli(["check", "sla.yaml"], tmp_path,
                  env={"MEMSLA_CACHE_DIR": str(tmp_path / "cache")})
    assert run.exit_code == 0, run.stdout
