"""Backends run one build isolated and measured. Which backends there are, and which one a case
gets, is ``registry``'s (``BACKENDS``, ``BackendPool``); ``interface`` is what each takes and
gives."""

from __future__ import annotations

from runner.backends.interface import Backend, BackendError, BackendOptions, RunRequest
from runner.backends.registry import (
    AUTO,
    BACKENDS,
    BackendPool,
    BackendSpec,
    choices,
    create,
    explicit_settings,
    names,
    select,
    unhonoured,
)

__all__ = ["AUTO", "BACKENDS", "Backend", "BackendError", "BackendOptions", "BackendPool",
           "BackendSpec", "RunRequest", "choices", "create", "explicit_settings", "names",
           "select", "unhonoured"]
