"""Baselines: ``runner compare`` tolerances and missing cases, and ``check --baseline``'s
``<metric>_growth`` rules (hand-built results, and one real cgroup run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.cli import main
from runner.judging import baseline
from runner.judging.stage import judge
from runner.results import Results
from runner.slafile import parse_suite
from tests.conftest import run_cli
from tests.judging.helpers import LINEAR, PYTHON, KiB, MiB, case, results, write

BASE = 100 * MiB


def _pair(tmp_path: Path, factor: float, *, drop_head: bool = False) -> tuple[Path, Path]:
    base = results([case("site", [BASE, BASE], size=100), case("site", [BASE], size=200),
                    case("blog", [BASE], size=None, size_parameter=None)])
    head_cases = [case("site", [BASE * factor, BASE * factor], size=100),
                  case("site", [BASE * factor], size=200)]
    if not drop_head:
        head_cases.append(case("blog", [BASE], size=None, size_parameter=None))
    head = results(head_cases)
    base_path, head_path = tmp_path / "base.json", tmp_path / "head.json"
    base.write(base_path)
    head.write(head_path)
    return base_path, head_path


def test_twenty_percent_regression_fails_a_ten_percent_tolerance(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, head = _pair(tmp_path, 1.20)
    assert main(["compare", str(base), str(head), "--tolerance", "peak: 10%"]) == 1
    out = capsys.readouterr().out
    assert "+20.0%" in out and "+20 MiB" in out and "EXCEEDED" in out
    assert "2 of 3 toleranced changes exceeded" in out


def test_five_percent_passes_a_ten_percent_tolerance(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, head = _pair(tmp_path, 1.05)
    assert main(["compare", str(base), str(head), "--tolerance", "peak: 10% + 8MiB"]) == 0
    assert "+5.0%" in capsys.readouterr().out


def test_missing_scenario_and_size_are_reported_not_fatal(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, head = _pair(tmp_path, 1.0, drop_head=True)
    extra = Results.read(head)
    extra.cases.append(case("site", [BASE], size=400))
    extra.write(head)
    assert main(["compare", str(base), str(head), "--tolerance", "peak: 10%"]) == 0
    out = capsys.readouterr().out
    assert "scenario blog only in BASE" in out
    assert "site[pages=400] only in HEAD" in out


def test_tolerance_reading() -> None:
    tolerance = baseline.parse_tolerance("peak: 10% + 8MiB")
    assert (tolerance.metric, tolerance.relative, tolerance.absolute) == ("peak", 0.1, 8 * MiB)
    assert tolerance.allows(100 * MiB, 118 * MiB) and not tolerance.allows(100 * MiB, 119 * MiB)
    assert baseline.parse_tolerance("duration: 500ms").absolute == 0.5
    assert baseline.parse_tolerance("per_page: 10%").metric == "per_page(peak)"
    for bad in ("peak 10%", "peek: 10%", "peak: 10 parsecs", "leak_per_build: 10%"):
        with pytest.raises(ValueError):
            baseline.parse_tolerance(bad)


FIT_SUITE = """
version: 1
scenarios:
  site: {command: ["true", "{pages}"], matrix: {pages: [100, 200, 400]}}
  blog: {command: ["true"]}
"""


def _scaled(per_page: float) -> Results:
    """Results whose cgroup peaks are 40 MiB + per_page x pages, with the scaling analysis."""
    built = results([case("site", [40 * MiB + per_page * n] * 2, size=n) for n in (100, 200, 400)]
                    + [case("blog", [BASE], size=None, size_parameter=None)])
    judge(built, parse_suite(FIT_SUITE, file="sla.yaml"))
    return built


@pytest.mark.parametrize(("head_per_page", "code"), [(130 * KiB, 1), (105 * KiB, 0)])
def test_per_page_regression_is_compared_on_the_fit(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], head_per_page: float,
        code: int) -> None:
    base, head = tmp_path / "base.json", tmp_path / "head.json"
    _scaled(100 * KiB).write(base)
    _scaled(head_per_page).write(head)
    assert main(["compare", str(base), str(head), "--tolerance", "per_page: 10%"]) == code
    out = capsys.readouterr().out
    assert "per_page(peak)" in out
    assert f"+{(head_per_page / (100 * KiB) - 1) * 100:.1f}%" in out
    assert "blog: per_page(peak) not fitted" not in out, "only scenarios with sizes are fitted"
    comparison = baseline.changes(Results.read(base), Results.read(head))
    exponent = next(c for c in comparison.changes if c.metric == "scaling_exponent(peak)")
    assert exponent.label == "site" and exponent.head == pytest.approx(1.0, abs=0.05)


def test_fit_tolerance_without_a_fit_on_one_side_is_reported(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, head = tmp_path / "base.json", tmp_path / "head.json"
    _scaled(100 * KiB).write(base)
    unfitted = _scaled(100 * KiB)
    unfitted.scenarios = []
    unfitted.write(head)
    assert main(["compare", str(base), str(head), "--tolerance", "per_page: 10%"]) == 0
    assert "site: per_page(peak) not fitted on both sides" in capsys.readouterr().out


def test_bad_tolerance_or_file_is_bad_input(tmp_path: Path) -> None:
    base, head = _pair(tmp_path, 1.0)
    assert main(["compare", str(base), str(head), "--tolerance", "peak: lots"]) == 2
    assert main(["compare", str(base), str(tmp_path / "missing.json")]) == 2


GROWTH_SUITE = """
version: 1
scenarios:
  site:
    command: ["true"]
    matrix: {pages: [100, 200]}
    slas: ["peak_growth < 10%"]
"""


@pytest.mark.parametrize(("factor", "passed"), [(1.20, False), (1.05, True)])
def test_growth_rule_judges_the_rules_statistic_against_the_baseline(
        factor: float, passed: bool) -> None:
    suite = parse_suite(GROWTH_SUITE, file="sla.yaml")
    base = results([case("site", [BASE, BASE * 0.9], size=100)])
    head = results([case("site", [BASE * factor, BASE * 0.5], size=100),
                    case("site", [BASE], size=200)])
    judge(head, suite, base)
    judged, missing = (next(v for v in c.verdicts if v.metric == "peak_growth")
                       for c in head.cases)
    assert judged.passed is passed and judged.stat == "max"  # worst of '<' is the max
    assert judged.value == pytest.approx(factor - 1)
    assert missing.passed is None and "baseline has no case site[pages=200]" in missing.reason


def test_growth_rule_without_baseline_says_how_to_give_one() -> None:
    head = results([case("site", [BASE], size=100)])
    judge(head, parse_suite(GROWTH_SUITE, file="sla.yaml"), None)
    (verdict,) = [v for v in head.cases[0].verdicts if v.metric == "peak_growth"]
    assert verdict.passed is None and "--baseline" in verdict.reason


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_check_with_baseline_catches_a_real_regression(tmp_path: Path) -> None:
    write(tmp_path, "linear.py", LINEAR)
    suite = """
        version: 1
        defaults: {{backend: cgroup, repeats: 2, tracker: none}}
        scenarios:
          site:
            command: [{python}, linear.py, "{{pages}}", "{per_page}", "0"]
            matrix: {{pages: [200]}}
            slas: ["peak_growth < 10%"]
        """
    write(tmp_path, "sla.yaml", suite.format(python=PYTHON, per_page=200 * KiB))
    base = run_cli(["check", "sla.yaml"], tmp_path)  # no baseline: the rule is not judged
    assert base.exit_code == 3, base.stdout + base.stderr
    (tmp_path / "results.json").rename(tmp_path / "base.json")
    same = run_cli(["check", "sla.yaml", "--baseline", "base.json"], tmp_path)
    assert same.exit_code == 0, same.stdout + same.stderr
    write(tmp_path, "sla.yaml", suite.format(python=PYTHON, per_page=300 * KiB))
    worse = run_cli(["check", "sla.yaml", "--baseline", "base.json"], tmp_path)
    assert worse.exit_code == 1, worse.stdout + worse.stderr
    growth = next(v for v in worse.case()["verdicts"] if v["metric"] == "peak_growth")
    assert 0.3 < growth["value"] < 0.6  # 40 MiB -> 60 MiB of pages over the interpreter


def test_compare_says_when_the_sides_were_not_measured_alike(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = results([case("site", [BASE], size=100)])
    head = results([case("site", [BASE + 10 * MiB], size=100)])
    for one in head.cases:
        one.backend = "docker"
    head.host.backend = "docker"
    head.host.harness_baseline = 10 * MiB
    head.memsla_version = "9.9"
    notes = baseline.context_differences(base, head)
    text = "\n".join(notes)
    assert "the backends differ" in text and "cgroup" in text and "docker" in text
    assert "harness baseline" in text and "+10 MiB of each case's peak change" in text
    assert "version differs" in text
    assert baseline.context_differences(base, base) == []
    from runner.reports import markdown

    assert "**Not measured alike:** the backends differ" in "\n".join(markdown.body(head, base))
    import io

    from runner.reports.html import HtmlReport

    page = io.StringIO()
    HtmlReport().render(head, page, baseline=base)
    assert "not alike" in page.getvalue() and "the harness baseline differs" in page.getvalue()
    base.write(tmp_path / "base.json")
    head.write(tmp_path / "head.json")
    main(["compare", str(tmp_path / "base.json"), str(tmp_path / "head.json")])
    assert "not alike: the backends differ" in capsys.readouterr().out.replace("\n", " ")


def test_a_harness_kept_out_of_the_peaks_explains_no_peak_change() -> None:
    """Version 10 Docker results keep the idle harness out of every peak: its baseline then
    accounts for nothing, while an older result's (in its peaks) still does."""
    base = results([case("site", [BASE], size=100)])
    head = results([case("site", [BASE], size=100)])
    head.host.harness_baseline, head.host.harness_kept_out = 10 * MiB, True
    assert not [n for n in baseline.context_differences(base, head) if "harness" in n]
    base.host.harness_baseline = 9 * MiB  # an older Docker result: its peaks hold it
    (said,) = [n for n in baseline.context_differences(base, head) if "harness" in n]
    assert "-9 MiB of each case's peak change" in said
