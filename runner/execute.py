"""Runs a plan: fixture and environment first (outside the measurement), then the timed runs and
one traced run per case through a backend, the probe's records merged into each run."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from runner import probe
from runner.analysis.metrics import case_metrics
from runner.analysis.verdicts import judge_case
from runner.backends.interface import Backend, RawRun, RunRequest
from runner.errors import MemslaError
from runner.fixtures.cache import prepare_fixture, prepare_virtualenv
from runner.plan import CasePlan, fill
from runner.probe.leakrun import LeakRecord, leak_argv, read_leak
from runner.probe.reader import read_probe_dir
from runner.results import Case, Run

ProgressHook = Callable[[str], None]


@dataclass
class Executor:
    """Owns the scratch space and the order of runs; backends own isolation and measurement."""

    backend_for: Callable[[str], Backend]
    cache: Path
    spec_dir: Path
    on_progress: ProgressHook = field(default=lambda message: None)
    keep_outputs: bool = False
    leaks: dict[str, LeakRecord | None] = field(default_factory=dict)  # by case label

    def run_case(self, plan: CasePlan) -> Case:
        backend = self.backend_for(plan.settings["backend"])
        case = Case(scenario=plan.scenario_name, params=plan.params,
                    size_parameter=plan.size_parameter, size=plan.size, backend=backend.name,
                    limit=plan.settings["limit"], approximate=backend.approximate)
        work = Path(tempfile.mkdtemp(prefix="memsla-"))
        try:
            self._run_all(plan, backend, case, work)
        except MemslaError as exc:
            case.error = str(exc)
        finally:
            if not self.keep_outputs:
                shutil.rmtree(work, ignore_errors=True)
            case.metrics = case_metrics(case)
            case.verdicts = judge_case(case, plan.rules, plan.implicit_rules)
        return case

    def _run_all(self, plan: CasePlan, backend: Backend, case: Case, work: Path) -> None:
        scenario = plan.scenario
        workdir_template = scenario.workdir
        values: dict[str, object] = dict(plan.params)
        fixture = None
        if scenario.generate is not None:
            self.on_progress(f"{plan.label}: generating the fixture")
            fixture = prepare_fixture(scenario.generate, values, self.spec_dir, self.cache,
                                      work / "generate.log")
        env: dict[str, str] = {}
        if scenario.requirements and backend.uses_host_environment:
            self.on_progress(f"{plan.label}: provisioning requirements")
            venv = prepare_virtualenv(scenario.requirements, scenario.python, self.cache,
                                      work / "pip.log")
            env["PATH"] = f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
            env["VIRTUAL_ENV"] = str(venv)
        stage = probe.stage(self.cache)
        kinds: list[str] = []
        if scenario.command is not None:
            kinds = ["warmup"] * plan.settings["warmup"] + ["timed"] * plan.settings["repeats"]
            if plan.settings["tracker"] == "tracemalloc":
                kinds.append("traced")
        if scenario.leak is not None:  # repeated calls in one process (runner.probe.leak)
            kinds.append("leak")
        for index, kind in enumerate(kinds):
            self.on_progress(f"{plan.label}: {kind} run {index + 1}/{len(kinds)}")
            run_dir = work / f"run{index}"
            output, scratch, probe_out = run_dir / "output", run_dir / "scratch", run_dir / "probe"
            for folder in (output, scratch, probe_out):
                folder.mkdir(parents=True)
            paths = backend.placeholder_paths(fixture, output, scratch)
            filled = {**values, **paths}
            argv = self._argv(plan, filled, env, kind)
            run_env = {**env, **{k: fill(v, filled) for k, v in scenario.env.items()}}
            workdir = Path(fill(workdir_template, filled) if workdir_template else (
                paths["fixture"] or self.spec_dir))
            request = RunRequest(
                argv=argv, env=run_env, workdir=workdir, limit=plan.settings["limit"],
                timeout=plan.settings["timeout"],
                sample_interval=plan.settings["sample_interval"], trace=kind == "traced",
                probe_stage=stage, probe_out=probe_out, output=output, scratch=scratch,
                fixture=fixture, image=plan.settings["image"], docker=scenario.docker)
            raw = backend.run(request)
            case.runs.append(merge_run(kind, index, raw, probe_out))
            if kind == "leak":
                self.leaks[plan.label] = read_leak(probe_out)
            if not self.keep_outputs:
                shutil.rmtree(run_dir, ignore_errors=True)

    def _argv(self, plan: CasePlan, values: dict[str, object], env: dict[str, str],
              kind: str) -> list[str]:
        command = plan.scenario.command
        if kind == "leak":
            argv = leak_argv(plan.scenario, values)
        elif isinstance(command, str):
            return ["/bin/sh", "-c", fill(command, values)]
        else:
            assert command is not None
            argv = [fill(part, values) for part in command]
        if "PATH" in env and "/" not in argv[0]:
            found = shutil.which(argv[0], path=env["PATH"])
            if found:
                argv[0] = found
        return argv


def merge_run(kind: str, index: int, raw: RawRun, probe_out: Path) -> Run:
    """One run's result: the backend's kernel figures plus what the probe recorded."""
    data = read_probe_dir(probe_out)
    cgroup_peak = raw.cgroup_peak
    if data.cgroup_segments:  # the build reset the cgroup peak at phase starts
        cgroup_peak = max([cgroup_peak or 0, *data.cgroup_segments])
    rss_peak = raw.rss_peak
    if data.vm_hwm is not None:
        rss_peak = max(rss_peak or 0, data.vm_hwm)
    return Run(
        kind=kind,  # type: ignore[arg-type]
        index=index, exit_code=raw.exit_code, signal=raw.signal, timed_out=raw.timed_out,
        oom_killed=raw.oom_killed, oom_kills=raw.oom_kills, duration=raw.duration,
        cpu_time=raw.cpu_time, cgroup_peak=cgroup_peak, rss_peak=rss_peak,
        cache_peak=raw.cache_peak, limit=raw.limit, approximate=raw.approximate,
        python=data.python if kind == "traced" else [],
        phases=data.phases, timeline=raw.timeline, stderr_tail=raw.stderr_tail,
        notes=raw.notes + data.problems)
