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

    def allows(self) -> bool:
        """Whether more time may be spent."""
        return self.spent <= self.allowance + self.fraction * (time.monotonic() - self.started)
