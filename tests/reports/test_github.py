"""GitHub Actions: annotations on the rule's line, escaping, the job summary, auto-enabling."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.cli import main
from runner.reports.github import command, escape_data, escape_property, workflow_commands
from runner.results import Results
from tests.reports.conftest import DATA


def test_escaping_follows_the_runner_rules() -> None:
    assert escape_data("100% done\r\nnext: a,b") == "100%25 done%0D%0Anext: a,b"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    assert command("error", "m: 1%", file="s.yaml", line=3, title="t: x,y") == (
        "::error file=s.yaml,line=3,title=t%3A x%2Cy::m: 1%25")
    assert command("warning", "m", file=None, line=None) == "::warning::m"


def test_a_broken_rule_is_annotated_on_its_line(recorded: Results) -> None:
    lines = workflow_commands(recorded)
    assert lines[0] == (
        "::error file=sla.yaml,line=13,title=SLA broken%3A phase(render).python_peak < 60MiB::"
        "site[pages=400]: phase(render).python_peak = 108 MiB, bound < 60 MiB "
        "(phase(render).python_peak < 60MiB)")
    # implicit rules are not in the file: the annotation names the file only
    assert "::error file=sla.yaml,title=SLA broken%3A oom_kills == 0::greedy: oom_kills = 1" in (
        "\n".join(lines))
    assert len(lines) == 3


def test_awkward_results_stay_one_command_per_line(awkward: Results,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_WORKSPACE", "/work")
    lines = workflow_commands(awkward)
    assert all("\n" not in line and "\r" not in line for line in lines)
    broken = next(line for line in lines if "phase(a" in line)
    # an absolute path is made relative to the workspace; ':' and ',' escaped in properties only
    assert broken.startswith("::error file=sla.yaml,line=7,title=SLA broken%3A "
                             "phase(a|b%3Ac%2Cd%25).peak < 100MiB::")
    assert broken.endswith("(phase(a|b:c,d%25).peak < 100MiB) (approximate measurement)")
    unjudged = next(line for line in lines if "not judged" in line)
    assert "line=8" in unjudged and "%0Aset tracker" in unjudged
    warning = next(line for line in lines if line.startswith("::warning"))
    assert "title=approximate result%3A odd.name-1[pages=10%2C flavour=a%2Cb]" in warning
    assert any("not measured" in line for line in lines)


def test_actions_get_annotations_and_a_summary_by_default(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert main(["report", str(DATA / "results.json"), "--baseline",
                 str(DATA / "base.json")]) == 0
    out = capsys.readouterr().out
    assert out.count("::error ") == 3
    text = summary.read_text()
    assert text.startswith("earlier step\n### ❌ memsla FAIL: 15 of 18 SLAs hold")
    assert "| 108 MiB | \\< 60 MiB | 86.2 MiB | 🔺 +25.4% |" in text
    assert "<!-- memsla-report -->" not in text


def test_no_github_turns_it_off_inside_actions(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert main(["report", str(DATA / "results.json"), "--no-github",
                 "--junit", str(tmp_path / "j.xml")]) == 0
    assert "::error" not in capsys.readouterr().out
    assert not summary.exists()


def test_outside_actions_github_is_off_unless_asked(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assert main(["report", str(DATA / "results.json"), "--markdown", "-"]) == 0
    assert "::error" not in capsys.readouterr().out
    assert main(["report", str(DATA / "results.json"), "--github"]) == 0
    assert capsys.readouterr().out.count("::error ") == 3
