"""The fixture step and the requirements virtualenv: made before and outside the measurement,
cached by the hash of their inputs under the cache folder."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from runner.errors import FixtureError
from runner.plan import fill
from runner.slafile.model import PATH_PLACEHOLDERS, GenerateStep

DEFAULT_CACHE = Path.home() / ".cache" / "memsla"


def cache_dir() -> Path:
    return Path(os.environ.get("MEMSLA_CACHE_DIR") or DEFAULT_CACHE)


def _key(payload: object) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def prepare_fixture(step: GenerateStep, values: dict[str, object], workdir: Path,
                    root: Path, log: Path) -> Path:
    """Make (or reuse) the fixture for these matrix values; returns its folder."""
    from runner import __version__

    if step.sitegen is not None:
        spec = step.sitegen
        pages_text = fill(spec.pages, values) if isinstance(spec.pages, str) else spec.pages
        try:
            pages = int(pages_text)
        except ValueError:
            raise FixtureError(f"sitegen pages {pages_text!r} is not a whole number") from None
        inputs: dict[str, object] = {"sitegen": spec.model_dump(), "pages": pages,
                                     "version": __version__}
    else:
        assert step.command is not None
        # the fixture's own path is not an input: keep its placeholder literal in the key
        literal = {**values, **{name: "{" + name + "}" for name in PATH_PLACEHOLDERS}}
        argv = [fill(a, literal) for a in step.command]
        inputs = {"command": argv, "env": step.env, "workdir": str(workdir)}
    target = root / "fixtures" / _key(inputs)
    if (target / ".memsla-complete").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    if step.sitegen is not None:
        from runner.workload.sitegen import generate_site

        generate_site(tmp, pages=pages, flavour=step.sitegen.flavour, seed=step.sitegen.seed,
                      page_bytes=step.sitegen.page_size, sections=step.sitegen.sections)
    else:
        tmp.mkdir()
        paths = {name: tmp for name in PATH_PLACEHOLDERS}
        argv = [fill(a, {**values, **paths}) for a in step.command or []]
        env = {**os.environ, **{k: fill(v, {**values, **paths}) for k, v in step.env.items()}}
        with log.open("wb") as out:
            result = subprocess.run(argv, cwd=workdir, env=env, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    check=False)
        if result.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise FixtureError(f"the generate command {argv} exited {result.returncode}; "
                               f"its output is in {log}")
    (tmp / ".memsla-complete").write_text(json.dumps(inputs, default=str))
    tmp.rename(target)
    return target


def prepare_virtualenv(requirements: list[str], python: str | None, root: Path,
                       log: Path) -> Path:
    """A virtualenv with the scenario's requirements, keyed by their hash and the interpreter.

    The measured program never shares the runner's own environment.
    """
    interpreter = python or sys.executable
    version = subprocess.run([interpreter, "-c", "import sys; print(sys.version)"],
                             capture_output=True, text=True, check=False)
    if version.returncode != 0:
        raise FixtureError(f"cannot run the interpreter {interpreter!r}")
    target = root / "venvs" / _key({"requirements": sorted(requirements),
                                    "python": version.stdout.strip()})
    if (target / ".memsla-complete").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        steps = [[interpreter, "-m", "venv", str(target)],
                 [str(target / "bin" / "python"), "-m", "pip", "install", "--quiet",
                  "--disable-pip-version-check", *requirements]]
        for argv in steps:
            result = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, check=False)
            if result.returncode != 0:
                shutil.rmtree(target, ignore_errors=True)
                raise FixtureError(f"provisioning the requirements failed at {argv[:4]}...; "
                                   f"pip's output is in {log}")
    (target / ".memsla-complete").write_text("\n".join(requirements))
    return target
