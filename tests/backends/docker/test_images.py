"""Image tags, the apt mirror lookup, and (with an engine) building and running the images.

The tag and mirror tests need no engine and carry no docker mark.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker.errors
import pytest

from runner.backends.docker import images
from runner.backends.docker.images import BaseParams, base_image_tag, scenario_image_tag

DOCKERFILE = "ARG BASE=memsla-base:bookworm\nFROM ${BASE}\nUSER build\n"
REQUIREMENTS = "pelican[markdown]==4.12.0\nmarkdown==3.11.3\n"
BASE = "memsla-base:bookworm-000000000000"


def test_scenario_tag_is_stable_for_the_same_inputs() -> None:
    tag = scenario_image_tag(DOCKERFILE, REQUIREMENTS, BASE)
    assert tag == scenario_image_tag(DOCKERFILE, REQUIREMENTS, BASE)
    repository, digest = tag.split(":")
    assert repository == "memsla-scenarios"
    assert len(digest) == 12
    int(digest, 16)


@pytest.mark.parametrize(
    ("dockerfile", "requirements", "base"),
    [
        (DOCKERFILE + "ENV X=1\n", REQUIREMENTS, BASE),
        (DOCKERFILE, REQUIREMENTS.replace("3.11.3", "3.11.2"), BASE),
        (DOCKERFILE, REQUIREMENTS, "memsla-base:bookworm-111111111111"),
    ],
    ids=["dockerfile", "requirements", "base"],
)
def test_scenario_tag_changes_with_each_input(dockerfile: str, requirements: str,
                                              base: str) -> None:
    assert scenario_image_tag(dockerfile, requirements, base) != scenario_image_tag(
        DOCKERFILE, REQUIREMENTS, BASE
    )


def test_scenario_tag_reads_the_repository_files() -> None:
    folder = Path(__file__).resolve().parents[3] / "docker"
    expected = scenario_image_tag(
        (folder / "Dockerfile").read_text(), (folder / "requirements.txt").read_text(),
        base_image_tag(),
    )
    assert scenario_image_tag() == expected


def test_base_tag_is_stable_and_follows_the_debootstrap_parameters() -> None:
    tag = base_image_tag()
    assert tag == base_image_tag(BaseParams())
    assert tag.startswith("memsla-base:bookworm-")
    assert len(tag.rsplit("-", 1)[1]) == 12
    assert base_image_tag(BaseParams(include=("python3",))) != tag
    assert base_image_tag(BaseParams(suite="trixie")).startswith("memsla-base:trixie-")


def test_apt_mirror_reads_deb822_and_one_line_sources(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMSLA_DEBIAN_MIRROR", raising=False)
    deb822 = tmp_path / "debian.sources"
    deb822.write_text(
        "Types: deb\nURIs: http://security.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n\n"
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian/\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n"
    )
    one_line = tmp_path / "sources.list"
    one_line.write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://other.example/debian bookworm main\n"
    )
    assert images.apt_mirror([deb822, one_line]) == "http://mirror.example/debian"
    assert images.apt_mirror([tmp_path / "missing", one_line]) == "http://other.example/debian"
    assert images.apt_mirror([one_line], suite="trixie") == images.DEFAULT_MIRROR
    monkeypatch.setenv("MEMSLA_DEBIAN_MIRROR", "http://override.example/debian")
    assert images.apt_mirror([deb822]) == "http://override.example/debian"


def test_no_engine_raises_a_runtime_error_that_says_what_to_do(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    with pytest.raises(RuntimeError, match=r"engine-up\.sh"):
        images.docker_client()


@pytest.mark.docker
def test_ensure_images_is_idempotent(docker_client: docker.DockerClient,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    tag = images.ensure_images(lambda _message: None, docker_client)
    assert tag == scenario_image_tag()
    assert docker_client.images.get(tag).id == docker_client.images.get(
        "memsla-scenarios:latest").id

    def no_build(*_args: Any, **_kwargs: Any) -> str:
        raise AssertionError("the second ensure_images call built something")

    monkeypatch.setattr(images, "build_base_image", no_build)
    monkeypatch.setattr(images, "build_scenario_image", no_build)
    messages: list[str] = []
    assert images.ensure_images(messages.append, docker_client) == tag
    assert messages == []


@pytest.mark.docker
def test_scenario_image_imports_pelican_without_network(
        docker_client: docker.DockerClient) -> None:
    tag = images.ensure_images(lambda _message: None, docker_client)
    try:
        output = docker_client.containers.run(
            tag,
            ["python3", "-c", "import os, pelican, markdown; print(os.getuid())"],
            remove=True,
            network_mode="none",
            mem_limit="256m",
            memswap_limit="256m",
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            read_only=True,
        )
    except docker.errors.ContainerError as exc:
        pytest.fail(f"import failed in {tag}: {exc.stderr!r}")
    assert output.decode().strip() == "1000"
