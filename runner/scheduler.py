"""Several cases at once on one host (``runner check --jobs N``), without one disturbing another.

Rules:
- Every case runs on CPUs of its own: the CPUs this runner may use are cut into N equal slots,
  and each running case's builds are confined to one slot (a cpuset; ``Backend.confines_cpus``).
- The limits of the cases running at once sum to at most the memory budget. A case with no
  limit, or whose limit alone exceeds the budget, runs alone, on every CPU.
- Cases start in plan order: the next one waits until it fits, and no later case passes it.
  Every fixture and environment is made before the first build starts, so none is made while
  another case is timed.

``run`` hands each case to the caller as it ends (the caller keeps plan order). On Ctrl-C (or
SIGTERM, which the CLI turns into KeyboardInterrupt) the main thread asks each backend to kill
its running builds, waits a bounded time for the worker threads to clean up, drops the cases
that had not ended, and re-raises; the cases handed over before are kept.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psutil

from runner import interrupts
from runner.backends.interface import Backend
from runner.errors import UsageError
from runner.execute import Executor
from runner.inbuild import cgroups
from runner.plan import CasePlan
from runner.results import Case

RESERVE = 512 * 1024 * 1024  # left to the runner, the page cache and everything else
STOP_WAIT_S = 60.0  # on Ctrl-C, how long the workers get to clean up


def usable_cpus() -> list[int]:
    """The CPUs this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def memory_budget() -> int:
    """The memory the cases running at once may hold together: what the host has available
    (and the runner's own cgroup allows), less a reserve."""
    available = psutil.virtual_memory().available
    own = cgroups.own_cgroup()
    limit = own.limit() if own is not None else None
    if limit is not None:
        usage = own.current() if own is not None else None
        available = min(available, limit - (usage or 0))
    return max(0, available - RESERVE)


def exclusive(plan: CasePlan, budget: int) -> bool:
    """Whether the case must run alone: no limit, or a limit the budget cannot hold."""
    limit = plan.settings.limit
    return limit is None or limit > budget


def auto_jobs(plans: Sequence[CasePlan], cpus: int, budget: int) -> int:
    """``--jobs auto``: one job per CPU, as far as the largest limit that may share fits."""
    shared = [p.settings.limit for p in plans if not exclusive(p, budget)]
    largest = max((limit for limit in shared if limit), default=0)
    by_memory = budget // largest if largest else 1
    return max(1, min(cpus, by_memory, len(plans)))


def cpu_slots(jobs: int, cpus: Sequence[int]) -> list[tuple[int, ...]]:
    """``cpus`` cut into ``jobs`` equal slots (the remainder unused)."""
    if jobs > len(cpus):
        raise UsageError(f"--jobs {jobs}: this runner may use {len(cpus)} CPU(s) "
                         f"({', '.join(map(str, cpus))}), and each case needs one of its own")
    width = len(cpus) // jobs
    return [tuple(cpus[k * width:(k + 1) * width]) for k in range(jobs)]


@dataclass
class _Running:
    slot: int | None  # None: an exclusive case, on every CPU
    limit: int
    thread: threading.Thread


_Ended = tuple[int, Case | None, BaseException | None]  # a case's index, and it or its error


def run(plans: Sequence[CasePlan], executor: Executor, backends: Sequence[Backend], jobs: int,
        budget: int, *, cpus: Sequence[int] | None = None,
        on_case: Callable[[int, Case], None] = lambda index, case: None) -> None:
    """Run ``plans`` ``jobs`` at a time; ``on_case(index in plans, case)`` is called in this
    thread as each case ends. On Ctrl-C the running builds are killed, their cases dropped,
    and KeyboardInterrupt raised once the workers have cleaned up."""
    slots = cpu_slots(jobs, list(cpus) if cpus is not None else usable_cpus())
    everything = tuple(cpu for slot in slots for cpu in slot)
    for plan in plans:
        executor.prepare(plan)
    stop = threading.Event()
    ended: queue.Queue[_Ended] = queue.Queue()
    pending = list(range(len(plans)))
    running: dict[int, _Running] = {}

    def work(index: int, confined: tuple[int, ...]) -> None:
        def progress(message: str) -> None:
            if stop.is_set():  # no new build starts after Ctrl-C
                raise KeyboardInterrupt("stopping")
            executor.on_progress(message)

        try:
            mine = dataclasses.replace(executor, on_progress=progress)
            ended.put((index, mine.run_case(plans[index], cpus=confined), None))
        except BaseException as exc:  # handed to the main thread
            ended.put((index, None, exc))

    def start(index: int, slot: int | None) -> None:
        confined = everything if slot is None else slots[slot]
        thread = threading.Thread(target=work, args=(index, confined), daemon=True,
                                  name=f"memsla-case-{index}")
        running[index] = _Running(slot, plans[index].settings.limit or 0, thread)
        thread.start()

    try:
        while pending or running:
            while pending and _fits(plans[pending[0]], running, len(slots), budget):
                index = pending.pop(0)
                start(index, None if exclusive(plans[index], budget) else
                      min(set(range(len(slots))) - {r.slot for r in running.values()}))
            index, case, error = _next(ended)
            running.pop(index).thread.join()
            if error is not None:
                raise error
            assert case is not None
            on_case(index, case)
    except BaseException:
        stop.set()
        _stop_all(backends, running)
        raise


def _next(ended: queue.Queue[_Ended]) -> _Ended:
    """The next case to end (Ctrl-C, even one Python swallowed, raises meanwhile)."""
    got: list[_Ended] = []

    def arrived(seconds: float) -> bool:
        try:
            got.append(ended.get(timeout=seconds))
        except queue.Empty:
            return False
        return True

    interrupts.wait(arrived, None)
    return got[0]


def _fits(plan: CasePlan, running: dict[int, _Running], slots: int, budget: int) -> bool:
    """Whether the next case may start beside the running ones."""
    if any(r.slot is None for r in running.values()):
        return False  # an exclusive case runs alone
    if exclusive(plan, budget):
        return not running
    held = sum(r.limit for r in running.values())
    return len(running) < slots and held + (plan.settings.limit or 0) <= budget


def _stop_all(backends: Sequence[Backend], running: dict[int, _Running]) -> None:
    """Kill the running builds until every worker has ended (bounded)."""
    deadline = time.monotonic() + STOP_WAIT_S
    while any(r.thread.is_alive() for r in running.values()) and time.monotonic() < deadline:
        for backend in backends:
            try:
                backend.interrupt()
            except Exception:  # keep stopping the others
                pass
        for entry in running.values():
            entry.thread.join(timeout=0.2)


def mark_neighbours(cases: Sequence[Case]) -> None:
    """Each run's ``neighbours``: the other cases with a run on the host at the same time."""
    spans = [(case.label, run) for case in cases for run in case.runs
             if run.started is not None and run.ended is not None]
    for label, run in spans:
        assert run.started is not None and run.ended is not None
        run.neighbours = sorted({
            other for other, them in spans if other != label
            and them.started < run.ended and run.started < them.ended})  # type: ignore[operator]
