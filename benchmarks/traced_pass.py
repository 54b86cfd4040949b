"""The traced pass as the user waits for it: the traced build plus what memsla reads after it,
against the same build under the tracker's own tool. Run when the machine is quiet:
python3 benchmarks/traced_pass.py [--pages 500] [--pairs 7] [--tracker memray|tracemalloc|both]

memray: `memray run --no-compress` of the build, against memsla's memray pass: the build with
the probe's environment (memray in the build, as a traced run starts it, no cgroup) and then the
reading of its capture (``read_probe_dir``), timed together. The pass comes in two captures:
  aggregated  what a check makes where no rule reads memray's totals (`allocated`,
              `allocation_calls`) or phases' heap figures: memray sums it up in the build
  full        the whole capture, read in several passes (before this change: every memray
              pass, read serially before the next case started)
In a check the full capture is read by an idle worker while the next cases run; only the last
traced case's read keeps the user waiting, and that is what is timed here.
tracemalloc: the build under `python -X tracemalloc=1` (one frame per allocation: memsla's
default stack_depth), against memsla's tracemalloc pass (the probe's environment, its summaries
at the peaks and at exit, then ``read_probe_dir``).

Each round runs the builds in a rotating order, so drift in the machine's speed falls on all of
them; every build writes a fresh, empty output folder, removed afterwards.
Targets: memsla's memray pass at most 1.1x `memray run`, its tracemalloc pass at most 1.1x the
bare traced build. Needs pelican and memray in the runner's environment (pip install -e
'.[dev]'). Prints, does not assert.
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
from runner.measure.probe_records import read_probe_dir
from runner.workload.sitegen import generate_site

TARGET = 1.1
KINDS = {"memray": ("memray run", "memsla memray, aggregated", "memsla memray, full"),
         "tracemalloc": ("tracemalloc bare", "memsla tracemalloc")}


def pelican(site: Path, out: Path, python: list[str] | None = None) -> list[str]:
    return [*(python or [sys.executable]), "-m", "pelican", str(site / "content"), "-s",
            str(site / "pelicanconf.py"), "-o", str(out), "-q"]


def once(kind: str, site: Path, work: Path) -> float:
    """Seconds of one pass of ``kind``: the build, and for memsla's passes the reading after."""
    out = Path(tempfile.mkdtemp(prefix="out-", dir=work))
    probe = Path(tempfile.mkdtemp(prefix="probe-", dir=work))
    env = None
    argv = pelican(site, out)
    if kind == "memray run":
        argv = [sys.executable, "-m", "memray", "run", "-q", "--no-compress", "-f", "-o",
                str(probe / "capture.bin"), *argv[1:]]
    elif kind == "tracemalloc bare":
        argv = pelican(site, out, [sys.executable, "-X", "tracemalloc=1"])
    else:
        tracker = "memray" if "memray" in kind else "tracemalloc"
        env = {**os.environ,
               **staging.environment(str(staging.stage(work / "cache")), str(probe), trace=True,
                                     t0=time.time()),
               **staging.probe_settings(phases={}, stack_depth=1, tracker=tracker,
                                        aggregate=kind.endswith("aggregated"))}
    try:
        start = time.monotonic()
        subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
        if env is not None:
            data = read_probe_dir(probe)
            if not data.python or data.problems:
                raise SystemExit(f"{kind}: no heap figures read ({data.problems})")
        return time.monotonic() - start
    finally:
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(probe, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--pairs", type=int, default=7, help="rounds of the builds")
    parser.add_argument("--tracker", choices=("memray", "tracemalloc", "both"), default="both")
    args = parser.parse_args()
    trackers = ("memray", "tracemalloc") if args.tracker == "both" else (args.tracker,)
    kinds = [kind for tracker in trackers for kind in KINDS[tracker]]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        site = work / "site"
        generate_site(site, pages=args.pages)
        once(kinds[0], site, work)  # warm the page cache and the staged probe
        times: dict[str, list[float]] = {kind: [] for kind in kinds}
        for round_ in range(args.pairs):
            order = kinds[round_ % len(kinds):] + kinds[:round_ % len(kinds)]
            for kind in order:
                times[kind].append(once(kind, site, work))
            print(f"  round {round_ + 1}: " + ", ".join(f"{kind} {times[kind][-1]:.2f} s"
                                                        for kind in order), flush=True)
        print(f"pelican, {args.pages} pages, {args.pairs} rounds (pairs of one round compared):")
        for tracker in trackers:
            base, *ours = KINDS[tracker]
            print(f"  {base}: {statistics.median(times[base]):.2f} s median")
            for kind in ours:
                ratios = [a / b for a, b in zip(times[kind], times[base], strict=True)]
                median = statistics.median(ratios)
                print(f"  {kind}: {median:.2f}x {base}, median of {len(ratios)} (range "
                      f"{min(ratios):.2f}-{max(ratios):.2f}); target <= {TARGET}x: "
                      f"{'met' if median <= TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()
