"""The reaper's pieces: work folder names, /proc parsing, the subreaper's kill of a daemon, and
the watchdog cleaning up after a runner that is gone (real cgroups, real processes)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runner.backends import harnessed
from runner.inbuild import cgroups, reaper
from runner.measure import staging
from tests.conftest import REPO, kill_running, running, wait_until
from tests.inbuild.test_harness import _interpreters


def test_work_folder_names_carry_their_owner() -> None:
    assert reaper.owner_of(reaper.work_prefix(4242) + "x1_y") == 4242
    assert reaper.owner_of("memsla-17-3") == 17  # a cgroup of runner 17
    for name in ("memsla-kept-17-abc", "memsla-abc123", "memsla-probe-17", "other-17-x",
                 "memsla-17"):
        assert reaper.owner_of(name) is None, name


def test_parent_is_read_past_a_name_with_spaces_and_parentheses() -> None:
    assert reaper.parent_of("123 (a) b (c)) S 45 123 123 0 -1 4194560") == 45


DAEMONIZE = textwrap.dedent("""\
    import os, sys, time
    from runner.inbuild import reaper
    assert reaper.become_subreaper()
    if os.fork() == 0:                  # the build: forks a daemon and exits
        if os.fork() == 0:
            os.setsid()
            os.execvp("sleep", ["sleep", "307"])
        os._exit(0)
    os.wait()
    deadline = time.time() + 10
    while not reaper.descendants(os.getpid()) and time.time() < deadline:
        time.sleep(0.01)
    print(len(reaper.descendants(os.getpid())), reaper.kill_descendants(), flush=True)
    reaper.reap_children()
    print(len(reaper.descendants(os.getpid())))
    """)


def test_a_subreaper_finds_and_kills_the_daemon_of_an_exited_child() -> None:
    try:
        proc = subprocess.run([sys.executable, "-c", DAEMONIZE], capture_output=True,
                              text=True, timeout=60, check=False, cwd=REPO)
    finally:
        kill_running(["sleep", "307"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "1", "0"], "the orphan was ours, killed and reaped"


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_watchdog_cleans_up_after_its_runner_only(tmp_path: Path) -> None:
    owner = subprocess.Popen(["true"])  # a pid that is nobody's now
    owner.wait()
    own = cgroups.own_cgroup()
    assert own is not None
    # the runner's cgroup with the build one level down (the limit on the parent)
    top = own.create_child(f"memsla-{owner.pid}-1")
    inner = top.create_child("build")
    sleeper = subprocess.Popen(
        ["/bin/sh", "-c", 'echo 0 > "$0" && exec sleep 308', inner.enter_file()])
    mine, other, kept = (tmp_path / f"memsla-{owner.pid}-a", tmp_path / f"memsla-{os.getpid()}-a",
                         tmp_path / f"memsla-kept-{owner.pid}-a")
    for folder in (mine / "run0", other, kept):
        folder.mkdir(parents=True)
    watchdog = subprocess.Popen(
        [sys.executable, "-S", "-m", "runner.inbuild.reaper", "--owner", str(owner.pid),
         "--tmpdir", str(tmp_path)], stdin=subprocess.PIPE, cwd=REPO)
    try:
        assert wait_until(lambda: running(["sleep", "308"]))
        assert watchdog.poll() is None, "it waits while the pipe is open"
        assert watchdog.stdin is not None
        watchdog.stdin.close()  # the runner is gone
        assert watchdog.wait(30) == 0
        sleeper.wait(10)
        assert not top.exists() and not running(["sleep", "308"])
        assert not mine.exists()
        assert other.exists() and kept.exists()
    finally:
        if watchdog.poll() is None:
            watchdog.kill()
        sleeper.kill()
        sleeper.wait()
        reaper.remove_cgroup_tree(top)


@pytest.mark.parametrize("python", _interpreters())
def test_harness_kills_what_the_build_left_and_everything_when_its_lifeline_ends(
        tmp_path: Path, python: str) -> None:
    stage = staging.stage(tmp_path / "cache")
    daemon, build = ["sleep", "309"], ["sleep", "310"]

    def harness(script: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [python, "-S", "-m", "runner.inbuild.harness", "--out", str(tmp_path), "--no-cgroup",
             "--lifeline", "--", "sh", "-c", script], stdin=subprocess.PIPE, cwd=stage)

    try:
        ended = harness("setsid sleep 309 & sleep 0.2")
        assert ended.wait(30) == 0, "a normal end, with the lifeline still open"
        report = harnessed.read_report(tmp_path)
        assert report is not None and report["left_running"] == 1
        assert not running(daemon)

        gone = harness("setsid sleep 309 & exec sleep 310")
        assert wait_until(lambda: running(daemon) and running(build))
        assert gone.stdin is not None
        gone.stdin.close()  # the runner is gone
        assert gone.wait(30) == 128 + 9
        assert wait_until(lambda: not running(daemon) and not running(build), 10)
    finally:
        kill_running(daemon)
        kill_running(build)


# A harness still being killed in its container writes its report into the run's output folder
# while the watchdog removes it: the watchdog removes again until nothing is left.
LATE_WRITER = textwrap.dedent("""\
    import os, sys, time
    out, ready, n = sys.argv[1], sys.argv[2], 0
    open(ready, "w").close()
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        try:
            with open(os.path.join(out, "report-%d.json" % n), "w") as handle:
                handle.write("{}")
        except OSError:
            break  # the folder is gone: a write into a removed folder fails
        n += 1
    """)


def test_watchdog_removes_a_folder_that_is_written_while_it_removes_it(tmp_path: Path) -> None:
    owner = subprocess.Popen(["true"])
    owner.wait()
    runs = tmp_path / "runs"
    out = runs / f"memsla-{owner.pid}-a" / "out"
    out.mkdir(parents=True)
    ready = tmp_path / "ready"
    writer = subprocess.Popen([sys.executable, "-c", LATE_WRITER, str(out), str(ready)])
    try:
        assert wait_until(ready.exists)
        reaper.clean_up_after(owner.pid, str(runs))
        assert list(runs.iterdir()) == []
    finally:
        writer.kill()
        writer.wait()


def test_what_an_engine_made_beside_a_fence_is_removed_once_it_empties(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The watchdog waits for a container's own directories to go before it removes the
    fence's in the other hierarchies (v1), and says what it could not remove."""
    import threading

    monkeypatch.setattr(cgroups, "CGROUP_ROOT", str(tmp_path))
    fence = tmp_path / "memory" / "r" / "memsla-1-d1"
    fence.mkdir(parents=True)
    made = [tmp_path / name / "r" / "memsla-1-d1" for name in ("cpu", "pids")]
    container = made[1] / "abc"
    container.mkdir(parents=True)
    made[0].mkdir(parents=True)
    (container / "busy").write_text("")  # a directory rmdir cannot remove yet
    cgroup = cgroups.Cgroup(str(fence), 1)
    assert reaper.remove_engine_made(cgroup) == [str(made[1])]
    assert not made[0].exists()
    threading.Timer(0.3, lambda: (container / "busy").unlink()).start()
    assert reaper.remove_engine_made(cgroup, timeout=10) == []
    assert not made[1].exists()
