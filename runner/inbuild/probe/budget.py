"""The time the probe may spend in the build's own process: a fraction of the time since the
probe started, plus a fixed allowance in seconds."""

from __future__ import annotations

import time


class Budget:
    def __init__(self, fraction: float, allowance: float, started: float) -> None:
        self.fraction = fraction
        self.allowance = allowance
        self.started = started  # time.monotonic() when the probe started
        self.spent = 0.0

    def allows(self, upcoming: float = 0.0) -> bool:
        """Whether ``upcoming`` seconds more may be spent."""
        return (self.spent + upcoming
                <= self.allowance + self.fraction * (time.monotonic() - self.started))
