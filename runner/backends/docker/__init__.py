"""The Docker backend (``backend``) and the images it runs (``images``)."""

from runner.backends.docker.backend import DockerBackend

__all__ = ["DockerBackend"]
