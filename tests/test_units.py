"""Quantities: sizes (binary and decimal units), durations, ratios, counts; parse and format."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from runner.units import (
    MAX_BYTES,
    MAX_COUNT,
    MAX_SECONDS,
    Kind,
    UnitError,
    clip,
    format_bytes,
    format_seconds,
    format_value,
    parse,
    parse_bytes,
    parse_count,
    parse_number,
    parse_ratio,
    parse_seconds,
)

KiB, MiB, GiB, TiB = 1024, 1024**2, 1024**3, 1024**4


@pytest.mark.parametrize(("text", "expected"), [
    ("0", 0),
    ("1", 1),
    ("1B", 1),
    ("1b", 1),
    ("1KiB", KiB),
    ("1kib", KiB),
    ("2 MiB", 2 * MiB),
    ("1.5GiB", 3 * GiB // 2),
    ("1TiB", TiB),
    ("1KB", 1000),
    ("1MB", 1000**2),
    ("1.5GB", 1_500_000_000),
    ("1TB", 1000**4),
    ("1k", KiB),  # docker-style shorthands are binary
    ("512m", 512 * MiB),
    ("2g", 2 * GiB),
    (".5KiB", 512),
    ("1e3", 1000),
    ("+3", 3),
    ("  7  ", 7),
    ("1.5", 2),  # whole bytes
    (4096, 4096),
    (2.6, 3),
    (MAX_BYTES, MAX_BYTES),
])
def test_parse_bytes(text: str | int | float, expected: int) -> None:
    assert parse_bytes(text) == expected


def test_binary_and_decimal_units_differ() -> None:
    assert parse_bytes("1KB") == 1000 < parse_bytes("1KiB") == 1024
    assert parse_bytes("1GB") == 10**9 < parse_bytes("1GiB") == 2**30


@pytest.mark.parametrize(("value", "message"), [
    ("", "not a number"),
    ("GiB", "not a number"),
    ("2 GiB B", "not a number"),
    ("1,5GiB", "not a number"),
    ("2Gi", "unknown size unit 'Gi'"),
    ("20s", "unknown size unit 's'"),
    ("-1", "non-negative"),
    ("-1KiB", "non-negative"),
    ("1e999", "finite"),
    (float("inf"), "finite"),
    (float("nan"), "finite"),
    (10**400, "too large"),
    (MAX_BYTES + 1, "too large"),
    ("9EB", "unknown size unit"),
    ("99999999TiB", "too large"),
    (True, "not a size"),
    (False, "not a size"),
])
def test_parse_bytes_errors(value: str | int | float, message: str) -> None:
    with pytest.raises(UnitError, match=message):
        parse_bytes(value)


@pytest.mark.parametrize(("text", "expected"), [
    ("0", 0.0),
    ("10", 10.0),
    ("1.5s", 1.5),
    ("1 sec", 1.0),
    ("500ms", 0.5),
    ("2min", 120.0),
    ("2m", 120.0),
    ("1h", 3600.0),
    ("1H", 3600.0),
    (3, 3.0),
    (0.25, 0.25),
])
def test_parse_seconds(text: str | int | float, expected: float) -> None:
    assert parse_seconds(text) == pytest.approx(expected)


@pytest.mark.parametrize(("value", "message"), [
    ("10 minutes", "unknown duration unit 'minutes'"),
    ("2GiB", "unknown duration unit 'GiB'"),
    ("-1s", "non-negative"),
    ("inf", "not a number"),
    (float("inf"), "finite"),
    (10**400, "too large"),
    (True, "not a duration"),
])
def test_parse_seconds_errors(value: str | int | float, message: str) -> None:
    with pytest.raises(UnitError, match=message):
        parse_seconds(value)


@pytest.mark.parametrize(("text", "expected"), [
    ("10%", 0.1),
    ("150%", 1.5),
    ("-5%", -0.05),  # a growth bound may be a shrink
    ("0.1", 0.1),  # a bare number is the fraction itself
    (0.25, 0.25),
    (1, 1.0),
])
def test_parse_ratio(text: str | int | float, expected: float) -> None:
    assert parse_ratio(text) == pytest.approx(expected)


@pytest.mark.parametrize("value", ["10 pct", "10MiB", "1e999%", float("nan"), True])
def test_parse_ratio_errors(value: str | int | float) -> None:
    with pytest.raises(UnitError):
        parse_ratio(value)


def test_parse_count_and_number() -> None:
    assert parse_count("3") == 3
    assert parse_count(3) == 3
    assert parse_count("1e3") == 1000
    assert parse_count("-1") == -1
    assert parse_number("1.25") == 1.25
    assert parse_number("-0.5") == -0.5
    assert parse_number(2) == 2.0


@pytest.mark.parametrize("value", ["1.5", "3 items", "1e999", float("inf"), float("nan"), True])
def test_parse_count_errors(value: str | int | float) -> None:
    with pytest.raises(UnitError):
        parse_count(value)


@pytest.mark.parametrize("value", ["1s", "1%", "x", float("-inf"), False])
def test_parse_number_errors(value: str | int | float) -> None:
    with pytest.raises(UnitError):
        parse_number(value)


@pytest.mark.parametrize(("kind", "text", "expected"), [
    (Kind.BYTES, "1KiB", 1024),
    (Kind.SECONDS, "1min", 60.0),
    (Kind.RATIO, "50%", 0.5),
    (Kind.COUNT, "4", 4),
    (Kind.NUMBER, "1.1", 1.1),
])
def test_parse_dispatches_on_kind(kind: Kind, text: str, expected: float) -> None:
    assert parse(kind, text) == pytest.approx(expected)


@pytest.mark.parametrize(("value", "text"), [
    (None, "-"),
    (0, "0 B"),
    (1023, "1023 B"),
    (1024, "1 KiB"),
    (1536, "1.5 KiB"),
    (MiB - 1, "1024 KiB"),  # rounds up within KiB rather than printing 1.02e+03
    (100 * MiB, "100 MiB"),
    (1.5 * GiB, "1.5 GiB"),
    (1000 * GiB, "1000 GiB"),
    (2 * TiB, "2 TiB"),
    (-1536, "-1.5 KiB"),
])
def test_format_bytes(value: float | None, text: str) -> None:
    assert format_bytes(value) == text


def test_format_bytes_signed() -> None:
    assert format_bytes(1536, signed=True) == "+1.5 KiB"
    assert format_bytes(-1536, signed=True) == "-1.5 KiB"
    assert format_bytes(0, signed=True) == "0 B"


@pytest.mark.parametrize(("value", "text"), [
    (None, "-"),
    (0.0005, "0.5 ms"),
    (0.25, "250 ms"),
    (1.5, "1.5 s"),
    (119, "119 s"),
    (120, "2 min"),
    (5400, "90 min"),
    (72000, "1200 min"),
    (-2.5, "-2.5 s"),
])
def test_format_seconds(value: float | None, text: str) -> None:
    assert format_seconds(value) == text


def test_format_seconds_signed() -> None:
    assert format_seconds(0.5, signed=True) == "+500 ms"


@pytest.mark.parametrize(("kind", "value", "signed", "text"), [
    (Kind.BYTES, 2 * GiB, False, "2 GiB"),
    (Kind.SECONDS, 90, False, "90 s"),
    (Kind.RATIO, 0.1, False, "10%"),
    (Kind.RATIO, 0.1, True, "+10%"),
    (Kind.RATIO, -0.025, True, "-2.5%"),
    (Kind.RATIO, 12.5, False, "1250%"),
    (Kind.COUNT, 3, False, "3"),
    (Kind.COUNT, 3, True, "+3"),
    (Kind.NUMBER, 1.0312, False, "1.03"),
    (Kind.NUMBER, 1e-5, False, "1e-05"),
    (Kind.NUMBER, 12345.0, True, "+12345"),
    (Kind.BYTES, None, False, "-"),
])
def test_format_value(kind: Kind, value: float | None, signed: bool, text: str) -> None:
    assert format_value(kind, value, signed=signed) == text


@pytest.mark.parametrize("value", [
    0, 1, 999, 1024, 1536, 4000, 123_456, 10 * MiB, 3 * GiB // 2, 7 * GiB + 12345, 3 * TiB,
])
def test_bytes_round_trip(value: int) -> None:
    # three significant digits: within half a unit of the third digit
    assert parse_bytes(format_bytes(value)) == pytest.approx(value, rel=5e-3)


@pytest.mark.parametrize("text", ["1.5 KiB", "512 MiB", "2 GiB", "1.25 TiB", "17 B"])
def test_formatted_sizes_are_stable(text: str) -> None:
    assert format_bytes(parse_bytes(text)) == text


@pytest.mark.parametrize("value", [0.0004, 0.02, 0.5, 1, 59.9, 120, 3599, 36000])
def test_seconds_round_trip(value: float) -> None:
    assert parse_seconds(format_seconds(value)) == pytest.approx(value, rel=5e-3)


def test_ratio_round_trip() -> None:
    for value in (0.1, -0.05, 0.333, 2.0):
        text = format_value(Kind.RATIO, value, signed=True)
        assert math.isclose(parse_ratio(text), value, rel_tol=5e-3)


@pytest.mark.parametrize(("parse_one", "value", "message"), [
    (parse_bytes, {"a": 1}, "not a mapping"),
    (parse_seconds, [1, 2], "not a list"),
    (parse_ratio, {"a": 1}, "not a mapping"),
    (parse_count, [1], "not a list"),
    (parse_seconds, "169h", "too long for a duration"),
    (parse_seconds, 10**20, "too long for a duration"),
    (parse_count, 2**60, "too large for a count"),
    (parse_count, "1e300", "too large for a count"),
    (parse_ratio, "1e300%", "too large for a ratio"),
    (parse_number, -1e300, "too large for a number"),
])
def test_every_quantity_is_bounded_and_typed(parse_one: Any, value: Any, message: str) -> None:
    # a mapping or list was a TypeError; no quantity had an upper bound but sizes
    with pytest.raises(UnitError, match=message):
        parse_one(value)


def test_the_bounds_themselves_are_accepted() -> None:
    assert parse_seconds(MAX_SECONDS) == MAX_SECONDS
    assert parse_seconds("168h") == MAX_SECONDS
    assert parse_count(MAX_COUNT) == MAX_COUNT


def test_a_long_run_of_spaces_is_read_in_linear_time() -> None:
    # '1', 100 KB of spaces, '!' backtracked quadratically (seconds); now it is one pass
    start = time.monotonic()
    with pytest.raises(UnitError, match="not a number"):
        parse_bytes("1" + " " * 100_000 + "!")
    assert time.monotonic() - start < 1.0
    assert parse_bytes(" 2 GiB ") == 2 * GiB


def test_messages_quote_a_clipped_value() -> None:
    with pytest.raises(UnitError) as caught:
        parse_bytes("x" * 100_000)
    assert len(str(caught.value)) < 200
    assert clip(10**5000) == "a number of 16610 bits"
