"""The cost of the traced pass: the bare build, the build under tracemalloc and the build under
memray, as ratios against the bare build, on Pelican building generated pages; and, for
reference, the same build under memray's own ``memray run --no-compress``, so that memsla's
memray pass can be told apart from what memray itself costs on this workload. Run when the
machine is quiet (nothing else timed beside it):
python3 benchmarks/traced.py [--pages 1000] [--pairs 7] [--stack-depth 1] [--native]

Each round runs the four builds in a rotating order (bare, tracemalloc, memray, memray run;
then tracemalloc, memray, memray run, bare; ...), so drift in the machine's speed falls on all
of them. Every build gets a fresh, empty output folder, removed afterwards. The traced builds
run exactly as memsla's traced run starts them (the staged probe on PYTHONPATH,
MEMSLA_TRACE=1, the tracker's settings) but without a cgroup, so only the tracker's cost is
timed; their time includes the probe's work at exit (summaries, memray's capture file being
closed).
Target: the memray pass at most 1.65x the bare build (NOTES.md: `memray run` 1.65x, tracemalloc
3.6-4.4x on Pelican). Needs pelican and memray in the runner's environment
(pip install -e '.[dev]'). Prints, does not assert.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from runner.measure import staging
from runner.workload.sitegen import generate_site

MEMRAY_TARGET = 1.65
KINDS = ("bare", "tracemalloc", "memray", "memray run")


def pelican(site: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "pelican", str(site / "content"), "-s",
            str(site / "pelicanconf.py"), "-o", str(out), "-q"]


def traced_env(work: Path, tracker: str, stack_depth: int, native: bool) -> dict[str, str]:
    stage = staging.stage(work / "cache")
    probe = Path(tempfile.mkdtemp(prefix=f"probe-{tracker}-", dir=work))
    return {**os.environ,
            **staging.environment(str(stage), str(probe), trace=True, t0=time.time()),
            **staging.probe_settings(phases={}, stack_depth=stack_depth, tracker=tracker,
                                     native=native)}


def memray_run(argv: list[str], capture: Path, native: bool) -> list[str]:
    """``argv`` (a ``python -m ...`` command) under memray's own command line."""
    return [argv[0], "-m", "memray", "run", "-q", "--no-compress", "-f", "-o", str(capture),
            *(["--native"] if native else []), *argv[1:]]


def once(kind: str, site: Path, work: Path, stack_depth: int, native: bool) -> tuple[float, int]:
    """Seconds of one build, and the bytes its probe folder holds (memray's capture files)."""
    out = Path(tempfile.mkdtemp(prefix=f"{kind.replace(' ', '-')}-", dir=work))
    argv = pelican(site, out)
    env = None if kind in ("bare", "memray run") else traced_env(work, kind, stack_depth, native)
    capture = work / "memray-run.bin"
    if kind == "memray run":
        argv = memray_run(argv, capture, native)
    try:
        start = time.monotonic()
        subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
        seconds = time.monotonic() - start
        written = 0
        if env is not None:
            probe = Path(env["MEMSLA_PROBE_DIR"])
            written = sum(p.stat().st_size for p in probe.iterdir())
            shutil.rmtree(probe, ignore_errors=True)
        elif kind == "memray run":
            written = capture.stat().st_size
            capture.unlink()
        return seconds, written
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--pairs", type=int, default=7, help="rounds of the four builds")
    parser.add_argument("--stack-depth", type=int, default=1,
                        help="frames tracemalloc keeps per allocation (memsla's default: 1)")
    parser.add_argument("--native", action="store_true", help="memray with native stacks")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        site = work / "site"
        generate_site(site, pages=args.pages)
        once("bare", site, work, args.stack_depth, args.native)  # warm caches
        times: dict[str, list[float]] = {kind: [] for kind in KINDS}
        ratios: dict[str, list[float]] = {kind: [] for kind in KINDS[1:]}
        for round_ in range(args.pairs):
            order = KINDS[round_ % len(KINDS):] + KINDS[:round_ % len(KINDS)]
            seen: dict[str, float] = {}
            sizes: dict[str, int] = {}
            for kind in order:
                seen[kind], sizes[kind] = once(kind, site, work, args.stack_depth, args.native)
                times[kind].append(seen[kind])
            for kind in ratios:
                ratios[kind].append(seen[kind] / seen["bare"])
            print(f"  round {round_ + 1} ({', '.join(order)}): bare {seen['bare']:.2f} s, "
                  + ", ".join(f"{kind} {seen[kind]:.2f} s ({ratios[kind][-1]:.2f}x)"
                              for kind in ratios)
                  + f"; capture {sizes['memray'] / 2**20:.0f} MiB", flush=True)
        print(f"pelican, {args.pages} pages, stack depth {args.stack_depth}"
              f"{', native stacks' if args.native else ''}: bare "
              f"{statistics.median(times['bare']):.2f} s median")
        for kind, values in ratios.items():
            line = (f"  {kind}: {statistics.median(values):.2f}x the bare build, median of "
                    f"{len(values)} (range {min(values):.2f}-{max(values):.2f})")
            if kind == "memray":
                verdict = "within" if statistics.median(values) <= MEMRAY_TARGET else "ABOVE"
                line += f"; {verdict} the {MEMRAY_TARGET}x target"
            print(line)
        own = [m / r for m, r in zip(times["memray"], times["memray run"], strict=True)]
        print(f"  memsla's memray pass against memray run: {statistics.median(own):.2f}x, "
              f"median of {len(own)} (range {min(own):.2f}-{max(own):.2f})")


if __name__ == "__main__":
    main()
