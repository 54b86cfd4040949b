"""An interrupted debootstrap (Ctrl-C during ``runner image build`` on a fresh machine) leaves
nothing: no process of it, nothing mounted in its target, no folder and no tarball; what a
runner killed meanwhile left, the next build stops and removes. A real debootstrap, stopped once
it has mounted /proc in its target (its second stage); and the mount table's parsing on
recorded contents."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from runner.backends.docker import base_image
from runner.backends.docker.base_image import mounts_below
from runner.inbuild import reaper
from tests.conftest import require, wait_until

DEBOOTSTRAP = """\
import sys
from pathlib import Path
from runner.backends.docker import base_image
base_image._debootstrap_rootfs(base_image.BaseParams(), Path(sys.argv[1]), print)
"""


def _in(folder: Path) -> list[str]:
    """The processes that run in ``folder`` (chrooted there) or name it on their command line."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            root = os.readlink(f"/proc/{process.info['pid']}/root")
        except OSError:
            root = "/"
        cmdline = " ".join(process.info["cmdline"] or [])
        if process.info["pid"] == os.getpid():
            continue
        if root.startswith(str(folder)) or str(folder) in cmdline:
            found.append(f"{process.info['pid']} {cmdline}")
    return found


def _debootstrap_until_it_mounts(folder: Path) -> subprocess.Popen[bytes]:
    """memsla's debootstrap for a base image, in a runner of its own, once it has mounted
    something in its target."""
    if shutil.which("debootstrap") is None or os.geteuid() != 0:
        require("docker", "memsla's base image is made by debootstrap, as root")
    with (folder / "log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", DEBOOTSTRAP, str(folder / "base" / "rootfs.tar")],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    assert wait_until(lambda: mounts_below(folder) or proc.poll() is not None, 900), \
        "debootstrap never mounted anything in its target"
    assert proc.poll() is None, (folder / "log").read_text()[-2000:]
    assert any("debootstrap" in line for line in _in(folder))
    return proc


def _assert_nothing_left(folder: Path) -> None:
    assert wait_until(lambda: not _in(folder), 10), _in(folder)
    assert mounts_below(folder) == []
    assert list((folder / "base").iterdir()) == [], "a scratch folder or a tarball is left"


def test_an_interrupted_debootstrap_leaves_no_process_mount_or_folder(tmp_path: Path) -> None:
    proc = _debootstrap_until_it_mounts(tmp_path)
    try:
        proc.send_signal(signal.SIGINT)  # the runner alone, as a SIGTERM from CI would be
        proc.wait(120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "KeyboardInterrupt" in (tmp_path / "log").read_text()
    _assert_nothing_left(tmp_path)


def test_a_killed_runner_s_debootstrap_is_stopped_and_removed_by_the_next_build(
        tmp_path: Path) -> None:
    proc = _debootstrap_until_it_mounts(tmp_path)
    proc.kill()  # the runner alone: its debootstrap runs on, orphaned
    proc.wait()
    try:
        assert any("debootstrap" in line for line in _in(tmp_path))
        [scratch] = (tmp_path / "base").iterdir()
        assert reaper.owner_of(scratch.name) == proc.pid
        said: list[str] = []
        base_image.remove_dead_runners_scratch(tmp_path / "base", said.append)
        assert f"removing {scratch}, left by runner {proc.pid}, which is gone" in said
        _assert_nothing_left(tmp_path)
    finally:
        for line in _in(tmp_path):
            os.kill(int(line.split()[0]), signal.SIGKILL)


def test_only_the_scratch_of_runners_that_are_gone_is_removed(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    alive = subprocess.Popen(["sleep", "30"])
    try:
        names = [f"memsla-{pid}-rootfs-x" for pid in (gone.pid, alive.pid, os.getpid())]
        for name in [*names, "rootfs-0123456789ab.tar", "memsla-x-rootfs-y"]:
            (tmp_path / name).mkdir()
            (tmp_path / name / "file").write_text("kept?")
        said: list[str] = []
        base_image.remove_dead_runners_scratch(tmp_path, said.append)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [*names[1:], "rootfs-0123456789ab.tar", "memsla-x-rootfs-y"])
        assert said == [f"removing {tmp_path / names[0]}, left by runner {gone.pid}, which is "
                        "gone"]
    finally:
        alive.kill()
        alive.wait()


MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
98 22 0:5 / /tmp/c/rootfs-x/rootfs/proc rw,relatime - proc proc rw
99 22 0:21 / /tmp/c/rootfs-x/rootfs/sys rw,relatime - sysfs sysfs rw
100 22 0:5 /null /tmp/c/rootfs-x/rootfs/dev/null rw - devtmpfs udev rw
101 22 0:40 / /tmp/c/rootfs-x\\040two/proc rw - proc proc rw
102 22 0:41 / /tmp/c/rootfs-xy/proc rw - proc proc rw
"""


def test_the_mounts_below_a_folder_are_read_from_the_mount_table(tmp_path: Path) -> None:
    table = tmp_path / "mountinfo"
    table.write_text(MOUNTINFO)
    assert mounts_below(Path("/tmp/c/rootfs-x"), str(table)) == [
        "/tmp/c/rootfs-x/rootfs/proc", "/tmp/c/rootfs-x/rootfs/sys",
        "/tmp/c/rootfs-x/rootfs/dev/null"]
    assert mounts_below(Path("/tmp/c/rootfs-x two"), str(table)) == ["/tmp/c/rootfs-x two/proc"]
    assert mounts_below(Path("/tmp/elsewhere"), str(table)) == []
