"""JUnit XML, validated against the Jenkins JUnit schema."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import xmlschema

from runner.reports.common import verdict_rows
from runner.reports.interface import ReportFormat, render_text
from runner.results import Results
from tests.reports.conftest import DATA


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(DATA / "jenkins-junit.xsd")


def _junit(results: Results) -> tuple[str, ET.Element]:
    text = render_text(ReportFormat.JUNIT, results)
    return text, ET.fromstring(text)


def test_the_schema_rejects_what_it_should(schema: xmlschema.XMLSchema) -> None:
    assert not schema.is_valid('<testsuites><testsuite name="x"/></testsuites>')  # no tests=
    assert not schema.is_valid('<testsuites><testsuite name="x" tests="1">'
                               '<testcase name="a" time="1.5s"/></testsuite></testsuites>')


def test_recorded_and_awkward_results_validate(schema: xmlschema.XMLSchema, recorded: Results,
                                               awkward: Results) -> None:
    for results in (recorded, awkward):
        text, _ = _junit(results)
        schema.validate(text)


def test_one_testcase_per_case_and_rule(recorded: Results) -> None:
    _, root = _junit(recorded)
    testcases = root.findall("testsuite/testcase")
    rows = verdict_rows(recorded)
    assert len(testcases) == len(rows) == int(root.get("tests", "-1"))
    assert [(t.get("classname"), t.get("name")) for t in testcases] == [
        (row.scenario, f"{row.label}: {row.verdict.rule}") for row in rows]
    suites = [s.get("name") for s in root.findall("testsuite")]
    assert suites[:4] == ["site[pages=100]", "site[pages=200]", "site[pages=400]", "greedy"]


def test_a_broken_sla_is_a_failure_with_value_and_bound(recorded: Results) -> None:
    _, root = _junit(recorded)
    failures = root.findall(".//testcase/failure")
    assert int(root.get("failures", "-1")) == len(failures) == 3
    render = next(f for f in failures if "python_peak" in f.get("message", ""))
    assert render.get("message") == ("site[pages=400]: phase(render).python_peak = 108 MiB, "
                                     "bound < 60 MiB (phase(render).python_peak < 60MiB)")
    assert "defined at: sla.yaml:13" in (render.text or "")
    oom = next(f for f in failures if "oom_kills" in f.get("message", ""))
    assert oom.get("message", "").startswith("greedy: oom_kills = 1, bound == 0")


def test_the_key_metrics_are_suite_properties(recorded: Results) -> None:
    _, root = _junit(recorded)
    suite = next(s for s in root.findall("testsuite") if s.get("name") == "site[pages=400]")
    props = {p.get("name"): p.get("value") for p in suite.findall("properties/property")}
    case = next(c for c in recorded.cases if c.label == "site[pages=400]")
    assert props["peak"] == str(int(case.metrics["peak"].median))
    assert float(props["duration"]) == pytest.approx(case.metrics["duration"].median)
    assert {"rss_peak", "python_peak", "backend", "approximate", "limit", "param.pages"} <= set(
        props)
    assert (props["backend"], props["approximate"]) == ("cgroup", "false")


def test_unjudged_rules_and_unmeasured_cases_are_errors(awkward: Results) -> None:
    _, root = _junit(awkward)
    errors = root.findall(".//testcase/error")
    assert [e.get("type") for e in errors] == ["NotJudged", "NotMeasured"]
    assert errors[0].get("message") == "not judged: no traced run:\nset tracker: tracemalloc"
    assert "<boom> & 'quotes'" in (errors[1].get("message") or "")
    assert int(root.get("errors", "-1")) == 2


def test_characters_xml_cannot_carry_are_replaced(awkward: Results) -> None:
    text, root = _junit(awkward)
    assert "\x1b" not in text and "\x00" not in text
    assert "\N{REPLACEMENT CHARACTER}[31mKilled" in (root.findtext(".//system-err") or "")
