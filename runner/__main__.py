"""``python -m runner`` is the ``runner`` command."""

import signal
import sys

# Ctrl-C and SIGTERM held from the first moment: runner.cli.main takes them once it knows what
# it was asked to do (an interrupted check still writes its results file).
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})

from runner.cli import main  # noqa: E402 - after the signals are held

sys.exit(main())
