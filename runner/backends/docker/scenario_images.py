"""A scenario's own image: its ``dockerfile:`` built first (``memsla-user:<hash>``), then a
virtualenv of its requirements on its base (``memsla-env:<hash>``, from wheels only: those a
requirement has no wheel of are built by ``wheels``), then its project's wheel on top
(``memsla-project:<hash>``). Each tag hashes its inputs and is built only when missing."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

# Only `import docker.errors`: ruff takes a bare `docker` for the repo's docker/ folder.
import docker.errors

from runner.backends.docker.base_image import build_base_image
from runner.backends.docker.imaging import (
    IMAGE_CONTRACT,
    RECIPE_VERSION,
    WHEEL_PYTHON_VERSION,
    ImageBuildError,
    Log,
    build_lock,
    docker_build,
    docker_client,
    follow_build,
    image_exists,
    sha12,
    stderr_log,
)
from runner.workload.cache import cache_dir

ENV_REPOSITORY = "memsla-env"
PROJECT_REPOSITORY = "memsla-project"
USER_REPOSITORY = "memsla-user"
ENV_DIR = "/opt/memsla-env"  # the scenario's virtualenv inside its image


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


def _requirement_wheels(client: docker.DockerClient, base: str, memsla_base: bool,
                        requirements: Sequence[str], python: str, log: Log) -> list[Path]:
    """The wheels of ``requirements`` for the image's Python (``runner.backends.docker.
    wheels``): downloaded on the host, source distributions built in a builder (memsla's
    bases: their variant with a compiler, the same interpreter on it; another base: itself)."""
    from runner.backends.docker import wheels

    def builder() -> str:
        if not memsla_base:
            return base
        debian_builder = build_base_image(log, client, wheels.BUILDER_PARAMS)
        if python == WHEEL_PYTHON_VERSION:  # Debian's own python3
            return debian_builder
        from runner.backends.docker.python_base import python_base_image

        return python_base_image(client, debian_builder, python, log)

    return wheels.build(client, wheels.download(requirements, python, log), builder, python,
                        log)


def _build_from(client: docker.DockerClient, tag: str, dockerfile: str,
                files: dict[str, Path], log: Log, labels: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory(prefix="build-context-", dir=cache_dir()) as scratch:
        context = Path(scratch)
        (context / "Dockerfile").write_text(dockerfile)
        for name, source in files.items():
            (context / name).parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, context / name)
            else:
                shutil.copy2(source, context / name)
        docker_build(client, context, tag, "", labels, log)  # its FROM names the base


def scenario_environment_image(base: str | None, requirements: Sequence[str],
                               project_wheel: Path | None, project_hash: str | None,
                               log: Log = stderr_log,
                               client: docker.DockerClient | None = None,
                               python: str | None = None) -> str:
    """The image a scenario's builds run in: ``base`` (None: memsla's offline Debian base;
    for a ``python`` version it lacks, that base with the host's interpreter of the version,
    ``runner.backends.docker.python_base``),
    then a virtualenv with the requirements (``memsla-env:<hash>``, keyed by the base's image
    id and the requirements), then the project's wheel on top (``memsla-project:<hash>``, keyed
    by that and the project's content hash). Each is built only when its tag is missing, so
    an edit of the project rebuilds only the last, small layer."""
    client = client or docker_client()
    with build_lock():
        memsla_base = base is None
        if base is None:
            base = build_base_image(log, client)
            if python is not None and python != WHEEL_PYTHON_VERSION:  # not Debian's python3
                from runner.backends.docker.python_base import python_base_image

                base = python_base_image(client, base, python, log)
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
        env_tag = f"{ENV_REPOSITORY}:" + sha12({"base": base_id, "python": python,
                                                "requirements": sorted(requirements),
                                                "recipe": RECIPE_VERSION})
        if not image_exists(client, env_tag):
            wheels = _requirement_wheels(client, base, memsla_base, requirements, python,
                                         log) if requirements else []
            install = (f" && {ENV_DIR}/bin/pip install --no-index --only-binary=:all: "
                       "--find-links /tmp/memsla/wheels "
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
                _build_from(client, env_tag, dockerfile,
                            {f"wheels/{wheel.name}": wheel for wheel in wheels},
                            log, {"org.memsla.base": base})
            except ImageBuildError as exc:
                raise ImageBuildError(f"{exc}\n({IMAGE_CONTRACT})") from None
        if project_wheel is None:
            return env_tag
        tag = f"{PROJECT_REPOSITORY}:" + sha12({"env": env_tag, "project": project_hash,
                                                "wheel": project_wheel.name})
        if not image_exists(client, tag):
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


def user_image(dockerfile: Path, log: Log = stderr_log,
               client: docker.DockerClient | None = None) -> str:
    """Build the user's Dockerfile (its folder is the context), tagged ``memsla-user:<hash>``
    over the Dockerfile and the context's files; reused while they are unchanged."""
    from runner.workload.project import scan  # the same file list and content hash

    client = client or docker_client()
    if not dockerfile.is_file():
        raise ImageBuildError(f"dockerfile {dockerfile} is not a file")
    context = dockerfile.parent
    tag = f"{USER_REPOSITORY}:" + sha12({"dockerfile": dockerfile.read_text(),
                                         "context": scan(context).content_hash,
                                         "recipe": RECIPE_VERSION})
    if image_exists(client, tag):
        return tag
    log(f"building {tag} from {dockerfile}")
    try:
        image_id = follow_build(
            client.api.build(path=str(context), dockerfile=dockerfile.name, tag=tag,
                             network_mode="host", rm=True, forcerm=True, decode=True,
                             labels={"org.memsla.dockerfile": str(dockerfile)}),
            str(dockerfile), log)
    except docker.errors.APIError as exc:
        raise ImageBuildError(f"docker build of {dockerfile} failed: {exc}") from exc
    if image_id is None and not image_exists(client, tag):
        raise ImageBuildError(f"docker build of {dockerfile} reported no image")
    return tag


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"
