"""The untraced overhead of memsla on a real build: interleaved pairs of the bare command and the
same command as one untraced memsla run, as ratios. Run when the machine is quiet:
python3 benchmarks/untraced_pairs.py [--pages 500] [--pairs 9] [--backend cgroup] [--variant ...]

Each pair runs the bare build, then memsla's, in alternating order (bare first in even pairs),
so drift in the machine's speed falls on both. The bare build writes into a fresh, empty output
folder that is removed afterwards, as memsla's {output} is: a reused folder is overwritten in
place, which is cheaper than creating the files and would count as memsla's overhead.

Variants isolate one cost each (compare their ratios with the default's):
  default       memsla as shipped
  probe-only    the bare command with the probe's environment (PYTHONPATH, MEMSLA_*): no cgroup
  slow-sampler  memsla with sample_interval 1s (the 20 ms sampler thread nearly idle)
The memsla duration is the build's own (from its spawn to its wait4), not the check's.
Needs pelican in the runner's environment (pip install -e '.[dev]'). Prints, does not assert.
"""

from __future__ import annotations

import argparse
import json
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


def pelican(site: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "pelican", str(site / "content"), "-s",
            str(site / "pelicanconf.py"), "-o", str(out), "-q"]


def bare_once(site: Path, work: Path, env: dict[str, str] | None = None) -> float:
    out = Path(tempfile.mkdtemp(prefix="bare-", dir=work))
    try:
        start = time.monotonic()
        subprocess.run(pelican(site, out), check=True, env=env, stdout=subprocess.DEVNULL)
        return time.monotonic() - start
    finally:
        shutil.rmtree(out, ignore_errors=True)


def probe_env(work: Path) -> dict[str, str]:
    stage = staging.stage(work / "cache")
    probe = work / "probe"
    probe.mkdir(exist_ok=True)
    return {**os.environ, **staging.environment(str(stage), str(probe), trace=False,
                                                t0=time.time())}


def memsla_once(work: Path, sla: Path) -> float:
    results = work / "r.json"
    subprocess.run([sys.executable, "-m", "runner", "check", str(sla), "--json", str(results)],
                   cwd=work, check=False, capture_output=True,
                   env={**os.environ, "MEMSLA_CACHE_DIR": str(work / "cache")})
    case = json.loads(results.read_text())["cases"][0]
    if case.get("error"):
        raise SystemExit(f"memsla could not run the build: {case['error']}")
    return float(next(r["duration"] for r in case["runs"] if r["kind"] == "timed"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--pairs", type=int, default=9)
    parser.add_argument("--backend", default="cgroup")
    parser.add_argument("--variant", choices=["default", "probe-only", "slow-sampler"],
                        default="default")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        site = work / "site"
        generate_site(site, pages=args.pages)
        interval = "1s" if args.variant == "slow-sampler" else "20ms"
        sla = work / "sla.yaml"
        sla.write_text(f"""
version: 1
defaults: {{backend: {args.backend}, repeats: 1, tracker: none, sample_interval: {interval}}}
scenarios:
  pelican:
    command: {json.dumps(pelican(site, Path("{output}")))}
    slas: [duration < 1h]
""")
        env = probe_env(work) if args.variant == "probe-only" else None
        bare_once(site, work)  # warm the page cache and Python's bytecode caches
        ratios = []
        for pair in range(args.pairs):
            def other() -> float:
                return (bare_once(site, work, env) if env is not None
                        else memsla_once(work, sla))
            if pair % 2 == 0:
                bare, measured = bare_once(site, work), other()
            else:
                measured, bare = other(), bare_once(site, work)
            ratios.append(measured / bare)
            print(f"  pair {pair + 1}: bare {bare:6.2f} s  {args.variant} {measured:6.2f} s  "
                  f"{measured / bare:.3f}x", flush=True)
        print(f"pelican, {args.pages} pages, {args.variant}, backend {args.backend}: untraced "
              f"overhead {statistics.median(ratios):.3f}x median of {len(ratios)} pairs "
              f"(range {min(ratios):.3f}-{max(ratios):.3f})")


if __name__ == "__main__":
    main()
