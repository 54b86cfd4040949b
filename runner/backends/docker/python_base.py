"""A base image with another Python, made offline: ``memsla-python:<X.Y>-<hash>``.

memsla's Debian base (``base_image``) has Debian's python3 only. For a scenario that names
another version (``python: "3.13"``) and no ``image:``, the host's own interpreter of that
version (``runner.workload.cache.find_interpreter``: PATH, pyenv, /usr/bin) is copied into an
image on top of that base: its installation prefix, less what no build needs (test suites,
IDLE, tkinter, the host's site-packages, the static library, bytecode of the host), at
``/opt/memsla-python/<X.Y>``, whose ``bin`` (with ``python3``) is first on PATH. A CPython built
for Debian bookworm (pyenv's builds here are) finds the shared libraries it was built against
(OpenSSL 3, libffi 8, SQLite...) in the base, which has them for Debian's own python3.

The image is checked before it gets its tag: its python3 must be that version and import the
modules builds need (ssl, sqlite3, ctypes, zlib, bz2, lzma, venv), as the build's uid, without
network. A host without that version, or whose interpreter does not run there (another libc,
a library missing), is an ImageBuildError saying what to give instead. The tag hashes the
interpreter's version, its prefix and the identity of its files, the Debian base and this
recipe, so it is built once, under the caller's build lock.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# Only `import docker.errors`: ruff takes a bare `docker` for the repo's docker/ folder.
import docker.errors

from runner.backends.docker.imaging import (
    ImageBuildError,
    Log,
    docker_build,
    image_exists,
    sha12,
)
from runner.errors import FixtureError
from runner.workload.cache import cache_dir, find_interpreter

PYTHON_REPOSITORY = "memsla-python"
INSTALL_ROOT = PurePosixPath("/opt/memsla-python")
# Bumped by hand when what is copied, or how, changes.
PYTHON_RECIPE = 2
# What a build's environment needs of the interpreter (checked in the image after building).
REQUIRED_MODULES = ("ssl", "sqlite3", "ctypes", "zlib", "bz2", "lzma", "venv", "hashlib",
                    "decimal", "json", "uuid")
# Below lib/pythonX.Y: folders no build needs.
_LEFT_OUT_DIRS = frozenset({"test", "tests", "idlelib", "tkinter", "turtledemo",
                            "__pycache__", "idle_test"})
# Extension modules of CPython's own test suite and of tkinter.
_LEFT_OUT_MODULES = ("_tkinter", "_test", "_ctypes_test", "xxlimited", "xxsubtype",
                     "_xxtestfuzz", "_xxsubinterpreters_test")

_ABOUT = ("import json, os, sys, sysconfig; print(json.dumps({'prefix': sys.base_prefix, "
          "'version': sys.version, 'minor': '%d.%d' % sys.version_info[:2], "
          "'executable': os.path.realpath(sys.executable), "
          "'ldlibrary': sysconfig.get_config_var('LDLIBRARY') or ''}))")


@dataclass(frozen=True)
class HostPython:
    """An interpreter of this host, as it describes itself."""

    minor: str  # X.Y
    version: str  # sys.version: the release, the build date and the compiler
    prefix: Path  # its installation prefix (sys.base_prefix)
    executable: Path

    @property
    def target(self) -> PurePosixPath:
        """Where the image holds it."""
        return INSTALL_ROOT / self.minor

    def identity(self) -> dict[str, object]:
        """What decides the image's content: the version, the prefix and its key files."""
        files = [self.executable, *sorted(self.prefix.glob(f"lib/libpython{self.minor}*"))]
        stats = [(str(path), path.stat().st_size, path.stat().st_mtime_ns)
                 for path in files if path.is_file()]
        stdlib = self.prefix / "lib" / f"python{self.minor}" / "os.py"
        if stdlib.is_file():
            stats.append((str(stdlib), stdlib.stat().st_size, stdlib.stat().st_mtime_ns))
        return {"version": self.version, "prefix": str(self.prefix), "files": stats}


def what_to_give(minor: str) -> str:
    """The ways a user can run a scenario naming Python ``minor`` on the Docker backend."""
    return (f"give image: an image whose python3 is {minor} (for example python:{minor}-slim "
            f"where a registry is reachable), or a dockerfile: that makes one; or install "
            f"CPython {minor} on this host built for this glibc (e.g. `pyenv install {minor}`), "
            f"which memsla copies into its Debian base")


def host_python(minor: str) -> HostPython:
    """The host's interpreter of Python ``minor`` that can be copied into an image."""
    try:
        interpreter = find_interpreter(minor)
    except FixtureError as exc:
        raise ImageBuildError(
            f"the scenario names Python {minor}, which memsla's Docker base does not have, and "
            f"this host has none to copy into an image ({exc}): {what_to_give(minor)}") from None
    done = subprocess.run([interpreter, "-I", "-c", _ABOUT], capture_output=True, text=True,
                          check=False, timeout=60)
    if done.returncode != 0:
        raise ImageBuildError(f"the host's Python {minor} ({interpreter}) cannot describe "
                              f"itself: {done.stderr.strip()[-500:]}: {what_to_give(minor)}")
    about = json.loads(done.stdout)
    found = HostPython(minor=about["minor"], version=about["version"],
                       prefix=Path(about["prefix"]), executable=Path(about["executable"]))
    if found.prefix == Path("/usr") or not (found.prefix / "lib" / f"python{minor}").is_dir():
        raise ImageBuildError(
            f"the host's Python {minor} ({interpreter}, prefix {found.prefix}) is the "
            "system's own, spread over shared folders, and cannot be copied into an image: "
            + what_to_give(minor))
    return found


def python_base_tag(python: HostPython, debian_base_id: str) -> str:
    """``memsla-python:<X.Y>-<hash>``: the interpreter's identity, the base, the recipe."""
    return f"{PYTHON_REPOSITORY}:{python.minor}-" + sha12({
        "python": python.identity(), "base": debian_base_id, "recipe": PYTHON_RECIPE,
        "left_out": sorted(_LEFT_OUT_DIRS) + list(_LEFT_OUT_MODULES)})


def _kept(python: HostPython, relative: PurePosixPath) -> bool:
    """Whether a path below the prefix goes into the image."""
    parts = relative.parts
    stdlib = f"python{python.minor}"
    if not parts:
        return True
    top = parts[0]
    if top == "bin":
        return len(parts) == 1 or parts[1] == f"python{python.minor}"
    if top == "include":
        return len(parts) == 1 or parts[1].startswith(stdlib)
    if top != "lib":
        return False
    if len(parts) == 1:
        return True
    if parts[1] != stdlib:
        return parts[1].startswith((f"libpython{python.minor}", "libpython3.so"))
    inner = parts[2:]
    if any(part in _LEFT_OUT_DIRS for part in inner):
        return False
    if inner[:1] == ("site-packages",):  # the host's packages (and its .pth files) stay there
        return len(inner) == 1
    name = inner[-1] if inner else ""
    if inner[:1] == ("lib-dynload",) and name.startswith(_LEFT_OUT_MODULES):
        return False
    if inner and inner[0].startswith("config-"):
        return not (name.endswith(".a") or name.endswith(".o"))
    return not name.endswith((".pyc", ".pyo"))


def write_tarball(python: HostPython, target: Path) -> None:
    """The prefix's kept files as a tar owned by root, readable by every uid."""

    def owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mode |= 0o444 | (0o111 if info.isdir() or info.mode & 0o100 else 0)
        return info

    with tarfile.open(target, "w") as tar:
        for parent, dirs, files in os.walk(python.prefix):
            base = PurePosixPath(Path(parent).relative_to(python.prefix).as_posix())
            dirs[:] = sorted(d for d in dirs if _kept(python, base / d))
            for name in [*dirs, *sorted(files)]:
                relative = base / name
                if name in files and not _kept(python, relative):
                    continue
                path = Path(parent) / name
                if name in dirs and path.is_symlink():
                    continue
                info = tar.gettarinfo(str(path), arcname=str(relative))
                if info.isdir():
                    tar.addfile(owned_by_root(info))
                elif info.isfile():
                    with path.open("rb") as handle:
                        tar.addfile(owned_by_root(info), handle)
                elif info.issym():
                    tar.addfile(owned_by_root(info))


def _dockerfile(python: HostPython, debian_base: str) -> str:
    target, minor = python.target, python.minor
    link_prefix = ""
    if PurePosixPath(python.prefix.as_posix()) != target:
        # the interpreter's build-time paths (sysconfig: headers, libraries) name its host
        # prefix: a link there serves a build that compiles an extension (as root)
        link_prefix = (f" && {{ [ -e {python.prefix} ] || {{ mkdir -p {python.prefix.parent} "
                       f"&& ln -s {target} {python.prefix}; }}; }}")
    return "\n".join([
        f"FROM {debian_base}",
        "USER root",
        f"ADD python.tar {target}/",
        # its RUNPATH names the host prefix: the loader's cache finds libpython here
        f"RUN echo {target}/lib > /etc/ld.so.conf.d/memsla-python-{minor}.conf && ldconfig"
        f" && ln -sf python{minor} {target}/bin/python3"
        f" && ln -sf python{minor} {target}/bin/python{link_prefix}"
        f" && ({target}/bin/python{minor} -m compileall -q -j 0 {target}/lib/python{minor}"
        " >/dev/null || true)",
        # first on PATH, not linked from /usr/local/bin: a virtualenv made from a link there
        # would look for the standard library beside the link
        f"ENV PATH={target}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ""])


# the version, the modules, and a virtualenv that finds the standard library
_CHECK = ("import sys, importlib, subprocess, venv; v = '%d.%d' % sys.version_info[:2]; "
          "assert v == {minor!r}, 'python3 is ' + v + ' (' + sys.executable + ')'; "
          "[importlib.import_module(m) for m in {modules!r}]; "
          "venv.create('/tmp/venv', with_pip=False); "
          "subprocess.run(['/tmp/venv/bin/python', '-c', 'import json'], check=True)")


def _check(client: docker.DockerClient, image: str, python: HostPython) -> str | None:
    """Why ``python3`` of the image does not do (None: it does), as the build's uid."""
    script = _CHECK.format(minor=python.minor, modules=REQUIRED_MODULES)
    try:
        client.containers.run(image, ["python3", "-c", script], remove=True,
                              network_mode="none", entrypoint=[], user="1000:1000")
        return None
    except docker.errors.ContainerError as exc:
        said = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        why = said.strip().splitlines()[-1] if said.strip() else f"exit {exc.exit_status}"
    missing = _missing_libraries(client, image, python)
    return why + (f"; the loader finds no {', '.join(missing)}" if missing else "")


def _missing_libraries(client: docker.DockerClient, image: str, python: HostPython
                       ) -> list[str]:
    """The shared libraries ``ldd`` cannot find for the interpreter and its modules."""
    target = python.target
    script = (f"ldd {target}/bin/python{python.minor} "
              f"{target}/lib/python{python.minor}/lib-dynload/*.so 2>&1 | grep 'not found'"
              " || true")
    try:
        out = client.containers.run(image, ["sh", "-c", script], remove=True,
                                    network_mode="none", entrypoint=[])
    except docker.errors.DockerException:
        return []
    return sorted({line.split("=>")[0].strip() for line in out.decode().splitlines()
                   if "not found" in line})


def python_base_image(client: docker.DockerClient, debian_base: str, minor: str,
                      log: Log) -> str:
    """The Debian base with the host's Python ``minor``, built and checked unless its tag
    exists. The caller holds the build lock."""
    python = host_python(minor)
    try:
        base_id = client.images.get(debian_base).id
    except docker.errors.ImageNotFound:
        raise ImageBuildError(f"the base image {debian_base} does not exist") from None
    tag = python_base_tag(python, str(base_id))
    if image_exists(client, tag):
        return tag
    unchecked = f"{tag}-unchecked"
    log(f"building {tag}: Python {minor} from {python.prefix} on {debian_base}")
    with tempfile.TemporaryDirectory(prefix="build-context-", dir=cache_dir()) as scratch:
        context = Path(scratch)
        (context / "Dockerfile").write_text(_dockerfile(python, debian_base))
        write_tarball(python, context / "python.tar")
        docker_build(client, context, unchecked, "", {"org.memsla.python": python.version,
                                                      "org.memsla.python-prefix":
                                                      str(python.prefix)}, log)
    try:
        problem = _check(client, unchecked, python)
        if problem is None:
            client.images.get(unchecked).tag(*tag.split(":", 1))
    finally:
        try:
            client.images.remove(unchecked)
        except docker.errors.DockerException:
            pass
    if problem is not None:
        raise ImageBuildError(
            f"the host's Python {minor} ({python.prefix}) does not run in memsla's Debian "
            f"base ({problem}): it was built for another system; {what_to_give(minor)}")
    log(f"built {tag}")
    return tag
