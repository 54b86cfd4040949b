"""Baselines: the change of every case metric between two results files (``runner compare``),
tolerances on those changes (``peak: 10% + 8MiB``), the ``<metric>_growth`` rules of
``runner check --baseline`` and the allocation sites that grew since the baseline.

Cases match by scenario and parameters, scaling fits (``per_page``, ``fixed_overhead``,
``scaling_exponent``) by scenario; a case or scenario present on one side only is reported,
never an error. Every compared metric is one where more is worse (memory, time, counts, cost
per page, growth exponent), so only increases can exceed a tolerance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from runner.judging.verdicts import verdict
from runner.metrics import GROWTH_SUFFIX, MetricRef, Source, case_label, parse_metric
from runner.results import AllocationSite, Case, GrownSite, Results, Verdict
from runner.slafile.rules import Rule
from runner.units import Kind, UnitError, format_value, parse, parse_ratio

SKIPPED = ("pages", "exit_code")  # inputs and pass/fail facts, not quantities that drift
_TOLERANCE = re.compile(r"^\s*(?P<metric>[^:]+?)\s*:\s*(?P<terms>.+?)\s*$")
CaseKey = tuple[str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class Tolerance:
    """How much a metric may grow: ``relative`` x base + ``absolute`` (in base units)."""

    metric: str
    relative: float = 0.0
    absolute: float = 0.0
    text: str = ""

    def allows(self, base: float, head: float) -> bool:
        return head - base <= self.relative * abs(base) + self.absolute


def parse_tolerance(text: str) -> Tolerance:
    """``'peak: 10% + 8MiB'``, ``'duration: 20%'`` or ``'allocations: 100'``."""
    match = _TOLERANCE.match(text)
    if not match:
        raise ValueError(f"cannot read tolerance {text!r}; write METRIC: 10% + 8MiB")
    ref = parse_metric(match.group("metric"))
    if ref.source in (Source.LEAK, Source.BASELINE, Source.ACROSS):
        raise ValueError(f"tolerance {text!r}: compare applies to case metrics and scaling "
                         f"fits, not {ref.key}")
    relative = absolute = 0.0
    for term in (t.strip() for t in match.group("terms").split("+")):
        try:
            if term.endswith("%"):
                relative += parse_ratio(term)
            else:
                absolute += parse(ref.kind, term)
        except UnitError as exc:
            raise ValueError(f"tolerance {text!r}: {exc}") from None
    return Tolerance(ref.key, relative, absolute, text.strip())


@dataclass
class Change:
    label: str
    metric: str
    base: float
    head: float
    tolerance: Tolerance | None = None

    @property
    def absolute(self) -> float:
        return self.head - self.base

    @property
    def relative(self) -> float | None:
        return None if self.base == 0 else (self.head - self.base) / abs(self.base)

    @property
    def exceeded(self) -> bool:
        return self.tolerance is not None and not self.tolerance.allows(self.base, self.head)


@dataclass
class Comparison:
    changes: list[Change] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # "... only in BASE/HEAD", "not measured"

    @property
    def exceeded(self) -> list[Change]:
        return [c for c in self.changes if c.exceeded]


def case_key(case: Case) -> CaseKey:
    return case.scenario, tuple(sorted((k, str(v)) for k, v in case.params.items()))


def changes(base: Results, head: Results, tolerances: list[Tolerance] | None = None,
            stat: str = "median") -> Comparison:
    """Every case metric's and fit figure's change from ``base`` to ``head`` (``stat`` of the
    repeats), judged against its tolerance where one is given."""
    by_metric = {t.metric: t for t in tolerances or []}
    result = Comparison()
    base_cases = {case_key(c): c for c in base.cases}
    head_cases = {case_key(c): c for c in head.cases}
    base_scenarios = {c.scenario for c in base.cases}
    head_scenarios = {c.scenario for c in head.cases}
    for name in sorted(base_scenarios - head_scenarios):
        result.missing.append(f"scenario {name} only in BASE")
    for name in sorted(head_scenarios - base_scenarios):
        result.missing.append(f"scenario {name} only in HEAD")
    for key, case in base_cases.items():
        if key not in head_cases and case.scenario in head_scenarios:
            result.missing.append(f"{case.label} only in BASE")
    for key, case in head_cases.items():
        other = base_cases.get(key)
        if other is None:
            if case.scenario in base_scenarios:
                result.missing.append(f"{case.label} only in HEAD")
            continue
        for side, measured in (("BASE", other), ("HEAD", case)):
            if measured.error:
                result.missing.append(f"{case.label} not measured in {side}: {measured.error}")
        for metric, head_stats in case.metrics.items():
            base_stats = other.metrics.get(metric)
            if base_stats is None or metric in SKIPPED:
                continue
            result.changes.append(Change(case.label, metric, base_stats.pick(stat),
                                         head_stats.pick(stat), by_metric.get(metric)))
        for metric in by_metric:
            if parse_metric(metric).source is Source.FIT:
                continue  # judged per scenario below
            if metric not in case.metrics or metric not in other.metrics:
                result.missing.append(f"{case.label}: {metric} not measured on both sides")
    base_fits, head_fits = fit_figures(base), fit_figures(head)
    for (label, metric), head_value in head_fits.items():
        base_value = base_fits.get((label, metric))
        if base_value is not None:
            result.changes.append(Change(label, metric, base_value, head_value,
                                         by_metric.get(metric)))
    both = base_fits.keys() & head_fits.keys()
    for metric in by_metric:
        if parse_metric(metric).source is not Source.FIT:
            continue
        fitted = {label.split("[", 1)[0] for label, key in both if key == metric}
        anywhere = {label.split("[", 1)[0] for label, key in base_fits.keys() | head_fits.keys()
                    if key == metric}
        if not anywhere:
            result.missing.append(f"{metric}: no scenario has a scaling fit on either side")
        for scenario in sorted(anywhere - fitted):
            result.missing.append(f"{scenario}: {metric} not fitted on both sides")
    return result


def context_differences(base: Results, head: Results) -> list[str]:
    """What differs between the two sides besides the code measured, in sentences, with how
    much of a peak change that accounts for where it is known: the backend, the limits, the
    harness baseline (a harness's idle peak is in every peak of its runs), memsla's version
    and the host. Empty: the two were measured alike."""
    notes: list[str] = []
    bh, hh = base.host, head.host
    backends = ({c.backend for c in base.cases} or {bh.backend},
                {c.backend for c in head.cases} or {hh.backend})
    if backends[0] != backends[1]:
        notes.append(f"the backends differ: BASE ran on {', '.join(sorted(backends[0]))}, HEAD "
                     f"on {', '.join(sorted(backends[1]))}; peaks include what each backend "
                     "adds (page cache of its files, a harness not kept out of them)")
    # the idle harness's peak where it is part of every peak (not kept out of them)
    in_peaks = [None if h.harness_kept_out else h.harness_baseline for h in (bh, hh)]
    if in_peaks[0] != in_peaks[1]:
        before, after = in_peaks[0] or 0, in_peaks[1] or 0
        shown = [format_value(Kind.BYTES, b) if b is not None else "none (no harness)"
                 for b in in_peaks]
        notes.append(
            f"the harness baseline differs: {shown[0]} in BASE, "
            f"{shown[1]} in HEAD (the idle harness's peak, part of every "
            f"peak): it accounts for {format_value(Kind.BYTES, after - before, signed=True)} of "
            "each case's peak change")
    limits = {case_key(c): c.limit for c in base.cases}
    changed = sorted({f"{c.label} ({_limit(limits[case_key(c)])} -> {_limit(c.limit)})"
                      for c in head.cases
                      if case_key(c) in limits and limits[case_key(c)] != c.limit})
    if changed:
        notes.append("the limits differ: " + ", ".join(changed[:5])
                     + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
                     + " (page cache is reclaimed sooner under a lower limit)")
    if base.memsla_version != head.memsla_version:
        notes.append(f"memsla's version differs: {base.memsla_version} in BASE, "
                     f"{head.memsla_version} in HEAD")
    host = [f"{what} {a} -> {b}" for what, a, b in (
        ("host", bh.hostname, hh.hostname), ("kernel", bh.kernel, hh.kernel),
        ("cgroup v", bh.cgroup_version, hh.cgroup_version),
        ("memory", format_value(Kind.BYTES, bh.memory_total),
         format_value(Kind.BYTES, hh.memory_total)),
        ("CPUs", bh.cpus, hh.cpus)) if a != b]
    if host:
        notes.append("the hosts differ: " + ", ".join(host).replace("cgroup v ", "cgroup v"))
    return notes


def _limit(limit: int | None) -> str:
    return "no limit" if limit is None else format_value(Kind.BYTES, limit)


def fit_figures(results: Results) -> dict[tuple[str, str], float]:
    """Each scenario's fitted figures by (scenario label, metric key): ``per_page(peak)``,
    ``fixed_overhead(peak)``, ``scaling_exponent(peak)``, ... where the fit succeeded."""
    figures: dict[tuple[str, str], float] = {}
    for scenario in results.scenarios:
        for fit in scenario.analysis.scaling:
            if fit.problem is not None or fit.line is None:
                continue
            label = case_label(scenario.scenario, fit.params)
            values = {"per_page": fit.line.marginal, "fixed_overhead": fit.line.fixed,
                      "scaling_exponent": fit.exponent}
            for figure, value in values.items():
                if value is not None:
                    figures[(label, f"{figure}({fit.metric})")] = value
    return figures


def growth_metric(ref: MetricRef) -> str:
    return ref.name[: -len(GROWTH_SUFFIX)]


def judge_growth(rule: Rule, case: Case, baseline: Results | None) -> Verdict:
    """``peak_growth < 10%``: the relative change of the rule's statistic against the baseline."""
    if baseline is None:
        return verdict(rule, None, reason="no baseline: run check with --baseline BASE.json")
    if case.error is not None:
        return verdict(rule, None, reason=f"not measured: {case.error}")
    metric = growth_metric(rule.metric)
    other = next((c for c in baseline.cases if case_key(c) == case_key(case)), None)
    if other is None:
        return verdict(rule, None, reason=f"the baseline has no case {case.label}")
    head_stats, base_stats = case.metrics.get(metric), other.metrics.get(metric)
    if head_stats is None or base_stats is None:
        side = "this run" if head_stats is None else "the baseline"
        return verdict(rule, None, reason=f"{metric} was not measured in {side}")
    stat = rule.resolved_stat if rule.resolved_stat != "worst" else "median"
    base, head = base_stats.pick(stat), head_stats.pick(stat)
    if base == 0:
        return verdict(rule, None, stat=stat, reason=f"the baseline's {metric} is 0")
    kind = parse_metric(metric).kind
    reason = (f"{format_value(kind, base)} -> {format_value(kind, head)} "
              f"({format_value(kind, head - base, signed=True)})")
    return verdict(rule, (head - base) / abs(base), stat=stat, reason=reason,
                   approximate=case.approximate)


def peak_sites(case: Case) -> dict[tuple[str, int], AllocationSite]:
    """The sites held at the heap's peak in the case's traced run, every process's, by file
    and line (the largest where two processes share one)."""
    sites: dict[tuple[str, int], AllocationSite] = {}
    for run in case.runs:
        if run.kind != "traced":
            continue
        for heap in run.python:
            for site in heap.at_peak.sites if heap.at_peak else []:
                known = sites.get((site.file, site.line))
                if known is None or site.size > known.size:
                    sites[(site.file, site.line)] = site
        break  # the first traced run
    return sites


def grown_sites(base: Results, head: Results, per_case: int = 5,
                minimum: int = 64 * 1024) -> list[GrownSite]:
    """Per case on both sides, the sites at the peak that grew the most (at least
    ``minimum`` bytes), largest growth first."""
    base_cases = {case_key(c): c for c in base.cases}
    found: list[GrownSite] = []
    for case in head.cases:
        other = base_cases.get(case_key(case))
        if other is None:
            continue
        before, after = peak_sites(other), peak_sites(case)
        if not before or not after:
            continue
        grown = [GrownSite(label=case.label, file=site.file, line=site.line,
                           function=site.function,
                           base=before[key].size if key in before else 0, head=site.size)
                 for key, site in after.items()]
        grown = [c for c in grown if c.grown >= minimum]
        grown.sort(key=lambda c: c.grown, reverse=True)
        found += grown[:per_case]
    return found


def attach_grown_sites(results: Results, baseline: Results | None) -> None:
    """Store in each scenario's analysis the sites that grew since ``baseline`` (none without
    one): the judging stage does it for the check's baseline, a report against another
    baseline for its own."""
    grown = grown_sites(baseline, results) if baseline is not None else []
    scenario_of = {case.label: case.scenario for case in results.cases}
    for scenario in results.scenarios:
        scenario.analysis.grown_sites = [site for site in grown
                                         if scenario_of.get(site.label) == scenario.scenario]
