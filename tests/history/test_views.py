"""Seeing the history: the noise beside every figure, the history page (a real SQLite store with
a planted step and an environment break), and "Memory over time" in the markdown summary."""

from __future__ import annotations

import io
import json
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from runner.history.detection import history_findings
from runner.history.model import Commit
from runner.history.outlook import history_outlook
from runner.history.store import open_store
from runner.judging.statistics import repeat_noise
from runner.reports.history_html import HistoryPage
from runner.reports.html import HtmlReport
from runner.reports.markdown import PullRequestComment
from runner.reports.terminal import TerminalTable
from runner.results import SCHEMA_VERSION, Results
from tests.conftest import run_cli
from tests.history.conftest import MiB, results
from tests.history.test_cli import git, planted_repo, runner
from tests.judging import helpers

URL = "https://github.com/o/r/commit/{sha}"
STEP_AT, ENV_AT, COMMITS = 8, 12, 16


def sha(index: int) -> str:
    return f"{index:02d}" + "c0ffee" * 6 + "ab"


def planted_store(path: Path) -> Path:
    """16 commits of main, 3 repeats each of a 200 MiB peak with ±0.5% noise: +15% from commit
    8 on, and the limit doubled from commit 12 on (a new environment)."""
    rng = random.Random(7)
    with open_store(path) as store:
        for i in range(COMMITS):
            level = 200 * MiB * (1.15 if i >= STEP_AT else 1.0)
            checked = results({"100": [level * (1 + rng.gauss(0, 0.005)) for _ in range(3)]},
                              limit=256 * MiB if i < ENV_AT else 512 * MiB)
            store.record(checked, Commit(sha=sha(i), branch="main", subject=f"change {i}",
                                         committed=f"2026-01-{i + 1:02d}T00:00:00+00:00"))
    return path


# --- the noise beside every figure -------------------------------------------------------------


def test_the_noise_is_born_in_judging_from_the_repeats() -> None:
    # median 102, |deviations| 2 1 0 1 2: MAD 1, sigma 1.4826, 1.4535% of the median
    assert repeat_noise([100.0, 101.0, 102.0, 103.0, 104.0]) == pytest.approx(1.4826 / 102)
    assert repeat_noise([5.0]) is None
    assert repeat_noise([-1.0, 0.0, 1.0]) is None  # a spread around 0 has no relative size
    case = helpers.case("site", [MiB * v for v in (100, 101, 102, 103, 104)])
    assert case.metrics["peak"].noise == pytest.approx(1.4826 / 102)


def test_the_noise_is_shown_in_the_terminal_markdown_and_html() -> None:
    report = helpers.results([helpers.case("site", [MiB * v for v in (100, 101, 102, 103, 104)],
                                           size=10)])
    terminal, markdown, html = io.StringIO(), io.StringIO(), io.StringIO()
    TerminalTable().render(report, terminal)
    PullRequestComment().render(report, markdown)
    HtmlReport().render(report, html)
    for text in (terminal.getvalue(), markdown.getvalue(), html.getvalue()):
        assert "102 MiB ±1.5%" in text
    assert "run-to-run noise" in markdown.getvalue() and "run-to-run noise" in html.getvalue()


def test_the_noise_and_the_outlook_survive_the_results_file(tmp_path: Path) -> None:
    report = helpers.results([helpers.case("site", [MiB * v for v in (100, 102, 104)])])
    store = planted_store(tmp_path / "h.db")
    with open_store(store) as opened:
        report.history = history_outlook(opened, report, branch="main", where="h.db")
    report.write(tmp_path / "r.json")
    again = Results.read(tmp_path / "r.json")
    assert again == report and again.schema_version == SCHEMA_VERSION
    # a version 5 file reads as it is, without noise
    data = json.loads((tmp_path / "r.json").read_text())
    for stats in data["cases"][0]["metrics"].values():
        del stats["noise"]
    del data["history"]
    (tmp_path / "v5.json").write_text(json.dumps({**data, "schema_version": 5}))
    old = Results.read(tmp_path / "v5.json")
    assert old.cases[0].metrics["peak"].noise is None and old.history is None
    text = io.StringIO()
    PullRequestComment().render(old, text)
    assert "| 102 MiB |" in text.getvalue()


# --- the history page --------------------------------------------------------------------------


def test_the_history_page_marks_the_step_and_the_environment_break(tmp_path: Path) -> None:
    store = planted_store(tmp_path / "h.db")
    with open_store(store) as opened:
        findings = history_findings(opened, metrics=["peak"])
    assert [len(f.series.points) for f in findings] == [ENV_AT, COMMITS - ENV_AT]
    (change,) = findings[0].changes
    assert change.commit == sha(STEP_AT) and not change.accepted and change.index == STEP_AT
    assert change.relative == pytest.approx(0.15, abs=0.02) and change.p_value < 1e-6
    assert findings[1].changes == [] and findings[1].series.broke == [
        "limit 268435456 -> 536870912"]
    out = io.StringIO()
    HistoryPage().render(findings, out, commit_url=URL)
    page = out.getvalue()
    assert f'<a href="https://github.com/o/r/commit/{sha(STEP_AT)}"><code>{sha(STEP_AT)[:10]}' \
        in page
    row = re.search(r'<tr class="alert">.*?</tr>', page)
    assert row is not None and "change 8" in row.group(0) and "+15%" in row.group(0)
    assert "p=" in row.group(0) and "200 MiB -&gt; 23" in row.group(0)
    assert (f"The environment changed at <a href=\"https://github.com/o/r/commit/{sha(ENV_AT)}"
            in page and "limit 268435456 -&gt; 536870912" in page)
    assert page.count("<svg") == 1  # one series: its two environments in one chart
    assert not re.search(r"<(script|link|img)\b|\bsrc=", page)  # nothing fetched


def test_an_accepted_step_is_shown_as_accepted(tmp_path: Path) -> None:
    store = planted_store(tmp_path / "h.db")
    with open_store(store) as opened:
        opened.accept("build", "build[pages=100]", "peak", sha(STEP_AT), "the new cache")
        findings = history_findings(opened, metrics=["peak"])
        outlook = history_outlook(opened, helpers.results([]), branch="main")
    (change,) = findings[0].changes
    assert change.accepted and change.commit == sha(STEP_AT)
    out = io.StringIO()
    HistoryPage().render(findings, out)
    assert '<tr class="accepted">' in out.getvalue() and "(accepted)" in out.getvalue()
    assert "0 change points not accepted" in out.getvalue()
    assert outlook.figures == [] and outlook.checks == COMMITS


def test_runner_history_html_writes_the_page_and_chromium_draws_it(tmp_path: Path) -> None:
    store = planted_store(tmp_path / "h.db")
    page = tmp_path / "out" / "history.html"
    run = runner(["history", "html", str(page), "--history", str(store), "--metric", "peak",
                  "--scenario", "build"], tmp_path,
                 env={"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "o/r"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 series segments, 1 change point not accepted" in run.stdout
    text = page.read_text()
    assert f"https://github.com/o/r/commit/{sha(STEP_AT)}" in text
    missing = runner(["history", "html", str(page), "--history", str(store), "--metric",
                      "nothing"], tmp_path)
    assert missing.returncode == 2 and "no recorded series" in missing.stderr
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium to draw the page")
    shot = tmp_path / "page.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                    f"--screenshot={shot}", "--window-size=1200,1400", page.as_uri()],
                   capture_output=True, timeout=120, check=False)
    assert shot.stat().st_size > 20_000  # a drawn page, not a blank one


# --- "Memory over time" ------------------------------------------------------------------------


def test_memory_over_time_compares_with_the_base_window_and_names_the_step(
        tmp_path: Path) -> None:
    store = planted_store(tmp_path / "h.db")
    head = results({"100": [260 * MiB, 261 * MiB, 262 * MiB]}, limit=512 * MiB)
    head.cases[0].metrics["peak"].noise = repeat_noise(head.cases[0].metrics["peak"].values)
    with open_store(store) as opened:
        head.history = history_outlook(opened, head, branch="main", commits=4,
                                       where="h.db")
    peak = next(f for f in head.history.figures if f.metric == "peak")
    # the window: the 4 commits in the new environment, all after the step (230 MiB)
    assert peak.base_commits == 4 and peak.base == pytest.approx(230 * MiB, rel=0.01)
    assert peak.relative == pytest.approx(261 / 230 - 1, abs=0.01)
    assert peak.environment_changed == [] and peak.changes == []  # none in this environment
    out = io.StringIO()
    PullRequestComment().render(head, out)
    text = out.getvalue()
    section = text[text.index("### Memory over time"):]
    assert "last 4 commits of `main`" in section and "16 checks" in section
    row = next(line for line in section.splitlines() if "cgroup peak" in line)
    assert "261 MiB ±0.6%" in row and "(4 commits)" in row and "🔺 +13." in row

    # in the old environment, the step is named on the main line
    old = results({"100": [231 * MiB, 230 * MiB, 232 * MiB]}, limit=256 * MiB)
    with open_store(store) as opened:
        old.history = history_outlook(opened, old, branch="main")
    peak = next(f for f in old.history.figures if f.metric == "peak")
    (step,) = peak.changes
    assert step.commit == sha(STEP_AT) and step.relative == pytest.approx(0.15, abs=0.02)
    assert peak.environment_changed == ["limit 536870912 -> 268435456"]
    # the base is the line's current level: the 4 commits from the step on, not a window
    # mixing 200 and 230 MiB
    assert peak.base_since == sha(STEP_AT) and peak.base_commits == ENV_AT - STEP_AT
    assert peak.base == pytest.approx(230 * MiB, rel=0.01)
    out = io.StringIO()
    PullRequestComment().render(old, out)
    section = out.getvalue()[out.getvalue().index("### Memory over time"):]
    row = next(line for line in section.splitlines() if "cgroup peak" in line)
    assert f"{sha(STEP_AT)[:10]} +15." in row and "environment changed" in row
    assert f"(4 commits since {sha(STEP_AT)[:10]})" in row


def test_a_check_with_history_shows_memory_over_time(tmp_path: Path) -> None:
    repo = planted_repo(tmp_path / "repo")
    store = tmp_path / "h.db"
    first = run_cli(["check", "sla.yaml", "--history", str(store), "--markdown", "one.md"],
                    cwd=repo)
    assert first.exit_code == 0, first.stdout + first.stderr
    assert "no history" in (repo / "one.md").read_text()
    git(repo, "commit", "-q", "--allow-empty", "-m", "a second commit")  # never its own base
    second = run_cli(["check", "sla.yaml", "--history", str(store), "--markdown", "two.md"],
                     cwd=repo)
    assert second.exit_code == 0, second.stdout + second.stderr
    assert "history: compared with 1 recorded check of main" in second.stdout
    comment = (repo / "two.md").read_text()
    assert "\n### Memory over time\n" in comment and "(1 commit)" in comment
    assert "1 check in" in comment
    stored = Results.model_validate(second.results)
    assert stored.history is not None and stored.history.branch == "main"
    assert {f.metric for f in stored.history.figures} >= {"peak", "rss_peak", "duration"}
