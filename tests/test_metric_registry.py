"""The metric registry (``runner/metrics.py``) against what is derived from it and against the
docs: the README's "Metrics: what each number is" table and ``docs/architecture.md``'s "Where
each number is born" table list exactly the registered metrics, each with the registry's unit
and meaning, so neither can drift from the code.

After changing the registry, rewrite both tables with
``PYTHONPATH=$PWD python3 -m tests.test_metric_registry --write``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from runner.metrics import (
    FIT_METRICS,
    FITTABLE,
    KEY_METRICS,
    METRIC_TITLES,
    METRICS,
    OTHER_METRICS,
    PHASE_METRICS,
    RUN_METRICS,
    TRACKER_METRICS,
    MetricDef,
    Source,
    baseline_growth,
)
from runner.results import Case, PhaseResult, Run, StepResult

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
README_HEADER = "| metric | unit | what it is |"
ARCHITECTURE_HEADER = "| metric | unit | what it is | born in | judged in |"
JUDGED_IN = {Source.TIMED: "`judging.verdicts.judge_case`",
             Source.TRACED: "`judging.verdicts.judge_case` (traced run only)",
             Source.FIT: "`judging.scaling.judge`, stored as `ScalingFit`s",
             Source.LEAK: "`judging.leaks.judge`, stored as `LeakFinding`s",
             Source.BASELINE: "`judging.baseline.judge_growth`",
             Source.HISTORY: "`judging.history_base.judge_regression`"}
HOLDERS: dict[str, type] = {"run": Run, "phase": PhaseResult, "case": Case, "step": StepResult,
                           "named": Run}


def documented() -> list[MetricDef]:
    """Every metric a doc table lists: the registry, and the baseline growth of any run metric."""
    return [*METRICS, baseline_growth("<metric>")]


def readme_table() -> list[str]:
    return [README_HEADER, "|---|---|---|", *(
        f"| `{m.written}` | {m.kind.value} | {m.description} |" for m in documented())]


def architecture_table() -> list[str]:
    def judged(metric: MetricDef) -> str:
        if metric.every_run:
            return f"{JUDGED_IN[metric.source]} (every run, failed ones too)"
        return JUDGED_IN[metric.source]

    return [ARCHITECTURE_HEADER, "|---|---|---|---|---|", *(
        f"| `{m.written}` | {m.kind.value} | {m.description} | `{m.born}` | {judged(m)} |"
        for m in documented())]


def table_in(path: Path, header: str) -> tuple[list[str], int]:
    """The table that starts with ``header`` in ``path``: its lines and where it starts."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = lines.index(header)
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return lines[start:end], start


def rows(table: list[str]) -> dict[str, list[str]]:
    """Each row's cells after the metric, by the metric as written (backticks dropped)."""
    cells = [[cell.strip() for cell in line.strip("|").split(" | ")] for line in table[2:]]
    return {row[0].strip("`"): row[1:] for row in cells}


def write() -> None:
    for path, header, table in ((README, README_HEADER, readme_table()),
                                (ARCHITECTURE, ARCHITECTURE_HEADER, architecture_table())):
        old, start = table_in(path, header)
        lines = path.read_text(encoding="utf-8").splitlines()
        lines[start:start + len(old)] = table
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize(("path", "header", "expected"), [
    (README, README_HEADER, readme_table), (ARCHITECTURE, ARCHITECTURE_HEADER, architecture_table),
], ids=["README", "architecture"])
def test_doc_tables_list_the_registry(path: Path, header: str, expected: object) -> None:
    table, _ = table_in(path, header)
    found = rows(table)
    registered = {m.written: m for m in documented()}
    assert not set(found) - set(registered), f"{path.name} lists metrics the registry lacks"
    assert not set(registered) - set(found), f"{path.name} leaves registered metrics out"
    for name, cells in found.items():
        metric = registered[name]
        assert cells[:2] == [metric.kind.value, metric.description], (
            f"{path.name}: {name}'s unit or meaning differs from the registry's")
    assert callable(expected)
    assert table == expected(), (f"{path.name}'s metric table is not the registry's: run "
                                 "PYTHONPATH=$PWD python3 -m tests.test_metric_registry --write")


@pytest.mark.parametrize("metric", documented(), ids=lambda m: f"{m.scope}:{m.name}")
def test_each_metric_is_read_and_born_where_it_says(metric: MetricDef) -> None:
    assert "|" not in metric.description  # it is a cell of the docs' markdown tables
    module, _, function = metric.born.rpartition(".")
    born = getattr(importlib.import_module(f"runner.{module}"), function)
    assert callable(born) and born.__doc__, f"{metric.born}: a function whose docstring says"
    if metric.field is not None:
        holder = HOLDERS[metric.scope]
        assert metric.field in holder.model_fields or isinstance(
            getattr(holder, metric.field, None), property), f"{holder.__name__}.{metric.field}"
    else:
        computed = (Source.FIT, Source.LEAK, Source.BASELINE, Source.HISTORY)  # by judging
        assert metric.source in computed or metric.per_size in RUN_METRICS
    if metric.scope == "run" and metric.born.startswith("measure.assemble."):
        assert metric.field in Run.model_fields  # stored on the run, never derived later


def test_the_derived_tables() -> None:
    assert KEY_METRICS == ("peak", "rss_peak", "python_peak", "duration")
    assert TRACKER_METRICS == ("allocated", "allocation_calls")
    assert FITTABLE == ("peak", "rss_peak", "python_peak")
    assert {name: METRIC_TITLES[name] for name in (*KEY_METRICS, *TRACKER_METRICS)} == {
        "peak": "cgroup peak", "rss_peak": "rss peak", "python_peak": "python peak",
        "duration": "duration", "allocated": "allocated", "allocation_calls": "allocation calls"}
    assert list(PHASE_METRICS) == ["python_peak", "peak", "duration", "growth", "python_growth"]
    assert list(FIT_METRICS) == ["per_page", "fixed_overhead", "scaling_exponent"]
    assert list(OTHER_METRICS) == ["leak_per_build"]
    names = [(m.scope, m.name) for m in METRICS]
    assert len(names) == len(set(names)), "a metric is declared twice"


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python3 -m tests.test_metric_registry --write")
    write()
