"""Zero-code phases from the SLA file, on a real cgroup: a program whose functions hold 50 and
200 MiB, with no memsla code in it, reports both phases with their peaks and growth; the phase
that added the most is the largest, and ``phase(NAME).growth`` is judged."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import SpecError
from runner.slafile import parse_suite
from tests.conftest import run_cli
from tests.judging.helpers import PYTHON, MiB, write

GENERATOR = """
    import time

    def load():
        held = bytearray(50 * 1024 * 1024)
        held[::4096] = b"x" * len(held[::4096])  # touched: charged to the cgroup
        time.sleep(0.3)
        return held

    class Renderer:
        def render(self, depth):
            if depth:
                return self.render(depth - 1)
            pages = bytearray(200 * 1024 * 1024)
            pages[::4096] = b"y" * len(pages[::4096])
            time.sleep(0.3)
            return len(pages)
    """

MAIN = """
    import gen

    kept = gen.load()  # held through rendering: render's own peak includes it
    gen.Renderer().render(2)
    """


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_zero_code_phases_report_peaks_and_growth(tmp_path: Path) -> None:
    write(tmp_path, "gen.py", GENERATOR)
    write(tmp_path, "main.py", MAIN)
    write(tmp_path, "sla.yaml", f"""
        version: 1
        defaults: {{backend: cgroup, repeats: 1}}
        scenarios:
          site:
            command: [{PYTHON}, main.py]
            phases:
              load: gen:load
              render: gen:Renderer.render
            slas:
              - phase(render).python_growth < 190MiB
              - phase(load).growth < 100MiB
        """)
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert run.exit_code == 1, run.stdout + run.stderr
    built = run.case()
    metrics = {name: stats["median"] for name, stats in built["metrics"].items()}
    for name, mib in (("load", 50), ("render", 200)):
        assert metrics[f"phase({name}).python_growth"] == pytest.approx(mib * MiB, rel=0.02)
    assert metrics["phase(render).python_peak"] == pytest.approx(250 * MiB, rel=0.02)
    verdicts = {v["rule"]: v for v in built["verdicts"]}
    assert verdicts["phase(render).python_growth < 190MiB"]["passed"] is False
    assert run.results is not None
    (summary,) = run.results["scenarios"][0]["analysis"]["phases"]
    assert summary["largest"] == "render"
    if "phase(render).growth" in metrics:  # the host lets the build reset its cgroup's peak
        assert metrics["phase(render).growth"] == pytest.approx(200 * MiB, rel=0.02)
        assert metrics["phase(load).growth"] == pytest.approx(50 * MiB, rel=0.02)
        assert verdicts["phase(load).growth < 100MiB"]["passed"] is True
        assert summary["largest_by"] == "growth"


def test_phases_in_the_sla_file_are_checked() -> None:
    suite = parse_suite("version: 1\nscenarios:\n  a:\n    command: [x]\n"
                        "    phases: {render: 'pkg.mod:Site.render'}\n")
    assert suite.scenarios["a"].phases == {"render": "pkg.mod:Site.render"}
    with pytest.raises(SpecError, match="must be 'package\\.module:function'"):
        parse_suite("version: 1\nscenarios:\n  a:\n    command: [x]\n"
                    "    phases: {render: 'pkg.mod.render'}\n")
