"""memsla's own scenarios image, ``memsla-scenarios:<hash>`` (also tagged ``:latest``), and the
entry point of ``runner image build``.

The image is ``docker/Dockerfile`` on top of memsla's offline base (``base_image``), with the
wheels of ``docker/requirements.txt`` downloaded on the host and installed with ``pip install
--no-index``. Its tag's hash covers every input, so an existing tag means "already built".
``runner image build`` (or ``python -m runner.backends.docker.images``) builds what is missing
of the base and this image and prints the scenarios tag.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

# Only `import docker.errors`: ruff takes a bare `docker` for the repo's docker/ folder.
import docker.errors

from runner.backends.docker.base_image import (
    DEFAULT_MIRROR,
    BaseParams,
    apt_mirror,
    base_image_tag,
    build_base_image,
)
from runner.backends.docker.imaging import (
    RECIPE_VERSION,
    WHEEL_PLATFORMS,
    WHEEL_PYTHON_VERSION,
    EngineUnavailableError,
    ImageBuildError,
    ImageError,
    Log,
    WheelDownloadError,
    build_lock,
    docker_build,
    docker_client,
    image_exists,
    pip_download_argv,
    pip_errors,
    sha12,
    stderr_log,
)
from runner.workload.cache import cache_dir

SCENARIO_REPOSITORY = "memsla-scenarios"


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
    return f"{SCENARIO_REPOSITORY}:{sha12(payload)}"


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
    argv = [*pip_download_argv(target), "-r", str(requirements)]
    log("downloading wheels: " + " ".join(argv[1:]))
    batch = subprocess.run(argv, capture_output=True, text=True, check=False)
    if batch.returncode == 0:
        return
    log("not every requirement has a binary wheel; falling back one at a time")
    for requirement in _requirement_lines(requirements.read_text()):
        one = [*pip_download_argv(target), "--no-deps", requirement]
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
                f"(pip config list) and the pin exists:\n{pip_errors(built.stderr)}"
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



def _wheels_dir(requirements_text: str, log: Log, requirements: Path) -> Path:
    key = sha12({
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


def build_scenario_image(
    log: Log = stderr_log,
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
    if image_exists(client, tag):
        log(f"{tag} exists")
        _tag_latest(client, tag)
        return tag
    if not image_exists(client, base):
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
        docker_build(client, context, tag, base, labels, log)
    _tag_latest(client, tag)
    log(f"built {tag} in {time.monotonic() - started:.1f} s")
    return tag


def _tag_latest(client: docker.DockerClient, tag: str) -> None:
    image = client.images.get(tag)
    if f"{SCENARIO_REPOSITORY}:latest" not in image.tags:
        image.tag(SCENARIO_REPOSITORY, "latest")


def ensure_images(log: Log = stderr_log, client: docker.DockerClient | None = None) -> str:
    """Build whatever is missing of the base and scenarios images; return the scenarios tag."""
    client = client or docker_client()
    with build_lock():
        tag = scenario_image_tag()
        if image_exists(client, tag):
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


__all__ = ["DEFAULT_MIRROR", "BaseParams", "EngineUnavailableError", "ImageError", "apt_mirror",
           "base_image_tag", "build_base_image", "build_scenario_image", "docker_client",
           "ensure_images", "main", "scenario_image_tag"]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
