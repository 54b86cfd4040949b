"""Metric names, the rules that judge them, and which value across repeats a rule judges."""

from __future__ import annotations

import pytest

from runner.metrics import (
    FIT_METRICS,
    FITTABLE,
    OTHER_METRICS,
    PHASE_METRICS,
    RUN_METRICS,
    MetricRef,
    Source,
    all_names,
    parse_metric,
)
from runner.slafile import Rule, parse_rule
from runner.units import Kind

# --- parse_metric


@pytest.mark.parametrize("name", sorted(RUN_METRICS))
def test_run_metrics(name: str) -> None:
    ref = parse_metric(name)
    assert ref == MetricRef(name=name)
    assert ref.key == name
    assert ref.kind is RUN_METRICS[name].kind
    assert ref.source is RUN_METRICS[name].source


@pytest.mark.parametrize("name", sorted(RUN_METRICS))
def test_growth_of_every_run_metric(name: str) -> None:
    ref = parse_metric(f"{name}_growth")
    assert ref == MetricRef(name=f"{name}_growth")
    assert ref.kind is Kind.RATIO
    assert ref.source is Source.BASELINE
    assert name in ref.definition.description


@pytest.mark.parametrize("name", sorted(FIT_METRICS))
@pytest.mark.parametrize("of", FITTABLE)
def test_fit_metrics_with_an_argument(name: str, of: str) -> None:
    ref = parse_metric(f"{name}({of})")
    assert ref == MetricRef(name=name, of=of)
    assert ref.key == f"{name}({of})"
    assert ref.source is Source.FIT


@pytest.mark.parametrize("name", sorted(FIT_METRICS))
def test_fit_metrics_default_to_peak(name: str) -> None:
    assert parse_metric(name) == MetricRef(name=name, of="peak")


@pytest.mark.parametrize("name", sorted(PHASE_METRICS))
def test_phase_metrics(name: str) -> None:
    ref = parse_metric(f"phase(render).{name}")
    assert ref == MetricRef(name=name, phase="render")
    assert ref.key == f"phase(render).{name}"
    assert ref.kind is PHASE_METRICS[name].kind


@pytest.mark.parametrize("name", sorted(OTHER_METRICS))
def test_other_metrics(name: str) -> None:
    assert parse_metric(name).source is OTHER_METRICS[name].source


def test_kinds_and_sources() -> None:
    assert (parse_metric("peak").kind, parse_metric("peak").source) == (Kind.BYTES, Source.TIMED)
    assert parse_metric("python_peak").source is Source.TRACED
    assert parse_metric("duration").kind is Kind.SECONDS
    assert parse_metric("oom_kills").kind is Kind.COUNT
    assert parse_metric("scaling_exponent").kind is Kind.NUMBER
    assert parse_metric("per_page(rss_peak)").kind is Kind.BYTES
    assert parse_metric("leak_per_build").source is Source.LEAK


def test_spacing_and_phase_names() -> None:
    assert parse_metric("  peak ") == MetricRef(name="peak")
    assert parse_metric("phase( render html ).peak") == MetricRef(name="peak",
                                                                  phase="render html")


@pytest.mark.parametrize("key", [
    "peak", "rss_peak_growth", "per_page(python_peak)", "phase(write).duration", "leak_per_build",
])
def test_key_parses_back(key: str) -> None:
    assert parse_metric(parse_metric(key).key) == parse_metric(key)


def test_every_listed_name_parses() -> None:
    for name in all_names():
        parse_metric(name.replace("NAME", "render").replace("(M)", "(peak)"))


@pytest.mark.parametrize(("text", "message"), [
    ("heap", "unknown metric 'heap'"),
    ("peek", "did you mean 'peak'"),
    ("rss_pek", "did you mean 'rss_peak'"),
    ("duraton", "did you mean 'duration'"),
    ("peak_grwth", "did you mean 'peak_growth'"),
    ("per_page_growth", "unknown metric"),
    ("phase(render).pyhton_peak", "did you mean 'python_peak'"),
    ("phase(render).oom_kills", "unknown phase metric 'oom_kills'"),
    ("phase( ).peak", "phase name is empty"),
    ("per_page(duration)", "the fit takes one of peak, rss_peak, python_peak"),
    ("peak(rss_peak)", "takes no argument"),
    ("peak()", "cannot read metric"),
    ("phase(render)", "needs the phase's metric"),
    ("peak.max", "cannot read metric"),
    ("", "cannot read metric"),
])
def test_bad_metrics(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_metric(text)


def test_no_suggestion_for_nonsense() -> None:
    with pytest.raises(ValueError) as caught:
        parse_metric("qqqqqqq")
    assert "did you mean" not in str(caught.value)


# --- parse_rule


@pytest.mark.parametrize(("text", "op"), [
    ("peak < 2GiB", "<"), ("peak<=2GiB", "<="), ("peak > 2GiB", ">"), ("peak >= 2GiB", ">="),
    ("peak == 2GiB", "=="), ("peak != 2GiB", "!="),
])
def test_every_operator(text: str, op: str) -> None:
    rule = parse_rule(text)
    assert (rule.metric, rule.op, rule.bound) == (MetricRef(name="peak"), op, 2 * 1024**3)


def test_rule_defaults_and_options() -> None:
    rule = parse_rule("  duration < 2min  ")
    assert (rule.text, rule.bound, rule.stat, rule.when) == ("duration < 2min", 120.0, "worst", {})
    assert (rule.file, rule.line) == (None, None)
    scoped = parse_rule("duration < 2min", stat="median", when={"pages": (1000,)})
    assert (scoped.stat, scoped.when) == ("median", {"pages": (1000,)})


@pytest.mark.parametrize(("text", "message"), [
    ("peak 2GiB", "METRIC OP VALUE"),
    ("peak = 2GiB", "METRIC OP VALUE"),
    ("< 2GiB", "METRIC OP VALUE"),
    ("peak <", "METRIC OP VALUE"),
    ("peak < 20s", "peak is a size"),
    ("duration < 2GiB", "duration is a duration"),
    ("oom_kills == 1.5", "is a whole number"),
    ("peak_growth < 10MiB", "is a ratio"),
    ("scaling_exponent < 1.2x", "is a plain number"),
    ("peek < 2GiB", "did you mean 'peak'"),
])
def test_bad_rules(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rule(text)


# --- holds, pick, applies_to


@pytest.mark.parametrize(("op", "value", "holds"), [
    ("<", 1, True), ("<", 2, False), ("<=", 2, True), ("<=", 3, False),
    (">", 3, True), (">", 2, False), (">=", 2, True), (">=", 1, False),
    ("==", 2, True), ("==", 1, False), ("!=", 1, True), ("!=", 2, False),
])
def test_holds(op: str, value: float, holds: bool) -> None:
    assert parse_rule(f"oom_kills {op} 2").holds(value) is holds


@pytest.mark.parametrize(("stat", "expected"), [
    ("max", 5.0), ("min", 1.0), ("median", 3.0), ("mean", 3.0),
])
def test_pick_statistics(stat: str, expected: float) -> None:
    rule = parse_rule("peak < 4", stat=stat)  # type: ignore[arg-type]
    assert rule.pick([3.0, 5.0, 1.0]) == expected


def test_median_of_even_count() -> None:
    assert parse_rule("peak < 4", stat="median").pick([1.0, 2.0, 3.0, 10.0]) == 2.5


@pytest.mark.parametrize(("text", "resolved", "values", "worst"), [
    ("peak < 4", "max", [3.0, 5.0, 1.0], 5.0),  # an upper bound is judged on the largest
    ("peak <= 4", "max", [3.0, 5.0, 1.0], 5.0),
    ("duration > 4", "min", [3.0, 5.0, 1.0], 1.0),  # a lower bound on the smallest
    ("duration >= 4", "min", [3.0, 5.0, 1.0], 1.0),
    ("oom_kills == 3", "worst", [3.0, 4.0, 0.0], 0.0),  # the farthest failing value
    ("oom_kills == 3", "worst", [3.0, 3.0], 3.0),
    ("exit_code != 3", "worst", [4.0, 3.0, 10.0], 3.0),  # the failing one
    ("exit_code != 3", "worst", [10.0, 2.0, 3.5], 3.5),  # all pass: the nearest to failing
])
def test_worst(text: str, resolved: str, values: list[float], worst: float) -> None:
    rule = parse_rule(text)
    assert rule.resolved_stat == resolved
    assert rule.pick(values) == worst


def test_explicit_stat_is_not_resolved() -> None:
    assert parse_rule("peak < 1", stat="mean").resolved_stat == "mean"


def test_applies_to() -> None:
    everywhere = parse_rule("peak < 1GiB")
    assert everywhere.applies_to({}) and everywhere.applies_to({"pages": 10})
    scoped = Rule(text="peak < 1GiB", metric=MetricRef(name="peak"), op="<", bound=1.0,
                  when={"pages": (100, 1000), "theme": ("simple",)})
    assert scoped.applies_to({"pages": 100, "theme": "simple"})
    assert scoped.applies_to({"pages": 1000, "theme": "simple", "other": 1})
    assert not scoped.applies_to({"pages": 10, "theme": "simple"})
    assert not scoped.applies_to({"pages": 100, "theme": "fancy"})
    assert not scoped.applies_to({"pages": 100})  # a parameter the case does not have
    assert not scoped.applies_to({"pages": "100", "theme": "simple"})  # values keep their type
