"""The terminal's view of a running check: a transient rich progress line, and notes printed
above it."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: the parser (--help, --version) stays light
    from rich.console import Console
    from rich.progress import Progress, TaskID


class RichProgress:
    """A ``runner.session.CheckProgress`` drawn on a rich console."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> RichProgress:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                  TimeElapsedColumn(), console=self.console, transient=True)
        self._progress.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.__exit__(kind, error, trace)
        self._progress = self._task = None

    def begin(self, total: int) -> None:
        if self._progress is not None:
            self._task = self._progress.add_task("starting", total=total)

    def say(self, message: str) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=message)

    def case_done(self) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task)

    def note(self, message: str) -> None:
        self.console.print(message)


def terminal_console() -> Console:
    """The console commands print to: wide enough in CI logs that tables do not wrap."""
    from runner.reports.terminal import console_for

    return console_for(sys.stdout)
