"""One self-contained HTML page: verdicts, memory over time, scaling, phases, a step scenario's
steps, allocation sites.

Everything is inline (CSS, SVG charts), so the file can be archived as a CI artifact and opened
offline; the page makes no request of its own. The charts need matplotlib, an optional
dependency (``pip install 'memsla[html]'``).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterable, Mapping
from html import escape
from typing import TextIO

from runner.judging.baseline import context_differences
from runner.metrics import KEY_METRICS, METRIC_TITLES
from runner.reports import peak_view
from runner.reports.common import (
    STEP_COLUMNS,
    Baseline,
    ReportError,
    VerdictRow,
    case_step_rows,
    describe_value,
    format_bound,
    format_change,
    format_metric,
    grown_sites,
    status_word,
    summary_line,
    verdict_rows,
    verdict_text,
    with_noise,
)
from runner.results import AllocationSite, Case, PeakSites, Results, Run, ScenarioResult
from runner.units import format_bytes, format_seconds

TOP_SITES = 10
SMALL_SITE = 64 * 1024  # bytes; smaller allocation sites are counted, not listed
STATUS_CLASS = {"pass": "pass", "FAIL": "fail", "not judged": "unknown", "skipped": "unknown"}

CSS = """
:root { --fail: #b91c1c; --pass: #15803d; --warn: #b45309; --line: #e5e7eb; --muted: #6b7280; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #111827; margin: 0 auto; padding: 24px 32px 48px; max-width: 1180px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 19px; margin: 36px 0 8px; }
h3 { font-size: 16px; margin: 28px 0 6px; } h4 { font-size: 14px; margin: 16px 0 4px; }
header { border-bottom: 2px solid var(--line); padding-bottom: 12px; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 999px; color: #fff;
         font-size: 14px; vertical-align: middle; margin-left: 8px; }
.badge.pass { background: var(--pass); } .badge.fail, .badge.error { background: var(--fail); }
.badge.interrupted { background: var(--warn); }
.summary { font-size: 16px; margin: 6px 0 10px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr max-content 1fr; gap: 2px 14px;
           margin: 0; color: #374151; font-size: 13px; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; }
nav { margin: 14px 0; font-size: 13px; } nav a { margin-right: 12px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left;
         vertical-align: top; }
th { background: #f9fafb; font-weight: 600; } td.num, th.num { text-align: right;
     font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.fail td { background: #fef2f2; } tr.unknown td { background: #fffbeb; }
.status { font-weight: 700; white-space: nowrap; } .pass .status { color: var(--pass); }
.fail .status { color: var(--fail); } .unknown .status { color: var(--warn); }
code { font: 12px ui-monospace, "DejaVu Sans Mono", monospace; background: #f3f4f6;
       padding: 1px 4px; border-radius: 3px; }
.site { font: 12px ui-monospace, "DejaVu Sans Mono", monospace; word-break: break-all; }
figure { margin: 8px 0 12px; } figcaption { color: var(--muted); font-size: 12px; }
svg.chart { width: 100%; height: auto; max-width: 900px; display: block; }
.note { color: var(--warn); } .muted { color: var(--muted); } .error { color: var(--fail); }
article { border-top: 1px solid var(--line); margin-top: 24px; }
details summary { cursor: pointer; color: #374151; }
ul.broken { margin: 4px 0 12px; padding-left: 20px; }
ul.broken li.fail::marker { color: var(--fail); }
ul.broken li.fail a { color: var(--fail); font-weight: 600; }
ul.broken li.unknown a { color: var(--warn); font-weight: 600; }
"""


def missing_dependency() -> str | None:
    """Why the HTML report cannot be made here, or None."""
    if importlib.util.find_spec("matplotlib") is None:
        return ("the HTML report draws its charts with matplotlib, which is not installed: "
                "pip install 'memsla[html]'")
    return None


def anchor(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-").lower() or "x"


class HtmlReport:
    def render(self, results: Results, out: TextIO, *, baseline: Results | None = None) -> None:
        problem = missing_dependency()
        if problem:
            raise ReportError(problem)
        out.write(Page(results, baseline).html())


class Page:
    def __init__(self, results: Results, baseline: Results | None) -> None:
        self.results = results
        self.baseline = Baseline(baseline) if baseline else None
        self.figures = 0

    def _prefix(self) -> str:
        self.figures += 1
        return f"fig{self.figures}"

    def html(self) -> str:
        results = self.results
        title = f"memsla {results.status.upper()}: {results.sla_file}"
        parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
                 '<meta name="viewport" content="width=device-width, initial-scale=1">',
                 f"<title>{escape(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
                 self._header(), self._nav(), self._verdicts(), self._measured(),
                 self._grown_sites()]
        for name in dict.fromkeys(case.scenario for case in results.cases):
            parts.append(self._scenario(name))
        parts += [f'<footer class="muted"><p>memsla {escape(results.memsla_version)}, results '
                  f"schema {results.schema_version}. Values are bytes (binary units) and "
                  "seconds; cgroup peak includes page cache, rss peak does not.</p></footer>",
                  "</body>", "</html>"]
        return "\n".join(parts) + "\n"

    def _grown_sites(self) -> str:
        """The allocation sites at the heap's peak that grew since the baseline."""
        if self.baseline is None:
            return ""
        grown = grown_sites(self.results)
        if not grown:
            return ""
        rows = "".join(
            f'<tr><td>{escape(c.label)}</td><td class="site" title="{escape(c.file)}">'
            f"{escape(_short(c.file))}:{c.line}</td><td>{escape(c.function or '')}</td>"
            f'<td class="num">{escape(format_bytes(c.base) if c.base else "-")}</td>'
            f'<td class="num">{escape(format_bytes(c.head))}</td>'
            f'<td class="num">+{escape(format_bytes(c.grown))}</td></tr>' for c in grown)
        return ("<h2>Allocation sites that grew at the heap's peak</h2><p class=muted>Traced "
                "run, against the baseline; '-': not among the baseline's top sites.</p>"
                "<table><thead><tr><th>case</th><th>site</th><th>function</th><th class=num>"
                "base</th><th class=num>head</th><th class=num>grew</th></tr></thead><tbody>"
                f"{rows}</tbody></table>")

    def _header(self) -> str:
        results, host = self.results, self.results.host
        facts = [("SLA file", results.sla_file), ("measured", results.created),
                 ("backend", f"{host.backend} ({host.backend_reason})"),
                 ("host", f"{host.hostname}, {host.cpus} CPUs, "
                          f"{format_bytes(host.memory_total)}"),
                 ("system", f"{host.os}, kernel {host.kernel}, cgroup "
                            f"v{host.cgroup_version or '-'}"),
                 ("python", host.python)]
        if host.docker_version:
            facts.append(("docker", host.docker_version))
        if self.baseline:
            facts.append(("baseline", f"results of {self.baseline.results.created}"))
            facts.extend(("not alike", note) for note in
                         context_differences(self.baseline.results, results))
        cells = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts)
        status = results.status
        _, _, rest = summary_line(results).partition(": ")
        return (f'<header><h1>memsla report <span class="badge {status}">{status.upper()}'
                f'</span></h1><p class="summary">{escape(rest)}</p>{self._broken()}'
                f'<dl class="facts">{cells}</dl></header>')

    def _broken(self) -> str:
        """The SLAs that did not hold, first thing on the page."""
        items = []
        for row in verdict_rows(self.results):
            verdict = row.verdict
            if verdict.passed is True or verdict.skipped:
                continue
            target = f"#case-{anchor(row.label)}" if row.case else (
                f"#scenario-{anchor(row.scenario)}")
            text = (f"{format_metric(verdict.metric, verdict.value)}, bound "
                    f"{format_bound(verdict)}" + (f" - {verdict.reason}" if verdict.reason else "")
                    if verdict.passed is False else verdict_text(verdict))
            items.append(f'<li class="{STATUS_CLASS[status_word(verdict)]}"><a href="{target}">'
                         f"{escape(row.label)}</a> <code>{escape(verdict.rule)}</code>: "
                         f"{escape(text)}</li>")
        return f'<ul class="broken">{"".join(items)}</ul>' if items else ""

    def _nav(self) -> str:
        links = ['<a href="#verdicts">Verdicts</a>', '<a href="#measured">Measured</a>']
        for name in dict.fromkeys(case.scenario for case in self.results.cases):
            links.append(f'<a href="#scenario-{anchor(name)}">{escape(name)}</a>')
        return f"<nav>{''.join(links)}</nav>"

    def _verdicts(self) -> str:
        header = ["case", "rule", "value", "bound", "verdict"]
        if self.baseline:
            header[3:3] = ["baseline", "change"]
        rows = [self._verdict_row(row) for row in verdict_rows(self.results)]
        numeric = ("value", "bound", "baseline", "change")
        head = "".join(f'<th class="{"num" if h in numeric else ""}">{escape(h)}</th>'
                       for h in header)
        return (f'<section id="verdicts"><h2>SLA verdicts</h2><table><thead><tr>{head}</tr>'
                f"</thead><tbody>{''.join(rows)}</tbody></table></section>")

    def _verdict_row(self, row: VerdictRow) -> str:
        verdict = row.verdict
        word = status_word(verdict)
        rule = f"<code>{escape(verdict.rule)}</code>"
        if verdict.implicit:
            rule += ' <span class="muted">(implicit)</span>'
        elif verdict.line:
            rule += f' <span class="muted">line {verdict.line}</span>'
        status = verdict_text(verdict)
        if verdict.approximate:
            status += " (approx.)"
        numbers = [describe_value(row), format_bound(verdict)]
        if self.baseline:
            old = self.baseline.value_for(row)
            numbers[1:1] = [format_metric(verdict.metric, old),
                            format_change(verdict.value, old)]
        html = (f"<td>{escape(row.label)}</td><td>{rule}</td>"
                + "".join(f'<td class="num">{escape(n)}</td>' for n in numbers)
                + f'<td><span class="status">{escape(status)}</span></td>')
        return f'<tr class="{STATUS_CLASS[word]}">{html}</tr>'

    def _measured(self) -> str:
        header = ["case", "backend", "limit", *(METRIC_TITLES[m] for m in KEY_METRICS),
                  "oom kills", "runs"]
        rows = []
        for case in self.results.cases:
            oom = case.metrics.get("oom_kills")
            cells = [f'<a href="#case-{anchor(case.label)}">{escape(case.label)}</a>',
                     escape(case.backend + (" (approx.)" if case.approximate else ""))]
            numbers = [format_bytes(case.limit) if case.limit else "none"]
            for metric in KEY_METRICS:
                text = with_noise(metric, case.metrics.get(metric))
                if self.baseline:
                    old = self.baseline.median(case.label, metric)
                    if old is not None:
                        text += f" ({format_change(case.pick(metric), old)})"
                numbers.append(text)
            numbers += ["-" if oom is None else f"{oom.max:.0f}", str(len(case.runs))]
            row = "".join(f"<td>{c}</td>" for c in cells)
            row += "".join(f'<td class="num">{escape(n)}</td>' for n in numbers)
            rows.append(f"<tr>{row}</tr>")
        head = "".join(f'<th class="{"" if i < 2 else "num"}">{escape(h)}</th>'
                       for i, h in enumerate(header))
        note = ("Medians of the timed runs, ± their run-to-run noise (the MAD of the repeats as "
                "a standard deviation, relative to the median); python peak from the traced run."
                + (" Changes are against the baseline." if self.baseline else ""))
        return (f'<section id="measured"><h2>Measured</h2><p class="muted">{note}</p><table>'
                f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></section>")

    def _scenario(self, name: str) -> str:
        cases = [c for c in self.results.cases if c.scenario == name]
        scenario = self.results.scenario(name)
        parts = [f'<section id="scenario-{anchor(name)}"><h2>Scenario {escape(name)}</h2>']
        parts.append(self._scaling(cases, scenario))
        for case in cases:
            parts.append(self._case(case))
        parts.append("</section>")
        return "\n".join(parts)

    def _scaling(self, cases: list[Case], scenario: ScenarioResult | None) -> str:
        from runner.reports import plots

        sized = [c for c in cases if c.size is not None and c.metrics]
        if len({c.size for c in sized}) < 2:
            return ""
        stored = scenario.analysis.scaling if scenario else []
        fits = [fit for fit in stored if fit.line is not None]
        verdicts = [v for c in sized for v in c.verdicts]
        verdicts += scenario.verdicts if scenario else []
        svg = plots.scaling_chart(sized, fits, verdicts, self._prefix())
        caption = ("Each dot is one run; dotted lines are SLA bounds. "
                   + ("Solid lines are the scaling fit, dashed where extrapolated past the "
                      "largest size measured (shaded: its 95% prediction interval)."
                      if fits else "These results hold no scaling fit."))
        parts = [f"<h3>Scaling</h3><figure>{svg}<figcaption>{caption}</figcaption></figure>"]
        facts = [fact for fit in stored for fact in _flatten(
            fit.model_dump(exclude={"metric", "params", "predictions"}),
            f"{fit.metric}[{fit.label}]" if fit.label else fit.metric)]
        if facts:
            rows = "".join(f'<tr><td><code>{escape(k)}</code></td><td class="num">{escape(v)}'
                           "</td></tr>" for k, v in facts[:60])
            parts.append(f"<details><summary>Scaling analysis</summary><table>{rows}</table>"
                         "</details>")
        return "".join(parts)

    def _case(self, case: Case) -> str:
        from runner.reports import plots

        parts = [f'<article id="case-{anchor(case.label)}"><h3>{escape(case.label)}</h3>']
        if case.error:
            parts.append(f'<p class="error">Not measured: {escape(case.error)}</p>')
        notes = list(dict.fromkeys(n for r in case.runs for n in r.notes))
        if case.trace:  # trace_sizes: whether this size got the traced run, and why
            notes.insert(0, case.trace + ("; its heap figures are not measured"
                                          if case.trace.startswith("not") else ""))
        parts += [f'<p class="note">{escape(n)}</p>' for n in notes]
        parts.append(self._runs(case))
        parts.append(self._steps(case))
        timed = [r for r in case.runs if r.kind == "timed" and r.timeline and r.timeline.t]
        charted = timed or [r for r in case.runs if r.timeline and r.timeline.t]
        if charted:
            primary, others = charted[0], charted[1:]
            svg = plots.timeline_chart(case, primary, others, self._prefix())
            interval = primary.timeline.interval if primary.timeline else 0.0
            caption = (f"Memory of {primary.kind} run {primary.index}, sampled every "
                       f"{format_seconds(interval)}.")
            if others:
                caption += " Grey lines are the other runs."
            if primary.phases:
                caption += " Shaded bands are its phases."
            if primary.oom_kills:
                caption += (" The OOM kill is placed at the largest drop after the highest "
                            "sample: the kernel counts kills but does not time them.")
            parts.append(f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>")
        parts.append(self._phases(case, charted[0] if charted else None))
        parts.append(self._allocations(case))
        parts.append("</article>")
        return "\n".join(parts)

    def _runs(self, case: Case) -> str:
        header = ["run", "exit", "duration", "cgroup peak", "rss peak", "python peak",
                  "oom kills"]
        rows = []
        for run in case.runs:
            exit_text = "-" if run.exit_code is None else str(run.exit_code)
            if run.timed_out:
                exit_text += " (timed out)"
            cells = [f"{run.kind} {run.index}", exit_text, format_seconds(run.duration),
                     format_bytes(run.cgroup_peak), format_bytes(run.rss_peak),
                     format_bytes(run.python_peak), str(run.oom_kills)]
            css = "" if run.completed else ' class="fail"'
            rows.append(f"<tr{css}><td>{escape(cells[0])}</td>"
                        + "".join(f'<td class="num">{escape(c)}</td>' for c in cells[1:])
                        + "</tr>")
        head = "".join(f'<th class="{"num" if i else ""}">{h}</th>' for i, h in enumerate(header))
        count = f"{len(case.runs)} run" + ("" if len(case.runs) == 1 else "s")
        return (f"<details><summary>{count}</summary><table><thead><tr>{head}"
                f"</tr></thead><tbody>{''.join(rows)}</tbody></table></details>")

    def _steps(self, case: Case) -> str:
        """A step scenario's steps, as the terminal's and markdown's step tables show them."""
        rows = case_step_rows(case)
        if not rows:
            return ""
        body = "".join(
            f'<tr{"" if not row.not_run else " class=fail"}><td>{escape(row.step)}</td>'
            + "".join(f'<td class="num">{escape(figure)}</td>' for figure in row.figures)
            + f'<td class="num">{f"{row.not_run} of {row.runs}" if row.not_run else "-"}</td>'
            "</tr>" for row in rows)
        head = "<th>step</th>" + "".join(f"<th class=num>{escape(METRIC_TITLES[m])}</th>"
                                         for m in STEP_COLUMNS) + "<th class=num>not run</th>"
        return ("<h4>Steps</h4><p class=muted>Each step its own cgroup reading; median of the "
                "timed runs, heap from the traced run.</p><table class=steps><thead><tr>"
                f"{head}</tr></thead><tbody>{body}</tbody></table>")

    def _phases(self, case: Case, run: Run | None) -> str:
        names = list(dict.fromkeys(p.name for r in case.runs for p in r.phases))
        if not names:
            return ""
        shown = {p.name: p for p in (run.phases if run else [])}
        rows = []
        for name in names:
            phase = shown.get(name)
            depth = phase.depth if phase else 0
            duration = case.metrics.get(f"phase({name}).duration")
            peak = case.metrics.get(f"phase({name}).peak")
            heap = case.metrics.get(f"phase({name}).python_peak")
            growth = case.metrics.get(f"phase({name}).growth")
            heap_growth = case.metrics.get(f"phase({name}).python_growth")
            cells = [format_seconds(phase.start) if phase else "-",
                     ("died here" if phase.end is None else format_seconds(phase.end))
                     if phase else "-",
                     format_seconds(duration.median if duration else None),
                     format_bytes(peak.max if peak else None),
                     format_bytes(growth.max if growth else None),
                     format_bytes(heap.max if heap else None),
                     format_bytes(heap_growth.max if heap_growth else None)]
            indent = f' style="padding-left:{8 + 16 * depth}px"'
            rows.append(f"<tr><td{indent}>{escape(name)}</td>"
                        + "".join(f'<td class="num">{escape(c)}</td>' for c in cells) + "</tr>")
        head = ("<th>phase</th><th class=num>start</th><th class=num>end</th><th class=num>"
                "duration (median)</th><th class=num>cgroup peak (max)</th><th class=num>"
                "cgroup growth (max)</th><th class=num>python peak</th><th class=num>"
                "python growth</th>")
        return (f"<h4>Phases</h4><table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}"
                "</tbody></table>")

    def _allocations(self, case: Case) -> str:
        traced = [r for r in case.runs if r.kind == "traced"]
        if not traced:
            return ""
        run = traced[0]
        sites = [s for heap in run.python for s in heap.top_allocations]
        parts = []
        for heap in run.python:
            if heap.at_peak is not None and heap.at_peak.sites:
                parts.append(f"<h4>Top allocation sites at the heap's peak (process {heap.pid}, "
                             f"{heap.tracker}, {escape(_peak_words(heap.at_peak))})</h4>"
                             f"<figure>{peak_view.icicle_svg(heap.at_peak)}<figcaption>"
                             "Callers above callees; each box is as wide as the bytes held "
                             "below it at the peak. Hover for the figures.</figcaption></figure>"
                             + _sites_table(heap.at_peak.sites)
                             + peak_view.line_table(heap.at_peak))
            if heap.allocated is not None:
                parts.append(f'<p>Allocated over the run (process {heap.pid}, memray): '
                             f"{escape(format_bytes(heap.allocated))} in "
                             f"{heap.allocation_calls or 0:,} allocation calls.</p>")
        before = [s for heap in run.python for s in heap.top_before_collection]
        if before:
            held = sum(h.final or 0 for h in run.python)
            collected = sum(h.final_collected or 0 for h in run.python)
            parts.append(f"<h4>Top allocation sites at exit, before the full collection (heap "
                         f"{escape(format_bytes(held))}; after it "
                         f"{escape(format_bytes(collected))})</h4>" + _sites_table(before))
        if sites:
            parts.append("<h4>Top allocation sites (traced run, at exit, after a full "
                         "collection)</h4>" + _sites_table(sites))
        for phase in run.phases:
            if phase.at_peak is not None and phase.at_peak.sites:
                parts.append(f"<details><summary>Top allocation sites at the peak of phase "
                             f"{escape(phase.name)} ({escape(_peak_words(phase.at_peak))})"
                             f"</summary>{_sites_table(phase.at_peak.sites)}</details>")
            if phase.top_allocations:
                parts.append(f"<details><summary>Top allocation sites of phase "
                             f"{escape(phase.name)}</summary>"
                             f"{_sites_table(phase.top_allocations)}</details>")
        return "".join(parts)


def _short(path: str) -> str:
    """The path from ``site-packages`` or the stdlib folder on, which is what people recognise."""
    for marker in ("/site-packages/", "/dist-packages/"):
        if marker in path:
            return path.split(marker, 1)[1]
    match = re.search(r"/lib/python3\.\d+/(.*)$", path)
    return match.group(1) if match else path


def _peak_words(at: PeakSites) -> str:
    if not at.tolerance and not at.tolerance_bytes:  # memray: the high-water mark itself
        return f"at the high-water mark of {format_bytes(at.peak or at.heap)}"
    return (f"taken at a heap of {format_bytes(at.heap)}"
            + (f" of a {format_bytes(at.peak)} peak" if at.peak else "")
            + (f", {at.t:.2f} s in" if at.t is not None else "")
            + f"; retaken on growth above {at.tolerance:.0%} and "
            f"{format_bytes(at.tolerance_bytes)}")


def _sites_table(all_sites: Iterable[AllocationSite]) -> str:
    """The largest sites; the long tail of interpreter-internal crumbs is only counted."""
    ordered = sorted(all_sites, key=lambda s: s.size, reverse=True)
    floor = max(SMALL_SITE, ordered[0].size // 100) if ordered else 0
    sites = [s for s in ordered[:TOP_SITES] if s.size >= floor] or ordered[:1]
    rest = len(ordered) - len(sites)
    rows = "".join(
        f'<tr><td class="site" title="{escape(_stack_words(s))}">{escape(_short(s.file))}:'
        f'{s.line}</td><td>{escape(s.function or "")}</td>'
        f'<td class="num">{escape(format_bytes(s.size))}</td><td class="num">{s.count}</td></tr>'
        for s in sites)
    more = f'<p class="muted">{rest} smaller sites not shown.</p>' if rest else ""
    return ("<table><thead><tr><th>file:line</th><th>function</th><th class=num>size</th>"
            f"<th class=num>blocks</th></tr></thead><tbody>{rows}</tbody></table>{more}")


def _stack_words(site: AllocationSite) -> str:
    """The site's stack, innermost first, for a tooltip."""
    frames = site.stack or []
    if not frames:
        return site.file
    text = "\n".join(f"{f.file}:{f.line} {f.function or ''}".rstrip() for f in frames)
    if site.native_stack:
        text += "\nnative:\n" + "\n".join(
            f"{f.function or '?'} {f.file}:{f.line}" for f in site.native_stack)
    return text


def _flatten(node: Mapping[str, object], prefix: str = "") -> Iterable[tuple[str, str]]:
    for key, value in node.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            yield from _flatten(value, name)
        elif isinstance(value, bool) or value is None:
            yield name, str(value)
        elif isinstance(value, int | float):
            yield name, f"{value:.6g}"
        elif isinstance(value, str):
            yield name, value
        elif isinstance(value, list) and value and all(
                isinstance(v, int | float | str) for v in value):
            yield name, ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in value)
