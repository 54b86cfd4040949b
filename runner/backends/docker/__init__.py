"""The Docker backend (``backend``) and the images it runs: the pieces every image build uses
(``imaging``), memsla's offline Debian base (``base_image``), memsla's own scenarios image and
``runner image build``'s entry point (``images``), and a scenario's own image: its Dockerfile,
requirements and project (``scenario_images``)."""

from runner.backends.docker.backend import DockerBackend, DockerRunOptions

__all__ = ["DockerBackend", "DockerRunOptions"]
