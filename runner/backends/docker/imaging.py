"""What every image build of the Docker backend uses: its errors, the engine client, the one
lock that serialises image builds between memsla processes (the cache's, ``runner.workload.
cache.key_lock``), content hashes for tags, and following a ``docker build``; and the contract
every image a build runs in must meet."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

# Only `import docker.errors`: ruff takes a bare `docker` for the repo's docker/ folder.
import docker.errors

from runner import interrupts
from runner.errors import HostError
from runner.workload.cache import cache_dir, key_lock

Log = Callable[[str], None]

HASH_LENGTH = 12
# Builds and imports stream for minutes without a byte; the SDK's default is 60 s.
DOCKER_TIMEOUT_S = 1800
# How long an interrupted step (debootstrap) gets to clean up after itself before SIGKILL.
STOP_GRACE_S = 30.0
# Bumped by hand when the way an image is made changes in a way its inputs do not show.
RECIPE_VERSION = 1

WHEEL_PYTHON_VERSION = "3.11"
# bookworm has glibc 2.36: every manylinux tag up to that one installs there.
WHEEL_PLATFORMS: tuple[str, ...] = (
    "manylinux2014_x86_64",
    *(f"manylinux_2_{minor}_x86_64" for minor in range(36, 16, -1)),
)



class ImageError(HostError, RuntimeError):
    """An image could not be built or found; the message says what to do."""


class EngineUnavailableError(ImageError):
    """No Docker engine answers."""


class DebootstrapError(ImageError):
    """debootstrap is missing, cannot run, or failed."""


class WheelDownloadError(ImageError):
    """pip could not download (or build) the wheels for requirements.txt."""


class ImageBuildError(ImageError):
    """docker import or docker build failed."""


# What every image a scenario runs in must provide (checked when the backend starts with it).
IMAGE_CONTRACT = (
    "an image memsla runs builds in must provide: linux on this engine's architecture; "
    "python3 (3.8 or newer) on PATH; a filesystem readable by uid 1000 (the build runs as "
    "1000:1000 when the runner is root, else as the runner's uid) that needs no writes outside "
    "/tmp, the output folder and the fixture copy (the root filesystem is read-only: compile "
    ".pyc files at build time); and, for requirements: or project:, python3's venv module")



def stderr_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def sha12(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]



def docker_client() -> docker.DockerClient:
    """A client of the engine in the environment (``DOCKER_HOST``...), checked to answer."""
    try:
        client = docker.DockerClient.from_env(timeout=DOCKER_TIMEOUT_S)
        client.ping()
    except docker.errors.DockerException as exc:
        raise EngineUnavailableError(
            f"no Docker engine answers ({exc}): start one (as root: docker/engine-up.sh) or "
            "point DOCKER_HOST at one"
        ) from exc
    return client


def image_exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True



@contextlib.contextmanager
def build_lock() -> Iterator[None]:
    """Serialise image builds between memsla processes sharing one cache."""
    with key_lock(cache_dir(), "images", "build"):
        yield


def run_streaming(argv: Sequence[str], log: Log, prefix: str) -> tuple[int, list[str]]:
    """Run argv in a process group of its own, passing each output line to log; return the
    exit code and the last lines. Interrupted (Ctrl-C, SIGTERM, an error in ``log``), the group
    gets SIGTERM, so that it cleans up after itself (debootstrap unmounts what it mounted in its
    target), and SIGKILL after STOP_GRACE_S: nothing of it outlives the call."""
    tail: list[str] = []
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", start_new_session=True)
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            line = line.rstrip()
            log(f"{prefix}{line}")
            tail = [*tail[-19:], line]
        proc.wait()
    except BaseException:
        _stop_group(proc)  # its output is left to the thread that drains it
        raise
    proc.stdout.close()
    return proc.returncode, tail


def _stop_group(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    # read on while it cleans up: a full pipe would hold it, a closed one kill it mid-way
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    stop_process_group(proc.pid, lambda seconds: interrupts.ended_within(proc, seconds))
    proc.wait()


def stop_process_group(group: int, ended: Callable[[float], bool]) -> None:
    """SIGTERM to process group ``group``, so that it cleans up after itself, then SIGKILL to
    what is left of it once ``ended(seconds)`` says it did not end within STOP_GRACE_S (or a
    second Ctrl-C cut the grace short)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    with contextlib.suppress(KeyboardInterrupt):
        ended(STOP_GRACE_S)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)



def pip_download_argv(target: Path, python: str = WHEEL_PYTHON_VERSION) -> list[str]:
    """``pip download`` into ``target`` of binary wheels only, for CPython ``python`` on
    manylinux x86_64: what an image installs offline."""
    argv = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
            "--dest", str(target), "--only-binary=:all:", "--implementation", "cp",
            "--python-version", python, "--abi", "cp" + python.replace(".", ""),
            "--abi", "abi3", "--abi", "none"]
    for tag in WHEEL_PLATFORMS:
        argv += ["--platform", tag]
    return argv


def pip_errors(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if not line.startswith("WARNING:")]
    return "\n".join(lines[-20:])



def follow_build(stream: Iterable[dict[str, Any]], what: str, log: Log) -> str | None:
    """Follow a build's output: its lines to ``log``, an error as ImageBuildError; the id of
    the image it made, if it said."""
    image_id: str | None = None
    for chunk in stream:
        if "error" in chunk:
            detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
            raise ImageBuildError(f"docker build of {what} failed: {str(detail).strip()}")
        text = chunk.get("stream")
        if isinstance(text, str) and text.strip():
            log(f"build: {text.rstrip()}")
        aux = chunk.get("aux")
        if isinstance(aux, dict) and isinstance(aux.get("ID"), str):
            image_id = aux["ID"]
    return image_id


def docker_build(
    client: docker.DockerClient,
    context: Path,
    tag: str,
    base: str,
    labels: dict[str, str],
    log: Log,
) -> str:
    """Build context/Dockerfile, streaming the log; return the image id."""
    try:
        stream = client.api.build(
            path=str(context),
            tag=tag,
            buildargs={"BASE": base},
            network_mode="host",
            labels=labels,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        )
        image_id = follow_build(stream, tag, log)
    except docker.errors.APIError as exc:
        raise ImageBuildError(f"docker build of {tag} failed: {exc}") from exc
    if image_id is None:
        image_id = client.images.get(tag).id
    if image_id is None:
        raise ImageBuildError(f"docker build of {tag} reported no image")
    return image_id

