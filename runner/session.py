"""One ``runner check``: load the SLA file, plan, pick backends, execute case by case, judge,
and keep the results measured so far when interrupted."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from runner import __version__, backends
from runner.analysis.scenarios import analyse
from runner.backends.interface import Backend
from runner.execute import Executor
from runner.fixtures.cache import cache_dir
from runner.host import host_facts
from runner.plan import CasePlan, build_plan
from runner.results import Results
from runner.spec import load_suite
from runner.spec.model import Suite


class Session:
    def __init__(self, sla_file: Path, *, console: Console | None = None) -> None:
        self.sla_file = sla_file
        self.suite: Suite = load_suite(sla_file)
        self.console = console or Console()
        self._backends: dict[str, Backend] = {}
        self._reasons: dict[str, str] = {}
        self.baseline: Results | None = None  # judges the <metric>_growth rules

    def backend_for(self, name: str, image: str | None = None) -> Backend:
        if name not in self._backends:
            if name == "auto":
                backend, reason = backends.select_auto(image)
            else:
                backend = backends.create(name, image)
                reason = f"asked for by name; builds run in {backend.where}"
            removed = backend.remove_leftovers()
            if removed:
                self.console.print(f"removed {len(removed)} leftover(s) of an earlier run")
            self._backends[name] = backend
            self._reasons[name] = reason
        return self._backends[name]

    def plan(self, **overrides: Any) -> list[CasePlan]:
        sizes = overrides.pop("sizes", None)
        only = overrides.pop("only", None)
        return build_plan(self.suite, only=only, overrides=overrides, sizes=sizes)

    def check(self, *, backend: str | None = None, only: list[str] | None = None,
              sizes: list[int] | None = None, repeats: int | None = None,
              keep_outputs: bool = False, json_path: Path | None = None) -> Results:
        plans = self.plan(backend=backend, repeats=repeats, only=only, sizes=sizes)
        first: dict[str, Any] = plans[0].settings if plans else {"backend": "auto", "image": None}
        chosen = self.backend_for(first["backend"], first.get("image"))
        results = Results(
            memsla_version=__version__,
            created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            sla_file=str(self.sla_file),
            host=host_facts(chosen.name, self._reasons[first["backend"]], chosen.cgroup_version,
                            getattr(chosen, "engine_version", None),
                            getattr(chosen, "harness_baseline", None)))
        executor = Executor(backend_for=lambda name: self.backend_for(name),
                            cache=cache_dir(), spec_dir=self.sla_file.resolve().parent,
                            keep_outputs=keep_outputs)
        try:
            with Progress(SpinnerColumn(), TextColumn("{task.description}"),
                          TimeElapsedColumn(), console=self.console, transient=True) as progress:
                task = progress.add_task("starting", total=len(plans))
                executor.on_progress = lambda message: progress.update(task, description=message)
                for plan in plans:
                    results.cases.append(executor.run_case(plan))
                    progress.advance(task)
                    if json_path:
                        results.write(json_path)
            self._analyse(results, executor)
        except KeyboardInterrupt:
            results.interrupted = True
        finally:
            self.close()
            results.status = _status(results)
            if json_path:
                results.write(json_path)
        return results

    def _analyse(self, results: Results, executor: Executor) -> None:
        """Scenario-level analyses (fits, leaks, baselines) plug in here."""
        analyse(results, self.suite, executor.leaks, self.baseline)

    def close(self) -> None:
        """Release every backend this session opened."""
        for open_backend in self._backends.values():
            open_backend.close()


def _status(results: Results) -> Any:
    if results.interrupted:
        return "interrupted"
    verdicts = results.all_verdicts()
    # a broken SLA is the loudest news: it is not hidden by something else not being measured
    if any(v.passed is False for v in verdicts):
        return "fail"
    if any(case.error for case in results.cases) or any(v.passed is None for v in verdicts):
        return "error"
    return "pass"
