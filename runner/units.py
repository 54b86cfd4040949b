"""Parsing and formatting of quantities: bytes, seconds, counts and ratios.

Values are kept in bytes and seconds everywhere; this module is the only place that knows unit
suffixes. Binary units (KiB, MiB, GiB, TiB) are powers of 1024; decimal units (KB, MB, GB, TB)
are powers of 1000, as the SI and IEC define them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from enum import Enum


class Kind(str, Enum):
    """What a quantity measures; decides which unit suffixes are accepted."""

    BYTES = "bytes"
    SECONDS = "seconds"
    COUNT = "count"
    RATIO = "ratio"  # a fraction; "10%" is 0.1
    NUMBER = "number"  # dimensionless, e.g. a scaling exponent


BYTE_UNITS: dict[str, int] = {
    "b": 1,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
    "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
    "k": 1024, "m": 1024**2, "g": 1024**3,  # docker-style shorthands are binary
}
SECOND_UNITS: dict[str, float] = {
    "ms": 0.001, "s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0,
}

# Every quantity has a bound, so no value read from a file can overflow something downstream.
# Sizes end up in cgroup files and Docker's API, which take a signed 64-bit count of bytes.
MAX_BYTES = 2**63 - 1
# No build memsla measures runs for a week; a longer timeout or duration bound is a typo.
MAX_SECONDS = 7 * 24 * 3600.0
# Counts (exit codes, OOM kills, blocks) stay exact as floats.
MAX_COUNT = 2**53
# Ratios (10% is 0.1) and plain numbers (a scaling exponent) are small.
MAX_RATIO = 1e6
MAX_NUMBER = 1e6

# Applied to the stripped text: a leading or trailing \s* here backtracks quadratically.
_QUANTITY = re.compile(r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z%]*)")


class UnitError(ValueError):
    """A quantity could not be parsed; the message says what is accepted."""


def _split(text: str) -> tuple[float, str]:
    match = _QUANTITY.fullmatch(text.strip())
    if not match:
        raise UnitError(f"{clip(text)} is not a number with an optional unit")
    return float(match.group(1)), match.group(2)


def _number(value: str | int | float, what: str) -> tuple[float, str]:
    """The number and unit of a quantity; bools are refused because YAML turns 'yes' into True."""
    if isinstance(value, bool):
        raise UnitError(f"{value!r} is not {what}")
    if isinstance(value, str):
        return _split(value)
    if not isinstance(value, int | float):
        kind = {dict: "a mapping", list: "a list"}.get(type(value), type(value).__name__)
        raise UnitError(f"{what} is a number with an optional unit, not {kind}")
    try:
        return float(value), ""
    except OverflowError:
        raise UnitError(f"{clip(value)} is too large for {what}") from None


def _finite(number: float, value: str | int | float, what: str, bound: float) -> float:
    if not math.isfinite(number):
        raise UnitError(f"{what} must be a finite number, not {clip(value)}")
    if abs(number) > bound:
        raise UnitError(f"{clip(value)} is too large for {what} (at most {bound:g})")
    return number


def clip(value: object, limit: int = 60) -> str:
    """``repr(value)``, shortened in the middle: a message quotes the value, not a whole file."""
    if isinstance(value, int) and value.bit_length() > 128:
        return f"a number of {value.bit_length()} bits"  # repr() refuses > 4300 digits
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit // 2]}...{text[-limit // 2:]}"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` with the closest of ``choices`` to ``word``, or "" if none is
    close. difflib is imported here, only for a name that was not one of them."""
    import difflib

    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse_bytes(value: str | int | float) -> int:
    """'2GiB' -> 2147483648; a bare number is bytes."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_BYTES:
        return value  # exact, where a float would round 2**63 - 1 up
    number, unit = _number(value, "a size")
    if unit and unit.lower() not in BYTE_UNITS:
        raise UnitError(
            f"unknown size unit {clip(unit)} in {clip(value)}; use B, KiB, MiB, GiB, TiB "
            "(powers of 1024) or KB, MB, GB, TB (powers of 1000)"
        )
    result = number * BYTE_UNITS[unit.lower()] if unit else number
    if result < 0 or not math.isfinite(result):
        raise UnitError(f"a size must be a finite non-negative number, not {clip(value)}")
    if result > MAX_BYTES:
        raise UnitError(f"{clip(value)} is too large for a size (at most 8 EiB)")
    return round(result)


def parse_seconds(value: str | int | float) -> float:
    """'120s' -> 120.0, '500ms' -> 0.5, '10min' -> 600.0; a bare number is seconds."""
    number, unit = _number(value, "a duration")
    if unit and unit.lower() not in SECOND_UNITS:
        raise UnitError(f"unknown duration unit {clip(unit)} in {clip(value)}; use ms, s, "
                        "min or h")
    result = number * SECOND_UNITS[unit.lower()] if unit else number
    if result < 0 or not math.isfinite(result):
        raise UnitError(f"a duration must be a finite non-negative number, not {clip(value)}")
    if result > MAX_SECONDS:
        raise UnitError(f"{clip(value)} is too long for a duration (at most 168h, a week)")
    return result


def parse_ratio(value: str | int | float) -> float:
    """'10%' -> 0.1; a bare number is taken as the fraction itself."""
    number, unit = _number(value, "a ratio")
    if unit == "%":
        number /= 100.0
    elif unit:
        raise UnitError(f"unknown ratio unit {clip(unit)} in {clip(value)}; write a percentage "
                        "like 10%")
    return _finite(number, value, "a ratio", MAX_RATIO)


def parse_number(value: str | int | float) -> float:
    number, unit = _number(value, "a number")
    if unit:
        raise UnitError(f"{clip(value)} takes no unit")
    return _finite(number, value, "a number", MAX_NUMBER)


def parse_count(value: str | int | float) -> int:
    number, unit = _number(value, "a count")
    if unit:
        raise UnitError(f"{clip(value)} takes no unit")
    number = _finite(number, value, "a count", MAX_COUNT)
    if number != int(number):
        raise UnitError(f"{clip(value)} is not a whole number")
    return int(number)


def parse(kind: Kind, value: str | int | float) -> float:
    """Parse a quantity of the given kind into its base unit (bytes, seconds, 1)."""
    if kind is Kind.BYTES:
        return parse_bytes(value)
    if kind is Kind.SECONDS:
        return parse_seconds(value)
    if kind is Kind.RATIO:
        return parse_ratio(value)
    if kind is Kind.COUNT:
        return parse_count(value)
    return parse_number(value)


def _g3(value: float, *, signed: bool = False) -> str:
    """Three significant digits, but never 1.02e+03 for a number people read as 1024."""
    text = f"{value:+.3g}" if signed else f"{value:.3g}"
    if "e+" in text:
        text = f"{value:+.0f}" if signed else f"{value:.0f}"
    return text


def format_bytes(value: float | None, *, signed: bool = False) -> str:
    """Binary units with three significant digits: 1536 -> '1.5 KiB'."""
    if value is None:
        return "-"
    sign = "-" if value < 0 else ("+" if signed and value > 0 else "")
    magnitude = abs(value)
    units = (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024))
    for unit, size in units:
        if magnitude >= size:
            return f"{sign}{_g3(magnitude / size)} {unit}"
    return f"{sign}{magnitude:.0f} B"


def format_seconds(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "-"
    sign = "-" if value < 0 else ("+" if signed and value > 0 else "")
    magnitude = abs(value)
    if magnitude < 1:
        return f"{sign}{_g3(magnitude * 1000)} ms"
    if magnitude < 120:
        return f"{sign}{_g3(magnitude)} s"
    return f"{sign}{_g3(magnitude / 60)} min"


def format_count(number: int, thing: str) -> str:
    """``'1 check'``, ``'3 checks'``."""
    return f"{number} {thing}{'' if number == 1 else 's'}"


def format_percent(ratio: float, *, signed: bool = False) -> str:
    """``'15%'``, ``'+4.2%'``, ``'+inf%'``: a ratio in percent, one decimal below 10%."""
    if math.isinf(ratio):
        return "+inf%" if ratio > 0 else "-inf%"
    value = ratio * 100
    digits = 1 if abs(value) < 10 else 0
    return f"{value:+.{digits}f}%" if signed else f"{value:.{digits}f}%"


def format_value(kind: Kind, value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "-"
    if kind is Kind.BYTES:
        return format_bytes(value, signed=signed)
    if kind is Kind.SECONDS:
        return format_seconds(value, signed=signed)
    if kind is Kind.RATIO:
        return f"{_g3(value * 100, signed=signed)}%"
    if kind is Kind.COUNT:
        return f"{value:+.0f}" if signed else f"{value:.0f}"
    return _g3(value, signed=signed)
