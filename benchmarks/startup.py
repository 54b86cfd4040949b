"""Start-up a user feels: `runner --version`, `runner --help` and a trivial check (one case of
/bin/true, one timed run, no tracker) against a bare `python -c pass`, as ratios. Run when the
machine is quiet: python3 benchmarks/startup.py [--pairs 15] [--backend cgroup]

Each pair runs the bare interpreter and the command in alternating order (bare first in even
pairs), so drift in the machine's speed falls on both. Per command: the median of its wall time
over the pairs with the range, its ratio to the bare interpreter of the same pair (median and
range), its CPU time (user + system, less sensitive to other load than wall time), and the
median against the target (0.1 s for --version and --help, 0.25 s for the check). A fourth
line, `floor`, is no memsla command: the interpreter importing pydantic, PyYAML and rich and
building one model, which any check pays while the SLA file and the results are pydantic models
and the tables rich's; a fifth, `models`, imports memsla's SLA-file and results models (built at
import) and nothing else of memsla: a check's time above it is the rest of memsla's own.

Imports read cached bytecode, as an installed package's do: the commands run without
PYTHONDONTWRITEBYTECODE and with PYTHONPYCACHEPREFIX in a folder of their own, filled by one
untimed round first. The check's cache (the staged probe) is warm after that round too.
Prints, does not assert.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from time import monotonic

TARGETS = {"--version": 0.1, "--help": 0.1, "check": 0.25}
FLOOR = """
import pydantic, rich.console, rich.table, yaml
class One(pydantic.BaseModel):
    x: int = 0
One(x=1)
"""
MODELS = "import rich.console, rich.table, runner.slafile.model, runner.results"


def timed(argv: list[str], work: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one command (its exit status must be 0)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = monotonic()
    proc = subprocess.run(argv, cwd=work, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, check=False)
    wall = monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[1:])} exited {proc.returncode}: {proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=15)
    parser.add_argument("--backend", default="cgroup")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "sla.yaml").write_text(f"""
version: 1
defaults: {{backend: {args.backend}, tracker: none, limit: 256MiB, repeats: 1}}
scenarios:
  nothing: {{command: [/bin/true], slas: [duration < 60s]}}
""")
        env = {key: value for key, value in os.environ.items()
               if key != "PYTHONDONTWRITEBYTECODE"}
        env.update(PYTHONPYCACHEPREFIX=str(work / "pycache"), MEMSLA_CACHE_DIR=str(work / "cache"))
        bare = [sys.executable, "-c", "pass"]
        commands = {"--version": [sys.executable, "-m", "runner", "--version"],
                    "--help": [sys.executable, "-m", "runner", "--help"],
                    "check": [sys.executable, "-m", "runner", "check", "sla.yaml"],
                    "floor": [sys.executable, "-c", FLOOR],
                    "models": [sys.executable, "-c", MODELS]}
        for argv in [bare, *commands.values()]:  # bytecode caches, the staged probe
            timed(argv, work, env)
        walls: dict[str, list[float]] = {name: [] for name in commands}
        cpus: dict[str, list[float]] = {name: [] for name in commands}
        ratios: dict[str, list[float]] = {name: [] for name in commands}
        bare_walls: list[float] = []
        for pair in range(args.pairs):
            for name, argv in commands.items():
                if pair % 2 == 0:
                    (base, _), (wall, cpu) = timed(bare, work, env), timed(argv, work, env)
                else:
                    (wall, cpu), (base, _) = timed(argv, work, env), timed(bare, work, env)
                bare_walls.append(base)
                walls[name].append(wall)
                cpus[name].append(cpu)
                ratios[name].append(wall / base)
        print(f"start-up, {args.pairs} pairs each against python -c pass (median "
              f"{statistics.median(bare_walls):.3f} s), backend {args.backend} for the check:")
        for name in commands:
            wall, ratio = statistics.median(walls[name]), statistics.median(ratios[name])
            target = TARGETS.get(name)
            verdict = "" if target is None else (
                f"  target {target} s: {'met' if wall <= target else 'NOT met'}")
            print(f"  {name:10} {wall:6.3f} s (range {min(walls[name]):.3f}-"
                  f"{max(walls[name]):.3f})  {ratio:5.2f}x bare (range "
                  f"{min(ratios[name]):.2f}-{max(ratios[name]):.2f})  cpu "
                  f"{statistics.median(cpus[name]):.3f} s{verdict}")


if __name__ == "__main__":
    main()
