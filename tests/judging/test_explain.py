"""``check --explain``: sentences from exact, hand-built fits."""

from __future__ import annotations

from runner.judging.stage import judge
from runner.reports.explain import explain
from runner.results import LeakCall, LeakRecord, LeakSite, Run
from runner.slafile import parse_suite
from tests.judging.helpers import KiB, MiB, case, results

SUITE = """
version: 1
defaults: {limit: 2GiB}
scenarios:
  site:
    command: ["true"]
    matrix: {pages: [100, 200, 400, 800]}
  app:
    leak: {entry: "app:build", calls: 8, warmup: 2}
"""


def test_sentences_state_the_fit_its_reach_and_the_leak() -> None:
    cases = [case("site", [40 * MiB + n * 200 * KiB], size=n) for n in (100, 200, 400, 800)]
    for built in cases:
        built.limit = 2 << 30
    app = case("app", [0], size=None, size_parameter=None)
    record = LeakRecord(entry="app:build", calls=[
        LeakCall(index=i, warmup=i < 2, duration=0.1, traced=10 * MiB + i * MiB, peak=0,
                 rss=None, objects=1000 + i) for i in range(8)],
        sites=[LeakSite(file="app.py", line=7, size_diff=6 * MiB, count_diff=6, size=8 * MiB,
                        count=8)], complete=True)
    app.runs = [Run(kind="leak", index=0, exit_code=0, duration=1.0, leak=record)]
    report = results([*cases, app])
    judge(report, parse_suite(SUITE))
    said = explain(report)
    site, leak = said["site"], said["app"]
    assert site[0] == ("N pages use about 40 MiB + 200 KiB·N of cgroup peak (R² 1.000, "
                       "measured at 100-800 pages).")
    assert site[1] == "above the fixed overhead, peak grows as O(N^1.00) (linear)."
    # (2 GiB - 40 MiB) / 200 KiB = 10,281.6 pages
    assert site[2] == ("10,000 pages would need about 1.95 GiB, 95% interval 1.95 GiB-1.95 GiB "
                       "(extrapolated 12x beyond 800 pages, more than 2x: trust it less); the "
                       "2 GiB limit holds up to about 10,300 pages (extrapolated).")
    (fit,) = report.scenarios[0].analysis.fits("peak")
    assert fit.outlook is not None and fit.outlook.budget_kind == "limit"
    fit.outlook.expected = 3 << 30  # the judging stage's outlook is what the sentence reads
    assert "10,000 pages would need about 3 GiB" in explain(report)["site"][2]
    assert leak == ["app: each build retains about 1 MiB of Python heap (95% CI 1 MiB-1 MiB "
                    "over 6 calls), mostly at app.py:7 (+6 MiB, +6 blocks)."]
