"""The report interface: every format has exactly one reporter, and both commands take the same
output flags."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from runner.cli import build_parser
from runner.reports.interface import (
    REPORTERS,
    Reporter,
    ReportFormat,
    render_text,
    write_report,
)
from runner.results import Results


def test_every_format_maps_to_exactly_one_reporter() -> None:
    assert set(REPORTERS) == set(ReportFormat)
    assert len({id(reporter) for reporter in REPORTERS.values()}) == len(ReportFormat)
    for reporter in REPORTERS.values():
        assert isinstance(reporter, Reporter)


@pytest.mark.parametrize("fmt", list(ReportFormat), ids=lambda f: f.value)
def test_every_reporter_renders_real_and_awkward_results(
        fmt: ReportFormat, recorded: Results, base: Results, awkward: Results) -> None:
    for results, baseline in ((recorded, None), (recorded, base), (awkward, recorded)):
        assert render_text(fmt, results, baseline=baseline).strip()


def test_a_file_report_is_replaced_whole_and_a_summary_is_appended(
        tmp_path: Path, recorded: Results) -> None:
    target = tmp_path / "deep" / "report.md"
    write_report(ReportFormat.MARKDOWN, recorded, target)
    write_report(ReportFormat.MARKDOWN, recorded, target)
    assert target.read_text().count("<!-- memsla-report -->") == 1
    assert [p.name for p in target.parent.iterdir()] == ["report.md"]  # no .tmp left behind
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    write_report(ReportFormat.GITHUB_SUMMARY, recorded, summary, append=True)
    write_report(ReportFormat.GITHUB_SUMMARY, recorded, summary, append=True)
    text = summary.read_text()
    assert text.startswith("# earlier step\n") and text.count("memsla FAIL") == 2


def test_dash_writes_to_stdout(capsys: pytest.CaptureFixture[str], recorded: Results) -> None:
    write_report(ReportFormat.BENCH_CUSTOM, recorded, Path("-"))
    assert capsys.readouterr().out.lstrip().startswith("[")


def _output_options(command: str) -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    group = next(g for g in sub.choices[command]._action_groups if g.title == "outputs")
    options = {o for action in group._group_actions for o in action.option_strings}
    return options | ({"--baseline"} if "--baseline" in sub.choices[command]._option_string_actions
                      else set())


def test_check_and_report_take_the_same_output_flags() -> None:
    check, report = _output_options("check"), _output_options("report")
    assert check == report
    assert {"--junit", "--github", "--no-github", "--markdown", "--bench-json", "--bench-format",
            "--html", "--baseline"} <= check


def test_reporters_write_text_only_to_the_stream(recorded: Results) -> None:
    for fmt, reporter in REPORTERS.items():
        out = io.StringIO()
        reporter.render(recorded, out, baseline=None)
        assert out.getvalue(), fmt
