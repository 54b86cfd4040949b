"""``runner --help``: every command's summary is a whole sentence, the cache folder is named."""

from __future__ import annotations

import pytest

from runner.cli import build_parser, first_sentence


def test_every_summary_is_a_whole_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    assert "MEMSLA_CACHE_DIR" in out and "~/.cache/memsla" in out
    from runner.cli.commands import COMMANDS

    for command in COMMANDS:
        summary = first_sentence(command.__doc__ or "")
        assert summary.endswith("."), (command, summary)
        assert " ".join(summary.split()) in " ".join(out.split()), summary


def test_first_sentence_spans_lines() -> None:
    assert first_sentence("Build the image, reusing\n    one built before. More.") == (
        "Build the image, reusing one built before.")
