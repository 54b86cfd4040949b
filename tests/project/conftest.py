"""Fixtures of the project tests: the Docker engine of tests/backends/docker."""

from tests.backends.docker.conftest import docker_client  # noqa: F401
