"""The fixed cost of a check: `runner check` wall time on a build that does nothing, and the cost
of each extra run. Run when the machine is quiet:
python3 benchmarks/fixed_cost.py [--checks 9] [--backend cgroup] [--extra 10]

Prints the median wall time of a whole `runner check` (interpreter start, SLA file, backend,
one run of /bin/true, judging, results file) and, from a check with --extra more runs, the cost
per additional run. Prints, does not assert.
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


def check_seconds(work: Path, repeats: int) -> float:
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "runner", "check", "sla.yaml", "--repeats",
                           str(repeats), "--json", "r.json"], cwd=work, capture_output=True,
                          text=True, check=False,
                          env={**os.environ, "MEMSLA_CACHE_DIR": str(work / "cache")})
    took = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"runner check exited {proc.returncode}: {proc.stderr[-2000:]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checks", type=int, default=9)
    parser.add_argument("--backend", default="cgroup")
    parser.add_argument("--extra", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "sla.yaml").write_text(f"""
version: 1
defaults: {{backend: {args.backend}, tracker: none, limit: 256MiB}}
scenarios:
  nothing: {{command: [/bin/true], slas: [duration < 60s]}}
""")
        check_seconds(work, 1)  # the staged probe and the backend's first use
        one = [check_seconds(work, 1) for _ in range(args.checks)]
        more = [check_seconds(work, 1 + args.extra) for _ in range(args.checks)]
        base, extra = statistics.median(one), statistics.median(more)
        print(f"runner check on /bin/true, backend {args.backend}, {args.checks} checks each:")
        print(f"  fixed cost per check   {base:6.3f} s  (range {min(one):.3f}-{max(one):.3f})")
        print(f"  per extra run          {(extra - base) / args.extra * 1000:6.1f} ms  "
              f"({args.extra} more runs: {extra:.3f} s)")


if __name__ == "__main__":
    main()
