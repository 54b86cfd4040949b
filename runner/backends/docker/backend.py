"""The Docker backend: each build in its own container, with the harness as PID 1, and the build
in a cgroup of its own where the engine lets it.

Container layout (all under ``/memsla``): ``probe`` (the staged probe, read-only, first on
PYTHONPATH), ``out`` (where the harness and the probe write), ``fixture`` (read-only),
``output`` (a writable bind, or a tmpfs) and ``scratch``. The root filesystem is read-only
unless the scenario says otherwise, every capability is dropped, no new privileges, no network
by default, memory and memory+swap limited to the same value.

The harness (``runner.inbuild.harness``) starts the build with its OOM score at 1000, samples the
build's cgroup from inside and, when the build ends, writes what it read to
``out/harness.json``. The backend hands that report on as raw readings, with the engine's
``State.OOMKilled`` and the exit status beside it (``runner.measure.assemble`` combines them).

The harness is not the build: its idle peak (8-10 MiB, ``harness_baseline``, measured once per
image) stays out of the build's figures. Where the runner may make cgroups on the engine's host
(root, cgroup v1, the cgroupfs driver, a local engine) each run gets a fence
``memsla-<pid>-d<n>/`` below the runner's own memory cgroup, as on the local backend: the fence
holds the limit plus room for the harness (``HARNESS_ROOM`` above the idle harness) and is the
container's ``cgroup_parent``; beside the container's own cgroup, ``build/`` holds exactly the
declared limit. Its limit files stay root's; only its cgroup.procs is handed to the build's uid,
and it is mounted at ``/memsla/cgroup``, so the build writes itself in before it execs (the
harness's ``--cgroup``) and cannot raise its limit or leave (the container's own cgroupfs is
read-only). The runner reads the build's peak and OOM kills from the host after the container
ended. Elsewhere (cgroup v2, the systemd driver, a non-root runner) the build shares the
container's cgroup with the harness, and the idle harness's peak is subtracted from the cgroup
figures (``Readings.harness_share``); the run says so.

The build's stdout and stderr are read through the runner's attachment (``capture``), bounded,
and the engine keeps no log of them.

The harness's stdin is the runner's attachment too (stdin once): if the runner dies, the engine
closes it and the harness kills the build and exits; the runner's watchdog
(``runner.inbuild.reaper``, told by ``runner.backends.registry``) removes the container, and
failing that the next runner does (``remove_leftovers``).

When the runner is root the build runs as uid:gid 1000:1000 (the image's ``build`` user) and the
writable folders are handed to that uid for the run; otherwise it runs as the runner's own uid,
which owns them already.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

# Only `import docker.errors`: ruff takes a bare `docker` for the repo's docker/ folder.
import docker.errors
import docker.types
import psutil
import requests.exceptions

from runner import interrupts
from runner.backends import capture, harnessed
from runner.backends.fence import CGROUP_PREFIX, fenced
from runner.backends.interface import (
    Backend,
    BackendError,
    BackendOptions,
    CaseEnvironment,
    RunRequest,
)
from runner.inbuild import cgroups, reaper
from runner.inbuild.waiting import shell_status
from runner.measure import staging
from runner.measure.readings import Readings
from runner.slafile.model import BUILTIN_SETTINGS, DockerOptions
from runner.units import format_bytes

ROOT = PurePosixPath("/memsla")
PROBE_DIR = ROOT / "probe"
OUT_DIR = ROOT / "out"
FIXTURE_DIR = ROOT / "fixture"
FIXTURE_COPY_DIR = ROOT / "fixture_copy"  # a writable copy, for a build that asks for one
OUTPUT_DIR = ROOT / "output"
SCRATCH_DIR = ROOT / "scratch"
CGROUP_DIR = ROOT / "cgroup"  # the build's own cgroup, where the runner could make one
# The image's unprivileged user; a root runner hands the writable folders to it for a run.
BUILD_UID = 1000
BUILD_GID = 1000

LABEL = "memsla"
OWNER_LABEL = "memsla.owner"
HOST_LABEL = "memsla.host"
RUN_LABEL = "memsla.run"

CONNECT_TIMEOUT_S = 10  # an engine that does not answer within this is not there
API_TIMEOUT_S = 120
STOP_GRACE_S = 5  # SIGTERM lets the harness report; SIGKILL after this
WAIT_CHUNK_S = 60  # the engine's wait call is re-issued, so long builds never hit a read timeout
MADE_ANYWAY_WAIT_S = 0.5  # a second look for a container whose create call was cut short
OUTPUT_GRACE_S = 5  # for the attachment to deliver the last of the output once the container ended
# The fence above a container holds the build's limit plus the idle harness plus this: the harness
# grows a little as it samples (its series), and it must never be what the fence's limit hits.
HARNESS_ROOM = 64 * 1024 * 1024
NO_REPORT = ("the harness left no report (killed, or could not start): exit status and OOM kill "
             "come from the engine")

_ARCH_ALIASES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}

T = TypeVar("T")


def _arch(name: str) -> str:
    return _ARCH_ALIASES.get(name.lower(), name.lower())


def _engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def _cause(exc: BaseException) -> str:
    """The innermost cause of a connection failure, in one short phrase."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


@dataclass(frozen=True)
class DockerRunOptions(BackendOptions):
    """The Docker part of a run request: the image the build runs in and the container
    settings the scenario may loosen (``docker:`` in the SLA file)."""

    image: str
    container: DockerOptions = field(
        default_factory=lambda: DockerOptions.model_validate({}))


class DockerBackend(Backend):
    name = "docker"
    where = "a Docker container"
    uses_host_environment = False
    confines_cpus = True
    harness_kept_out = True

    def __init__(self, image_required: str | None = None) -> None:
        self.image_required = image_required
        self.harness_baseline: int | None = None
        self.engine_version: str = "unknown"
        self._baselines: dict[str, int] = {}
        self._counter = itertools.count(1)  # next() is atomic: runs may start in threads
        self._fence_parent: cgroups.Cgroup | None = None
        # why the idle harness is subtracted instead of kept out (None: it is kept out)
        self.harness_shared: str | None = None
        self._image_env: dict[str, dict[str, str]] = {}
        try:
            self.client = docker.DockerClient.from_env(timeout=CONNECT_TIMEOUT_S)
            self.client.ping()
            self.client.api.timeout = API_TIMEOUT_S
        except docker.errors.DockerException as exc:
            raise BackendError(
                f"no Docker engine answers at {_engine_address()} ({_cause(exc)}): start it "
                "(as root: docker/engine-up.sh) or point DOCKER_HOST at a running engine"
            ) from None
        try:
            self._inspect_engine()
            if image_required is not None:
                self._prepare_image(image_required)
                self.harness_baseline = self._baselines[image_required]
        except BaseException:
            self.client.close()
            raise

    # -- engine and image checks ---------------------------------------------------------------
    def _inspect_engine(self) -> None:
        info = self._api(self.client.info)
        self.engine_version = str(self._api(self.client.version).get("Version", "unknown"))
        if info.get("OSType", "linux") != "linux":
            raise BackendError(f"the Docker engine runs {info.get('OSType')} containers: "
                               "switch it to Linux containers")
        if info.get("MemoryLimit") is False:
            raise BackendError("the Docker engine cannot enforce memory limits (no memory "
                               "cgroup): enable the memory controller on the engine's host")
        self.cgroup_version = int(info.get("CgroupVersion") or 1)
        self._cgroup_files = cgroups.files_for(self.cgroup_version)  # the containers' version
        self._engine_arch = _arch(str(info.get("Architecture", "")))
        self._swap_limit = info.get("SwapLimit") is not False
        self._fence_parent, self.harness_shared = fence_parent(
            self._cgroup_files, str(info.get("CgroupDriver") or "cgroupfs"))

    def _prepare_image(self, image: str) -> None:
        """Check the image exists and fits this engine, and measure the idle harness in it."""
        if image in self._baselines:
            return
        try:
            attrs = self.client.images.get(image).attrs
        except docker.errors.ImageNotFound:
            raise _image_missing(image) from None
        except docker.errors.DockerException as exc:
            raise BackendError(f"the Docker engine failed to inspect {image}: "
                               f"{_cause(exc)}") from None
        image_arch = _arch(str(attrs.get("Architecture", "")))
        if attrs.get("Os", "linux") != "linux" or (
                image_arch and self._engine_arch and image_arch != self._engine_arch):
            raise BackendError(
                f"the Docker image {image} is built for {attrs.get('Os')}/{image_arch} but the "
                f"engine runs linux/{self._engine_arch}: rebuild it here with `runner image "
                "build`")
        env = attrs.get("Config", {}).get("Env") or []
        self._image_env[image] = dict(item.split("=", 1) for item in env if "=" in item)
        # The first run after an image is built or the staged probe changes also pays for
        # reading the interpreter into the page cache (24 MiB against 9-10 MiB warm, seen here);
        # later runs find it cached, so the smaller of two runs is what each of them carries.
        self._baselines[image] = min(self._measure_baseline(image),
                                     self._measure_baseline(image))
        if self.harness_baseline is None:  # the check's figure: its first image's
            self.harness_baseline = self._baselines[image]

    def _measure_baseline(self, image: str) -> int:
        """The cgroup peak of the harness running ``true``, the build sharing its cgroup: the
        room a container gets above the build's limit, and what is subtracted where the build
        cannot have a cgroup of its own."""
        peak, failure = harnessed.run_idle(
            lambda request: self._run(request, image, whole=True), Path("/tmp"))
        if peak is None:
            from runner.backends.docker.imaging import IMAGE_CONTRACT

            raise BackendError(f"the memsla harness does not run in the Docker image {image} "
                               f"({failure}); {IMAGE_CONTRACT}")
        return peak

    def _api(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except docker.errors.DockerException as exc:
            raise BackendError(f"the Docker engine failed: {_cause(exc)}") from None

    # -- the container as the build sees it ----------------------------------------------------
    def placeholder_paths(self, fixture: Path | None, output: Path, scratch: Path,
                          fixture_copy: Path | None = None) -> dict[str, str]:
        return {"fixture": str(FIXTURE_DIR) if fixture else "", "output": str(OUTPUT_DIR),
                "scratch": str(SCRATCH_DIR),
                "fixture_copy": str(FIXTURE_COPY_DIR) if fixture_copy else ""}

    def case_options(self, case: CaseEnvironment) -> DockerRunOptions:
        """The case's image and container settings. A scenario with requirements, a project,
        a python version or a Dockerfile gets an image of its own, built (or reused) here."""
        scenario, image = case.plan.scenario, case.plan.settings.image
        if (case.requirements or case.project_wheel is not None or case.python
                or scenario.dockerfile is not None):
            image = self._scenario_image(case)
        # checked and its idle harness measured now, before any build: an image that cannot
        # run builds is this case's error
        self._prepare_image(image)
        return DockerRunOptions(image=image, container=scenario.docker)

    def _scenario_image(self, case: CaseEnvironment) -> str:
        """The scenario's requirements and project on its ``image:`` (by default memsla's
        offline base), or on its ``dockerfile:`` built first
        (``runner.backends.docker.scenario_images``)."""
        from runner.backends.docker import scenario_images
        from runner.backends.docker.imaging import ImageError

        settings = case.plan.settings
        try:
            base = settings.image if settings.image != BUILTIN_SETTINGS.image else None
            dockerfile = case.plan.dockerfile
            if dockerfile is not None:
                base = scenario_images.user_image(
                    (case.spec_dir / dockerfile).resolve(), case.log, self.client)
            return scenario_images.scenario_environment_image(
                base, case.requirements, case.project_wheel, case.project_hash,
                log=case.log, client=self.client, python=case.python)
        except ImageError as exc:
            raise BackendError(str(exc)) from None

    def _mapping(self, request: RunRequest) -> list[tuple[Path, PurePosixPath]]:
        """Host folder -> container folder, for the paths a build may name either way."""
        pairs = [(request.output, OUTPUT_DIR), (request.scratch, SCRATCH_DIR)]
        if request.fixture is not None:
            pairs.append((request.fixture, FIXTURE_DIR))
        if request.fixture_copy is not None:
            pairs.append((request.fixture_copy, FIXTURE_COPY_DIR))
        return pairs

    def _workdir(self, request: RunRequest) -> str:
        """The build's working directory inside the container.

        A host path under a mounted folder is translated; a container path inside a mount, or
        a tmpfs itself, is kept; anything else (the SLA file's folder, by default) falls back to
        the fixture, or /tmp. Below a tmpfs nothing exists yet: /tmp/x is a host path.
        """
        wanted = PurePosixPath(request.workdir)
        for host, container in self._mapping(request):
            if wanted.is_relative_to(host):
                return str(container / wanted.relative_to(host))
        inside = [PROBE_DIR, OUT_DIR, OUTPUT_DIR, SCRATCH_DIR]
        if request.fixture is not None:
            inside.append(FIXTURE_DIR)
        if request.fixture_copy is not None:
            inside.append(FIXTURE_COPY_DIR)
        tmpfs = {PurePosixPath(path) for path in _container(request).tmpfs}
        if wanted in tmpfs or any(wanted.is_relative_to(mount) for mount in inside):
            return str(wanted)
        if request.fixture_copy is not None:
            return str(FIXTURE_COPY_DIR)
        return str(FIXTURE_DIR) if request.fixture is not None else "/tmp"

    def _environment(self, request: RunRequest, image: str) -> dict[str, str]:
        """request.env plus the probe's variables; the image's ENV stays, the host's never
        enters."""
        files = self._cgroup_files
        pythonpath = request.env.get("PYTHONPATH") or self._image_env.get(image, {}).get(
            "PYTHONPATH")
        env = dict(request.env)
        env.update(staging.environment(
            str(PROBE_DIR), str(OUT_DIR), trace=request.trace, t0=time.time(),
            # the peak file the build may reset from inside the container, if any (v1: none,
            # its cgroupfs is read-only; v2: the probe tries a per-fd reset and quietly does
            # without when the mount refuses)
            cgroup_peak_file=files.CONTAINER_PEAK_FILE, reset_mode=files.PROBE_RESET_MODE,
            existing_pythonpath=pythonpath))
        return env

    def _create_kwargs(self, request: RunRequest, image: str, run_id: str,
                       build: cgroups.Cgroup | None = None) -> dict[str, Any]:
        options = _container(request)
        mounts = [
            docker.types.Mount(str(PROBE_DIR), str(request.probe_stage), type="bind",
                               read_only=True),
            docker.types.Mount(str(OUT_DIR), str(request.probe_out), type="bind"),
            docker.types.Mount(str(SCRATCH_DIR), str(request.scratch), type="bind"),
        ]
        if request.fixture is not None:
            mounts.append(docker.types.Mount(str(FIXTURE_DIR), str(request.fixture),
                                             type="bind", read_only=True))
        if request.fixture_copy is not None:
            mounts.append(docker.types.Mount(str(FIXTURE_COPY_DIR), str(request.fixture_copy),
                                             type="bind"))
        tmpfs = dict(options.tmpfs)
        if options.output == "bind":
            mounts.append(docker.types.Mount(str(OUTPUT_DIR), str(request.output), type="bind"))
        else:
            tmpfs[str(OUTPUT_DIR)] = "mode=1777"
        if build is not None:  # its limit files stay root's: see the module's docstring
            mounts.append(docker.types.Mount(str(CGROUP_DIR), build.path, type="bind"))
        command = harnessed.harness_command(
            "python3", str(OUT_DIR), request.sample_interval, self._workdir(request),
            request.argv, lifeline=True, build_cgroup=str(CGROUP_DIR) if build else None)
        kwargs: dict[str, Any] = dict(
            image=image, command=command, name=f"memsla-{os.getpid()}-{run_id[:12]}",
            labels={LABEL: "1", OWNER_LABEL: str(os.getpid()), HOST_LABEL: socket.gethostname(),
                    RUN_LABEL: run_id},
            environment=self._environment(request, image), user=_container_user(),
            # -m puts the working directory first on sys.path: keep the build's files off it
            working_dir=str(PROBE_DIR), network_mode=options.network,
            security_opt=["no-new-privileges"], cap_drop=["ALL"],
            pids_limit=options.pids_limit, read_only=options.read_only, tmpfs=tmpfs,
            mounts=mounts, tty=False,
            # the harness's lifeline: stdin once (which the SDK sets only when not detached),
            # closed when the runner's attachment ends
            stdin_open=True, detach=False,
            # the output is read through the attachment: the engine keeps no copy on disk
            log_config=docker.types.LogConfig(type="none"))
        if build is not None:
            kwargs["cgroup_parent"] = _hierarchy_path(os.path.dirname(build.path), build)
        if request.limit is not None:
            # memswap == mem: without it the container may use the limit again as swap.
            # The build cannot lift this limit: a container's cgroupfs is mounted read-only
            # (no CAP_SYS_ADMIN, no privileges), so there is no change to prevent or to catch
            # here; the harness's limit watch and the limit it reads after the build, compared
            # with this one in runner.measure.assemble, only confirm it held.
            # With a cgroup of its own the build is held to exactly the limit there; the
            # container (the harness, and the build below the fence) gets the harness's room.
            limit = request.limit + (self._room(image) if build is not None else 0)
            kwargs.update(mem_limit=limit, memswap_limit=limit)
        if request.cpus:  # runner check --jobs: CPUs of its own
            kwargs["cpuset_cpus"] = ",".join(str(cpu) for cpu in request.cpus)
        return kwargs

    # -- running -------------------------------------------------------------------------------
    def run(self, request: RunRequest) -> Readings:
        options = request.options
        image = options.image if isinstance(options, DockerRunOptions) else self.image_required
        if image is None:
            raise BackendError("the docker backend needs an image: set `image:` in the SLA "
                               "file (the default is memsla-scenarios:latest)")
        self._prepare_image(image)
        if self.harness_baseline is None:
            self.harness_baseline = self._baselines[image]
        return self._run(request, image)

    def _room(self, image: str) -> int:
        """What the fence above a container holds beyond the build's limit: the harness."""
        return self._baselines.get(image, 0) + HARNESS_ROOM

    @contextmanager
    def _build_cgroup(self, parent: cgroups.Cgroup | None, request: RunRequest,
                      image: str) -> Iterator[cgroups.Cgroup | None]:
        """The build's own cgroup below a fence that will be the container's parent (None
        without ``parent``); removed, with what the engine made for it, on the way out."""
        if parent is None:
            yield None
            return
        name = f"{CGROUP_PREFIX}{os.getpid()}-d{next(self._counter)}"
        try:
            with fenced(parent, name, request.limit, self._room(image)) as (_, build):
                uid, gid = _container_ids()
                os.chown(build.enter_file(), uid, gid)  # the build may enter, nothing more
                yield build
        finally:
            reaper.remove_engine_made(cgroups.Cgroup(os.path.join(parent.path, name),
                                                     parent.version), timeout=STOP_GRACE_S)

    def _run(self, request: RunRequest, image: str, *, whole: bool = False) -> Readings:
        """The build in a cgroup of its own where the runner can make one; ``whole``: in the
        container's cgroup with the harness, nothing subtracted (the idle harness itself)."""
        parent = None if whole else self._fence_parent
        with self._build_cgroup(parent, request, image) as build:
            readings = self._run_in(request, image, build)
            if build is not None:
                _read_build(readings, build)
            elif not whole and self._baselines.get(image):
                readings.harness_share = self._baselines[image]
                readings.notes.append(
                    f"the idle harness's {format_bytes(self._baselines[image])} is subtracted "
                    f"from the cgroup's figures: {self.harness_shared}")
            return readings

    def _run_in(self, request: RunRequest, image: str,
                build: cgroups.Cgroup | None) -> Readings:
        run_id = uuid.uuid4().hex
        writable = [request.probe_out, request.scratch]
        if _container(request).output == "bind":
            writable.append(request.output)
        handed = _hand_over(writable)
        if handed:
            # the output folder and the copy are writable, all of it: a step scenario's later
            # step finds in them what its earlier steps (handed back after their run) left
            if _container(request).output == "bind":
                _hand_over_tree(request.output)
            if request.fixture_copy is not None:
                _hand_over_tree(request.fixture_copy)
                writable.append(request.fixture_copy)
        container = None
        try:
            kwargs = self._create_kwargs(request, image, run_id, build)
            try:
                container = self.client.containers.create(**kwargs)
            except docker.errors.ImageNotFound:
                raise _image_missing(image) from None
            except docker.errors.DockerException as exc:
                raise BackendError(f"the Docker engine refused the container: "
                                   f"{_cause(exc)}") from None
            return self._start_and_wait(container, request)
        except KeyboardInterrupt:
            if container is None:  # interrupted while the engine was making it
                container = self._made_anyway(run_id)
            raise
        finally:
            with interrupts.held():
                if container is not None:
                    try:
                        container.remove(force=True)
                    except docker.errors.NotFound:
                        pass
                    except docker.errors.DockerException:
                        pass  # the watchdog, or the next runner, takes it
                if handed:
                    _hand_back(writable)

    def _made_anyway(self, run_id: str) -> Any:
        """The container of run ``run_id`` where a create call was cut short: the engine may
        have made it after the runner stopped listening (seen with Ctrl-C at 0.5 s), so look
        twice before leaving it to the watchdog."""
        with interrupts.held():
            for look in range(2):
                if look:
                    time.sleep(MADE_ANYWAY_WAIT_S)
                try:
                    found = self.client.containers.list(
                        all=True, filters={"label": f"{RUN_LABEL}={run_id}"},
                        ignore_removed=True)
                except docker.errors.DockerException:
                    return None
                if found:
                    return found[0]
        return None

    def _start_and_wait(self, container: Any, request: RunRequest) -> Readings:
        try:
            attached = self.client.api.attach_socket(
                container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        except docker.errors.DockerException as exc:
            raise BackendError(f"the Docker engine could not attach to the container: "
                               f"{_cause(exc)}") from None
        _no_timeout(attached)  # a build may print nothing for longer than any timeout
        output = capture.OutputCapture().read_frames(_frames(attached))
        try:
            return self._wait_attached(container, request, output)
        finally:
            _close_socket(attached)  # the lifeline ends here

    def _wait_attached(self, container: Any, request: RunRequest,
                       output: capture.OutputCapture) -> Readings:
        try:
            container.start()
        except docker.errors.DockerException as exc:
            raise BackendError(f"the Docker engine could not start the container: "
                               f"{_cause(exc)}") from None
        started = time.monotonic()
        waiter = _Waiter(container)
        timed_out = False
        try:
            if not interrupts.wait(waiter.done.wait, request.timeout):
                timed_out = True
                _stop(container)
                waiter.done.wait(STOP_GRACE_S + 10)
        except BaseException:
            waiter.stop.set()
            raise
        ended = waiter.finished_at or time.monotonic()
        try:
            container.reload()
            state: dict[str, Any] = container.attrs.get("State", {})
        except docker.errors.DockerException:
            state = {}
        output.wait(OUTPUT_GRACE_S)
        status = waiter.status_code if waiter.status_code is not None else state.get("ExitCode")
        readings = self._combine(request, harnessed.read_report(request.probe_out), state,
                                 status, ended - started, timed_out, output.stderr_tail)
        readings.notes += output.save(request.scratch)
        return readings

    def _combine(self, request: RunRequest, report: dict[str, Any] | None,
                 state: dict[str, Any], status: int | None, host_duration: float,
                 timed_out: bool, stderr_tail: str) -> Readings:
        """The harness's report plus what the engine saw, raw (assemble combines them)."""
        engine_oom = bool(state.get("OOMKilled"))
        # SwapLimit false: no swap accounting, memswap_limit cannot hold the build to RAM
        swap_allowed = None if self._swap_limit or request.limit is None else True
        if report is None:
            notes = [NO_REPORT + "; no peak was measured"]
            if engine_oom and self.harness_baseline is not None:
                notes.append(f"the harness alone needs about {self.harness_baseline >> 20} MiB: "
                             "a limit near that leaves it no room to report")
            return harnessed.without_report(
                shell_status(status), host_duration=host_duration, timed_out=timed_out,
                engine_oom_killed=engine_oom, limit_set=request.limit,
                swap_allowed=swap_allowed, stderr_tail=stderr_tail, notes=notes)
        return harnessed.from_report(
            report, sample_interval=request.sample_interval, host_duration=host_duration,
            timed_out=timed_out, stderr_tail=stderr_tail, limit_set=request.limit,
            engine_oom_killed=engine_oom, swap_allowed=swap_allowed)

    # -- housekeeping --------------------------------------------------------------------------
    def remove_leftovers(self) -> list[str]:
        """Remove memsla containers of this host whose runner process is gone."""
        try:
            containers = self.client.containers.list(all=True, filters={"label": LABEL},
                                                     ignore_removed=True)
        except docker.errors.DockerException:
            return []
        removed = []
        hostname = socket.gethostname()
        for container in containers:
            labels = container.labels or {}
            if labels.get(HOST_LABEL, hostname) != hostname:
                continue  # another machine's runner shares this engine
            owner = labels.get(OWNER_LABEL, "")
            if owner.isdigit() and psutil.pid_exists(int(owner)):
                continue
            try:
                container.remove(force=True)
                removed.append(str(container.name))
            except docker.errors.DockerException:
                pass
        return removed

    def interrupt(self) -> None:
        try:
            mine = self.client.containers.list(
                filters={"label": f"{OWNER_LABEL}={os.getpid()}"}, ignore_removed=True)
        except docker.errors.DockerException:
            return
        for container in mine:
            try:
                container.kill()
            except docker.errors.DockerException:
                pass

    def close(self) -> None:
        self.client.close()


class _Waiter(threading.Thread):
    """Waits for the container in a thread, so the main thread stays interruptible."""

    def __init__(self, container: Any) -> None:
        super().__init__(name="memsla-docker-wait", daemon=True)
        self.container = container
        self.done = threading.Event()
        self.stop = threading.Event()
        self.status_code: int | None = None
        self.finished_at: float | None = None
        self.start()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                result = self.container.wait(timeout=WAIT_CHUNK_S)
            except (requests.exceptions.RequestException, docker.errors.DockerException):
                if self.stop.is_set() or not self._running():
                    break
                continue
            self.finished_at = time.monotonic()
            self.status_code = int(result.get("StatusCode", -1))
            break
        self.done.set()

    def _running(self) -> bool:
        try:
            self.container.reload()
            return bool(self.container.attrs.get("State", {}).get("Running"))
        except docker.errors.DockerException:
            return False


def _close_socket(attached: Any) -> None:
    """Close an attach socket (the SDK hands a SocketIO wrapping it, or the socket itself)."""
    for part in (getattr(attached, "_sock", None), attached):
        try:
            if part is not None:
                part.close()
        except OSError:
            pass


def _stop(container: Any) -> None:
    """SIGTERM (the harness kills the build and still reports), then SIGKILL."""
    try:
        container.stop(timeout=STOP_GRACE_S)
    except docker.errors.DockerException:
        pass


def _no_timeout(attached: Any) -> None:
    for part in (attached, getattr(attached, "_sock", None)):
        if part is not None and hasattr(part, "settimeout"):
            part.settimeout(None)


def _frames(attached: Any) -> Iterator[tuple[str, bytes]]:
    """The container's output as (stream name, bytes), from its multiplexed attachment."""
    from docker.utils.socket import STDERR, STDOUT, frames_iter

    names = {STDOUT: "stdout", STDERR: "stderr"}
    for stream, data in frames_iter(attached, tty=False):  # type: ignore[no-untyped-call]
        if data:
            yield names.get(stream, ""), data


def fence_parent(files: Any, driver: str) -> tuple[cgroups.Cgroup | None, str | None]:
    """The runner's own memory cgroup, where fences above containers can be made (else None),
    and why not (else None)."""
    from runner.backends.local import find_parent

    refused = files.container_parent_refused(driver)
    if refused is None and not _engine_address().startswith("unix://"):
        refused = "the engine is not on this host, where the runner makes cgroups"
    if refused is None and os.geteuid() != 0:
        refused = "the runner is not root, so it cannot make the build a cgroup of its own"
    if refused is not None:
        return None, refused
    try:
        parent = find_parent()
    except BackendError as exc:
        return None, str(exc)
    if parent.version != files.VERSION or parent.hierarchy_path() is None:
        return None, f"the runner's cgroup {parent.path} is not in the engine's hierarchy"
    return parent, None


def _hierarchy_path(path: str, near: cgroups.Cgroup) -> str:
    """A cgroup directory's path as an engine's ``cgroup_parent`` names it."""
    found = cgroups.Cgroup(path, near.version).hierarchy_path()
    assert found is not None, path  # below the runner's own cgroup, which is in the hierarchy
    return found


def _read_build(readings: Readings, build: cgroups.Cgroup) -> None:
    """The build's own cgroup read from the host once the container ended: its figures are
    the runner's own readings, not the report of a harness the build could write to."""
    readings.kernel_peak = build.peak()
    readings.oom_kill_counter = build.oom_kills()
    if readings.kernel_peak is not None:  # a harness killed early: the peak is still known
        readings.notes = [NO_REPORT + "; the peak is the build's cgroup's, read by the runner"
                          if note == NO_REPORT + "; no peak was measured" else note
                          for note in readings.notes]
    readings.limit_read = build.limit()
    readings.swap_allowed = build.swap_allowed()


def _container_ids() -> tuple[int, int]:
    if os.geteuid() == 0:
        return BUILD_UID, BUILD_GID
    return os.getuid(), os.getgid()


def _container_user() -> str:
    uid, gid = _container_ids()
    return f"{uid}:{gid}"


def _hand_over(folders: list[Path]) -> bool:
    """A root runner gives the (fresh) writable folders to the build's uid for the run."""
    if os.geteuid() != 0:
        return False
    for folder in folders:
        os.chown(folder, BUILD_UID, BUILD_GID)
    return True


def _hand_over_tree(folder: Path) -> None:
    for path in _walk(folder):
        os.lchown(path, BUILD_UID, BUILD_GID)


def _hand_back(folders: list[Path]) -> None:
    uid, gid = os.getuid(), os.getgid()
    for folder in folders:
        for path in _walk(folder):
            try:
                os.lchown(path, uid, gid)
            except OSError:
                pass


def _walk(folder: Path) -> Iterator[str]:
    yield str(folder)
    for parent, dirs, files in os.walk(folder):
        for name in dirs + files:
            yield os.path.join(parent, name)


def _container(request: RunRequest) -> DockerOptions:
    """The container settings of a request: the scenario's, or the safe defaults."""
    options = request.options
    return (options.container if isinstance(options, DockerRunOptions)
            else DockerOptions.model_validate({}))


def _image_missing(image: str) -> BackendError:
    """What to do for a missing image: memsla's own is built by `runner image build`; another
    is the user's to build or pull."""
    if image == BUILTIN_SETTINGS.image:
        return BackendError(f"the Docker image {image} does not exist: run `runner image build` "
                            "(it builds this image, offline)")
    return BackendError(
        f"the Docker image {image} does not exist on this engine: build it (docker build -t "
        f"{image} ...), or pull it (docker pull {image}) where a registry is reachable, or give "
        "the scenario a dockerfile: that makes it (memsla builds that itself)")


__all__ = ["DockerBackend", "DockerRunOptions", "fence_parent"]
