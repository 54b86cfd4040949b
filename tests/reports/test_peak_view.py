"""The report's own drawing of the sites at the peak (icicle SVG, per-line table) and the sites
that grew between a baseline and a head, from stored results only."""

from __future__ import annotations

from runner.judging import baseline
from runner.reports import peak_view
from runner.reports.interface import ReportFormat, render_text
from runner.results import AllocationSite, PeakSites, PythonHeap, Results, Run, StackFrame
from tests.judging.helpers import MiB, case, judged, results


def _site(line: int, size: int, function: str, *callers: tuple[int, str]) -> AllocationSite:
    stack = [StackFrame(file="/src/site/build.py", line=line, function=function,
                        code=f"data = alloc({line})")]
    stack += [StackFrame(file="/src/site/build.py", line=n, function=f) for n, f in callers]
    return AllocationSite(file="/src/site/build.py", line=line, size=size, count=1,
                          function=function, stack=stack)


SITES = [_site(10, 60 * MiB, "render", (30, "build"), (40, "<module>")),
         _site(20, 20 * MiB, "parse", (31, "build"), (40, "<module>"))]
AT_PEAK = PeakSites(t=1.0, heap=81 * MiB, peak=82 * MiB, sites=SITES)


def test_icicle_is_inline_svg_with_boxes_as_wide_as_their_bytes() -> None:
    svg = peak_view.icicle_svg(AT_PEAK)
    assert svg.startswith('<svg class="icicle"') and "http" not in svg.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    assert 'width="1099.0"' in svg  # the whole
    assert "render build.py:10" in svg and 'width="824.0"' in svg  # 60 of 80 MiB of 1100 px


def test_line_table_counts_held_and_own_bytes_per_line() -> None:
    rows = {r.line: r for r in peak_view.line_rows(SITES, "/src/site/build.py")}
    assert (rows[40].held, rows[40].own) == (80 * MiB, 0)
    assert (rows[10].held, rows[10].own, rows[10].code) == (60 * MiB, 60 * MiB, "data = alloc(10)")
    assert "render" in peak_view.line_table(AT_PEAK)


def test_grown_sites_between_base_and_head() -> None:
    def with_sites(sites: list[AllocationSite]) -> Results:
        built = case("site", [100 * MiB])
        built.runs.append(Run(kind="traced", index=1, exit_code=0, duration=1.0, python=[
            PythonHeap(pid=1, peak=90 * MiB, at_peak=PeakSites(t=1, heap=90 * MiB,
                                                               sites=sites))]))
        return results([built])

    base = with_sites([_site(10, 20 * MiB, "render"), _site(20, 20 * MiB, "parse")])
    head = with_sites([*SITES, _site(50, 5 * MiB, "write")])
    grown = baseline.grown_sites(base, head)
    assert [(c.line, c.base, c.grown) for c in grown] == [(10, 20 * MiB, 40 * MiB),
                                                         (50, 0, 5 * MiB)]
    # the judging stage stores them per scenario; a report only reads them
    judged_head = judged(head.cases)
    baseline.attach_grown_sites(judged_head, base)
    assert judged_head.scenarios[0].analysis.grown_sites == grown
    assert "+40 MiB" in render_text(ReportFormat.MARKDOWN, judged_head, baseline=base)
    baseline.attach_grown_sites(judged_head, None)
    assert judged_head.scenarios[0].analysis.grown_sites == []
