"""The build's cgroup peak as the probe reads it and resets it at phase starts, by the rules of
the cgroup version the runner named: MEMSLA_CGROUP_PEAK is the peak file, MEMSLA_CGROUP_RESET
the ``PROBE_RESET_MODE`` of the module of ``runner/inbuild/cgroups`` (``v1`` or ``v2``, which
define the same names) whose files and rules apply. Nothing here knows a version.

Where one reset is seen by every reader (``PEAK_RESET_PER_READER`` false), it destroys the
cgroup-wide figure: every reset is preceded by a ``cgroup_segment`` record of the peak so far,
and the runner takes the maximum of all segments. Where each open file has a peak of its own,
each phase resets its own descriptor and the cgroup-wide figure stays.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import IO

    from .records import Records

_CGROUPS_FOLDER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                               "cgroups")


def load_files(mode: str) -> ModuleType | None:
    """The module of ``runner/inbuild/cgroups`` whose PROBE_RESET_MODE is ``mode`` (it is named
    after it), loaded alone: importing its package would bring threading and typing into every
    build. None for an unknown mode."""
    if not mode.isidentifier():
        return None
    import importlib.machinery

    path = os.path.join(_CGROUPS_FOLDER, mode + ".py")
    if not os.path.isfile(path):
        return None
    loader = importlib.machinery.SourceFileLoader("_memsla_cgroup_" + mode, path)
    module = type(os)(loader.name)  # types.ModuleType, without importing types
    module.__file__ = path
    loader.exec_module(module)
    return module if getattr(module, "PROBE_RESET_MODE", None) == mode else None


class CgroupPeak:
    def __init__(self, peak_file: str | None, mode: str, records: Records) -> None:
        self.peak_file = peak_file
        self.records = records
        self.files = load_files(mode) if mode else None
        # one reset for every reader (segments recorded), or one per open descriptor
        self.shared_reset = self.files is not None and not self.files.PEAK_RESET_PER_READER
        self.reader_reset = self.files is not None and bool(self.files.PEAK_RESET_PER_READER)

    def peak(self, handle: IO[str] | None = None) -> int | None:
        """The peak, through ``handle`` (a phase's own descriptor) or the peak file."""
        try:
            if handle is not None:
                handle.seek(0)
                return int(handle.read().strip())
            if self.peak_file:
                with open(self.peak_file) as peak_file:
                    return int(peak_file.read().strip())
        except Exception:
            return None
        return None

    def usage(self) -> int | None:
        """The cgroup's charged memory now, beside the peak file: what a phase starts from."""
        if not self.peak_file or self.files is None:
            return None
        name = os.path.join(os.path.dirname(self.peak_file), self.files.CURRENT_FILE)
        try:
            with open(name) as usage:
                return int(usage.read().strip())
        except Exception:
            return None

    def reset(self) -> bool:
        """Reset the peak for every reader, after a ``cgroup_segment`` of the peak so far;
        whether it was reset."""
        if not self.shared_reset or not self.peak_file:
            return False
        before = self.peak()
        try:
            with open(self.peak_file, "w") as peak_file:
                peak_file.write(self._reset_value())
        except Exception:
            return False
        self.records.write({"type": "cgroup_segment", "t": self.records.now(), "peak": before})
        return True

    def open_reset(self) -> IO[str] | None:
        """A descriptor of the peak file whose own peak was reset (None: not on this version,
        or refused by the kernel)."""
        if not self.reader_reset or not self.peak_file:
            return None
        try:
            handle = open(self.peak_file, "r+")  # noqa: SIM115 - open until the phase ends
            handle.write(self._reset_value())
            handle.flush()
            return handle
        except Exception:
            return None

    def _reset_value(self) -> str:
        assert self.files is not None
        return str(self.files.PEAK_RESET_VALUE) + "\n"
