"""The fixture step and the requirements virtualenv: made before and outside the measurement,
cached by the hash of their inputs under the cache folder.

Several runners may share one cache. Each entry is made under its key's lock
(``<cache>/locks/<kind>-<key>.lock``), so it is made once and the others wait and reuse it:

- a fixture (and the staged probe, ``runner.measure.staging``) is built aside in
  ``<key>.tmp<pid>`` and renamed into place when whole, so a folder at the final path is always
  complete. A ``.tmp<pid>`` folder whose runner died is removed by the next runner;
- a virtualenv is not relocatable (its scripts carry absolute paths), so it is built at its
  final path and ``.memsla-complete`` is written last. The next holder of the lock removes one
  without the marker, half-built by a runner that died.

A failed step keeps its whole output in ``<cache>/logs/<kind>-<key>.log``, shows its tail in the
error, and is remembered for the rest of the process: the next case that needs it gets the
same error without running the step again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psutil

from runner.errors import FixtureError
from runner.plan import fill
from runner.slafile.model import PATH_PLACEHOLDERS, GenerateStep

DEFAULT_CACHE = Path.home() / ".cache" / "memsla"
COMPLETE = ".memsla-complete"
TAIL_LINES = 20
_TAIL_BYTES = 4000
_TEMP = re.compile(r"^(?P<key>.+)\.tmp(?P<pid>\d+)$")

# The failures of this process by the entry they were making: not retried for every case.
_failures: dict[Path, FixtureError] = {}


def work_root(cache: Path) -> Path:
    """Where the runs' work folders (outputs, scratch, probe records) are made: beside the
    cache, on the fixture's filesystem, not in $TMPDIR (see ``runner.execute``)."""
    return cache / "runs"


def cache_dir() -> Path:
    return Path(os.environ.get("MEMSLA_CACHE_DIR") or DEFAULT_CACHE)


def _key(payload: object) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def log_path(root: Path, kind: str, key: str) -> Path:
    """Where the output of making an entry is kept, success or not (the last attempt)."""
    return root / "logs" / f"{kind}-{key}.log"


@contextmanager
def key_lock(root: Path, kind: str, key: str) -> Iterator[None]:
    """Hold the lock of one cache entry: other processes making the same entry wait."""
    from filelock import FileLock  # only when an entry is made: a warm check takes no lock

    folder = root / "locks"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(folder / f"{kind}-{key}.lock"))
        lock.acquire()
    except OSError as exc:
        raise FixtureError(f"cannot use the cache folder {root} ({exc}): set MEMSLA_CACHE_DIR "
                           "to a writable folder") from exc
    try:
        yield
    finally:
        lock.release()


def remove_stale_temps(root: Path, kind: str, folder: Path) -> None:
    """Remove the ``<key>.tmp<pid>`` folders under ``folder`` left by runners that died.

    A folder whose pid is alive is left alone; one whose pid is gone is removed only if its
    key's lock is free (a runner in another pid namespace may still be building it).
    """
    if not folder.is_dir():
        return
    from filelock import FileLock, Timeout

    for entry in folder.iterdir():
        match = _TEMP.match(entry.name)
        if match is None:
            continue
        pid = int(match["pid"])
        if pid != os.getpid() and psutil.pid_exists(pid):
            continue
        lock = FileLock(str(root / "locks" / f"{kind}-{match['key']}.lock"))
        try:
            lock.acquire(timeout=0)
        except (Timeout, OSError):
            continue
        try:
            shutil.rmtree(entry, ignore_errors=True)
        finally:
            lock.release()


def build_aside(root: Path, kind: str, target: Path, build: Callable[[Path], None],
                complete: Callable[[Path], bool] = Path.is_dir) -> Path:
    """Make ``target`` once across processes: under its key's lock, ``build`` fills
    ``<target>.tmp<pid>``, which is then renamed to ``target``.

    ``complete`` says whether a folder at ``target`` is whole; one that is not is replaced.
    """
    if complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(root, kind, target.parent)
    with key_lock(root, kind, target.name):
        if complete(target):  # made by another runner while this one waited
            return target
        shutil.rmtree(target, ignore_errors=True)
        tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            build(tmp)
            try:
                tmp.rename(target)
            except OSError as exc:  # e.g. what was at target could not all be removed
                raise FixtureError(f"cannot move {tmp} to {target}: {exc}") from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _has_marker(folder: Path) -> bool:
    return (folder / COMPLETE).exists()


def _remembered(target: Path) -> None:
    failure = _failures.get(target)
    if failure is not None:
        raise FixtureError(f"not tried again, as it failed for an earlier case of this check: "
                           f"{failure}")


def _fail(target: Path, message: str, log: Path, start: int) -> FixtureError:
    """The error of a failed step, with the tail of its output (which begins at ``start`` in
    ``log``); remembered for the rest of this process."""
    error = FixtureError(f"{message}; the end of its output:\n{tail(log, start)}\n"
                         f"(all of it is in {log})")
    _failures[target] = error
    return error


def tail(log: Path, start: int = 0, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of a log after offset ``start`` (a few KB at most), indented."""
    try:
        with log.open("rb") as handle:
            handle.seek(max(start, handle.seek(0, os.SEEK_END) - _TAIL_BYTES))
            text = handle.read().decode(errors="replace")
    except OSError as exc:
        return f"    (cannot read the log: {exc})"
    kept = text.rstrip().splitlines()[-lines:] or ["(no output)"]
    return "\n".join("    " + line for line in kept)


def _run_logged(argv: Sequence[str], log: Path, cwd: Path | None = None,
                env: dict[str, str] | None = None) -> tuple[int, int]:
    """Run ``argv`` with its output appended to ``log`` after a line naming it; its exit code
    (127 if it cannot start) and the offset in ``log`` where its output begins."""
    with log.open("ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        start = out.tell()
        try:
            result = subprocess.run(argv, cwd=cwd, env=env, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    check=False)
        except OSError as exc:
            out.write(f"{exc}\n".encode())
            return 127, start
    return int(result.returncode), start


def prepare_fixture(step: GenerateStep, values: dict[str, object], workdir: Path,
                    root: Path) -> Path:
    """Make (or reuse) the fixture for these matrix values; returns its folder."""
    from runner import __version__

    inputs: dict[str, object] = {"version": __version__}
    if step.sitegen is not None:
        spec = step.sitegen
        pages_text = fill(spec.pages, values) if isinstance(spec.pages, str) else spec.pages
        try:
            pages = int(pages_text)
        except ValueError:
            raise FixtureError(f"sitegen pages {pages_text!r} is not a whole number") from None
        inputs.update({"sitegen": spec.model_dump(), "pages": pages})
    argv: list[str] = []
    if step.command is not None:
        # the fixture's own path is not an input: keep its placeholder literal in the key
        literal = {**values, **{name: "{" + name + "}" for name in PATH_PLACEHOLDERS}}
        argv = [fill(a, literal) for a in step.command]
        inputs.update({"command": argv, "env": step.env, "workdir": str(workdir),
                       # what the step reads: the files its arguments name (the script it
                       # runs), and the declared inputs
                       "read": {a: content_digest(workdir / a) for a in argv[1:]
                                if "{" not in a and (workdir / a).is_file()},
                       "program": content_digest(workdir / argv[0])
                       if (workdir / argv[0]).is_file() else None})
    if step.inputs:
        inputs["inputs"] = {text: content_digest(workdir / text) for text in step.inputs}
    key = _key(inputs)
    target = root / "fixtures" / key
    if _has_marker(target):
        return target
    _remembered(target)

    def build(tmp: Path) -> None:
        if step.sitegen is not None:
            from runner.workload.sitegen import generate_site

            generate_site(tmp, pages=pages, flavour=step.sitegen.flavour, seed=step.sitegen.seed,
                          page_bytes=step.sitegen.page_size, sections=step.sitegen.sections)
        else:
            tmp.mkdir()
        if step.command is not None:
            paths = {name: tmp for name in PATH_PLACEHOLDERS}
            run_argv = [fill(a, {**values, **paths}) for a in step.command or []]
            env = {**os.environ,
                   **{k: fill(v, {**values, **paths}) for k, v in step.env.items()}}
            log = log_path(root, "fixture", key)
            log.parent.mkdir(parents=True, exist_ok=True)
            log.unlink(missing_ok=True)
            code, start = _run_logged(run_argv, log, cwd=workdir, env=env)
            if code != 0:
                raise _fail(target, f"the generate command {argv} exited {code}", log, start)
        (tmp / COMPLETE).write_text(json.dumps(inputs, default=str))

    return build_aside(root, "fixture", target, build, complete=_has_marker)


def content_digest(path: Path) -> str:
    """A hash of a file's bytes, or of every file below a folder (paths and bytes); a path
    that does not exist is an error (a declared input must be there)."""
    digest = hashlib.sha256()
    if path.is_file():
        digest.update(path.read_bytes())
    elif path.is_dir():
        for parent, dirs, names in os.walk(path):
            dirs.sort()
            for name in sorted(names):
                file = Path(parent) / name
                digest.update(str(file.relative_to(path)).encode() + b"\0")
                digest.update(hashlib.sha256(file.read_bytes()).digest())
    else:
        raise FixtureError(f"the generate input {path} does not exist")
    return digest.hexdigest()[:16]


def find_interpreter(version: str) -> str:
    """The host's interpreter of Python ``version`` (``X.Y``): ``pythonX.Y`` on PATH where it
    runs (a pyenv shim of a version not selected does not), else the newest
    ``$PYENV_ROOT/versions/X.Y.*`` (``~/.pyenv``), else ``/usr/bin/pythonX.Y``. None found is
    the case's error, saying what to give."""
    name = f"python{version}"
    found = shutil.which(name)
    candidates = [found] if found else []
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    if pyenv.is_dir():
        def patch(folder: Path) -> tuple[int, ...]:
            tail = folder.name[len(version) + 1:]
            return tuple(int(p) for p in tail.split(".") if p.isdigit()) or (-1,)

        folders = [f for f in pyenv.iterdir() if re.fullmatch(re.escape(version) + r"\.\d+",
                                                               f.name)]
        candidates += [str(f / "bin" / name) for f in sorted(folders, key=patch, reverse=True)]
    candidates.append(f"/usr/bin/{name}")
    for candidate in candidates:
        try:
            done = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % "
                                   "sys.version_info[:2])"], capture_output=True, text=True,
                                  check=False, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0 and done.stdout.strip() == version:
            return candidate
    raise FixtureError(f"no Python {version} on this host (looked for {name} on PATH, in "
                       f"{pyenv} and /usr/bin): install it, or give python: the path of one")


def prepare_virtualenv(requirements: list[str], python: str | None, root: Path) -> Path:
    """A virtualenv with the scenario's requirements, keyed by their hash and the interpreter.

    The measured program never shares the runner's own environment. Built at its final path
    (a virtualenv is not relocatable) under the key's lock, with the marker written last.
    """
    interpreter = python or sys.executable
    try:
        version = subprocess.run([interpreter, "-c", "import sys; print(sys.version)"],
                                 capture_output=True, text=True, check=False)
    except OSError as exc:
        raise FixtureError(f"cannot run the interpreter {interpreter!r}: {exc}") from None
    if version.returncode != 0:
        raise FixtureError(f"cannot run the interpreter {interpreter!r}")
    key = _key({"requirements": sorted(requirements), "python": version.stdout.strip()})
    target = root / "venvs" / key
    if _has_marker(target):
        return target
    _remembered(target)
    with key_lock(root, "venv", key):
        if _has_marker(target):  # made by another runner while this one waited
            return target
        shutil.rmtree(target, ignore_errors=True)  # half-built by a runner that died
        log = log_path(root, "venv", key)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.unlink(missing_ok=True)
        steps = [("creating the virtualenv for", "venv", [interpreter, "-m", "venv", str(target)]),
                 ("installing", "pip", [str(target / "bin" / "python"), "-m", "pip", "install",
                                        "--quiet", "--disable-pip-version-check",
                                        *requirements])][:2 if requirements else 1]
        for what, tool, argv in steps:
            code, start = _run_logged(argv, log)
            if code != 0:
                shutil.rmtree(target, ignore_errors=True)
                raise _fail(target, f"{what} the requirements {requirements} failed "
                                    f"({tool} exited {code})", log, start)
        (target / COMPLETE).write_text("\n".join(requirements))
    return target
