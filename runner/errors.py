"""The error hierarchy: every failure the CLI reports maps to one class and one exit code."""

from __future__ import annotations

EXIT_OK = 0
EXIT_SLA_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_HOST = 3
EXIT_INTERRUPTED = 130


class MemslaError(Exception):
    """Base of every error memsla raises on purpose; carries the CLI exit code."""

    exit_code = EXIT_HOST


class SpecError(MemslaError):
    """The SLA file (or a command-line value) is invalid: exit 2."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 column: int | None = None) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        super().__init__(self.location_prefix() + message)

    def location_prefix(self) -> str:
        if self.file is None:
            return ""
        if self.line is None:
            return f"{self.file}: "
        if self.column is None:
            return f"{self.file}:{self.line}: "
        return f"{self.file}:{self.line}:{self.column}: "


class UsageError(MemslaError):
    """Bad command-line use or input file other than the SLA file: exit 2."""

    exit_code = EXIT_BAD_INPUT


class HostError(MemslaError):
    """This host cannot measure what was asked (no writable cgroup, no engine, ...): exit 3."""

    exit_code = EXIT_HOST


class FixtureError(MemslaError):
    """The generate step or the requirements provisioning failed: exit 3."""

    exit_code = EXIT_HOST


class HistoryError(HostError):
    """The history store cannot be opened, read or written (corrupt, foreign, newer): exit 3."""
