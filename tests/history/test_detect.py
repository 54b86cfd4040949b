"""``runner history detect`` and ``accept`` on a real SQLite store filled with synthetic checks:
the planted step's commit and size and nothing else, an accepted shift no longer alerted, a
series broken where the environment changed, and the exit codes."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from runner.cli import main
from runner.history.detection import Detection, detect, history_findings
from runner.history.model import Commit
from runner.history.store import open_store
from tests.history.conftest import MiB, results

COMMITS = 16
STEP_AT = 9  # the first commit of the new level
SHA = [f"{n:02x}" * 20 for n in range(1, COMMITS + 1)]


def commit(index: int, branch: str = "main") -> Commit:
    return Commit(sha=SHA[index], parent=SHA[index - 1] if index else None, branch=branch,
                  committed=f"2026-02-{index + 1:02d}T00:00:00+00:00",
                  subject=f"change {index}")


def fill(path: Path, levels: Sequence[float], limits: list[int] | None = None,
         noise: float = 0.003) -> str:
    """One check per commit of case build[pages=100]: three repeats around each level."""
    draw = random.Random(7)
    url = f"sqlite:///{path}"
    with open_store(url) as store:
        for index, level in enumerate(levels):
            peaks = [level * (1 + draw.gauss(0, noise)) for _ in range(3)]
            limit = (limits[index] if limits else 256) * MiB
            store.record(results({"100": peaks}, limit=limit), commit(index))
    return url


def planted(path: Path) -> str:
    return fill(path, [200 * MiB] * STEP_AT + [230 * MiB] * (COMMITS - STEP_AT))


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(["history", *args])
    except SystemExit as exc:  # argparse refused the arguments
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out + out.err


def test_detect_names_the_planted_commit_and_size_and_nothing_else(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = planted(tmp_path / "h.db")
    code, out = run(["detect", "--history", url, "--json", str(tmp_path / "d.json")], capsys)
    assert code == 1, out
    found = Detection.model_validate_json((tmp_path / "d.json").read_text())
    assert [(s.case, s.metric, s.commit, s.kind) for s in found.shifts] == [
        ("build[pages=100]", "peak", SHA[STEP_AT], "regression")]
    shift = found.shifts[0]
    assert shift.relative == pytest.approx(0.15, abs=0.01)
    assert shift.change == pytest.approx(30 * MiB, rel=0.05)
    assert shift.p_value < 1e-6 and 0 < shift.noise < 0.01
    assert shift.subject == f"change {STEP_AT}" and shift.scenario == "build"
    assert found.series == 2 and found.breaks == [] and found.branch == "main"
    line = next(x for x in out.splitlines() if x.startswith("regression"))
    assert f"at {SHA[STEP_AT][:10]} \"change {STEP_AT}\"" in line
    assert "200 MiB -> 230 MiB" in line and "+15%" in line and "p=" in line
    assert "noise ±" in line
    assert "1 regression, 0 improvements" in out
    assert run(["detect", "--history", url, "--fail-on", "never"], capsys)[0] == 0
    assert run(["detect", "--history", url, "--metric", "duration"], capsys)[0] == 0


def test_an_improvement_is_no_regression(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    url = fill(tmp_path / "h.db", [230 * MiB] * STEP_AT + [200 * MiB] * (COMMITS - STEP_AT))
    code, out = run(["detect", "--history", url], capsys)
    assert code == 0 and out.startswith("improvement") and "-13%" in out
    assert run(["detect", "--history", url, "--fail-on", "change"], capsys)[0] == 1


def test_accepted_shift_is_no_longer_alerted(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    url = planted(tmp_path / "h.db")
    code, out = run(["accept", "--history", url, "build", "build[pages=100]", "peak",
                     SHA[STEP_AT][:8], "--note", "the cache is worth it"], capsys)
    assert code == 0 and f"at {SHA[STEP_AT][:10]}" in out
    code, out = run(["detect", "--history", url, "--json", str(tmp_path / "d.json")], capsys)
    assert code == 0 and "0 regressions" in out and not out.startswith("regression")
    assert out.startswith(f"accepted regression build[pages=100] peak  at {SHA[STEP_AT][:10]}")
    assert "not accepted (1 accepted)" in out
    assert run(["detect", "--history", url, "--fail-on", "change"], capsys)[0] == 0
    found = Detection.model_validate_json((tmp_path / "d.json").read_text())
    assert [(s.commit, s.accepted, s.index) for s in found.shifts] == [(SHA[STEP_AT], True,
                                                                        STEP_AT)]
    assert found.regressions == [] and found.alerts == []
    with open_store(url) as store:
        assert [a.note for a in store.accepted()] == ["the cache is worth it"]


def test_accept_refuses_what_the_store_does_not_hold(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = planted(tmp_path / "h.db")
    assert run(["accept", "--history", url, "build", "build[pages=100]", "peak", "ffff"],
               capsys)[0] == 2
    assert run(["accept", "--history", url, "build", "build[pages=9]", "peak", SHA[0]],
               capsys)[0] == 2
    assert run(["accept", "--history", url, "build", "build[pages=100]", "exit_code",
                SHA[0]], capsys)[0] == 2


def test_an_environment_change_breaks_the_series(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # the level moves where the limit does: two environments, never one shift across them
    limits = [256] * 8 + [512] * 8
    url = fill(tmp_path / "h.db", [200 * MiB] * 8 + [230 * MiB] * 8, limits)
    code, out = run(["detect", "--history", url, "--metric", "peak"], capsys)
    assert code == 0, out
    with open_store(url) as store:
        found = detect(store, branch="main", metric="peak")
    assert found.shifts == [] and found.segments == 2
    assert [(b.commit, b.why) for b in found.breaks] == [
        (SHA[8], [f"limit {256 * MiB} -> {512 * MiB}"])]
    assert f"series broke  build[pages=100] peak at {SHA[8][:10]}" in out
    assert f"limit {256 * MiB} -> {512 * MiB}" in out


def test_a_step_within_one_environment_segment_is_still_found(tmp_path: Path) -> None:
    limits = [256] * 4 + [512] * 12
    levels = [200 * MiB] * 4 + [200 * MiB] * 6 + [230 * MiB] * 6
    url = fill(tmp_path / "h.db", levels, limits)
    with open_store(url) as store:
        found = detect(store, branch="main", metric="peak")
    assert [s.commit for s in found.shifts] == [SHA[10]] and len(found.breaks) == 1
    assert found.too_short == 1  # the 4 commits before the change


def test_exit_codes_for_bad_input_and_unreadable_stores(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = planted(tmp_path / "h.db")
    assert run(["detect", "--history", url, "--metric", "peek"], capsys)[0] == 2
    assert run(["detect", "--history", url, "--fail-on", "sometimes"], capsys)[0] == 2
    assert run(["detect", "--history", str(tmp_path / "none.db")], capsys)[0] == 3
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"not a database" * 300)
    code, out = run(["detect", "--history", str(corrupt)], capsys)
    assert code == 3 and "history store" in out
    assert run(["accept", "--history", str(corrupt), "build", "build[pages=100]", "peak",
                SHA[0]], capsys)[0] == 3


def test_other_branches_are_not_the_main_line(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    url = planted(tmp_path / "h.db")
    with open_store(url) as store:
        for index in range(COMMITS):  # a feature branch with its own shift, not looked at
            record = results({"100": [400 * MiB if index > 8 else 100 * MiB] * 3})
            store.record(record, commit(index, "feature").model_copy(
                update={"sha": "f" + SHA[index][1:]}))
    code, _ = run(["detect", "--history", url, "--json", str(tmp_path / "d.json")], capsys)
    found = json.loads((tmp_path / "d.json").read_text())
    assert code == 1 and [s["commit"] for s in found["shifts"]] == [SHA[STEP_AT]]
    assert run(["detect", "--history", url, "--branch", "feature"], capsys)[0] == 1


def test_the_history_page_and_detect_find_the_same_shifts(tmp_path: Path) -> None:
    # commits checked twice are one point of the series, for detect and the history page alike
    url = planted(tmp_path / "h.db")
    draw = random.Random(11)
    with open_store(url) as store:
        for index in range(0, COMMITS, 2):
            level = 200 * MiB if index < STEP_AT else 230 * MiB
            store.record(results({"100": [level * (1 + draw.gauss(0, 0.003))
                                          for _ in range(3)]}), commit(index))
        found = detect(store, branch="main", metric="peak")
        (page,) = history_findings(store, metrics=["peak"], branch="main")
    assert len(page.series.points) == COMMITS + COMMITS // 2
    assert page.changes == found.shifts
    assert [(s.commit, s.index, s.commits_before) for s in found.shifts] == [
        (SHA[STEP_AT], STEP_AT, STEP_AT)]
