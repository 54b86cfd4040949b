"""Build memsla's Docker images with no network access, reusing images built from the same inputs.

Two images:

* the base, ``memsla-base:bookworm-<hash>``: a ``debootstrap --variant=minbase`` Debian rootfs
  with ``python3`` and ``python3-venv``, turned into an image with ``docker import`` (no registry
  is needed). The rootfs tarball is cached under ``$MEMSLA_CACHE_DIR`` (default
  ``~/.cache/memsla``).
* the scenarios image, ``memsla-scenarios:<hash>`` (also tagged ``:latest``): ``docker/Dockerfile``
  on top of the base, with the wheels of ``docker/requirements.txt`` downloaded on the host and
  installed with ``pip install --no-index``.

Each tag's hash covers every input of its image, so an existing tag means "already built".
``runner image build`` (or ``python -m runner.backends.docker.images``) builds what is missing
and prints the scenarios tag.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Only `import docker.errors`: ruff takes a bare `docker` for the repo's docker/ folder.
import docker.errors

from runner.errors import HostError

Log = Callable[[str], None]

BASE_REPOSITORY = "memsla-base"
SCENARIO_REPOSITORY = "memsla-scenarios"
# The Dockerfile's default for its BASE build argument: also tagged so a hand-run
# `docker build docker/` finds a base.
BASE_ALIAS_TAG = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
HASH_LENGTH = 12
# Builds and imports stream for minutes without a byte; the SDK's default is 60 s.
DOCKER_TIMEOUT_S = 1800
# Bumped by hand when the way an image is made changes in a way its inputs do not show.
RECIPE_VERSION = 1

WHEEL_PYTHON_VERSION = "3.11"
WHEEL_ABI = "cp311"
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


@dataclass(frozen=True)
class BaseParams:
    """Everything that decides the content of the base image (the mirror does not: see tag)."""

    suite: str = "bookworm"
    variant: str = "minbase"
    include: tuple[str, ...] = ("python3", "python3-venv", "ca-certificates")
    arch: str = "amd64"
    recipe: int = RECIPE_VERSION


def _stderr_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _sha12(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]


def docker_dir() -> Path:
    """The folder holding Dockerfile and requirements.txt (``$MEMSLA_DOCKER_DIR`` overrides)."""
    override = os.environ.get("MEMSLA_DOCKER_DIR")
    candidates = [Path(override)] if override else [
        Path(__file__).resolve().parents[3] / "docker",  # a checkout (editable install)
        Path.cwd() / "docker",  # an installed memsla run from the checkout's root
    ]
    folder = next((c for c in candidates if (c / "Dockerfile").is_file()), candidates[0])
    if not (folder / "Dockerfile").is_file() or not (folder / "requirements.txt").is_file():
        raise ImageBuildError(
            f"no Dockerfile and requirements.txt in {folder}: run from a memsla checkout or set "
            "MEMSLA_DOCKER_DIR to its docker/ folder"
        )
    return folder


def cache_dir() -> Path:
    """``$MEMSLA_CACHE_DIR``, default ``~/.cache/memsla``."""
    override = os.environ.get("MEMSLA_CACHE_DIR")
    return Path(override) if override else Path.home() / ".cache" / "memsla"


def base_image_tag(params: BaseParams | None = None) -> str:
    """``memsla-base:<suite>-<hash>``, the hash over the debootstrap parameters.

    The mirror is left out on purpose: it is how packages arrive, not which ones, so hosts with
    different mirrors share a tag (and CI caches).
    """
    params = params or BaseParams()
    return f"{BASE_REPOSITORY}:{params.suite}-{_sha12(asdict(params))}"


def scenario_image_tag(
    dockerfile_text: str | None = None,
    requirements_text: str | None = None,
    base_tag: str | None = None,
) -> str:
    """``memsla-scenarios:<hash>`` over the Dockerfile, requirements.txt and the base tag.

    Arguments left out are read from :func:`docker_dir` / :func:`base_image_tag`; passing all
    three needs no files and no engine.
    """
    if dockerfile_text is None or requirements_text is None:
        folder = docker_dir()
        if dockerfile_text is None:
            dockerfile_text = (folder / "Dockerfile").read_text()
        if requirements_text is None:
            requirements_text = (folder / "requirements.txt").read_text()
    payload = {
        "dockerfile": dockerfile_text,
        "requirements": requirements_text,
        "base": base_tag if base_tag is not None else base_image_tag(),
        "wheel_platforms": list(WHEEL_PLATFORMS),
        "wheel_python": WHEEL_PYTHON_VERSION,
        "recipe": RECIPE_VERSION,
    }
    return f"{SCENARIO_REPOSITORY}:{_sha12(payload)}"


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


def _image_exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Serialise builds between memsla processes sharing one cache."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle = open(directory / "images.lock", "w")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise ImageBuildError(
            f"cannot use the cache folder {directory} ({exc}): set MEMSLA_CACHE_DIR to a "
            "writable folder"
        ) from exc
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_streaming(argv: Sequence[str], log: Log, prefix: str) -> tuple[int, list[str]]:
    """Run argv, passing each output line to log; return the exit code and the last lines."""
    tail: list[str] = []
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            log(f"{prefix}{line}")
            tail = [*tail[-19:], line]
    return proc.returncode, tail


# --- base image ----------------------------------------------------------------------------


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
    with tempfile.TemporaryDirectory(prefix="rootfs-", dir=tarball.parent) as scratch:
        rootfs = Path(scratch) / "rootfs"
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
        code, tail = _run_streaming(argv, log, "debootstrap: ")
        if code != 0:
            raise DebootstrapError(
                f"debootstrap exited {code} (mirror {mirror}; set MEMSLA_DEBIAN_MIRROR to use "
                "another):\n" + "\n".join(tail)
            )
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / leftover).glob("*"):
                if entry.is_file():
                    entry.unlink()
        partial = Path(scratch) / "rootfs.tar"
        tar = subprocess.run(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."],
            capture_output=True,
            text=True,
            check=False,
        )
        if tar.returncode != 0:
            raise DebootstrapError(f"tar of the rootfs failed: {tar.stderr.strip()}")
        partial.replace(tarball)


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
    if not _image_exists(client, tag):
        raise ImageBuildError(f"docker import of {tarball} did not create {tag}: {result}")


def build_base_image(
    log: Log = _stderr_log,
    client: docker.DockerClient | None = None,
    params: BaseParams | None = None,
) -> str:
    """Make the base image unless its tag exists; return the tag."""
    params = params or BaseParams()
    tag = base_image_tag(params)
    client = client or docker_client()
    if _image_exists(client, tag):
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
    client.images.get(tag).tag(BASE_REPOSITORY, BASE_ALIAS_TAG)
    log(f"imported {tag} in {time.monotonic() - started:.1f} s")
    return tag


# --- scenarios image -----------------------------------------------------------------------


def _pip_download_argv(target: Path, *, platform_only: bool) -> list[str]:
    argv = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
            "--dest", str(target)]
    if platform_only:
        argv += ["--only-binary=:all:", "--implementation", "cp",
                 "--python-version", WHEEL_PYTHON_VERSION, "--abi", WHEEL_ABI, "--abi", "abi3",
                 "--abi", "none"]
        for tag in WHEEL_PLATFORMS:
            argv += ["--platform", tag]
    return argv


def _requirement_lines(requirements_text: str) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in requirements_text.splitlines())
    return [line for line in lines if line]


def _download_wheels(requirements: Path, target: Path, log: Log) -> None:
    """Download wheels for the image's Python into target.

    First all at once, binary wheels only. If some package has no wheel for the image's
    platform, fall back one requirement at a time (the file pins the full set, so --no-deps is
    safe): a platform wheel if there is one, else ``pip wheel`` builds it on the host, which is
    only right for pure-Python packages or when the host runs the image's Python minor.
    """
    argv = [*_pip_download_argv(target, platform_only=True), "-r", str(requirements)]
    log("downloading wheels: " + " ".join(argv[1:]))
    batch = subprocess.run(argv, capture_output=True, text=True, check=False)
    if batch.returncode == 0:
        return
    log("not every requirement has a binary wheel; falling back one at a time")
    for requirement in _requirement_lines(requirements.read_text()):
        one = [*_pip_download_argv(target, platform_only=True), "--no-deps", requirement]
        if subprocess.run(one, capture_output=True, text=True, check=False).returncode == 0:
            continue
        log(f"building a wheel on the host for {requirement}")
        built = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "--no-deps",
             "--wheel-dir", str(target), requirement],
            capture_output=True, text=True, check=False,
        )
        if built.returncode != 0:
            raise WheelDownloadError(
                f"pip could not get a wheel for {requirement!r}; check the index is reachable "
                f"(pip config list) and the pin exists:\n{_pip_errors(built.stderr)}"
            )
    host_minor = f"{sys.version_info.major}.{sys.version_info.minor}"
    for wheel in target.glob("*.whl"):
        tags = wheel.name.removesuffix(".whl").split("-")[-3:]
        if tags[1:] != ["none", "any"] and host_minor != WHEEL_PYTHON_VERSION:
            raise WheelDownloadError(
                f"{wheel.name} was built for this host's Python {host_minor}, but the image has "
                f"{WHEEL_PYTHON_VERSION}: run `runner image build` with Python "
                f"{WHEEL_PYTHON_VERSION}"
            )


def _pip_errors(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if not line.startswith("WARNING:")]
    return "\n".join(lines[-20:])


def _wheels_dir(requirements_text: str, log: Log, requirements: Path) -> Path:
    key = _sha12({
        "requirements": requirements_text,
        "platforms": list(WHEEL_PLATFORMS),
        "python": WHEEL_PYTHON_VERSION,
    })
    folder = cache_dir() / "wheels" / key
    if (folder / ".complete").is_file():
        log(f"using the cached wheels {folder}")
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{key}-", dir=folder.parent) as scratch:
        partial = Path(scratch) / "wheels"
        partial.mkdir()
        _download_wheels(requirements, partial, log)
        (partial / ".complete").write_text("")
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
    log(f"wheels cached at {folder} ({len(list(folder.glob('*.whl')))} files)")
    return folder


def _follow_build(stream: Iterable[dict[str, Any]], what: str, log: Log) -> str | None:
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


def _docker_build(
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
        image_id = _follow_build(stream, tag, log)
    except docker.errors.APIError as exc:
        raise ImageBuildError(f"docker build of {tag} failed: {exc}") from exc
    if image_id is None:
        image_id = client.images.get(tag).id
    if image_id is None:
        raise ImageBuildError(f"docker build of {tag} reported no image")
    return image_id


def build_scenario_image(
    log: Log = _stderr_log,
    client: docker.DockerClient | None = None,
    base_tag: str | None = None,
) -> str:
    """Build the scenarios image unless its tag exists; return the tag.

    The base image must exist (:func:`ensure_images` makes sure).
    """
    folder = docker_dir()
    dockerfile_text = (folder / "Dockerfile").read_text()
    requirements_text = (folder / "requirements.txt").read_text()
    base = base_tag or base_image_tag()
    tag = scenario_image_tag(dockerfile_text, requirements_text, base)
    client = client or docker_client()
    if _image_exists(client, tag):
        log(f"{tag} exists")
        _tag_latest(client, tag)
        return tag
    if not _image_exists(client, base):
        raise ImageBuildError(f"the base image {base} is missing: build it first (ensure_images)")
    started = time.monotonic()
    wheels = _wheels_dir(requirements_text, log, folder / "requirements.txt")
    with tempfile.TemporaryDirectory(prefix="build-context-", dir=cache_dir()) as scratch:
        context = Path(scratch)
        (context / "Dockerfile").write_text(dockerfile_text)
        (context / "requirements.txt").write_text(requirements_text)
        (context / "wheels").mkdir()
        for wheel in wheels.glob("*.whl"):
            shutil.copy2(wheel, context / "wheels" / wheel.name)
        labels = {"org.memsla.base": base, "org.memsla.tag": tag}
        _docker_build(client, context, tag, base, labels, log)
    _tag_latest(client, tag)
    log(f"built {tag} in {time.monotonic() - started:.1f} s")
    return tag


def _tag_latest(client: docker.DockerClient, tag: str) -> None:
    image = client.images.get(tag)
    if f"{SCENARIO_REPOSITORY}:latest" not in image.tags:
        image.tag(SCENARIO_REPOSITORY, "latest")


def ensure_images(log: Log = _stderr_log, client: docker.DockerClient | None = None) -> str:
    """Build whatever is missing of the base and scenarios images; return the scenarios tag."""
    client = client or docker_client()
    with _locked(cache_dir()):
        tag = scenario_image_tag()
        if _image_exists(client, tag):
            _tag_latest(client, tag)
            return tag
        base = build_base_image(log, client)
        return build_scenario_image(log, client, base)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m runner.backends.docker.images``: ensure the images, print the scenarios tag."""
    if argv:
        print("usage: python -m runner.backends.docker.images", file=sys.stderr)
        return 2
    try:
        print(ensure_images())
    except ImageError as exc:
        print(f"memsla: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


# --- a scenario's own image: its requirements and project on a base ------------------------

ENV_REPOSITORY = "memsla-env"
PROJECT_REPOSITORY = "memsla-project"
USER_REPOSITORY = "memsla-user"
ENV_DIR = "/opt/memsla-env"  # the scenario's virtualenv inside its image

# What every image a scenario runs in must provide (checked when the backend starts with it).
IMAGE_CONTRACT = (
    "an image memsla runs builds in must provide: linux on this engine's architecture; "
    "python3 (3.8 or newer) on PATH; a filesystem readable by uid 1000 (the build runs as "
    "1000:1000 when the runner is root, else as the runner's uid) that needs no writes outside "
    "/tmp, the output folder and the fixture copy (the root filesystem is read-only: compile "
    ".pyc files at build time); and, for requirements: or project:, python3's venv module")


def image_python(client: docker.DockerClient, image: str) -> str:
    """The ``X.Y`` of the image's python3 (one short container, no network)."""
    try:
        out = client.containers.run(image, ["python3", "-c",
                                            "import sys; print('%d.%d' % sys.version_info[:2])"],
                                    remove=True, network_mode="none", entrypoint=[])
    except docker.errors.ImageNotFound:
        raise ImageBuildError(f"the image {image} does not exist") from None
    except docker.errors.DockerException as exc:
        raise ImageBuildError(f"python3 does not run in the image {image} ({exc}); "
                              f"{IMAGE_CONTRACT}") from None
    return out.decode().strip()


def _download_requirements(requirements: Sequence[str], python: str, log: Log) -> Path:
    """Wheels of ``requirements`` (and their dependencies) for CPython ``python`` on
    manylinux x86_64, downloaded on the host and cached by their text."""
    key = _sha12({"requirements": sorted(requirements), "platforms": list(WHEEL_PLATFORMS),
                  "python": python})
    folder = cache_dir() / "wheels" / key
    if (folder / ".complete").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    abi = "cp" + python.replace(".", "")
    with tempfile.TemporaryDirectory(prefix=f"{key}-", dir=folder.parent) as scratch:
        partial = Path(scratch) / "wheels"
        partial.mkdir()
        argv = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
                "--dest", str(partial), "--only-binary=:all:", "--implementation", "cp",
                "--python-version", python, "--abi", abi, "--abi", "abi3", "--abi", "none"]
        for tag in WHEEL_PLATFORMS:
            argv += ["--platform", tag]
        log(f"downloading wheels for Python {python}: {' '.join(requirements)}")
        done = subprocess.run([*argv, *requirements], capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            raise WheelDownloadError(
                f"pip could not download binary wheels of {list(requirements)} for CPython "
                f"{python} on manylinux x86_64 (a requirement with no wheel cannot be installed "
                f"offline):\n{_pip_errors(done.stderr)}")
        (partial / ".complete").write_text("")
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
    return folder


def _build_from(client: docker.DockerClient, tag: str, dockerfile: str,
                files: dict[str, Path], log: Log, labels: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory(prefix="build-context-", dir=cache_dir()) as scratch:
        context = Path(scratch)
        (context / "Dockerfile").write_text(dockerfile)
        for name, source in files.items():
            if source.is_dir():
                shutil.copytree(source, context / name)
            else:
                shutil.copy2(source, context / name)
        _docker_build(client, context, tag, "", labels, log)  # its FROM names the base


def scenario_environment_image(base: str | None, requirements: Sequence[str],
                               project_wheel: Path | None, project_hash: str | None,
                               log: Log = _stderr_log,
                               client: docker.DockerClient | None = None,
                               python: str | None = None) -> str:
    """The image a scenario's builds run in: ``base`` (None: memsla's offline Debian base),
    then a virtualenv with the requirements (``memsla-env:<hash>``, keyed by the base's image
    id and the requirements), then the project's wheel on top (``memsla-project:<hash>``, keyed
    by that and the project's content hash). Each is built only when its tag is missing, so
    an edit of the project rebuilds only the last, small layer."""
    client = client or docker_client()
    with _locked(cache_dir()):
        if base is None:
            base = build_base_image(log, client)
        try:
            base_id = client.images.get(base).id
        except docker.errors.ImageNotFound:
            raise ImageBuildError(f"the base image {base} does not exist: build or pull it "
                                  "first") from None
        found = image_python(client, base)
        if python is not None and found != python:
            raise ImageBuildError(
                f"the scenario names Python {python} but the image {base} has {found}: set "
                f"image: to one with Python {python} (e.g. python:{python}-slim where a "
                "registry is reachable), or a dockerfile: that makes one")
        python = found
        if not requirements and project_wheel is None:
            return base
        env_tag = f"{ENV_REPOSITORY}:" + _sha12({"base": base_id, "python": python,
                                                "requirements": sorted(requirements),
                                                "recipe": RECIPE_VERSION})
        if not _image_exists(client, env_tag):
            wheels = _download_requirements(requirements, python, log) if requirements else None
            install = (f" && {ENV_DIR}/bin/pip install --no-index --find-links /tmp/memsla/wheels "
                       + " ".join(_quote(r) for r in requirements)) if requirements else ""
            dockerfile = "\n".join([
                f"FROM {base}",
                "USER root",
                *(["COPY wheels/ /tmp/memsla/wheels/"] if wheels else []),
                f"RUN python3 -m venv {ENV_DIR}{install}"
                f" && ({ENV_DIR}/bin/python -m compileall -q {ENV_DIR} >/dev/null || true)"
                " && rm -rf /tmp/memsla",
                f"ENV PATH={ENV_DIR}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                "/sbin:/bin VIRTUAL_ENV=" + ENV_DIR + " PYTHONDONTWRITEBYTECODE=1",
                ""])
            log(f"building {env_tag}: the requirements on {base}")
            try:
                _build_from(client, env_tag, dockerfile, {"wheels": wheels} if wheels else {},
                            log, {"org.memsla.base": base})
            except ImageBuildError as exc:
                raise ImageBuildError(f"{exc}\n({IMAGE_CONTRACT})") from None
        if project_wheel is None:
            return env_tag
        tag = f"{PROJECT_REPOSITORY}:" + _sha12({"env": env_tag, "project": project_hash,
                                                "wheel": project_wheel.name})
        if not _image_exists(client, tag):
            dockerfile = "\n".join([
                f"FROM {env_tag}",
                "USER root",
                f"COPY {project_wheel.name} /tmp/memsla/",
                f"RUN {ENV_DIR}/bin/pip install --no-deps --no-index --disable-pip-version-check "
                f"/tmp/memsla/{project_wheel.name}"
                f" && ({ENV_DIR}/bin/python -m compileall -q {ENV_DIR} >/dev/null || true)"
                " && rm -rf /tmp/memsla",
                ""])
            log(f"building {tag}: the project ({project_hash}) on {env_tag}")
            _build_from(client, tag, dockerfile, {project_wheel.name: project_wheel}, log,
                        {"org.memsla.project": str(project_hash)})
        return tag


def user_image(dockerfile: Path, log: Log = _stderr_log,
               client: docker.DockerClient | None = None) -> str:
    """Build the user's Dockerfile (its folder is the context), tagged ``memsla-user:<hash>``
    over the Dockerfile and the context's files; reused while they are unchanged."""
    from runner.workload.project import scan  # the same file list and content hash

    client = client or docker_client()
    if not dockerfile.is_file():
        raise ImageBuildError(f"dockerfile {dockerfile} is not a file")
    context = dockerfile.parent
    tag = f"{USER_REPOSITORY}:" + _sha12({"dockerfile": dockerfile.read_text(),
                                         "context": scan(context).content_hash,
                                         "recipe": RECIPE_VERSION})
    if _image_exists(client, tag):
        return tag
    log(f"building {tag} from {dockerfile}")
    try:
        image_id = _follow_build(
            client.api.build(path=str(context), dockerfile=dockerfile.name, tag=tag,
                             network_mode="host", rm=True, forcerm=True, decode=True,
                             labels={"org.memsla.dockerfile": str(dockerfile)}),
            str(dockerfile), log)
    except docker.errors.APIError as exc:
        raise ImageBuildError(f"docker build of {dockerfile} failed: {exc}") from exc
    if image_id is None and not _image_exists(client, tag):
        raise ImageBuildError(f"docker build of {dockerfile} reported no image")
    return tag


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"
