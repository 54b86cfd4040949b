"""The pull-request comment: the marker, deltas against a baseline, tables that stay tables."""

from __future__ import annotations

import re

from runner.reports.interface import ReportFormat, render_text
from runner.reports.markdown import MARKER, cell, code
from runner.results import Results


def _cells(line: str) -> list[str]:
    """A table row's cells, splitting only on pipes that are not escaped."""
    return re.split(r"(?<!\\)\|", line.strip())[1:-1]


def _tables_are_rectangular(text: str) -> None:
    width = None
    for line in text.splitlines():
        if line.startswith("|"):
            count = len(_cells(line))
            width = width if width is not None and count == width else count
            assert count == width, line
        else:
            width = None


def test_the_comment_starts_with_the_marker(recorded: Results) -> None:
    text = render_text(ReportFormat.MARKDOWN, recorded)
    assert text.splitlines()[0] == MARKER == "<!-- memsla-report -->"
    assert text.splitlines()[1] == "## ❌ memsla FAIL: 15 of 18 SLAs hold (3 broken, 0 not judged)"
    assert "No baseline" in text


def test_broken_rules_come_first_and_passed_implicit_ones_are_counted(recorded: Results) -> None:
    text = render_text(ReportFormat.MARKDOWN, recorded)
    verdict_table = text[text.index("|  | case | rule"):].split("\n\n")[0].splitlines()
    statuses = [_cells(line)[0].strip() for line in verdict_table[2:]]
    assert statuses[:3] == ["❌ **FAIL**"] * 3 and set(statuses[3:]) == {"✅"}
    assert "6 implicit checks passed" in render_text(ReportFormat.MARKDOWN, recorded)


def test_deltas_against_the_baseline(recorded: Results, base: Results) -> None:
    text = render_text(ReportFormat.MARKDOWN, recorded, baseline=base)
    row = next(line for line in text.splitlines() if "per_page(peak)" in line)
    assert [c.strip() for c in _cells(row)] == [
        "✅", "site", "`per_page(peak) < 300KiB`", "260 KiB", "\\< 300 KiB", "204 KiB",
        "🔺 +27.2%"]
    assert "| site\\[pages=400\\] | 118 MiB (was 96 MiB) | 🔺 +22.7% |" in text
    greedy = next(line for line in text.splitlines() if "`oom_kills == 0`" in line)
    assert _cells(greedy)[-2:] == [" - ", " - "]  # not in the baseline
    _tables_are_rectangular(text)


def test_awkward_text_cannot_break_the_tables(awkward: Results, recorded: Results) -> None:
    text = render_text(ReportFormat.MARKDOWN, awkward, baseline=recorded)
    _tables_are_rectangular(text)
    assert "`phase(a\\|b:c,d%).peak < 100MiB`" in text
    assert "not judged: no traced run: set tracker: tracemalloc" in text
    assert "\\<boom\\> & 'quotes'" in text
    assert cell("a|b <i>*x*</i>") == "a\\|b \\<i\\>\\*x\\*\\</i\\>"
    assert code("a`b|c") == "`a'b\\|c`"
