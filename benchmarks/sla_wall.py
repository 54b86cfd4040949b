"""The shipped sla.yaml's wall time, before and after: `runner check sla.yaml` as a user runs it,
with memsla at another git revision (before) and as checked out (after), in interleaved pairs.
Run when the machine is quiet:
python3 benchmarks/sla_wall.py [--before REV | --before-flag] [--pairs 3] [--backend cgroup]
                               [--only pelican] [--size 500 ...]

--before REV   memsla as it was at REV (default: main), exported with `git archive` into a
               temporary folder and run from there; the same sla.yaml (this checkout's) for both
--before-flag  this checkout both times, before with `trace_sizes: all` in the file's defaults:
               the traced run at every size, as memsla made it before trace_sizes existed
Both sides share memsla's cache (fixtures, virtualenvs, images), warmed by one check of each
side first. Prints each pair's wall times and the median ratio after/before; asserts nothing.
The whole file builds Pelican up to 10,000 pages: about ten minutes a check on a 2-core machine
(`--only pelican` leaves out the headline 10K build, which is untraced either way).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def export(revision: str, into: Path) -> Path:
    """memsla's package at ``revision``, in ``into``."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision, "runner"],
                             check=True, capture_output=True).stdout
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def check(code: Path, sla: Path, args: argparse.Namespace) -> float:
    """Seconds of one `runner check` of ``sla`` by the memsla package in ``code``."""
    argv = [sys.executable, "-m", "runner", "check", sla.name, "--backend", args.backend,
            "--json", "results.json"]
    for name in args.only:
        argv += ["--only", name]
    for size in args.size:
        argv += ["--size", str(size)]
    env = {**os.environ, "PYTHONPATH": str(code)}
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=sla.parent, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, check=False)
    seconds = time.monotonic() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"runner (from {code}) exited {proc.returncode}: {proc.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    side = parser.add_mutually_exclusive_group()
    side.add_argument("--before", default="main", metavar="REV",
                      help="the git revision memsla ran at before (default: main)")
    side.add_argument("--before-flag", action="store_true",
                      help="before: this checkout with trace_sizes: all")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--backend", default="cgroup")
    parser.add_argument("--only", action="append", default=[], help="a scenario (repeatable)")
    parser.add_argument("--size", action="append", type=int, default=[],
                        help="a size (repeatable)")
    args = parser.parse_args()
    shipped = (REPO / "sla.yaml").read_text()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in ("before", "after"):
            (work / name).mkdir()
        after_sla = work / "after" / "sla.yaml"
        after_sla.write_text(shipped)
        before_sla = work / "before" / "sla.yaml"
        if args.before_flag:
            before_code, label = REPO, "trace_sizes: all"
            if "\ndefaults:\n" not in shipped:
                raise SystemExit("sla.yaml has no 'defaults:' block to add trace_sizes to")
            before_sla.write_text(shipped.replace("\ndefaults:\n", "\ndefaults:\n"
                                                  "  trace_sizes: all\n", 1))
        else:
            before_code, label = export(args.before, work / "code"), args.before
            before_sla.write_text(shipped)
        sides = {"before": (before_code, before_sla), "after": (REPO, after_sla)}
        for code, sla in sides.values():  # fixtures, virtualenvs, the page cache
            check(code, sla, args)
        walls: dict[str, list[float]] = {"before": [], "after": []}
        for pair in range(args.pairs):
            order = ("before", "after") if pair % 2 == 0 else ("after", "before")
            for name in order:
                walls[name].append(check(*sides[name], args))
            print(f"  pair {pair + 1} ({' then '.join(order)}): before "
                  f"{walls['before'][-1]:.1f} s, after {walls['after'][-1]:.1f} s "
                  f"({walls['after'][-1] / walls['before'][-1]:.2f}x)", flush=True)
        ratios = [a / b for a, b in zip(walls["after"], walls["before"], strict=True)]
        print(f"sla.yaml{' --only ' + ','.join(args.only) if args.only else ''}, backend "
              f"{args.backend}, before = {label}: before {statistics.median(walls['before']):.1f} "
              f"s, after {statistics.median(walls['after']):.1f} s median; after/before "
              f"{statistics.median(ratios):.2f}x (range {min(ratios):.2f}-{max(ratios):.2f}, "
              f"{len(ratios)} pairs)")


if __name__ == "__main__":
    main()
