"""Benchmark-tracker JSON, validated against the trackers' documented formats."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from runner.reports.bench import measure_slug
from runner.reports.interface import ReportFormat, render_text
from runner.results import Results
from tests.reports.conftest import DATA, MiB


def _schema(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize(("fmt", "schema"), [
    (ReportFormat.BENCH_CUSTOM, "custom-smaller-is-better.schema.json"),
    (ReportFormat.BENCHER, "bencher-metric-format.schema.json"),
])
def test_output_validates(fmt: ReportFormat, schema: str, recorded: Results,
                          awkward: Results) -> None:
    for results in (recorded, awkward):
        jsonschema.validate(json.loads(render_text(fmt, results)), _schema(schema))


def test_custom_smaller_is_better_has_readable_units(recorded: Results) -> None:
    entries = {e["name"]: e for e in json.loads(render_text(ReportFormat.BENCH_CUSTOM, recorded))}
    case = next(c for c in recorded.cases if c.label == "site[pages=400]")
    peak = entries["site[pages=400] peak"]
    assert peak["unit"] == "MiB"
    assert peak["value"] == pytest.approx(case.metrics["peak"].median / MiB, rel=1e-5)
    assert peak["range"].startswith("± ") and "median of 2" in peak["extra"]
    assert entries["site[pages=400] duration"]["unit"] == "s"
    assert entries["site per_page(peak)"]["unit"] == "MiB"  # the scenario's fit
    assert not any(name.endswith((" exit_code", " oom_kills", " pages")) for name in entries)


def test_bencher_keeps_base_units_and_the_range(recorded: Results) -> None:
    document = json.loads(render_text(ReportFormat.BENCHER, recorded))
    case = next(c for c in recorded.cases if c.label == "site[pages=400]")
    stats = case.metrics["peak"]
    assert document["site[pages=400]"]["peak"] == {
        "value": stats.median, "lower_value": stats.min, "upper_value": stats.max}
    assert "phase-render-python-peak" in document["site[pages=400]"]
    assert set(document["greedy"]["duration"]) == {"value"}  # one run: no range


def test_measure_slugs() -> None:
    assert measure_slug("phase(render).python_peak") == "phase-render-python-peak"
    assert measure_slug("per_page(rss_peak)") == "per-page-rss-peak"
