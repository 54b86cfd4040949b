"""memsla's offline base image, ``memsla-base:bookworm-<hash>``: a ``debootstrap
--variant=minbase`` Debian rootfs with ``python3`` and ``python3-venv``, turned into an image with
``docker import`` (no registry is needed). The rootfs tarball is cached under the cache folder
(``runner.workload.cache.cache_dir``). The tag's hash covers the debootstrap parameters, so an
existing tag means "already built"."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

# Only `import docker.errors`: ruff takes a bare `docker` for the repo's docker/ folder.
import docker.errors
import psutil

from runner.backends.docker.imaging import (
    RECIPE_VERSION,
    DebootstrapError,
    ImageBuildError,
    Log,
    docker_client,
    image_exists,
    run_streaming,
    sha12,
    stderr_log,
    stop_process_group,
)
from runner.inbuild import reaper
from runner.workload.cache import cache_dir

BASE_REPOSITORY = "memsla-base"
# The Dockerfile's default for its BASE build argument: also tagged so a hand-run
# `docker build docker/` finds a base.
BASE_ALIAS_TAG = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
SCRATCH = "rootfs-"  # debootstrap's folder: memsla-<runner pid>-rootfs-<random>


@dataclass(frozen=True)
class BaseParams:
    """Everything that decides the content of the base image (the mirror does not: see tag)."""

    suite: str = "bookworm"
    variant: str = "minbase"
    include: tuple[str, ...] = ("python3", "python3-venv", "ca-certificates")
    arch: str = "amd64"
    recipe: int = RECIPE_VERSION



def base_image_tag(params: BaseParams | None = None) -> str:
    """``memsla-base:<suite>-<hash>``, the hash over the debootstrap parameters.

    The mirror is left out on purpose: it is how packages arrive, not which ones, so hosts with
    different mirrors share a tag (and CI caches).
    """
    params = params or BaseParams()
    return f"{BASE_REPOSITORY}:{params.suite}-{sha12(asdict(params))}"


def apt_mirror(sources: Sequence[Path] | None = None, suite: str = "bookworm") -> str:
    """The Debian mirror this host's apt uses for ``suite``, else ``DEFAULT_MIRROR``.

    ``$MEMSLA_DEBIAN_MIRROR`` overrides. Reads one-line ``.list`` and deb822 ``.sources`` files.
    """
    override = os.environ.get("MEMSLA_DEBIAN_MIRROR")
    if override:
        return override
    if sources is None:
        apt = Path("/etc/apt")
        sources = [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*"))]
    for path in sources:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        entries = _deb822_entries(text) if path.suffix == ".sources" else _one_line_entries(text)
        for uri, suites in entries:
            if suite in suites and not uri.rstrip("/").endswith("-security"):
                return uri.rstrip("/")
    return DEFAULT_MIRROR


def _one_line_entries(text: str) -> Iterator[tuple[str, list[str]]]:
    for raw in text.splitlines():
        line = re.sub(r"\[[^\]]*\]", " ", raw.split("#", 1)[0]).split()
        if len(line) >= 3 and line[0] == "deb":
            yield line[1], [line[2]]


def _deb822_entries(text: str) -> Iterator[tuple[str, list[str]]]:
    for paragraph in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in paragraph.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        for uri in fields.get("uris", "").split():
            yield uri, fields.get("suites", "").split()



def _rootfs_tarball(tag: str) -> Path:
    return cache_dir() / "base" / f"rootfs-{tag.split(':', 1)[1]}.tar"


def _debootstrap_rootfs(params: BaseParams, tarball: Path, log: Log) -> None:
    debootstrap = shutil.which("debootstrap") or (
        "/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists() else None
    )
    if debootstrap is None:
        raise DebootstrapError(
            "debootstrap is not installed: apt-get install debootstrap (docker/engine-up.sh "
            "does it), or copy a cached rootfs tarball to " + str(tarball)
        )
    if os.geteuid() != 0:
        raise DebootstrapError(
            "debootstrap needs root: run `runner image build` once as root, or copy a "
            "cached rootfs tarball to " + str(tarball)
        )
    mirror = apt_mirror(suite=params.suite)
    tarball.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_runners_scratch(tarball.parent, log)
    scratch = Path(tempfile.mkdtemp(prefix=f"{reaper.work_prefix(os.getpid())}{SCRATCH}",
                                    dir=tarball.parent))
    try:
        rootfs = scratch / "rootfs"
        argv = [
            debootstrap,
            f"--variant={params.variant}",
            f"--arch={params.arch}",
            f"--include={','.join(params.include)}",
            params.suite,
            str(rootfs),
            mirror,
        ]
        log(f"running {' '.join(argv)}")
        code, tail = run_streaming(argv, log, "debootstrap: ")
        if code != 0:
            raise DebootstrapError(
                f"debootstrap exited {code} (mirror {mirror}; set MEMSLA_DEBIAN_MIRROR to use "
                "another):\n" + "\n".join(tail)
            )
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / leftover).glob("*"):
                if entry.is_file():
                    entry.unlink()
        partial = scratch / "rootfs.tar"
        tar = subprocess.run(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."],
            capture_output=True,
            text=True,
            check=False,
        )
        if tar.returncode != 0:
            raise DebootstrapError(f"tar of the rootfs failed: {tar.stderr.strip()}")
        partial.replace(tarball)
    finally:
        _remove_scratch(scratch, log)


def remove_dead_runners_scratch(folder: Path, log: Log) -> None:
    """What a runner killed while debootstrap ran for it left in ``folder`` (builds hold the
    image build lock, so no live runner works there): its debootstrap, orphaned and still
    running, is stopped as an interrupted one is; then its scratch folder goes."""
    for scratch in folder.glob(f"{reaper.WORK_PREFIX}*-{SCRATCH}*"):
        owner = reaper.owner_of(scratch.name)
        if owner is None or owner == os.getpid() or psutil.pid_exists(owner):
            continue
        _stop_working_in(scratch)
        log(f"removing {scratch}, left by runner {owner}, which is gone")
        _remove_scratch(scratch, log)


def _stop_working_in(folder: Path) -> None:
    working = _working_in(folder)
    groups = set()
    for process in working:
        with contextlib.suppress(ProcessLookupError):
            groups.add(os.getpgid(process.pid))
    for group in groups - {os.getpgrp()}:
        stop_process_group(group, lambda seconds: not psutil.wait_procs(working, seconds)[1])


def _working_in(folder: Path) -> list[psutil.Process]:
    """The processes chrooted in ``folder`` or naming it on their command line."""
    top = os.path.realpath(folder)
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            root = os.readlink(f"/proc/{process.pid}/root")
        except OSError:
            root = "/"
        named = any(top in argument for argument in process.info["cmdline"] or [])
        if process.pid != os.getpid() and (named or root == top or root.startswith(top + "/")):
            found.append(process)
    return found


def _remove_scratch(scratch: Path, log: Log) -> None:
    """Remove debootstrap's folder, never walking into what is mounted in it: what a killed
    debootstrap left mounted (/proc, /sys, the host's device nodes) is unmounted first, and
    a folder that still holds a mount is left, and said."""
    for mount in sorted(mounts_below(scratch), reverse=True):  # the deepest first
        subprocess.run(["umount", "--lazy", mount], capture_output=True, check=False)
    left = mounts_below(scratch)
    if left:
        log(f"left {scratch}: still mounted there: {', '.join(left)}")
        return
    shutil.rmtree(scratch, ignore_errors=True)


def mounts_below(folder: Path, mountinfo: str = "/proc/self/mountinfo") -> list[str]:
    """The mount points at or below ``folder``, from the kernel's mount table."""
    top = os.path.realpath(folder)
    found: list[str] = []
    for line in Path(mountinfo).read_text().splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        # the table escapes space, tab, newline and backslash as octal
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
        if point == top or point.startswith(top + "/"):
            found.append(point)
    return found


def _docker_import(client: docker.DockerClient, tarball: Path, tag: str) -> None:
    repository, name = tag.split(":", 1)
    try:
        result = client.api.import_image_from_file(
            str(tarball),
            repository=repository,
            tag=name,
            changes=["ENV LANG=C.UTF-8", 'CMD ["/bin/bash"]'],
        )
    except docker.errors.APIError as exc:
        raise ImageBuildError(f"docker import of {tarball} failed: {exc}") from exc
    for line in str(result).splitlines():
        with contextlib.suppress(ValueError):
            message = json.loads(line)
            if isinstance(message, dict) and "error" in message:
                raise ImageBuildError(f"docker import of {tarball} failed: {message['error']}")
    if not image_exists(client, tag):
        raise ImageBuildError(f"docker import of {tarball} did not create {tag}: {result}")


def build_base_image(
    log: Log = stderr_log,
    client: docker.DockerClient | None = None,
    params: BaseParams | None = None,
) -> str:
    """Make the base image unless its tag exists; return the tag."""
    params = params or BaseParams()
    tag = base_image_tag(params)
    client = client or docker_client()
    if image_exists(client, tag):
        log(f"{tag} exists")
        return tag
    if platform.machine() != "x86_64":
        raise ImageBuildError(f"memsla's images are amd64 only; this host is {platform.machine()}")
    started = time.monotonic()
    tarball = _rootfs_tarball(tag)
    if tarball.is_file():
        log(f"using the cached rootfs {tarball}")
    else:
        _debootstrap_rootfs(params, tarball, log)
        log(f"rootfs cached at {tarball} ({tarball.stat().st_size / 2**20:.0f} MiB)")
    _docker_import(client, tarball, tag)
    if params == BaseParams():  # a variant (the builder's) must not take the alias
        client.images.get(tag).tag(BASE_REPOSITORY, BASE_ALIAS_TAG)
    log(f"imported {tag} in {time.monotonic() - started:.1f} s")
    return tag

