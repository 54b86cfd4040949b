"""JUnit XML: one testsuite per case, one testcase per SLA rule, as CI test-report views read it.

Laid out to the Jenkins JUnit schema (tests/reports/data/jenkins-junit.xsd): a testcase's
classname is the scenario and its name the case label plus the rule; a broken SLA is a
``<failure>`` with the measured value and the bound, an SLA that could not be judged an
``<error>``. Each case's testsuite carries the key metrics as properties, in bytes and seconds;
a step scenario's case also each step's figures (``step(NAME).METRIC``, medians, and
``step(NAME).not_run``, the runs it missed), with its step table in the suite's system-out.
"""

from __future__ import annotations

import datetime
import re
import xml.etree.ElementTree as ET
from typing import TextIO

from runner.metrics import KEY_METRICS, TRACKER_METRICS
from runner.reports.common import (
    STEP_COLUMNS,
    VerdictRow,
    case_step_rows,
    compares_cases,
    failure_message,
    verdict_rows,
)
from runner.results import Case, Results

# Characters XML 1.0 cannot carry at all (e.g. the ANSI escapes of a build's stderr).
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: str) -> str:
    return _NOT_XML.sub("\N{REPLACEMENT CHARACTER}", value)


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _timestamp(created: str) -> str:
    """ISO 8601 without a zone, in UTC: the form the JUnit schemas accept."""
    try:
        moment = datetime.datetime.fromisoformat(created)
    except ValueError:
        return created[:19]
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return moment.isoformat(timespec="seconds")


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"


class JUnitReport:
    def render(self, results: Results, out: TextIO, *, baseline: Results | None = None) -> None:
        root = build(results)
        ET.indent(root)
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        out.write(ET.tostring(root, encoding="unicode"))
        out.write("\n")


def build(results: Results) -> ET.Element:
    rows = verdict_rows(results)
    root = ET.Element("testsuites", name=_text(f"memsla {results.sla_file}"))
    stamp = _timestamp(results.created)
    for case in results.cases:
        suite = _suite(root, case.label, stamp, results.host.hostname)
        _properties(suite, case)
        case_rows = [row for row in rows if row.case is case]
        for row in case_rows:
            _testcase(suite, row)
        if case.error and not case_rows:
            testcase = ET.SubElement(suite, "testcase", classname=case.scenario,
                                     name=_text(f"{case.label}: measurement"))
            ET.SubElement(testcase, "error", type="NotMeasured",
                          message=_text(case.error))
        _streams(suite, case)
        _count(suite, sum(run.duration for run in case.runs))
    for scenario in results.scenarios:
        if not scenario.verdicts:
            continue
        suite = _suite(root, scenario.scenario, stamp, results.host.hostname)
        properties = ET.SubElement(suite, "properties")
        ET.SubElement(properties, "property", name="scenario", value=_text(scenario.scenario))
        for row in rows:
            if row.case is None and row.scenario == scenario.scenario:
                _testcase(suite, row)
        _count(suite, 0.0)
    for name in ("tests", "failures", "errors"):
        root.set(name, str(sum(int(s.get(name, "0")) for s in root)))
    root.set("time", _seconds(sum(float(s.get("time", "0")) for s in root)))
    return root


def _suite(root: ET.Element, name: str, stamp: str, hostname: str) -> ET.Element:
    return ET.SubElement(root, "testsuite", name=_text(name), timestamp=stamp,
                         hostname=_text(hostname))


def _count(suite: ET.Element, time: float) -> None:
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    suite.set("errors", str(sum(1 for c in cases if c.find("error") is not None)))
    suite.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
    suite.set("time", _seconds(time))


def _properties(suite: ET.Element, case: Case) -> None:
    properties = ET.SubElement(suite, "properties")

    def add(name: str, value: str) -> None:
        ET.SubElement(properties, "property", name=name, value=_text(value))

    add("scenario", case.scenario)
    for key, value in case.params.items():
        add(f"param.{key}", str(value))
    for metric in KEY_METRICS:
        add(metric, _number(case.pick(metric)))
    for metric in TRACKER_METRICS:
        if metric in case.metrics:
            add(metric, _number(case.pick(metric)))
    for row in case_step_rows(case):
        for metric in STEP_COLUMNS:
            name = f"step({row.step}).{metric}"
            if name in case.metrics:
                add(name, _number(case.pick(name, "median")))
        add(f"step({row.step}).not_run", str(row.not_run))
    add("backend", case.backend)
    add("approximate", "true" if case.approximate else "false")
    add("limit", _number(case.limit))
    add("runs", str(len(case.runs)))


def _testcase(suite: ET.Element, row: VerdictRow) -> None:
    verdict = row.verdict
    name = f"{row.label}: {verdict.rule}"
    testcase = ET.SubElement(suite, "testcase", classname=_text(row.scenario), name=_text(name))
    if verdict.skipped:
        ET.SubElement(testcase, "skipped", message=_text(verdict.reason))
    elif verdict.passed is None:
        element = ET.SubElement(testcase, "error", type="NotJudged",
                                message=_text(f"not judged: {verdict.reason or 'no value'}"))
        element.text = _text(_details(row))
    elif not verdict.passed:
        element = ET.SubElement(testcase, "failure", type="SLAFailure",
                                message=_text(failure_message(row)))
        element.text = _text(_details(row))
    elif compares_cases(verdict):  # both sides' values, on a pass too
        ET.SubElement(testcase, "system-out").text = _text(_details(row))


def _details(row: VerdictRow) -> str:
    verdict = row.verdict
    lines = [f"rule: {verdict.rule}" + (" (implicit)" if verdict.implicit else "")]
    if verdict.file:
        lines.append(f"defined at: {verdict.file}" + (f":{verdict.line}" if verdict.line else ""))
    lines.append(f"judged: {verdict.stat} = {_number(verdict.value) or '-'}, "
                 f"bound {verdict.op} {_number(verdict.bound)} (bytes and seconds)")
    stats = row.case.metrics.get(verdict.metric) if row.case else None
    if stats is not None:
        lines.append("runs: " + ", ".join(_number(v) for v in stats.values))
    if verdict.approximate:
        lines.append("approximate: measured by a backend without kernel counters")
    if verdict.reason:
        lines.append(f"reason: {verdict.reason}")
    if row.case is not None and verdict.metric in ("exit_code", "oom_kills"):
        for run in row.case.runs:
            if not run.completed and run.stderr_tail:
                lines.append(f"stderr of {run.kind} run {run.index} (tail):")
                lines.append(run.stderr_tail.rstrip())
    return "\n".join(lines)


def _streams(suite: ET.Element, case: Case) -> None:
    notes = list(dict.fromkeys(note for run in case.runs for note in run.notes))
    if case.error:
        notes.insert(0, f"not measured: {case.error}")
    steps = case_step_rows(case)
    if steps:  # the terminal's step table, as lines
        notes.append("steps (each its own cgroup reading; median of timed runs, heap from the "
                     "traced run): " + ", ".join(STEP_COLUMNS))
        notes += [f"step {row.step}: " + ", ".join(row.figures)
                  + (f"; not run in {row.not_run} of {row.runs} runs" if row.not_run else "")
                  for row in steps]
    ET.SubElement(suite, "system-out").text = _text("\n".join(notes))
    tails = [f"--- {run.kind} run {run.index} (exit {run.exit_code}) ---\n{run.stderr_tail}"
             for run in case.runs if not run.completed and run.stderr_tail]
    ET.SubElement(suite, "system-err").text = _text("\n".join(tails))
