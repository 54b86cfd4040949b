"""Backfill: measure past commits of the user's repository and record each into the history.

Each commit gets a clean detached ``git worktree`` in a folder of this runner's under memsla's
work root (``memsla-<pid>-backfill-*``: the reaper's watchdog removes it if the runner dies,
and the next runner if the watchdog could not; ``git worktree prune`` drops the stale entry).
The SLA file **as it is now** is put at its own path relative to the repository inside that
worktree, so ``project: .`` and every relative path resolve to the commit's tree and every
commit is judged by today's rules (``sla_at_commit``: the commit's own file instead). The check
itself is a ``python -m runner check`` subprocess in a session of its own: a crash of one
commit's check cannot end the backfill, and an interrupt reaches it once, from here, before its
worktree is removed. Its results are recorded with the commit's own ``Commit`` (sha, parent,
commit time, the branch given), never the current HEAD's.
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from runner.errors import EXIT_BAD_INPUT, EXIT_HOST, HostError, SpecError, UsageError
from runner.history.commit import utc_iso
from runner.history.model import CheckRecord, Commit, Environment
from runner.history.store import Store
from runner.results import Results

CHECK_TIMEOUT = 6 * 3600.0  # one commit's check; a hung one is killed and recorded as an error
INTERRUPT_GRACE = 60.0  # seconds an interrupted check has to write its results and clean up


@dataclass(frozen=True)
class CheckOptions:
    """What each commit's ``runner check`` is given besides the SLA file."""

    backend: str | None = None
    repeats: int | None = None
    only: tuple[str, ...] = ()
    sizes: tuple[int, ...] = ()
    sla_at_commit: bool = False  # the commit's own SLA file instead of today's

    def argv(self) -> list[str]:
        args = [*(["--backend", self.backend] if self.backend else []),
                *(["--repeats", str(self.repeats)] if self.repeats else [])]
        for name in self.only:
            args += ["--only", name]
        for size in self.sizes:
            args += ["--size", str(size)]
        return args


@dataclass
class CommitCheck:
    """One commit of a backfill or bisect: what was done with it and what it gave."""

    commit: Commit
    status: str  # the check's status (pass, fail, error), or "stored": measured before
    check_id: str | None = None
    record: CheckRecord | None = None  # the check as the store holds it
    measured: bool = False  # measured now (not found in the store)
    problem: str = ""  # why the check is no pass, in a line, where it says so

    @property
    def short(self) -> str:
        return self.commit.sha[:10]


@dataclass
class Backfill:
    """What a backfill did, commit by commit, oldest first."""

    commits: list[CommitCheck] = field(default_factory=list)

    @property
    def measured(self) -> list[CommitCheck]:
        return [c for c in self.commits if c.measured]

    @property
    def skipped(self) -> list[CommitCheck]:
        return [c for c in self.commits if not c.measured]


# -- git ------------------------------------------------------------------------------------
def git(repo: Path, *args: str, check: bool = True) -> str:
    """``git -C repo ARGS``'s output; UsageError (exit 2) with git's word when it fails."""
    try:
        proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              check=False, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"git {' '.join(args)}: {exc}") from None
    if check and proc.returncode != 0:
        said = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        raise UsageError(f"git {' '.join(args)}: {said}")
    return proc.stdout.strip()


def toplevel(repo: Path) -> Path:
    """The work tree's top folder of the repository at ``repo``."""
    if not repo.is_dir():
        raise UsageError(f"--repo {repo}: no such folder")
    return Path(git(repo, "rev-parse", "--show-toplevel")).resolve()


def resolve(repo: Path, revision: str) -> str:
    """A revision's full commit sha; UsageError for one that names no commit."""
    found = git(repo, "rev-parse", "--verify", "-q", f"{revision}^{{commit}}", check=False)
    if not found:
        raise UsageError(f"{revision!r} names no commit of {repo}")
    return found


def revisions(repo: Path, spec: str | Sequence[str], *, first_parent: bool = True) -> list[str]:
    """The commits to measure, oldest first: ``A..B`` as ``git rev-list --reverse
    [--first-parent] A..B`` (A itself excluded, as git has it), or a list of revisions as
    given (each resolved). UsageError for a range or revision git does not know, or an empty
    range."""
    if isinstance(spec, str):
        if ".." not in spec or "..." in spec:
            raise UsageError(f"range {spec!r}: give A..B (the commits after A up to B), or "
                             "single revisions")
        start, _, end = spec.partition("..")
        ends = [resolve(repo, start or "HEAD"), resolve(repo, end or "HEAD")]
        listed = git(repo, "rev-list", "--reverse", *(["--first-parent"] if first_parent
                                                        else []), f"{ends[0]}..{ends[1]}")
        found = listed.split()
        if not found:
            raise UsageError(f"range {spec!r} holds no commit ({start or 'HEAD'} is not "
                             f"behind {end or 'HEAD'})")
        return found
    return [resolve(repo, revision) for revision in spec]


def commit_at(repo: Path, sha: str, branch: str | None) -> Commit:
    """The ``Commit`` of ``sha``: its first parent, commit time (UTC) and subject; clean by
    construction (a fresh worktree), on ``branch`` as the user names it."""
    info = git(repo, "show", "-s", "--format=%cI%n%P%n%s", sha).split("\n")
    info += [""] * 3
    parents = info[1].split()
    return Commit(sha=sha, dirty=False, parent=parents[0] if parents else None, branch=branch,
                  committed=utc_iso(info[0]), subject=info[2])


# -- a worktree per commit ------------------------------------------------------------------
def _work_root() -> Path:
    from runner.inbuild import reaper
    from runner.workload.cache import cache_dir, work_root

    root = work_root(cache_dir())
    root.mkdir(parents=True, exist_ok=True)
    reaper.ensure_watchdog(str(root))
    return root


def prune(repo: Path) -> None:
    """Drop the worktree entries whose folders are gone (a backfill killed outright)."""
    git(repo, "worktree", "prune", check=False)


@contextmanager
def checkout(repo: Path, sha: str) -> Iterator[Path]:
    """A clean detached worktree of ``sha`` in a folder of this runner's under the work root
    (``<folder>/tree``; the folder has room for the check's results beside it); removed after,
    with its ``git worktree`` entry, on success, failure and interrupt alike."""
    from runner.inbuild import reaper

    folder = Path(tempfile.mkdtemp(dir=_work_root(),
                                   prefix=f"{reaper.work_prefix(os.getpid())}backfill-"))
    tree = folder / "tree"
    try:
        git(repo, "worktree", "add", "--detach", "--force", str(tree), sha)
        yield tree
    finally:
        git(repo, "worktree", "remove", "--force", str(tree), check=False)
        shutil.rmtree(folder, ignore_errors=True)
        prune(repo)


# -- one commit's check ---------------------------------------------------------------------
def _runner_env() -> dict[str, str]:
    """The environment of the check subprocess: this memsla importable first."""
    here = str(Path(__file__).resolve().parents[2])
    paths = [here, *(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " / ".join(kept[-lines:])


def unmeasured(sla_file: str, why: str) -> Results:
    """The results of a check that could not run at all (its SLA file unreadable at that
    commit, memsla failing): status error, no case, the reason in its problems."""
    from runner import __version__
    from runner.measure.host import host_facts

    results = Results.new(sla_file=sla_file, memsla_version=__version__,
                          host=host_facts("none", "the check did not run", None))
    results.status = "error"
    results.problems.append(why)
    return results


def run_check(tree: Path, relative_sla: Path, options: CheckOptions,
              timeout: float = CHECK_TIMEOUT) -> tuple[Results, int]:
    """``runner check`` of the SLA file at ``relative_sla`` in ``tree``, as a subprocess in a
    session of its own: its results (or an error Results where it left none) and its exit
    code. KeyboardInterrupt: the check is interrupted once (SIGINT), waited for, and the
    interrupt raised again here."""
    out = tree.parent / "results.json"
    log = tree.parent / "check.log"
    sla = tree / relative_sla
    argv = [sys.executable, "-m", "runner", "check", str(sla), "--json", str(out),
            *options.argv()]
    with log.open("wb") as stream:
        proc = subprocess.Popen(argv, cwd=sla.parent, env=_runner_env(), stdin=subprocess.DEVNULL,
                                stdout=stream, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
        except KeyboardInterrupt:
            _stop(proc, signal.SIGINT)
            raise
        except subprocess.TimeoutExpired:
            _stop(proc, signal.SIGINT)
            code = proc.returncode
            return unmeasured(str(relative_sla), f"the check did not end within {timeout:.0f} "
                                                 "s and was stopped"), code
    results: Results | None = None
    why = ""
    if out.is_file():
        try:
            results = Results.read(out)
        except (OSError, ValueError) as exc:
            why = f"its results could not be read: {exc}"
    if results is None or results.status == "running":
        said = _tail(log) or f"exit {code}"
        how = "did not run" if results is None else "did not end"
        return unmeasured(str(relative_sla), why or f"the check {how}: {said}"), code
    results.sla_file = str(relative_sla)
    if results.status != "pass" and not results.problems:
        said = _tail(log, 1)
        if code not in (0, 1) and said:
            results.problems.append(said)
    return results, code


def _stop(proc: subprocess.Popen[bytes], how: signal.Signals) -> None:
    """Interrupt the check once and wait for it to write its results and clean up; kill it
    (and its session) if it does not end in time or the wait itself is interrupted."""
    try:
        proc.send_signal(how)
        proc.wait(timeout=INTERRUPT_GRACE)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()


def place_sla(tree: Path, relative_sla: Path, sla_file: Path, sla_at_commit: bool) -> str:
    """Put the SLA file in the commit's worktree; returns "" or why the check cannot run
    (no SLA file at that commit)."""
    target = tree / relative_sla
    if sla_at_commit:
        return "" if target.is_file() else (f"no SLA file {relative_sla} at this commit "
                                            "(--sla-at-commit)")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sla_file, target)
    return ""


def measure_commit(repo: Path, commit: Commit, sha_sla: tuple[Path, Path],
                   options: CheckOptions) -> tuple[Results, int]:
    """One commit's check, in a worktree of its own removed after: its results and the
    check's exit code. ``sha_sla``: today's SLA file and its path relative to the repository."""
    sla_file, relative_sla = sha_sla
    with checkout(repo, commit.sha) as tree:
        problem = place_sla(tree, relative_sla, sla_file, options.sla_at_commit)
        if problem:
            return unmeasured(str(relative_sla), problem), EXIT_BAD_INPUT
        results, code = run_check(tree, relative_sla, options)
        if results.status == "interrupted":  # interrupted from elsewhere: not recorded
            raise KeyboardInterrupt
        return results, code


# -- the store ------------------------------------------------------------------------------
def _kernel_series(release: str) -> str:
    return ".".join(release.split(".")[:2])


def planned_environments(sla_file: Path, options: CheckOptions) -> dict[str, dict[str, object]]:
    """Per case label of the SLA file, the fields of the environment a check on this host
    would record that can be known without measuring (the backend only where it is named,
    not ``auto``). Empty where the SLA file cannot be planned."""
    from runner import __version__
    from runner.history.recording import requirements_of
    from runner.metrics import case_label
    from runner.plan import build_plan
    from runner.slafile import load_suite
    from runner.slafile.model import Settings

    try:
        suite = load_suite(sla_file)
        overrides = Settings.model_validate({"backend": options.backend,
                                             "repeats": options.repeats})
        plans = build_plan(suite, only=list(options.only) or None, overrides=overrides,
                           sizes=list(options.sizes) or None)
    except (SpecError, UsageError, ValueError):
        return {}
    settings = requirements_of(sla_file)
    planned: dict[str, dict[str, object]] = {}
    for plan in plans:
        wanted: dict[str, object] = {
            "memsla": __version__, "limit": plan.settings.limit,
            "python": platform.python_version(),
            "kernel": _kernel_series(platform.release())}
        if plan.settings.backend != "auto":
            wanted["backend"] = plan.settings.backend
        given = settings.get(plan.scenario_name)
        if given is not None:
            wanted["build_python"] = given.python
            wanted["requirements"] = list(given.requirements)
        planned[case_label(plan.scenario_name, plan.params)] = wanted
    return planned


def _matches(environment: Environment, wanted: dict[str, object]) -> bool:
    found = environment.model_dump()
    return all(found.get(key) == value for key, value in wanted.items())


def stored_check(store: Store, sha: str, planned: dict[str, dict[str, object]],
                 records: dict[str, list[CheckRecord]] | None = None) -> CheckRecord | None:
    """The newest check of ``sha`` in the store that measured every planned case in the
    environment planned for it (a commit whose check could not run at all, with no case, is
    never counted as measured). ``records``: checks already read, by sha."""
    if not planned:
        return None
    candidates = (records or {}).get(sha)
    if candidates is None:
        candidates = [store.check(s.id) for s in store.checks(None)
                      if s.commit is not None and s.commit.sha == sha]
    for record in candidates:  # newest first
        if record.status in ("running", "interrupted"):
            continue
        cases = {case.case: case for case in record.cases}
        if all(label in cases and _matches(cases[label].environment, wanted)
               for label, wanted in planned.items()):
            return record
    return None


def records_by_sha(store: Store) -> dict[str, list[CheckRecord]]:
    """Every check of the store with a commit, newest first, by the commit's sha."""
    found: dict[str, list[CheckRecord]] = {}
    for summary in store.checks(None):
        if summary.commit is not None:
            found.setdefault(summary.commit.sha, []).append(store.check(summary.id))
    return found


def relative_sla_path(top: Path, sla_file: Path) -> Path:
    """The SLA file's path relative to the repository's top folder; UsageError when it is not
    inside the repository."""
    if not sla_file.is_file():
        raise UsageError(f"--sla {sla_file}: no such file")
    try:
        return sla_file.resolve().relative_to(top)
    except ValueError:
        raise UsageError(f"--sla {sla_file}: not inside the repository {top}; backfill puts "
                         "it at its own path in each commit's tree") from None


@dataclass
class Target:
    """A repository, an SLA file in it and how its commits are checked and recorded."""

    repo: Path
    sla_file: Path
    store: Store
    options: CheckOptions = field(default_factory=CheckOptions)
    branch: str | None = None

    def __post_init__(self) -> None:
        self.top = toplevel(self.repo)
        self.relative_sla = relative_sla_path(self.top, self.sla_file)
        if not self.options.sla_at_commit:
            from runner.slafile import load_suite

            load_suite(self.sla_file)  # today's file judges every commit: it must be valid
        self.planned = planned_environments(self.sla_file, self.options)
        prune(self.top)

    def commit(self, sha: str) -> Commit:
        return commit_at(self.top, sha, self.branch)

    def stored(self, sha: str, records: dict[str, list[CheckRecord]] | None = None
               ) -> CheckRecord | None:
        return stored_check(self.store, sha, self.planned, records)

    def measure(self, commit: Commit) -> CommitCheck:
        """Check ``commit`` now and record it, whatever its status."""
        from runner.history.recording import requirements_of

        results, code = measure_commit(self.top, commit, (self.sla_file, self.relative_sla),
                                       self.options)
        if code == EXIT_HOST and not results.cases:
            # no case was even tried: the host (or memsla) failed, not the commit
            raise HostError(f"commit {commit.sha[:10]}: the check could not measure on this "
                            f"host: {'; '.join(results.problems) or f'exit {code}'}")
        settings = requirements_of(self.sla_file) if not self.options.sla_at_commit else {}
        check_id = self.store.record(results, commit, settings)
        record = self.store.check(check_id)
        problem = "; ".join(results.problems[:1]) or next(
            (f"{case.label}: {case.error}" for case in results.cases if case.error), "")
        if not problem and results.status == "fail":
            broken = next((v for v in results.all_verdicts() if v.passed is False), None)
            problem = f"{broken.rule} broken" + (f": {broken.reason}" if broken.reason
                                                 else "") if broken else ""
        return CommitCheck(commit=commit, status=results.status, check_id=check_id,
                           record=record, measured=True, problem=problem)


def backfill(repo: Path, spec: str | Sequence[str], sla_file: Path, store: Store, *,
             options: CheckOptions | None = None, branch: str | None = None,
             first_parent: bool = True, again: bool = False,
             on_commit: Callable[[CommitCheck, int, int], object] | None = None) -> Backfill:
    """Measure every commit of ``spec`` (``A..B`` or a list of revisions), oldest first, each in
    a clean worktree of its own with today's SLA file (``options.sla_at_commit``: the
    commit's), and record each check into ``store`` with that commit. Commits the store holds
    a check of in the same environment are skipped unless ``again``. A commit whose check
    cannot run is recorded as what it is (error or fail) and the backfill goes on.
    ``on_commit(done, index, total)`` is told of each commit as it ends."""
    target = Target(repo, sla_file, store, options or CheckOptions(), branch)
    shas = revisions(target.top, spec, first_parent=first_parent)
    records = {} if again else records_by_sha(store)
    done = Backfill()
    for index, sha in enumerate(shas):
        commit = target.commit(sha)
        stored = None if again else target.stored(sha, records)
        if stored is not None:
            outcome = CommitCheck(commit=commit, status="stored", check_id=stored.id,
                                  record=stored)
        else:
            outcome = target.measure(commit)
        done.commits.append(outcome)
        if on_commit is not None:
            on_commit(outcome, index, len(shas))
    return done

