"""An interrupted debootstrap (Ctrl-C during ``runner image build`` on a fresh machine) leaves
nothing: no process of it, nothing mounted in its target, no folder and no tarball. A real
debootstrap, interrupted once it has mounted /proc in its target (its second stage); and the
mount table's parsing on recorded contents."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from runner.backends.docker.base_image import mounts_below
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


def test_an_interrupted_debootstrap_leaves_no_process_mount_or_folder(tmp_path: Path) -> None:
    if shutil.which("debootstrap") is None or os.geteuid() != 0:
        require("docker", "memsla's base image is made by debootstrap, as root")
    tarball = tmp_path / "base" / "rootfs.tar"
    with (tmp_path / "log").open("w") as log:
        proc = subprocess.Popen([sys.executable, "-c", DEBOOTSTRAP, str(tarball)],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert wait_until(lambda: mounts_below(tmp_path) or proc.poll() is not None, 900), \
            "debootstrap never mounted anything in its target"
        assert proc.poll() is None, (tmp_path / "log").read_text()[-2000:]
        assert any("debootstrap" in line for line in _in(tmp_path))
        proc.send_signal(signal.SIGINT)  # the runner alone, as a SIGTERM from CI would be
        proc.wait(120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "KeyboardInterrupt" in (tmp_path / "log").read_text()
    assert wait_until(lambda: not _in(tmp_path), 10), _in(tmp_path)
    assert mounts_below(tmp_path) == []
    assert list((tmp_path / "base").iterdir()) == [], "a scratch folder or a tarball is left"


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
