"""The build's stdout and stderr: read through pipes by the runner, bounded, never charged to the
build (a build printing 200 MB once read a 215 MiB peak, 138 MiB of it its own log's cache)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from runner.backends import capture
from tests.conftest import CliRun, run_cli

MiB = 1024 * 1024
# Prints MB megabytes to stdout in 1 KiB lines, then one line to stderr.
LOUD = """
import sys
mb = int(sys.argv[1])
line = b"x" * 1023 + b"\\n"
for _ in range(mb * 1024):
    sys.stdout.buffer.write(line)
sys.stdout.flush()
sys.stderr.write("printed %d MB\\n" % mb)
"""


def write_loud_suite(folder: Path, backend: str, extra: str = "") -> None:
    """An SLA file printing 0 and 200 MB under a 512 MiB limit (``extra``: more defaults)."""
    (folder / "loud.py").write_text(LOUD)
    (folder / "sla.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        defaults: {{backend: {backend}, limit: 512MiB, repeats: 1, tracker: none{extra}}}
        scenarios:
          loud:
            command: [python3, loud.py, "{{mb}}"]
            matrix: {{mb: [0, 200]}}
        slas: [oom_kills == 0]
        """))


def assert_output_not_charged(run: CliRun, backend: str) -> None:
    """Printing 200 MB costs the build's peak under 16 MiB; the stderr tail reaches the
    results, and the run says how much of stdout its log dropped."""
    assert run.exit_code == 0, run.stderr + run.stdout
    assert run.results is not None and run.results["host"]["backend"] == backend
    quiet, loud = run.case(mb=0)["runs"][0], run.case(mb=200)["runs"][0]
    grew = loud["cgroup_peak"] - quiet["cgroup_peak"]
    assert grew < 16 * MiB, (quiet["cgroup_peak"] / MiB, loud["cgroup_peak"] / MiB)
    assert loud["stderr_tail"].strip() == "printed 200 MB"
    (said,) = [note for note in loud["notes"] if "to stdout" in note]
    assert "200 MiB" in said and "dropped" in said
    assert not [note for note in quiet["notes"] if "dropped" in note]


def test_a_stream_keeps_its_head_and_tail_and_counts_the_rest(tmp_path: Path) -> None:
    kept = capture.Captured(head=4, tail=6)
    for chunk in (b"abc", b"defgh", b"ijklmnop", b"qrstuvwxyz"):
        kept.feed(chunk)
    assert (bytes(kept.head), kept.tail, kept.total, kept.dropped) == (
        b"abcd", b"uvwxyz", 26, 16)
    assert kept.last_text(3) == "xyz"
    kept.write(tmp_path / "log")
    assert (tmp_path / "log").read_bytes() == b"abcd\n[memsla: 16 bytes dropped here]\nuvwxyz"
    short = capture.Captured(head=4, tail=6)
    short.feed(b"abcdefg")
    assert short.dropped == 0 and short.last_text() == "abcdefg"
    short.write(tmp_path / "short")
    assert (tmp_path / "short").read_bytes() == b"abcdefg"


def test_a_stream_holds_at_most_its_bounds_however_much_is_written() -> None:
    kept = capture.Captured(head=1024, tail=4096)
    for _ in range(10_000):
        kept.feed(b"y" * 1000)
    assert kept.total == 10_000_000 and len(kept.head) == 1024 and len(kept.tail) == 4096
    assert len(kept._tail) <= 2 * 4096 + 1000


def test_pipes_are_read_to_their_end_and_saved(tmp_path: Path) -> None:
    readers, writers = capture.pipe_pair()
    output = capture.OutputCapture().read_fds(readers)
    os.write(writers["stdout"], b"out\n")
    os.write(writers["stderr"], b"err\n")
    capture.close_all(writers)
    assert output.wait(5)
    assert output.stderr_tail == "err\n" and output.save(tmp_path) == []
    assert (tmp_path / "stdout.log").read_bytes() == b"out\n"


@pytest.mark.cgroup
@pytest.mark.usefixtures("writable_cgroup")
def test_printing_200_mb_is_not_charged_to_the_build_on_the_local_cgroup(tmp_path: Path) -> None:
    write_loud_suite(tmp_path, "cgroup")
    assert_output_not_charged(run_cli(["check", "sla.yaml"], tmp_path), "cgroup")


def test_printing_200_mb_is_captured_bounded_on_the_process_backend(tmp_path: Path) -> None:
    write_loud_suite(tmp_path, "process")
    run = run_cli(["check", "sla.yaml"], tmp_path)
    assert run.exit_code == 0, run.stderr + run.stdout
    loud = run.case(mb=200)["runs"][0]
    assert loud["stderr_tail"].strip() == "printed 200 MB"
    assert [note for note in loud["notes"] if "to stdout" in note and "dropped" in note]
