"""The ``runner`` command: one class per subcommand, registered in COMMANDS; ``main`` maps every
MemslaError to one stderr line and its exit code.

The subcommands are imported inside ``main``, with Ctrl-C and SIGTERM held until the command
line is parsed: an interrupt that early arrives once the command knows its arguments, so
``runner check --json`` still writes its "interrupted" results file."""

from __future__ import annotations

import argparse
import inspect
import signal
import sys
import traceback
from collections.abc import Sequence

from runner import interrupts
from runner.errors import EXIT_HOST, EXIT_INTERRUPTED, MemslaError, SpecError

EPILOG = """\
files:
  the cache (fixtures, virtualenvs, project wheels, wheels for images, run folders) is
  $MEMSLA_CACHE_DIR, default ~/.cache/memsla; several runners may share it. A failed
  step keeps its output in <cache>/logs/. Deleting the folder is always safe.
"""


def first_sentence(doc: str) -> str:
    """A docstring's first sentence, whole (however many lines it spans)."""
    paragraph = " ".join(doc.split("\n\n", 1)[0].split())
    end = paragraph.find(". ")
    return paragraph if end < 0 else paragraph[:end + 1]


def build_parser() -> argparse.ArgumentParser:
    from runner import __version__
    from runner.cli.commands import COMMANDS

    parser = argparse.ArgumentParser(
        prog="runner", description="memsla: memory SLAs for builds, measured by the kernel.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"memsla {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command_class in COMMANDS:
        command = command_class()
        doc = (command_class.__doc__ or "").strip()
        sub_parser = sub.add_parser(command.name, help=first_sentence(doc),
                                    description=inspect.cleandoc(doc),
                                    formatter_class=argparse.RawDescriptionHelpFormatter,
                                    epilog=EPILOG)
        command.prepare_parser(sub_parser)
        sub_parser.set_defaults(handler=command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    interrupts.install()
    held = set(interrupts.SIGNALS)
    signal.pthread_sigmask(signal.SIG_BLOCK, held)
    args: argparse.Namespace | None = None
    try:
        try:
            args = build_parser().parse_args(argv)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, held)  # one held meanwhile arrives here
        return int(args.handler.run(args))
    except SpecError as exc:
        print(f"{exc.location_prefix()}error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except MemslaError as exc:
        print(f"runner: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        interrupted = getattr(getattr(args, "handler", None), "interrupted", None)
        if interrupted is not None:  # what the command leaves when interrupted (a results file)
            interrupts.ignore()  # a second Ctrl-C must not stop the file being written
            try:
                interrupted(args)
            finally:
                interrupts.install()
        print("runner: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:
        # A bug in memsla, not a verdict: exit 3 so it can never read as "an SLA failed".
        traceback.print_exc()
        print("runner: internal error (a bug in memsla; please report the traceback above)",
              file=sys.stderr)
        return EXIT_HOST
