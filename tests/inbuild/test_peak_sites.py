"""Why the peak is what it is, against planted truths: the sites held at the heap's peak (not
those freed before or after it), the heap before and after the exit's collection (cyclic
garbage), zero-code phases wrapped on import, and what each phase added (growth)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from runner.measure import staging
from runner.measure.probe_records import ProbeData, read_probe_dir

MiB = 1024 * 1024


def _run(tmp_path: Path, files: dict[str, str], main: str, *, trace: bool = True,
         phases: dict[str, str] | None = None, frames: int = 5,
         tracker: str = "tracemalloc", args: list[str] | None = None
         ) -> tuple[str, ProbeData]:
    for name, text in files.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    stage = staging.stage(tmp_path / "cache")
    out = tmp_path / "probe"
    out.mkdir(exist_ok=True)
    env = {**os.environ,
           **staging.environment(str(stage), str(out), trace=trace, t0=time.time()),
           **staging.probe_settings(phases=phases or {}, stack_depth=frames, tracker=tracker)}
    proc = subprocess.run([sys.executable, main, *(args or [])], env=env, capture_output=True,
                          text=True, check=False, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, read_probe_dir(out)


def _line(text: str, marker: str) -> int:
    return next(n for n, line in enumerate(textwrap.dedent(text).splitlines(), 1)
                if marker in line)


PEAK = """
    import time

    def before():
        early = bytearray(40 * 1024 * 1024)  # BEFORE
        del early

    def hold():
        big = bytearray(64 * 1024 * 1024)  # PEAK
        time.sleep(0.5)
        return len(big)

    def after():
        late = bytearray(48 * 1024 * 1024)  # AFTER
        time.sleep(0.3)
        del late

    def build():
        before()
        hold()
        after()

    build()
    """


def test_the_site_at_the_heap_peak_is_named_and_those_freed_around_it_are_not(
        tmp_path: Path) -> None:
    _, data = _run(tmp_path, {"plant.py": PEAK}, "plant.py")
    (heap,) = data.python
    assert heap.at_peak is not None
    top = heap.at_peak.sites[0]
    assert (Path(top.file).name, top.line) == ("plant.py", _line(PEAK, "# PEAK"))
    assert top.function == "hold"
    assert abs(top.size - 64 * MiB) / (64 * MiB) < 0.02
    assert [f.function for f in top.stack[:3]] == ["hold", "build", "<module>"]
    lines = {s.line for s in heap.at_peak.sites if Path(s.file).name == "plant.py"}
    assert _line(PEAK, "# BEFORE") not in lines and _line(PEAK, "# AFTER") not in lines
    # the heap the sites add up from is the peak, within the stated tolerance
    assert heap.at_peak.heap >= heap.peak * (1 - heap.at_peak.tolerance) - MiB
    assert heap.at_peak.tolerance == 0.05 and heap.at_peak.tolerance_bytes == MiB
    assert abs(heap.peak - 64 * MiB) / (64 * MiB) < 0.02, "the summary's own memory is not kept"
    assert heap.top_before_collection == [], "no garbage at exit: no second summary"


CYCLIC = """
    import time

    class Page:
        def __init__(self):
            self.me = self
            self.body = bytearray(40 * 1024 * 1024)  # CYCLE

    def build():
        Page()  # garbage at once, but cyclic: only a collection frees it
        time.sleep(0.3)

    import gc
    gc.disable()
    build()
    """


def test_cyclic_garbage_shows_at_the_peak_and_before_the_collection(tmp_path: Path) -> None:
    _, data = _run(tmp_path, {"cyclic.py": CYCLIC}, "cyclic.py")
    (heap,) = data.python
    line = _line(CYCLIC, "# CYCLE")
    assert heap.at_peak is not None and heap.at_peak.sites[0].line == line
    assert heap.top_before_collection[0].line == line
    assert heap.top_before_collection[0].function == "Page.__init__"
    assert all(s.line != line or Path(s.file).name != "cyclic.py"
               for s in heap.top_allocations), "after the collection the garbage is gone"
    assert heap.final is not None and heap.final_collected is not None
    assert abs(heap.final - heap.final_collected - 40 * MiB) / (40 * MiB) < 0.02


SMALL_GARBAGE = """
    import gc, sys

    gc.disable()
    kept = [{"n": n} for n in range(3000)]
    class Node:
        def __init__(self):
            self.me = self
    for _ in range(int(sys.argv[1])):
        Node()  # cyclic garbage left for the exit's collection: under 1 MiB
    """


def test_garbage_under_the_tolerance_at_exit_leaves_the_live_blocks_exact(
        tmp_path: Path) -> None:
    """The exit reads the heap once when its collection frees nothing, and again after
    freeing what it found: either way the count of live blocks is the collected heap's."""
    heaps = {}
    for garbage in (0, 2000):
        out = tmp_path / str(garbage)
        out.mkdir()
        _, data = _run(out, {"garbage.py": SMALL_GARBAGE}, "garbage.py", args=[str(garbage)])
        (heaps[garbage],) = data.python
    plain, littered = heaps[0], heaps[2000]
    assert plain.blocks is not None and littered.blocks is not None
    assert plain.blocks > 3000
    # the 2,000 cycles (4,000 blocks: each object and its __dict__) are not live
    assert abs(littered.blocks - plain.blocks) <= 50, (littered.blocks, plain.blocks)
    assert littered.final is not None and littered.final_collected is not None
    assert littered.final - littered.final_collected > 2000 * 48, "the garbage was freed"
    # under the tolerance (5%, 1 MiB) the heap before the collection is not summarised again
    assert plain.top_before_collection == [] and littered.top_before_collection == []
    assert plain.top_allocations and littered.top_allocations


SITE = """
    import time

    class Site:
        def render(self, depth):
            if depth:
                return self.render(depth - 1)  # recursion: one phase, the outermost
            pages = bytearray(200 * 1024 * 1024)
            time.sleep(0.2)
            self.write()  # a phase nested in another
            self.write()  # and called again: one phase per call
            return len(pages)

        def write(self):
            return bytearray(1024)

        @staticmethod
        def parse():
            items = bytearray(50 * 1024 * 1024)
            time.sleep(0.2)
            return len(items)
    """

PROGRAM = """
    import site_gen

    print(site_gen.Site.parse(), site_gen.Site.parse.__name__)
    print(site_gen.Site().render(3), site_gen.Site.render.__qualname__)
    """


@pytest.mark.parametrize("trace", [True, False])
def test_zero_code_phases_wrap_the_named_callables_on_import(tmp_path: Path,
                                                             trace: bool) -> None:
    out, data = _run(tmp_path, {"site_gen.py": SITE, "main.py": PROGRAM}, "main.py",
                     trace=trace, phases={"parse": "site_gen:Site.parse",
                                          "render": "site_gen:Site.render",
                                          "write": "site_gen:Site.write",
                                          "never": "not_imported:main"})
    assert out.split() == ["52428800", "parse", "209715200", "Site.render"], "unchanged"
    assert [(p.name, p.depth) for p in data.phases] == [("parse", 0), ("render", 0),
                                                        ("write", 1), ("write", 1)]
    assert all(p.end is not None for p in data.phases)
    assert data.problems == ["phase not_imported:main: never imported"]
    if not trace:
        assert all(p.python_peak is None for p in data.phases)
        return
    parse, render, write, _ = data.phases
    assert write.python_growth is not None and write.python_growth < 64 * 1024
    for phase, mib in ((parse, 50), (render, 200)):
        assert phase.python_growth is not None and phase.python_peak is not None
        assert abs(phase.python_growth - mib * MiB) / (mib * MiB) < 0.02, phase.name
        assert phase.python_peak >= phase.python_growth
        assert phase.at_peak is not None and phase.at_peak.sites[0].size >= mib * MiB * 0.98


GROWTH = """
    import runner, time

    held = bytearray(100 * 1024 * 1024)
    with runner.phase("postprocess"):
        added = bytearray(10 * 1024 * 1024)
        time.sleep(0.2)
    """


def test_a_phase_entered_at_100_mib_that_adds_10_mib_grew_10_mib(tmp_path: Path) -> None:
    _, data = _run(tmp_path, {"grow.py": GROWTH}, "grow.py")
    (phase,) = data.phases
    assert phase.python_entry is not None and phase.python_entry >= 100 * MiB
    assert phase.python_peak is not None and phase.python_peak >= 110 * MiB
    assert phase.python_growth is not None
    assert abs(phase.python_growth - 10 * MiB) / (10 * MiB) < 0.02
    assert phase.at_peak is not None
    assert phase.at_peak.sites[0].size >= 100 * MiB  # what the phase held at its peak


LAST_MOMENT = """
    kept = [bytearray(1024 * 1024) for _ in range(30)]  # GROWN
"""


def test_a_peak_reached_just_before_exit_is_summarised_at_exit(tmp_path: Path) -> None:
    # the heap grows to its peak faster than the poll and stays there until the program ends:
    # the exit summarises the sites at the peak when no poll did
    _, data = _run(tmp_path, {"grown.py": LAST_MOMENT}, "grown.py")
    (heap,) = data.python
    assert heap.at_peak is not None
    assert abs(heap.at_peak.heap - heap.peak) <= 0.02 * heap.peak
    top = heap.at_peak.sites[0]
    assert (top.file.endswith("grown.py"), top.line) == (True, _line(LAST_MOMENT, "GROWN"))
    assert abs(top.size - 30 * MiB) < 0.05 * 30 * MiB
