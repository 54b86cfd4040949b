"""Nothing of a run outlives the runner: the process-tree and cgroup-tree killers, the names of
the runner's work folders, and the watchdog that cleans up when the runner dies.

The watchdog (``python3 -S -m runner.inbuild.reaper --owner PID --tmpdir DIR``) is started once
per runner process (``ensure_watchdog``), in a session of its own, with a pipe from the runner
on its stdin that nothing else holds. End of file on that pipe means the runner is gone (exited,
or killed with SIGKILL): the watchdog then kills and removes the runner's memory cgroups below
its own cgroup (``memsla-<PID>-*``, which it shares with the runner) and removes the runner's
work folders (``DIR/memsla-<PID>-*``), then exits. After a clean exit both are gone already, so
the watchdog finds nothing to do. Builds under the harness (a container, a systemd scope, the
process backend) die with the harness, which watches a lifeline of its own (``--lifeline``).
A runner that uses a Docker engine says so on the pipe (``watch_docker``): the watchdog then
first removes the runner's containers (label ``memsla.owner=<PID>``), running or exited,
through the engine's API on ``$DOCKER_HOST`` (a unix socket or plain tcp).

Stdlib-only, CPython 3.8+: the harness imports the process-tree helpers, and the watchdog runs
without site (``-S``).
"""

from __future__ import annotations

import argparse
import errno
import glob
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, Dict, List, Optional, Set, Tuple

from runner.inbuild import cgroups

PROC = "/proc"  # the live /proc: the killers act on real processes, never on a recorded tree
PR_SET_CHILD_SUBREAPER = 36
KILL_TIMEOUT_S = 5.0
# A build being killed in a container may still write into its run's folders (the harness's
# report) while the watchdog removes them; a write into a removed folder fails, so removing
# again until none is left ends it. Longer than a harness takes to kill its build and exit.
FOLDER_TIMEOUT_S = 30.0
# The runner's work folders in TMPDIR are memsla-<runner pid>-<random>; the owner's death lets
# the next runner remove them. Kept folders (--keep-outputs) carry no pid: never removed.
WORK_PREFIX = "memsla-"
KEPT_PREFIX = "memsla-kept-"
# How long the watchdog waits for a container engine to remove what it made below a fence.
ENGINE_TIMEOUT_S = 30.0
# The runner's cgroups below its own: memsla-<runner pid>-<n> (runner.backends.local).
CGROUP_PREFIX = "memsla-"
# The labels runner.backends.docker puts on its containers.
DOCKER_OWNER_LABEL = "memsla.owner"
DOCKER_HOST_LABEL = "memsla.host"
DOCKER_TIMEOUT_S = 30.0
# A container the runner was creating as it died may appear a moment after the first look.
DOCKER_SECOND_LOOK_S = 1.0


def work_prefix(pid: int) -> str:
    """The name prefix of the work folders of runner ``pid``."""
    return "%s%d-" % (WORK_PREFIX, pid)


def owner_of(name: str) -> Optional[int]:
    """The runner pid in a work folder's or cgroup's name ``memsla-<pid>-...``, else None."""
    if not name.startswith(WORK_PREFIX):
        return None
    head, dash, _ = name[len(WORK_PREFIX):].partition("-")
    return int(head) if dash and head.isdigit() else None


# -- process trees ---------------------------------------------------------------------------
def become_subreaper() -> bool:
    """Make orphans of this process's descendants its children (not init's), so that a build's
    daemons (double fork + setsid) stay findable. False where the kernel or ctypes says no."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (ImportError, OSError, AttributeError):
        return False


def parent_of(stat: str) -> int:
    """The parent pid in the text of ``/proc/PID/stat`` (the name may hold spaces and ')')."""
    return int(stat[stat.rindex(")") + 2:].split()[1])


def descendants(pid: int) -> List[int]:
    """Every live descendant of ``pid`` now, parents before their children."""
    children: Dict[int, List[int]] = {}
    for entry in os.listdir(PROC):
        if not entry.isdigit():
            continue
        try:
            with open(os.path.join(PROC, entry, "stat")) as handle:
                parent = parent_of(handle.read())
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not ours to read
        children.setdefault(parent, []).append(int(entry))
    found: List[int] = []
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def kill_descendants(pid: Optional[int] = None, timeout: float = KILL_TIMEOUT_S) -> int:
    """SIGKILL every descendant of ``pid`` (default: this process) until none is left alive;
    returns how many were killed. A subreaper's own children stay as zombies for it to reap."""
    pid = os.getpid() if pid is None else pid
    killed: Set[int] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in descendants(pid) if not _zombie(p)]
        if not alive:
            break
        for target in alive:
            try:
                os.kill(target, signal.SIGKILL)
                killed.add(target)
            except ProcessLookupError:
                pass
        time.sleep(0.01)
    return len(killed)


def reap_children() -> None:
    """Collect the exit status of every child that has ended (the subreaper's duty)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _zombie(pid: int) -> bool:
    try:
        with open(os.path.join(PROC, str(pid), "stat")) as handle:
            text = handle.read()
    except OSError:
        return True  # gone
    return text[text.rindex(")") + 2:].split()[0] in ("Z", "X")


def watch_lifeline(fd: int, on_end: Callable[[], None]) -> threading.Thread:
    """Call ``on_end`` in a thread when the pipe ``fd`` reaches end of file (its writer is gone).

    Reads the bare descriptor: a thread blocked in ``sys.stdin.buffer`` would hold its lock and
    abort the interpreter's shutdown."""

    def watch() -> None:
        try:
            while os.read(fd, 4096):
                pass
        except OSError:
            pass
        on_end()

    thread = threading.Thread(target=watch, name="memsla-lifeline", daemon=True)
    thread.start()
    return thread


# -- cgroup trees and folders ----------------------------------------------------------------
def remove_cgroup_tree(top: cgroups.Cgroup, timeout: float = KILL_TIMEOUT_S) -> None:
    """Kill every process in ``top`` and the cgroups below it, then remove them, deepest first."""
    paths = [path for path, _, _ in os.walk(top.path, topdown=False)]
    for path in paths:
        cgroups.Cgroup(path, top.version).kill_all(timeout)
    for path in paths:
        cgroups.Cgroup(path, top.version).remove(timeout)


def remove_engine_made(cgroup: cgroups.Cgroup, timeout: float = 0.0) -> List[str]:
    """Remove the directories a container engine made in the other hierarchies for a fence that
    was a container's parent (v1; ``runner.backends.docker``), the deepest first; with a
    ``timeout``, again until they are gone or it passes (a container killed with its fence
    leaves its own directories there until the engine has seen it exit). Returns those left."""
    relative = cgroup.hierarchy_path()
    if relative is None:
        return []
    deadline = time.monotonic() + timeout
    while True:
        left = cgroup.files.engine_made(cgroups.CGROUP_ROOT, relative)
        for path in reversed(left):
            for inner, _, _ in os.walk(path, topdown=False):
                try:
                    os.rmdir(inner)
                except OSError:
                    pass
        left = [path for path in left if os.path.isdir(path)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def runner_cgroups(owner: int, parent: cgroups.Cgroup) -> List[cgroups.Cgroup]:
    """The cgroups runner ``owner`` made below ``parent``."""
    pattern = os.path.join(glob.escape(parent.path), "%s%d-*" % (CGROUP_PREFIX, owner))
    return [cgroups.Cgroup(path, parent.version) for path in sorted(glob.glob(pattern))
            if os.path.isdir(path)]


# -- Docker containers ----------------------------------------------------------------------
def _engine_request(address: str, method: str, path: str) -> Tuple[int, bytes]:
    """One call of the Docker engine's HTTP API at ``address`` (``unix://PATH`` or
    ``tcp://HOST:PORT``, as in ``$DOCKER_HOST``); returns the status and the body."""
    import http.client
    import socket

    if address.startswith("unix://"):
        target = address[len("unix://"):]

        class UnixConnection(http.client.HTTPConnection):
            def connect(self) -> None:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(DOCKER_TIMEOUT_S)
                self.sock.connect(target)

        connection: http.client.HTTPConnection = UnixConnection("localhost",
                                                                timeout=DOCKER_TIMEOUT_S)
    elif address.startswith("tcp://") or address.startswith("http://"):
        connection = http.client.HTTPConnection(address.split("://", 1)[1].rstrip("/"),
                                                timeout=DOCKER_TIMEOUT_S)
    else:
        raise OSError("cannot reach a Docker engine at %s from the watchdog" % address)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def runner_containers(owner: int, address: str) -> List[str]:
    """The ids of the containers runner ``owner`` of this host made on the engine at
    ``address``, running or not."""
    import json
    import socket
    from urllib.parse import quote

    filters = json.dumps({"label": ["%s=%d" % (DOCKER_OWNER_LABEL, owner)]})
    status, body = _engine_request(address, "GET",
                                   "/containers/json?all=1&filters=" + quote(filters))
    if status != 200:
        raise OSError("the Docker engine answered %d listing containers" % status)
    hostname = socket.gethostname()
    return [str(item["Id"]) for item in json.loads(body.decode())
            if (item.get("Labels") or {}).get(DOCKER_HOST_LABEL, hostname) == hostname]


def remove_containers(owner: int, address: str) -> List[str]:
    """Remove (killing) the containers of runner ``owner``; returns the ids removed."""
    removed = []
    for attempt in range(2):
        if attempt:
            time.sleep(DOCKER_SECOND_LOOK_S)
        for container in runner_containers(owner, address):
            status, _ = _engine_request(address, "DELETE",
                                        "/containers/%s?force=1&v=1" % container)
            if status in (204, 404):  # 404: it went meanwhile
                removed.append(container)
    return removed


def docker_address() -> str:
    """The engine the runner talks to: ``$DOCKER_HOST``, or the default socket."""
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def clean_up_after(owner: int, tmpdir: str, docker: bool = False) -> None:
    """What the watchdog does once runner ``owner`` is gone: its builds first (its containers,
    when it used Docker, then its cgroups), then its files."""
    if docker:
        try:
            remove_containers(owner, docker_address())
        except (OSError, ValueError, KeyError, TypeError) as exc:
            sys.stderr.write("memsla-reaper: cannot remove containers: %s\n" % exc)
    parent = cgroups.own_cgroup()
    if parent is not None:
        for cgroup in runner_cgroups(owner, parent):
            try:
                remove_cgroup_tree(cgroup)
            except OSError as exc:
                sys.stderr.write("memsla-reaper: %s\n" % exc)
            for path in remove_engine_made(cgroup, ENGINE_TIMEOUT_S):
                sys.stderr.write("memsla-reaper: cannot remove %s\n" % path)
    pattern = os.path.join(glob.escape(tmpdir), glob.escape(work_prefix(owner)) + "*")
    for folder in remove_folders(pattern):
        sys.stderr.write("memsla-reaper: cannot remove %s\n" % folder)


def remove_folders(pattern: str, timeout: float = FOLDER_TIMEOUT_S) -> List[str]:
    """Remove the folders matching ``pattern``, again and again while a writer adds to them,
    until none is left or ``timeout`` passes; returns those left."""
    deadline = time.monotonic() + timeout
    left = glob.glob(pattern)
    while left:
        for folder in left:
            shutil.rmtree(folder, ignore_errors=True)
        left = glob.glob(pattern)
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return left


# -- the watchdog ----------------------------------------------------------------------------
_watchdogs: Dict[int, "subprocess.Popen[bytes]"] = {}  # runner pid -> its watchdog
_watchdog_lock = threading.Lock()
_docker_told: Set[int] = set()  # runners that told their watchdog they use Docker


def watch_docker() -> None:
    """Tell this runner's watchdog (if it has one) that it uses the Docker engine of
    ``$DOCKER_HOST``: if the runner dies, the watchdog removes its containers too."""
    with _watchdog_lock:
        watchdog = _watchdogs.get(os.getpid())
        if watchdog is None or watchdog.stdin is None or os.getpid() in _docker_told:
            return
        try:
            watchdog.stdin.write(b"docker\n")
            watchdog.stdin.flush()
            _docker_told.add(os.getpid())
        except OSError:
            pass


def ensure_watchdog(tmpdir: Optional[str] = None) -> None:
    """Start this runner's watchdog, once per process (later calls do nothing)."""
    with _watchdog_lock:
        if os.getpid() in _watchdogs:
            return
        import tempfile

        package_root = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))))
        env = dict(os.environ)
        env["PYTHONPATH"] = package_root
        # The write end of the stdin pipe stays in this process alone (pipes are not inherited
        # by exec'd programs), so it closes when the runner ends, however it ends.
        _watchdogs[os.getpid()] = subprocess.Popen(
            [sys.executable, "-S", "-m", "runner.inbuild.reaper", "--owner", str(os.getpid()),
             "--tmpdir", tmpdir or tempfile.gettempdir()],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd="/", env=env, start_new_session=True)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="memsla-reaper")
    parser.add_argument("--owner", type=int, required=True)
    parser.add_argument("--tmpdir", required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the runner's Ctrl-C is the runner's
    told = b""  # what the runner said: "docker" lines
    try:
        while True:
            chunk = os.read(0, 4096)
            if not chunk:
                break
            told = (told + chunk)[-4096:]
    except OSError as exc:
        if exc.errno != errno.EBADF:
            raise
    clean_up_after(args.owner, args.tmpdir, docker=b"docker\n" in told)
    return 0


if __name__ == "__main__":
    sys.exit(main())
