"""From a validated suite to the list of cases to run: the matrix expanded, settings resolved,
rules scoped, placeholders ready to fill."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from runner.errors import UsageError
from runner.metrics import MetricRef, case_label, reads_full_capture, reads_heap
from runner.slafile.model import CaseSettings, Scenario, Settings, Suite, placeholders
from runner.slafile.rules import Rule

# Every build must complete: these hold unless the user writes a rule on the same metric.
IMPLICIT_RULES = (
    Rule(text="exit_code == 0", metric=MetricRef("exit_code"), op="==", bound=0),
    Rule(text="oom_kills == 0", metric=MetricRef("oom_kills"), op="==", bound=0),
)


@dataclass(frozen=True)
class CasePlan:
    """One case to run: a scenario at one point of its matrix, with its effective settings."""

    scenario_name: str
    scenario: Scenario
    params: dict[str, int | str]
    settings: CaseSettings
    # whether the case gets its traced run (its tracker permitting) and why: trace_sizes
    traced: bool = True
    trace_reason: str = ""
    # memray: a full capture (the run's totals, phases' heap figures) or the aggregated one,
    # which holds the high-water mark, the heap at exit and the sites at the peak
    full_capture: bool = True

    @property
    def size_parameter(self) -> str | None:
        return self.scenario.size_parameter

    @property
    def size(self) -> int | None:
        name = self.size_parameter
        value = self.params.get(name) if name else None
        return value if isinstance(value, int) else None

    @property
    def label(self) -> str:
        return case_label(self.scenario_name, self.params)

    @property
    def python(self) -> str | None:
        """``python:`` at this case's matrix values (a version sweep: ``python: "{py}"``)."""
        return self.scenario.python_for(self.params)

    @property
    def dockerfile(self) -> str | None:
        """``dockerfile:`` at this case's matrix values."""
        return self.scenario.dockerfile_for(self.params)

    @property
    def requirements(self) -> list[str]:
        """``requirements:`` at this case's matrix values."""
        return self.scenario.requirements_for(self.params)


def build_plan(suite: Suite, *, only: list[str] | None = None,
               overrides: Settings | None = None,
               sizes: list[int] | None = None) -> list[CasePlan]:
    """Expand every scenario's matrix; the settings ``overrides`` sets (e.g. --backend) replace
    the file's."""
    if only:
        unknown = [name for name in only if name not in suite.scenarios]
        if unknown:
            raise UsageError(f"no scenario named {unknown[0]!r}; the file has "
                             + ", ".join(suite.scenarios))
    plans: list[CasePlan] = []
    for name, scenario in suite.scenarios.items():
        if only and name not in only:
            continue
        settings = suite.settings_for(scenario).model_copy(
            update=overrides.model_dump(exclude_none=True) if overrides else {})
        swept = [*scenario.swept, *(key for rule in suite.slas if rule.metric.across
                                    for key in rule.metric.across.keys)]
        chosen = []
        for params in expand_matrix(scenario.matrix, fastest=swept):
            size_name = scenario.size_parameter
            if sizes and size_name and params.get(size_name) not in sizes:
                continue
            chosen.append(CasePlan(name, scenario, params, _with_image(settings, params)))
        plans += choose_traced(suite, chosen)
    return plans


def choose_traced(suite: Suite, plans: list[CasePlan]) -> list[CasePlan]:
    """One scenario's cases, each told whether it gets the traced run and why (``trace_sizes``:
    ``auto`` traces the sizes where a rule reads heap figures, and the largest size of each
    combination of the other matrix values, where the sites at the heap's peak are read;
    ``largest``, ``all`` or a list of sizes as written), and whether a memray capture must be
    full. The SLA file's validation already refused a rule that reads heap figures at a size
    ``trace_sizes`` leaves untraced."""
    largest: dict[tuple[tuple[str, str], ...], int] = {}
    for plan in plans:
        if plan.size is not None:
            key = _others(plan)
            largest[key] = max(largest.get(key, plan.size), plan.size)
    chosen = []
    for plan in plans:
        written, _ = case_rules(suite, plan.scenario_name, plan.params)
        heap = [r for r in written if reads_heap(r.metric)]
        # a step scenario's steps run once each: none could be traced again alone
        full = (bool(plan.scenario.phases) or plan.scenario.steps is not None
                or any(reads_full_capture(r.metric) for r in written))
        setting = plan.settings.trace_sizes
        at = f"{plan.size_parameter}={plan.size}"
        if plan.settings.tracker == "none":
            traced, why = False, ""
        elif plan.size is None or setting == "all":
            traced, why = True, ("" if plan.size is None else "trace_sizes: all")
        elif setting == "auto" and heap:
            traced, why = True, f"rule {heap[0].text!r} reads heap figures at {at}"
        elif setting in ("auto", "largest"):
            traced = plan.size == largest[_others(plan)]
            why = ("the largest size: the sites at the heap's peak are read there" if traced
                   else f"no rule at {at} reads heap figures (trace_sizes: {setting})"
                   if setting == "auto" else "trace_sizes: largest")
        else:
            traced = plan.size in setting
            why = f"trace_sizes: {', '.join(map(str, setting))}"
        chosen.append(replace(plan, traced=traced, full_capture=full,
                              trace_reason=f"{'traced' if traced else 'not traced'}: {why}"
                              if why else ""))
    return chosen


def _others(plan: CasePlan) -> tuple[tuple[str, str], ...]:
    """The case's matrix values other than its size."""
    return tuple((k, str(v)) for k, v in plan.params.items() if k != plan.size_parameter)


def _with_image(settings: CaseSettings, params: Mapping[str, int | str]) -> CaseSettings:
    """The settings with ``image:`` at the case's matrix values (an image per Python version);
    a suite default naming a parameter this scenario's matrix lacks is left as written."""
    try:
        names = placeholders(settings.image)
    except ValueError:  # a default's stray brace: the engine says what is wrong with the name
        return settings
    if not names or not set(names) <= set(params):
        return settings
    return settings.model_copy(update={"image": fill(settings.image, params)})


def case_rules(suite: Suite, scenario_name: str,
               params: Mapping[str, int | str]) -> tuple[list[Rule], list[Rule]]:
    """The rules that apply to one case: those written (the scenario's, then the suite's), and
    the implicit ones that hold unless a written rule judges the same metric."""
    scenario = suite.scenarios[scenario_name]
    # a suite-wide step rule applies to the scenarios that have that step
    shared = [r for r in suite.slas if r.metric.step is None or not (
        scenario.cannot_measure(r.metric) or (r.over and scenario.cannot_measure(r.over)))]
    return rules_for([*scenario.slas, *shared], params)


def rules_for(rules: Sequence[Rule], params: Mapping[str, int | str]
              ) -> tuple[list[Rule], list[Rule]]:
    """Of ``rules``, those that apply at ``params``; and the implicit ones that hold unless one
    of them judges the same metric."""
    applied = [r for r in rules if r.applies_to(params)]
    written = {r.metric.key for r in applied}
    return applied, [r for r in IMPLICIT_RULES if r.metric.key not in written]


def expand_matrix(matrix: Mapping[str, list[int | str]], fastest: Sequence[str] = ()
                  ) -> list[dict[str, int | str]]:
    """Every combination, the last axis changing fastest; the ``fastest`` axes (the swept
    versions, a rule's compared values) are moved last, so their values sit side by side in
    the plan and in every report. Each combination keeps the matrix's order of keys."""
    keys = list(matrix)
    order = [k for k in keys if k not in fastest] + [k for k in keys if k in fastest]
    return [{k: combo[k] for k in keys}
            for combo in (dict(zip(order, values, strict=True))
                          for values in itertools.product(*(matrix[k] for k in order)))]


def fill(template: str, values: Mapping[str, object]) -> str:
    """Fill ``{name}`` placeholders (the spec already checked every name is known)."""
    return template.format_map({k: str(v) for k, v in values.items()})


def with_size(plan: CasePlan, size: int) -> CasePlan:
    """The same case at another size (used by capacity searches)."""
    name = plan.size_parameter
    if name is None:
        raise UsageError(f"scenario {plan.scenario_name!r} has no size parameter")
    return replace(plan, params={**plan.params, name: size})
