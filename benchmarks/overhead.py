"""What memsla costs a build: wall time under each backend, untraced and traced, as ratios
against the bare command. Run: python3 benchmarks/overhead.py [--pages 1000] [--backend cgroup]

Needs pelican in the runner's environment (pip install -e '.[dev]'). Prints, does not assert.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from runner.workload.sitegen import generate_site


def bare_seconds(site: Path, out: Path, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.monotonic()
        subprocess.run([sys.executable, "-m", "pelican", str(site / "content"), "-s",
                        str(site / "pelicanconf.py"), "-o", str(out), "-q"], check=True)
        times.append(time.monotonic() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backend", default="cgroup")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        site = work / "site"
        generate_site(site, pages=args.pages)
        bare = statistics.median(bare_seconds(site, work / "bare-out", args.repeats))
        (work / "sla.yaml").write_text(f"""
version: 1
defaults: {{backend: {args.backend}, repeats: {args.repeats}, tracker: tracemalloc}}
scenarios:
  pelican:
    command: [{sys.executable}, -m, pelican, {site}/content, -s, {site}/pelicanconf.py,
              -o, "{{output}}", -q]
""")
        subprocess.run([sys.executable, "-m", "runner", "check", "sla.yaml", "--json",
                        "r.json"], cwd=work, check=False, capture_output=True)
        case = json.loads((work / "r.json").read_text())["cases"][0]
        timed = statistics.median(r["duration"] for r in case["runs"] if r["kind"] == "timed")
        traced = next(r["duration"] for r in case["runs"] if r["kind"] == "traced")
        print(f"pelican, {args.pages} pages, backend {case['backend']}")
        print(f"  bare command          {bare:7.2f} s   1.00x")
        print(f"  under memsla, timed   {timed:7.2f} s   {timed / bare:.2f}x")
        print(f"  under memsla, traced  {traced:7.2f} s   {traced / bare:.2f}x"
              "  (heap figures only; never a duration)")


if __name__ == "__main__":
    main()
