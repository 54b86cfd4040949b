"""One ``runner check``: load the SLA file, plan, pick backends, execute case by case, then judge
once (``runner.judging``, the final status too), keeping the results measured so far when
interrupted. The executor wiring here is shared
by ``check`` and ``capacity``; how progress is shown is the caller's (``runner.cli.progress``)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import ValidationError

from runner import backends, scheduler
from runner.backends.interface import Backend, BackendError, BackendOptions
from runner.errors import MemslaError, UsageError
from runner.execute import Executor, remove_leftover_work_folders
from runner.inbuild import reaper
from runner.judging.stage import judge
from runner.judging.status import settle
from runner.measure.background import BackgroundReads
from runner.measure.host import host_facts
from runner.plan import CasePlan, build_plan
from runner.results import Case, Results, Selection, Shard
from runner.slafile import load_suite
from runner.slafile.model import BUILTIN_SETTINGS, Settings, Suite
from runner.workload.cache import cache_dir, work_root

if TYPE_CHECKING:  # imported where used: a check that names no history never loads it
    from runner.judging.history_base import HistoryBase


class CheckProgress(Protocol):
    """What a check says while it runs; the CLI shows it, tests and the API may ignore it."""

    def __enter__(self) -> CheckProgress: ...

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None: ...

    def begin(self, total: int) -> None: ...

    def say(self, message: str) -> None: ...

    def case_done(self) -> None: ...

    def note(self, message: str) -> None: ...


class SilentProgress:
    """A CheckProgress that shows nothing."""

    def __enter__(self) -> SilentProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        return None

    def begin(self, total: int) -> None:
        return None

    def say(self, message: str) -> None:
        return None

    def case_done(self) -> None:
        return None

    def note(self, message: str) -> None:
        return None


def header(sla_file: Path, digest: str | None, backend: str | None, only: list[str] | None,
           sizes: list[int] | None) -> Results:
    """The results of a check whose backend is not chosen yet: what a check interrupted (or
    stopped) that early writes, the backend named as asked for."""
    return Results.new(
        sla_file=str(sla_file), sla_digest=digest,
        host=host_facts(backend or "auto", "the check ended before a backend was chosen", None),
        selection=Selection(only=only or [], sizes=sizes or []))


class Session:
    def __init__(self, sla_file: Path, *, progress: CheckProgress | None = None,
                 suite: Suite | None = None) -> None:
        """``suite``: one already validated (``runner.api`` builds it in memory); ``sla_file``
        then only names it, and its folder is where relative paths start."""
        self.sla_file = sla_file
        self.suite: Suite = suite if suite is not None else load_suite(sla_file)
        # a suite built in memory (the Python API) has no file to hash: it merges with nothing
        self.sla_digest = sla_digest(sla_file) if suite is None else None
        self.progress: CheckProgress = progress or SilentProgress()
        self.backends = backends.BackendPool(self._before_backend,
                                             lambda message: self.progress.note(message),
                                             self._prepare_case)
        self._environments: dict[tuple[str, ...], tuple[dict[str, str],
                                                        BackendOptions | None]] = {}
        self.baseline: Results | None = None  # judges the <metric>_growth rules
        # loads the base branch's history for the regression rules, once the cases are measured
        self.history: Callable[[Results], HistoryBase] | None = None
        self.wrote_results = False  # check() has written its results file (and always will)

    def backend_for(self, name: str, image: str | None = None) -> Backend:
        """The backend of a case whose settings name ``name`` (and ``image``)."""
        return self.backends.get(name, image)

    def resolve_backends(self, plans: list[CasePlan]) -> list[CasePlan]:
        """Every case with the backend that runs it (``runner.backends.registry``)."""
        return self.backends.resolve(plans, self.suite.defaults, self.sla_file)

    def _before_backend(self, first: bool) -> list[str]:
        """Before a backend is made: remove the work folders a dead runner left here (before
        the first), and start this runner's watchdog (which removes what this runner leaves if
        it dies)."""
        root = work_root(cache_dir())
        removed = remove_leftover_work_folders(root) if first else []
        reaper.ensure_watchdog(str(root))
        return removed

    def _prepare_case(self, plan: CasePlan, backend: Backend) -> None:
        """Make the case's environment on ``backend`` now (Docker: the scenario's image), for
        auto's choice: a BackendError says it cannot be made there. Another failure (the
        project does not build) is the case's, reported when it runs on whichever backend."""
        try:
            with self.progress:
                self.progress.begin(0)
                self.progress.say(f"{plan.scenario_name}: making its environment on "
                                  f"{backend.name}")
                self.executor().environment(plan, backend)
        except BackendError:
            raise
        except (MemslaError, OSError):
            pass

    def plan(self, *, only: list[str] | None = None, sizes: list[int] | None = None,
             backend: str | None = None, repeats: int | None = None) -> list[CasePlan]:
        """The cases of the SLA file, narrowed by --only/--size, with --backend/--repeats."""
        try:
            overrides = Settings.model_validate({"backend": backend, "repeats": repeats})
        except ValidationError as exc:
            problem = exc.errors()[0]
            raise UsageError(f"--{problem['loc'][0]}: {problem['msg']}") from None
        return build_plan(self.suite, only=only, overrides=overrides, sizes=sizes)

    def executor(self, *, keep_outputs: bool = False, background: bool = False) -> Executor:
        """An executor whose backends come from (and are closed with) this session;
        ``background``: memray's full captures are read while the next runs go on, and
        ``executor.reads.finish()`` must be called before judging."""
        return Executor(backend_for=self.backend_for, cache=cache_dir(),
                        spec_dir=self.sla_file.resolve().parent, keep_outputs=keep_outputs,
                        on_progress=self.progress.say, environments=self._environments,
                        reads=BackgroundReads(work_root(cache_dir())) if background else None)

    def check(self, *, backend: str | None = None, only: list[str] | None = None,
              sizes: list[int] | None = None, repeats: int | None = None,
              keep_outputs: bool = False, json_path: Path | None = None,
              jobs: int | Literal["auto"] = 1, memory_budget: int | None = None,
              shard: tuple[int, int] | None = None,
              shard_costs: Results | None = None, shard_costs_from: str | None = None
              ) -> Results:
        """Measure and judge the plan. ``jobs`` cases at a time (see ``runner.scheduler``) within
        ``memory_budget`` (default: what the host has available); ``shard`` (K, N): only the
        K-th of N shares of the plan, balanced by the durations in ``shard_costs``.

        With ``json_path`` the results file is written first of all ("running"), after every
        case, and at the end, however the check ends: interrupted at any moment (its cases so
        far), or stopped by an error of memsla's (the error among its problems, then raised)."""
        results = header(self.sla_file, self.sla_digest, backend or self.suite.defaults.backend,
                         only, sizes)
        ended = False  # the loop ran to its end or was interrupted; else memsla stopped it
        failure: MemslaError | None = None
        executor: Executor | None = None
        chosen: Backend | None = None
        try:
            if json_path:
                self.wrote_results = True
                results.write(json_path)
            plans = self.resolve_backends(
                self.plan(backend=backend, repeats=repeats, only=only, sizes=sizes))
            if not plans:
                raise UsageError("the selection (--only/--size) matches no case of "
                                 f"{self.sla_file}: nothing would be measured")
            if shard is not None:
                from runner import shards

                planned = plans
                costs = shards.case_costs(shard_costs) if shard_costs is not None else None
                plans = shards.select(planned, *shard, costs)
                results.shard = Shard(index=shard[0], count=shard[1],
                                      cases=[p.label for p in plans],
                                      planned=[p.label for p in planned],
                                      costs_from=shard_costs_from)
            first = plans[0].settings if plans else BUILTIN_SETTINGS
            chosen = self.backend_for(first.backend, first.image)
            results.host = host_facts(chosen.name, self.backends.reason(first.backend),
                                      chosen.cgroup_version, chosen.engine_version,
                                      chosen.harness_baseline, chosen.harness_kept_out)
            used = list({id(b): b for b in (self.backend_for(p.settings.backend,
                                                             p.settings.image)
                                             for p in plans)}.values())
            jobs_now, budget = self._jobs(plans, used, jobs, memory_budget)
            results.jobs, results.memory_budget = jobs_now, budget
            executor = self.executor(keep_outputs=keep_outputs, background=True)
            if json_path:
                results.write(json_path)
            with self.progress:
                self.progress.begin(len(plans))
                if jobs_now == 1:
                    for plan in plans:
                        results.cases.append(executor.run_case(plan))
                        self.progress.case_done()
                        if json_path:
                            results.write(json_path)
                else:
                    assert budget is not None
                    measured: dict[int, Case] = {}

                    def case_ended(index: int, case: Case) -> None:
                        measured[index] = case  # kept in plan order, whatever ends first
                        results.cases = [measured[i] for i in sorted(measured)]
                        self.progress.case_done()
                        if json_path:
                            scheduler.mark_neighbours(results.cases)
                            results.write(json_path)

                    scheduler.run(plans, executor, used, jobs_now, budget, on_case=case_ended)
            ended = True
        except KeyboardInterrupt:
            results.interrupted = ended = True
        except MemslaError as exc:
            failure = exc
            raise
        finally:
            try:
                if executor is not None and executor.reads is not None:
                    executor.reads.finish()  # every run's figures, before any is judged
            finally:
                self.close()
            # Docker measures the idle harness of a scenario's own image at its first run
            if chosen is not None and results.host.harness_baseline is None:
                results.host.harness_baseline = chosen.harness_baseline
            scheduler.mark_neighbours(results.cases)
            if ended:
                history = (self.history(results) if self.history is not None and results.cases
                           else None)
                judge(results, self.suite, self.baseline, history)
                settle(results)
            else:
                results.status = "error"
                results.problems.append(
                    f"memsla stopped before the check ended: {failure}" if failure is not None
                    else "memsla stopped before the check ended (an internal error); the cases "
                         "listed were measured")
            if json_path:
                results.write(json_path)
        return results

    def _jobs(self, plans: list[CasePlan], used: list[Backend], jobs: int | Literal["auto"],
              memory_budget: int | None) -> tuple[int, int | None]:
        """How many cases run at once, and the memory budget they share (None: one at a
        time)."""
        if jobs != "auto" and jobs < 1:
            raise UsageError(f"--jobs {jobs}: give at least 1, or auto")
        if jobs == 1 or len(plans) < 2:
            return 1, None
        cant = [b.name for b in used if not b.confines_cpus]
        if cant:
            self.progress.note(f"--jobs: the {', '.join(cant)} backend cannot give each case CPUs "
                               "of its own; the cases run one at a time")
            return 1, None
        budget = memory_budget if memory_budget is not None else scheduler.memory_budget()
        cpus = scheduler.usable_cpus()
        count = scheduler.auto_jobs(plans, len(cpus), budget) if jobs == "auto" else jobs
        scheduler.cpu_slots(count, cpus)  # a UsageError now when there are too few CPUs
        return count, (budget if count > 1 else None)

    def close(self) -> None:
        """Release every backend this session opened."""
        self.backends.close()


def sla_digest(path: Path) -> str:
    """The SLA file's content hash: results of one file, wherever it was checked out."""
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
