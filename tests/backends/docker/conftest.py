"""Fixtures for tests that need a Docker engine."""

from __future__ import annotations

import os
from collections.abc import Iterator

# Only `import docker.errors`: ruff takes a bare `docker` for the repo's docker/ folder.
import docker.errors
import pytest

from runner.backends.docker import images


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """A client of a live engine; skips without one, fails when MEMSLA_REQUIRE_DOCKER=1."""
    try:
        client = images.docker_client()
    except images.EngineUnavailableError as exc:
        if os.environ.get("MEMSLA_REQUIRE_DOCKER") == "1":
            pytest.fail(f"MEMSLA_REQUIRE_DOCKER=1 but {exc}", pytrace=False)
        pytest.skip(str(exc))
    yield client
    client.close()
