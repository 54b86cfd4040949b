"""memray's full captures read in the background: the figures are the serial read's, the
folders are gone afterwards, and a check judges them (planted allocations)."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from runner.measure import background
from runner.measure.assemble import assemble
from runner.measure.background import PENDING_NOTE, BackgroundReads
from runner.measure.probe_records import read_probe_dir
from runner.measure.readings import Readings
from tests.inbuild.test_memray_tracker import _run_capture

pytest.importorskip("memray", reason="memray is an optional extra: pip install 'memsla[memray]'")

MiB = 1024 * 1024
PLANTED = """
    held = bytearray(48 * 1024 * 1024)  # PLANTED
    churn = [bytearray(1024 * 1024) for _ in range(20)]
    del churn
    """


def test_the_background_read_gives_the_serial_reads_figures(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _run_capture(tmp_path, PLANTED, aggregate=False)
    captured = tmp_path / "full" / "probe"
    serial_copy, background_copy = tmp_path / "serial", tmp_path / "run" / "probe"
    shutil.copytree(captured, serial_copy)
    shutil.copytree(captured, background_copy)
    readings = Readings(exit_code=0, duration=1.0, kernel_peak=80 * MiB)
    serial = assemble("traced", 3, readings, read_probe_dir(serial_copy), None, {})
    reads = BackgroundReads(tmp_path / "work")
    run = reads.defer("traced", 3, readings, background_copy, {}, keep=False)
    assert not background_copy.exists(), "moved aside: the executor removes the run's folder"
    assert run.python_peak is None and PENDING_NOTE in run.notes
    run.started, run.ended, run.disk = 5.0, 6.0, {"out": 12}  # set by the executor meanwhile

    def serially(*args: object, **kwargs: object) -> None:
        raise AssertionError("read by the runner: the workers' read was not used")

    monkeypatch.setattr(background, "read_probe_dir", serially)
    reads.finish()
    assert run.started == 5.0 and run.disk == {"out": 12}
    assert run.model_dump(exclude={"started", "ended", "disk"}) == serial.model_dump(
        exclude={"started", "ended", "disk"})
    # the 48 MiB held while 20 MiB more are made
    assert run.python_peak is not None and abs(run.python_peak - 68 * MiB) / (68 * MiB) < 0.02
    assert run.allocated is not None and run.allocated >= 68 * MiB
    assert not any((tmp_path / "work").iterdir()), "the capture's folder is removed"
    reads.finish()  # twice is harmless


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_a_check_judges_the_captures_read_in_the_background(tmp_path: Path) -> None:
    import sys

    from tests.conftest import run_cli

    (tmp_path / "plant.py").write_text(
        "import sys\nheld = bytearray(int(sys.argv[1]) * 1024 * 1024)\n"
        "churn = [bytearray(1024 * 1024) for _ in range(20)]\n")
    (tmp_path / "sla.yaml").write_text(textwrap.dedent(f"""
        version: 1
        defaults: {{backend: cgroup, repeats: 1, tracker: memray}}
        scenarios:
          plant:
            command: [{sys.executable}, plant.py, "{{mib}}"]
            matrix: {{mib: [16, 48]}}
            slas: [allocated > 30MiB, python_peak < 40MiB]
        """))
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert run.results is not None, run.stderr
    verdicts = {(c["params"]["mib"], v["rule"]): v for c in run.results["cases"]
                for v in c["verdicts"]}
    assert verdicts[(16, "python_peak < 40MiB")]["passed"] is True
    assert verdicts[(48, "python_peak < 40MiB")]["passed"] is False
    assert verdicts[(48, "python_peak < 40MiB")]["value"] == pytest.approx(68 * MiB, rel=0.05)
    assert verdicts[(16, "allocated > 30MiB")]["value"] == pytest.approx(36 * MiB, rel=0.1)
    notes = [n for c in run.results["cases"] for r in c["runs"] for n in r["notes"]]
    assert PENDING_NOTE not in notes
    assert run.results["status"] == "fail"
