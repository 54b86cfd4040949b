"""A version sweep's environment in the history: each case recorded with its own interpreter
and requirements, filled at its matrix values, so its series never mixes two versions."""

from __future__ import annotations

from runner.history.model import Requirements, environment_of
from tests.judging.helpers import MiB, case, results


def test_each_case_records_its_own_versions() -> None:
    cases = [case("s", [10 * MiB], params={"py": py, "jinja": "3.1.4"})
             for py in ("3.11", "3.12")]
    report = results(cases)
    sweep = Requirements(python="{py}", requirements=["jinja2=={jinja}", "markdown"])
    first, second = (environment_of(report, c, sweep) for c in cases)
    assert (first.build_python, second.build_python) == ("3.11", "3.12")
    assert first.requirements == ["jinja2==3.1.4", "markdown"]
    assert first.fingerprint != second.fingerprint
