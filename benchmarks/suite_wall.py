"""A suite's wall time: one runner at a time, `--jobs 2`, and two shards on this host merged.
Run when the machine is quiet: python3 benchmarks/suite_wall.py [--seconds 3] [--mib 64]

The suite is four planted cases of equal cost: each allocates and touches MIB MiB, then burns
one CPU for SECONDS. Prints each wall time and its ratio to the serial one, and checks the target
(four equal cases on two CPUs under --jobs 2 in at most 0.6x the serial wall time). The two
shards run at the same time as two processes (as two machines would, but sharing this host's
CPUs without cpusets), then `runner merge` joins them; its time is included. Prints, does not
assert.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 0.6

BUSY = '''
import sys, time
block = bytearray(b"\\x01") * (int(sys.argv[1]) * 1024 * 1024)
end = time.process_time() + float(sys.argv[2])
n = 0
while time.process_time() < end:
    n += 1
'''


def runner(work: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "runner", *args], cwd=work, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "MEMSLA_CACHE_DIR": str(work / "cache")})


def finish(*procs: subprocess.Popen[str]) -> None:
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode not in (0, 1):
            raise SystemExit(f"runner exited {proc.returncode}: {err[-2000:]}")


def timed(*argvs: list[str], work: Path) -> float:
    start = time.monotonic()
    finish(*(runner(work, *argv) for argv in argvs))
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="CPU time of each case")
    parser.add_argument("--mib", type=int, default=64, help="memory each case holds")
    parser.add_argument("--backend", default="cgroup")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "busy.py").write_text(BUSY)
        (work / "sla.yaml").write_text(f"""
version: 1
defaults: {{backend: {args.backend}, repeats: 1, tracker: none, limit: {args.mib * 4}MiB}}
scenarios:
  busy:
    command: [python3, busy.py, "{args.mib}", "{args.seconds}"]
    matrix: {{n: [1, 2, 3, 4]}}
    slas: [peak < {args.mib * 3}MiB]
""")
        timed(["check", "sla.yaml", "--json", "warm.json"], work=work)  # staging, page cache
        serial = timed(["check", "sla.yaml", "--json", "serial.json"], work=work)
        jobs = timed(["check", "sla.yaml", "--jobs", "2", "--json", "jobs.json"], work=work)
        shards = timed(["check", "sla.yaml", "--shard", "1/2", "--json", "s1.json"],
                       ["check", "sla.yaml", "--shard", "2/2", "--json", "s2.json"], work=work)
        shards += timed(["merge", "s1.json", "s2.json", "--json", "merged.json"], work=work)
        print(f"four cases of {args.seconds:g} s CPU and {args.mib} MiB, backend {args.backend}, "
              f"{len(os.sched_getaffinity(0))} CPUs:")
        print(f"  serial            {serial:7.2f} s   1.00x")
        print(f"  --jobs 2          {jobs:7.2f} s   {jobs / serial:.2f}x   "
              f"(target <= {TARGET}x: {'met' if jobs / serial <= TARGET else 'NOT met'})")
        print(f"  two shards+merge  {shards:7.2f} s   {shards / serial:.2f}x")


if __name__ == "__main__":
    main()
