"""The leak driver: calls a build's entry point many times in one process and records what each
call leaves behind.

Started inside the measurement as ``python3 -m runner.inbuild.leak --entry module:function ...``
(so the backend still gives it a cgroup and a limit). After every call and a full
``gc.collect()`` it appends the traced Python heap, the process's RSS and the count of
GC-tracked objects to OUT/leak.jsonl; it snapshots tracemalloc after the warm-up calls and after
the last call and records the allocation sites that grew in between. ``args`` are passed to the
function as positional arguments and also set as ``sys.argv[1:]``; with ``--console-script``
the function is a console script's entry point (``[project.scripts]``): it is called with no
arguments and ``sys.argv = [entry, *args]``, as its script would call it. A ``SystemExit`` with
code 0 or None is a completed call; any other ends the run as a failure.

Stdlib-only and CPython 3.8+: it runs in the build's interpreter.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import sys
import time
import traceback
import tracemalloc
from collections.abc import Callable
from typing import IO, Any

LEAK_FILE = "leak.jsonl"


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="memsla-leak")
    parser.add_argument("--entry", required=True, help="module:function")
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--frames", type=int, default=1, help="tracemalloc frames per trace")
    parser.add_argument("--top", type=int, default=10, help="growing sites to record")
    parser.add_argument("--out", default=os.environ.get("MEMSLA_PROBE_DIR") or ".")
    parser.add_argument("--console-script", action="store_true",
                        help="call the entry with no arguments, args in sys.argv only")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.args and args.args[0] == "--":
        args.args = args.args[1:]
    return args


def resolve(entry: str) -> Callable[..., Any]:
    module_name, _, attribute = entry.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{entry} is not callable")
    return target  # type: ignore[no-any-return]


def _rss() -> int | None:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _growing_sites(early: tracemalloc.Snapshot, late: tracemalloc.Snapshot,
                   top: int) -> list[dict[str, Any]]:
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__),
              tracemalloc.Filter(False, os.path.abspath(__file__)),
              tracemalloc.Filter(False, __file__)]
    diffs = late.filter_traces(ignore).compare_to(early.filter_traces(ignore), "lineno")
    grown = [d for d in diffs if d.size_diff > 0][:top]
    return [{"file": d.traceback[0].filename, "line": d.traceback[0].lineno,
             "size_diff": d.size_diff, "count_diff": d.count_diff, "size": d.size,
             "count": d.count} for d in grown]


class _Recorder:
    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def write(self, record: dict[str, Any]) -> None:
        self.out.write(json.dumps(record, separators=(",", ":")) + "\n")


def _call(function: Callable[..., Any], args: list[str], console_script: bool = False) -> None:
    try:
        if console_script:
            function()
        else:
            function(*args)
    except SystemExit as exc:  # CLI entry points end with sys.exit(0)
        if exc.code not in (None, 0):
            raise


def run(args: argparse.Namespace) -> int:
    with open(os.path.join(args.out, LEAK_FILE), "a", buffering=1) as out:
        return _drive(args, _Recorder(out))


def _drive(args: argparse.Namespace, recorder: _Recorder) -> int:
    recorder.write({"type": "start", "pid": os.getpid(), "entry": args.entry,
                    "calls": args.calls, "warmup": args.warmup,
                    "python": sys.version.split()[0]})
    if not tracemalloc.is_tracing():
        tracemalloc.start(args.frames)
    cwd, argv = os.getcwd(), list(sys.argv)
    early = None
    index = -1
    try:
        function = resolve(args.entry)
        gc.collect()
        for index in range(args.calls):
            if index == args.warmup:
                early = tracemalloc.take_snapshot()
            if hasattr(tracemalloc, "reset_peak"):  # 3.9+
                tracemalloc.reset_peak()
            sys.argv = [args.entry, *args.args]
            start = time.monotonic()
            _call(function, args.args, args.console_script)
            duration = time.monotonic() - start
            os.chdir(cwd)
            sys.argv = list(argv)
            gc.collect()
            current, peak = tracemalloc.get_traced_memory()
            recorder.write({"type": "call", "index": index, "warmup": index < args.warmup,
                            "duration": duration, "traced": current, "peak": peak,
                            "rss": _rss(), "objects": len(gc.get_objects())})
    except BaseException as exc:  # any failure of the build is reported, even SystemExit
        recorder.write({"type": "error", "index": index, "error": repr(exc),
                        "traceback": traceback.format_exc()[-4000:]})
        traceback.print_exc()
        return 1
    if early is not None:
        late = tracemalloc.take_snapshot()
        recorder.write({"type": "sites", "sites": _growing_sites(early, late, args.top)})
    recorder.write({"type": "end"})
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(_parse(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
