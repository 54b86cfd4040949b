"""The generate step: outside the measurement, cached by its inputs, given its own folder."""

from __future__ import annotations

from pathlib import Path

from runner.slafile.model import GenerateStep
from runner.workload.cache import prepare_fixture


def test_generate_command_gets_its_folder_and_is_cached(tmp_path: Path) -> None:
    step = GenerateStep.model_validate(
        {"command": ["sh", "-c", 'echo {n} >> "$0/data"', "{fixture}"]})
    first = prepare_fixture(step, {"n": 7}, tmp_path, tmp_path / "cache")
    again = prepare_fixture(step, {"n": 7}, tmp_path, tmp_path / "cache")
    other = prepare_fixture(step, {"n": 8}, tmp_path, tmp_path / "cache")
    assert first == again, "the same inputs reuse the fixture"
    assert (first / "data").read_text() == "7\n", "the command ran once"
    assert other != first and (other / "data").read_text() == "8\n"


def test_sitegen_fixture_has_the_pages_of_the_matrix_value(tmp_path: Path) -> None:
    step = GenerateStep.model_validate({"sitegen": {"pages": "{pages}", "sections": 2}})
    site = prepare_fixture(step, {"pages": 12}, tmp_path, tmp_path / "cache")
    assert len(list((site / "content").rglob("*.md"))) == 12
