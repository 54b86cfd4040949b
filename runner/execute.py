"""Runs a plan: fixture and environment first (outside the measurement), then the warm-up, timed,
traced and leak runs of each case through a backend. It only produces runs: judging them is the
judging stage's job (``runner.judging.stage``).

Work folders live beside the cache (``work_root``), on the fixture's filesystem, not in $TMPDIR:
where that is a tmpfs, the build's output would be charged as shared memory that cannot be
reclaimed. They are named ``memsla-<runner pid>-*``: this runner's watchdog
(``runner.inbuild.reaper``) removes them if the runner dies, and failing that the next runner
does (``remove_leftover_work_folders``). Folders kept with --keep-outputs carry no pid.

A Python callable (``runner.api.measure_callable``) has its runs made the same way by
``run_callable``, forked by ``runner.backends.forked`` instead of a backend.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from runner.backends.interface import Backend, BackendOptions, CaseEnvironment, RunRequest
from runner.errors import MemslaError, UsageError
from runner.inbuild import reaper
from runner.measure import staging
from runner.measure.assemble import assemble, assemble_run, assemble_steps, disk_usage
from runner.measure.background import BackgroundReads
from runner.measure.memray_records import unwritten_captures
from runner.plan import CasePlan, fill
from runner.results import Case, Run, RunKind, StepResult
from runner.slafile.model import Scenario, python_version
from runner.workload.cache import (
    COMPLETE,
    find_interpreter,
    prepare_fixture,
    prepare_virtualenv,
    work_root,
)

if TYPE_CHECKING:  # imported where used: a scenario with no project, a check of no callable
    from runner.backends.forked import CallError, CallTracker, ForkedCaller
    from runner.workload.project import Project

ProgressHook = Callable[[str], None]


@dataclass
class Executor:
    """Owns the scratch space and the order of runs; backends own isolation and measurement."""

    backend_for: Callable[[str], Backend]
    cache: Path
    spec_dir: Path
    on_progress: ProgressHook = field(default=lambda message: None)
    keep_outputs: bool = False
    clock_origin: float = field(default_factory=time.monotonic)  # Run.started/ended count from
    # where memray's full captures are read while the next runs go on (None: at once); the
    # caller calls its finish() before judging
    reads: BackgroundReads | None = None
    # made environments, by scenario, backend and versions: a session shares them between the
    # executor that prepares auto's choice and the one that runs the cases
    environments: dict[tuple[str, ...], tuple[dict[str, str], BackendOptions | None]] = field(
        default_factory=dict, repr=False)

    def prepare(self, plan: CasePlan) -> None:
        """Make the case's fixture and environment now (cached), so that the case's later run
        finds them ready: a parallel check does this before any build is timed. A failure is
        left for the case's run to report."""
        backend = self.backend_for(plan.settings.backend)
        scenario = plan.scenario
        try:
            if scenario.generate is not None:
                prepare_fixture(scenario.generate, dict(plan.params), self.spec_dir, self.cache)
            self.environment(plan, backend)
            staging.stage(self.cache)
        except (MemslaError, OSError):
            pass

    def environment(self, plan: CasePlan, backend: Backend
                    ) -> tuple[dict[str, str], BackendOptions | None]:
        """The scenario's requirements and project, made ready for ``backend`` (cached): the
        environment variables that put them first for a build on the host, and the backend's
        own part of the case's run requests (Docker: the image that holds them). Made once per
        scenario, backend and version sweep's combination (``python:`` and ``requirements:`` at
        the case's matrix values) in a check: the project is taken as it is when its first case
        starts."""
        key = (plan.scenario_name, backend.name, plan.settings.image, plan.python or "",
               "\0".join(plan.requirements), plan.dockerfile or "")
        if key not in self.environments:
            self.environments[key] = self._environment(plan, backend)
        env, options = self.environments[key]
        return dict(env), options

    def _environment(self, plan: CasePlan, backend: Backend
                     ) -> tuple[dict[str, str], BackendOptions | None]:
        scenario = plan.scenario
        project: Project | None = None
        wheel: Path | None = None
        requirements = list(plan.requirements)
        if scenario.project is not None:
            from runner.workload import project as projects

            project = projects.scan(projects.resolve_path(scenario.project, self.spec_dir))
            wheel = projects.build_wheel(project, self.cache)
            requirements += projects.dependencies(wheel)
        env: dict[str, str] = {}
        python = plan.python
        version = python_version(python)
        options = backend.case_options(CaseEnvironment(
            plan=plan, spec_dir=self.spec_dir, requirements=tuple(requirements),
            project_wheel=wheel, project_hash=project.content_hash if project else None,
            python=version, log=self.on_progress))
        if not backend.uses_host_environment or (
                not requirements and project is None and python is None):
            return env, options
        venv = prepare_virtualenv(requirements, find_interpreter(version) if version
                                  else python, self.cache)
        paths = [venv / "bin"]
        env["VIRTUAL_ENV"] = str(venv)
        if project is not None:
            from runner.workload import project as projects

            site = projects.install_overlay(project, venv, self.cache)
            paths.insert(0, site / "bin")
            env["PYTHONPATH"] = str(site)
        env["PATH"] = os.pathsep.join([*map(str, paths), os.environ.get("PATH", "")])
        return env, options

    def run_case(self, plan: CasePlan, cpus: tuple[int, ...] | None = None) -> Case:
        """The case's runs; an error that stops the case is kept in ``Case.error``. ``cpus``:
        the CPUs every build of the case is confined to (a backend that ``confines_cpus``)."""
        backend = self.backend_for(plan.settings.backend)
        case = Case(scenario=plan.scenario_name, params=plan.params,
                    size_parameter=plan.size_parameter, size=plan.size, backend=backend.name,
                    limit=plan.settings.limit, approximate=backend.approximate,
                    trace=(plan.trace_reason or None) if plan.settings.tracker != "none" else None)
        root = work_root(self.cache)
        root.mkdir(parents=True, exist_ok=True)
        reaper.ensure_watchdog(str(root))
        work = Path(tempfile.mkdtemp(dir=root, prefix=reaper.KEPT_PREFIX if self.keep_outputs
                                     else reaper.work_prefix(os.getpid())))
        try:
            self._run_all(plan, backend, case, work, cpus)
        except MemslaError as exc:
            case.error = str(exc)
        except OSError as exc:  # the build's program, folder or files, not memsla itself
            case.error = f"the build could not run: {exc.strerror or exc}" + (
                f": {exc.filename}" if exc.filename else "")
        finally:
            if not self.keep_outputs:
                shutil.rmtree(work, ignore_errors=True)
        return case

    def _run_all(self, plan: CasePlan, backend: Backend, case: Case, work: Path,
                 cpus: tuple[int, ...] | None = None) -> None:
        scenario = plan.scenario
        values: dict[str, object] = dict(plan.params)
        fixture = None
        if scenario.generate is not None:
            self.on_progress(f"{plan.label}: generating the fixture")
            fixture = prepare_fixture(scenario.generate, values, self.spec_dir, self.cache)
        if scenario.requirements or scenario.project:
            self.on_progress(f"{plan.label}: provisioning requirements and project")
        env, options = self.environment(plan, backend)
        stage = staging.stage(self.cache)
        kinds: list[RunKind] = []
        if scenario.command is not None or scenario.steps is not None:
            warmups: list[RunKind] = ["warmup"] * plan.settings.warmup
            timed: list[RunKind] = ["timed"] * plan.settings.repeats
            kinds = warmups + timed
            if plan.settings.tracker in ("tracemalloc", "memray") and plan.traced:
                kinds.append("traced")
        if scenario.leak is not None:  # repeated calls in one process (runner.inbuild.leak)
            kinds.append("leak")
        # the fixture as the next run finds it: each state is read once, after a run
        after = fixture_state(fixture) if fixture is not None else {}
        for index, kind in enumerate(kinds):
            self.on_progress(f"{plan.label}: {kind} run {index + 1}/{len(kinds)}")
            run_dir = work / f"run{index}"
            output, scratch, probe_out = run_dir / "output", run_dir / "scratch", run_dir / "probe"
            for folder in (output, scratch, probe_out):
                folder.mkdir(parents=True)
            copy = None
            if fixture is not None and scenario.uses_fixture_copy:  # outside the measurement
                copy = run_dir / "fixture_copy"
                shutil.copytree(fixture, copy, symlinks=True,
                                ignore=shutil.ignore_patterns(COMPLETE))
            site = _RunSite(plan, backend, kind, index, values, env, fixture, copy, output,
                            stage, options, cpus)
            before = after
            started = time.monotonic()
            if scenario.steps is not None and kind != "leak":
                run = self._run_steps(site, run_dir)
            else:
                run = self._build(site, self._argv(plan, site.filled(scratch), env, kind),
                                  scratch, probe_out)
            ended = time.monotonic()
            # the host's side of the run's folders: what the build (all its steps) left there
            host = {**values, "output": output, "scratch": scratch, "fixture_copy": copy or "",
                    "fixture": fixture or ""}
            run.disk, run.disk_files = disk_usage(
                {name: Path(fill(text, host)) for name, text in scenario.disk.items()})
            if fixture is not None:
                after = fixture_state(fixture)
                run.fixture_changed = fixture_change(before, after)
                if run.fixture_changed:  # the cached entry is spoilt: made again for the next
                    shutil.rmtree(fixture, ignore_errors=True)
                    assert scenario.generate is not None
                    fixture = prepare_fixture(scenario.generate, values, self.spec_dir,
                                              self.cache)
                    after = fixture_state(fixture)
            run.started = round(started - self.clock_origin, 4)
            run.ended = round(ended - self.clock_origin, 4)
            run.cpus = list(cpus) if cpus else None
            case.runs.append(run)
            if not self.keep_outputs:
                shutil.rmtree(run_dir, ignore_errors=True)

    def _build(self, site: _RunSite, argv: list[str], scratch: Path, probe_out: Path,
               full_capture: bool = False) -> Run:
        """One build of a run, through the backend, with the run's placeholders filled;
        ``full_capture``: memray's full capture whatever the plan says."""
        plan, scenario = site.plan, site.plan.scenario
        aggregated = (site.kind == "traced" and plan.settings.tracker == "memray"
                      and not (plan.full_capture or full_capture))
        filled = site.filled(scratch)
        run_env = {**site.env, **{k: fill(v, filled) for k, v in scenario.env.items()},
                   **staging.probe_settings(phases=scenario.phases,
                                            stack_depth=plan.settings.stack_depth,
                                            tracker=plan.settings.tracker,
                                            native=plan.settings.native,
                                            aggregate=aggregated)}
        if "PYTHONPATH" in site.env and "PYTHONPATH" in scenario.env:  # the project's stays
            run_env["PYTHONPATH"] += os.pathsep + site.env["PYTHONPATH"]
        # by default the build starts in its input: the writable copy where it has one
        workdir = Path(fill(scenario.workdir, filled) if scenario.workdir else (
            str(filled["fixture_copy"]) or str(filled["fixture"]) or self.spec_dir))
        if site.backend.uses_host_environment and not workdir.is_dir():
            raise UsageError(f"the build's workdir {workdir} is not a folder")
        request = RunRequest(
            argv=argv, env=run_env, workdir=workdir, limit=plan.settings.limit,
            timeout=plan.settings.timeout, sample_interval=plan.settings.sample_interval,
            trace=site.kind == "traced", probe_stage=site.stage, probe_out=probe_out,
            output=site.output, scratch=scratch, fixture=site.fixture,
            fixture_copy=site.fixture_copy, options=site.options, cpus=site.cpus)
        deferred = (self.reads is not None and site.kind == "traced" and scenario.steps is None
                    and plan.settings.tracker == "memray" and plan.full_capture)
        if deferred and self.reads is not None:
            self.reads.warm()  # the worker starts beside the build, outside its cgroup
        readings = site.backend.run(request)
        lost = unwritten_captures(probe_out) if aggregated else []
        if lost:
            # a process killed by a signal never wrote its aggregated capture: its heap would
            # be missing from the figures, so the run is made again, its folders as they were
            self.on_progress(f"{plan.label}: traced run again, with memray's full capture")
            for folder in (site.output, scratch, probe_out):
                _emptied(folder)
            if site.fixture is not None and site.fixture_copy is not None:
                shutil.rmtree(site.fixture_copy, ignore_errors=True)
                shutil.copytree(site.fixture, site.fixture_copy, symlinks=True,
                                ignore=shutil.ignore_patterns(COMPLETE))
            run = self._build(site, argv, scratch, probe_out, full_capture=True)
            run.notes.append(f"traced again with memray's full capture: {', '.join(lost)} "
                             "(memray's aggregated capture) was never written: its process "
                             "ended without stopping memray (killed by a signal)")
            return run
        if deferred and self.reads is not None:
            return self.reads.defer(site.kind, site.index, readings, probe_out,
                                    dict(scenario.cache_sites), keep=self.keep_outputs)
        return assemble_run(site.kind, site.index, readings, probe_out, scenario.cache_sites)

    def _run_steps(self, site: _RunSite, run_dir: Path) -> Run:
        """A step scenario's run: its steps in order, each a build of its own (its own cgroup
        reading, scratch and probe folders) on the run's one fixture copy and output folder;
        a step that does not complete leaves the steps after it not run."""
        steps = site.plan.scenario.steps
        assert steps is not None
        done: list[StepResult] = []
        for position, step in enumerate(steps):
            if any(s.run is None or not s.run.completed for s in done):
                done.append(StepResult(name=step.name))
                continue
            self.on_progress(f"{site.plan.label}: {site.kind} run {site.index + 1}, step "
                             f"{step.name} ({position + 1}/{len(steps)})")
            folder = run_dir / "steps" / f"{position}-{step.name}"
            scratch, probe_out = folder / "scratch", folder / "probe"
            for made in (scratch, probe_out):
                made.mkdir(parents=True)
            argv = self._command_argv(step.command, site.filled(scratch), site.env)
            done.append(StepResult(name=step.name,
                                   run=self._build(site, argv, scratch, probe_out)))
        return assemble_steps(site.kind, site.index, done)

    def _argv(self, plan: CasePlan, values: dict[str, object], env: dict[str, str],
              kind: RunKind) -> list[str]:
        if kind == "leak":
            return self._found(leak_argv(plan.scenario, values), env)
        command = plan.scenario.command
        assert command is not None
        return self._command_argv(command, values, env)

    def _command_argv(self, command: list[str] | str, values: dict[str, object],
                      env: dict[str, str]) -> list[str]:
        """A command filled in: a string through the shell, a list as it is, its program
        found on the environment's PATH (the virtualenv's first)."""
        if isinstance(command, str):
            return ["/bin/sh", "-c", fill(command, values)]
        return self._found([fill(part, values) for part in command], env)

    @staticmethod
    def _found(argv: list[str], env: dict[str, str]) -> list[str]:
        if "PATH" in env and "/" not in argv[0]:
            found = shutil.which(argv[0], path=env["PATH"])
            if found:
                argv[0] = found
        return argv


@dataclass(frozen=True)
class _RunSite:
    """What every build of one run shares: its case, kind, placeholders' values, environment
    and folders (a step scenario's steps share the fixture copy and the output folder)."""

    plan: CasePlan
    backend: Backend
    kind: RunKind
    index: int
    values: Mapping[str, object]
    env: dict[str, str]
    fixture: Path | None
    fixture_copy: Path | None
    output: Path
    stage: Path
    options: BackendOptions | None
    cpus: tuple[int, ...] | None

    def filled(self, scratch: Path) -> dict[str, object]:
        """The matrix values and the path placeholders as the build sees them."""
        paths = self.backend.placeholder_paths(self.fixture, self.output, scratch,
                                               self.fixture_copy)
        return {**self.values, **paths}


def _emptied(folder: Path) -> None:
    for entry in list(folder.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def fixture_state(fixture: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder of the fixture with its size and mtime: what a build that writes
    into its input changes (the fixture is read-only to the build on every backend)."""
    state: dict[str, tuple[int, int]] = {}
    for parent, dirs, names in os.walk(fixture):
        for name in dirs + names:
            path = os.path.join(parent, name)
            try:
                info = os.lstat(path)
            except OSError:
                continue
            state[os.path.relpath(path, fixture)] = (info.st_size, info.st_mtime_ns)
    return state


def fixture_change(before: dict[str, tuple[int, int]],
                   after: dict[str, tuple[int, int]]) -> str | None:
    """What the build changed in its fixture, in words; None: nothing."""
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(name for name in set(before) & set(after) if before[name] != after[name])
    if not (added or removed or changed):
        return None
    parts = [f"{len(names)} {what} (e.g. {names[0]})" for what, names in
             (("added", added), ("removed", removed), ("changed", changed)) if names]
    return ("the build wrote into its input, memsla's cached fixture: " + ", ".join(parts)
            + "; the fixture is read-only to a build: write to {output}, or give a tool that "
              "writes next to its input {fixture_copy}, a writable copy made for each run")


def remove_leftover_work_folders(root: Path) -> list[str]:
    """Remove the work folders of runners that are gone; says which. A live runner's are kept."""
    removed = []
    for entry in root.glob(f"{reaper.WORK_PREFIX}*"):
        owner = reaper.owner_of(entry.name)
        if owner is None or owner == os.getpid() or psutil.pid_exists(owner):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            removed.append(str(entry))
    return removed


def leak_argv(scenario: Scenario, values: Mapping[str, object]) -> list[str]:
    """The leak driver's command line; ``args`` take the same placeholders as ``command``."""
    leak = scenario.leak
    assert leak is not None
    args = []
    for text in leak.args:
        try:
            args.append(fill(text, values))
        except (KeyError, ValueError, IndexError, AttributeError) as exc:
            raise UsageError(f"leak args: cannot fill {text!r}: {exc!r}") from None
    # with requirements, a project or python: the virtualenv's python3 comes first on PATH
    return ["python3", "-m", "runner.inbuild.leak", "--entry", leak.entry,
            "--calls", str(leak.calls), "--warmup", str(leak.warmup),
            *(["--console-script"] if leak.console_script else []), "--", *args]


def run_callable(caller: ForkedCaller, func: Callable[[], object], case: Case, *, repeats: int,
                 timeout: float, native: bool, tracker: CallTracker | None,
                 note: str = "") -> CallError | None:
    """A callable's runs, added to ``case``: ``repeats`` timed calls, then one traced call under
    ``tracker`` (if any), each forked by ``caller`` under the case's limit; ``note`` is added to
    every run. Returns the first exception the callable raised (None: it never raised)."""
    timed: list[RunKind] = ["timed"] * repeats
    kinds = timed + (["traced"] if tracker is not None else [])
    raised: CallError | None = None
    for index, kind in enumerate(kinds):
        outcome = caller.call(func, limit=case.limit, timeout=timeout, native=native,
                              tracker=tracker if kind == "traced" else None)
        run = assemble(kind, index, outcome.readings, outcome.probe)
        if outcome.error is not None:
            raised = raised or outcome.error
            run.notes.append(f"the callable raised {outcome.error.type}: "
                             f"{outcome.error.message}")
        if note:
            run.notes.append(note)
        case.runs.append(run)
    return raised
