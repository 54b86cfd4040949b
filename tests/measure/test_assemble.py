"""Every rule of ``runner.measure.assemble``, on plain readings and probe data (no cgroup)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from runner.measure import assemble as rules
from runner.measure.assemble import assemble, assemble_run
from runner.measure.probe_records import ProbeData
from runner.measure.readings import Readings
from runner.results import LeakRecord, LimitChange, PythonHeap, Timeline

MiB = 1024 * 1024
LIMIT = 512 * MiB


# Readings as a cgroup backend takes them: a build that exited 0 under LIMIT.
CGROUP = Readings(exit_code=0, duration=2.0, kernel_peak=300 * MiB, sampled_max_usage=290 * MiB,
                  sampled_max_anon=180 * MiB, anon_at_end=20 * MiB, cache_at_max=100 * MiB,
                  oom_kill_counter=0, limit_read=LIMIT, limit_set=LIMIT, swap_allowed=False)
# Readings as the process backend takes them: the tree's RSS, nothing from a cgroup.
PROCESS = Readings(exit_code=0, duration=2.0, tree_rss_max=250 * MiB)


def _cgroup(**read: Any) -> Readings:
    return dataclasses.replace(CGROUP, **read)


def _process(**read: Any) -> Readings:
    return dataclasses.replace(PROCESS, **read)


def test_cgroup_readings_become_the_run_figures() -> None:
    run = assemble("timed", 3, _cgroup(cpu_time=1.5), ProbeData())
    assert (run.kind, run.index, run.exit_code, run.duration, run.cpu_time) == (
        "timed", 3, 0, 2.0, 1.5)
    assert run.cgroup_peak == 300 * MiB, "the kernel's peak, above the sampler's"
    assert run.rss_peak == 180 * MiB, "the sampled anon max, above the anon at the end"
    assert run.cache_peak == 100 * MiB
    assert run.limit == LIMIT and run.oom_kills == 0 and not run.oom_killed
    assert not run.approximate and run.notes == [] and run.completed


def test_sampler_max_above_the_kernel_peak_counts() -> None:
    # memory.peak is missing before kernel 5.19 (v2): the sampler's max is all there is
    assert assemble("timed", 0, _cgroup(kernel_peak=None), ProbeData()).cgroup_peak == 290 * MiB
    assert assemble("timed", 0, _cgroup(sampled_max_usage=310 * MiB),
                    ProbeData()).cgroup_peak == 310 * MiB


def test_probe_cgroup_segments_above_the_kernel_peak() -> None:
    # the build reset the kernel's peak at each phase start: the peak before a reset is only
    # known from the segment the probe recorded
    probe = ProbeData(cgroup_segments=[120 * MiB, 420 * MiB, 60 * MiB])
    run = assemble("timed", 0, _cgroup(), probe)
    assert run.cgroup_peak == 420 * MiB
    below = ProbeData(cgroup_segments=[100 * MiB])
    assert assemble("timed", 0, _cgroup(), below).cgroup_peak == 300 * MiB


def test_vm_hwm_above_sampled_anon() -> None:
    # a short spike between two samples: the process's own high-water mark saw it
    run = assemble("timed", 0, _cgroup(), ProbeData(vm_hwm=230 * MiB))
    assert run.rss_peak == 230 * MiB
    assert run.cgroup_peak == 300 * MiB, "VmHWM is anonymous memory: not a cgroup figure"


def test_anon_at_end_above_the_sampled_max() -> None:
    run = assemble("timed", 0, _cgroup(sampled_max_anon=None, anon_at_end=40 * MiB),
                   ProbeData())
    assert run.rss_peak == 40 * MiB


def test_engine_oom_with_a_zero_counter_is_one_kill() -> None:
    # the container's cgroup was gone before the counter could say it (or v1 did not count it)
    run = assemble("timed", 0, _cgroup(oom_kill_counter=0, engine_oom_killed=True),
                   ProbeData())
    assert run.oom_kills == 1 and run.oom_killed and not run.completed


def test_kernel_counter_beats_the_engine_flag() -> None:
    run = assemble("timed", 0, _cgroup(oom_kill_counter=3, engine_oom_killed=True),
                   ProbeData())
    assert run.oom_kills == 3 and run.oom_killed
    # a grandchild killed while the build's parent lives: exit 0, only the counter says
    quiet = assemble("timed", 0, _cgroup(oom_kill_counter=1), ProbeData())
    assert quiet.exit_code == 0 and quiet.oom_killed and not quiet.completed


def test_process_backend_figures_are_tree_rss_and_approximate() -> None:
    run = assemble("timed", 0, _process(), ProbeData(vm_hwm=100 * MiB))
    assert run.approximate
    assert run.cgroup_peak == 250 * MiB and run.rss_peak == 250 * MiB
    assert run.limit is None and run.cache_peak is None
    assert run.notes == [rules.TREE_RSS_NOTE], "no hard limit is said once, not twice"
    higher = assemble("timed", 0, _process(), ProbeData(vm_hwm=260 * MiB))
    assert higher.cgroup_peak == 250 * MiB and higher.rss_peak == 260 * MiB


def test_process_backend_that_sampled_nothing() -> None:
    run = assemble("timed", 0, _process(tree_rss_max=0), ProbeData())
    assert run.approximate and run.cgroup_peak is None and run.rss_peak is None


def test_no_limit_note() -> None:
    run = assemble("timed", 0, _cgroup(limit_read=None, limit_set=None), ProbeData())
    assert run.limit is None and run.notes == [rules.NO_LIMIT_NOTE]


def test_limit_read_back_wins_over_the_limit_set() -> None:
    # the kernel keeps limits in whole pages: an unaligned limit reads back rounded down
    run = assemble("timed", 0, _cgroup(limit_set=LIMIT + 100), ProbeData())
    assert run.limit == LIMIT and run.limit_changed is None and run.limit_changes == []
    # a harness that left no report: the limit the backend asked for
    unread = assemble("timed", 0, _cgroup(limit_read=None), ProbeData())
    assert unread.limit == LIMIT and unread.notes == [] and unread.limit_changed is None


def test_limit_read_after_the_build_that_is_not_the_one_asked_for_is_a_change() -> None:
    # a harness (scope, container) read its cgroup's limit after the build: 1 GiB, not 512 MiB
    run = assemble("timed", 0, _cgroup(limit_read=1024 * MiB), ProbeData())
    assert run.limit_changes == [LimitChange(cgroup="own", before=LIMIT, after=1024 * MiB)]
    assert run.limit_changed == ("the build changed its memory limit from 512 MiB to 1 GiB (its "
                                 "own cgroup, read after the build)")
    assert run.limit == LIMIT, "judged under the limit asked for, not the one it gave itself"
    assert run.notes[0] == run.limit_changed


def test_limit_changes_the_backend_saw_during_the_build() -> None:
    fence = [LimitChange(cgroup="fence", file=name, before=LIMIT, after=None, at=0.4,
                         stopped=True)
             for name in ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes")]
    own = LimitChange(cgroup="own", file="memory.limit_in_bytes", before=LIMIT, after=None,
                      at=0.4)
    run = assemble("timed", 0, _cgroup(limit_read=None, limit_changes=[*fence, own]),
                   ProbeData())
    assert run.limit_changes == [*fence, own]
    assert run.limit_changed == (
        "the build changed its memory limit from 512 MiB to no limit "
        "(memory.limit_in_bytes and memory.memsw.limit_in_bytes of the parent cgroup holding "
        "its limit, 400 ms into the build), and 1 other limit change(s); the runner stopped "
        "the build")
    assert run.limit == LIMIT and rules.NO_LIMIT_NOTE not in run.notes
    # only its own cgroup changed, below a fence that held: still not the run it was given
    held = assemble("timed", 0, _cgroup(limit_changes=[own]), ProbeData())
    assert held.limit_changed is not None and "its own cgroup, 400 ms" in held.limit_changed
    assert "stopped" not in held.limit_changed


def test_changes_seen_in_two_reads_are_said_the_same_way() -> None:
    # a build writes memory+swap first, then memory; a sampler read between the two writes
    # sees them in that order: the sentence is the one a single read would have given
    memsw, memory = (LimitChange(cgroup="own", file=name, before=LIMIT, after=None, at=at)
                     for name, at in (("memory.memsw.limit_in_bytes", 0.1),
                                      ("memory.limit_in_bytes", 0.12)))
    one_read = assemble("timed", 0, _cgroup(limit_changes=[memory, memsw]), ProbeData())
    two_reads = assemble("timed", 0, _cgroup(limit_changes=[memsw, memory]), ProbeData())
    both = "(memory.limit_in_bytes and memory.memsw.limit_in_bytes of its own cgroup, "
    for run in (one_read, two_reads):
        assert run.limit_changed is not None and both in run.limit_changed


def test_a_peak_above_the_limit_means_the_limit_did_not_hold() -> None:
    # raised and set back between two reads: only the peak says so
    run = assemble("timed", 0, _cgroup(kernel_peak=609 * MiB), ProbeData())
    assert run.limit_changes == []
    assert run.limit_changed == ("the build's cgroup peaked at 609 MiB, above its limit of "
                                 "512 MiB: the build changed its memory limit during the run")
    sampled = assemble("timed", 0, _cgroup(kernel_peak=None, sampled_max_usage=600 * MiB),
                       ProbeData())
    assert sampled.limit_changed is not None
    # the kernel may charge a few pages past the limit while it kills
    at_the_limit = assemble("timed", 0, _cgroup(kernel_peak=LIMIT + 2 * MiB, oom_kill_counter=1),
                            ProbeData())
    assert at_the_limit.limit_changed is None
    assert assemble("timed", 0, _cgroup(kernel_peak=2048 * MiB, limit_set=None, limit_read=None),
                    ProbeData()).limit_changed is None, "no limit asked: none to hold"
    assert assemble("timed", 0, _process(tree_rss_max=2048 * MiB),
                    ProbeData()).limit_changed is None


def test_swap_note_only_when_swap_is_allowed() -> None:
    assert assemble("timed", 0, _cgroup(swap_allowed=True), ProbeData()).notes == [
        rules.SWAP_NOTE]
    assert assemble("timed", 0, _cgroup(swap_allowed=None), ProbeData()).notes == []


def test_nothing_read_gives_no_figures() -> None:
    # a harness that left no report: exit status and clock from outside, no peak
    readings = Readings(exit_code=137, signal=9, duration=4.0, duration_source="outside",
                        limit_set=LIMIT, notes=["the harness left no report"])
    run = assemble("timed", 0, readings, ProbeData())
    assert run.cgroup_peak is None and run.rss_peak is None and run.cache_peak is None
    assert run.oom_kills == 0 and run.limit == LIMIT and run.signal == 9
    assert run.notes == ["the harness left no report"]


def test_notes_say_the_figures_first_then_the_backend_then_the_probe() -> None:
    readings = _cgroup(limit_read=None, limit_set=None, swap_allowed=True,
                       notes=["from the backend"])
    run = assemble("timed", 0, readings, ProbeData(problems=["from the probe"]))
    assert run.notes == [rules.NO_LIMIT_NOTE, rules.SWAP_NOTE, "from the backend",
                         "from the probe"]


def test_python_heaps_only_on_the_traced_run_and_the_rest_passed_through() -> None:
    heap = PythonHeap(pid=1, peak=5 * MiB)
    timeline = Timeline(interval=0.02, t=[0.0], cgroup=[MiB], anon=[MiB])
    readings = _cgroup(timeline=timeline, stderr_tail="boom", timed_out=True)
    traced = assemble("traced", 0, readings, ProbeData(python=[heap]))
    assert traced.python == [heap] and traced.python_peak == 5 * MiB
    timed = assemble("timed", 0, readings, ProbeData(python=[heap]))
    assert timed.python == [] and timed.timeline == timeline
    assert timed.stderr_tail == "boom" and timed.timed_out
    leak = LeakRecord(entry="m:f", complete=True)
    assert assemble("leak", 0, readings, ProbeData(), leak).leak == leak


def test_assemble_run_reads_the_probe_folder(tmp_path: Path) -> None:
    records = [{"type": "start", "pid": 7, "trace": False},
               {"type": "cgroup_segment", "t": 0.5, "peak": 400 * MiB},
               {"type": "end", "vm_hwm": 200 * MiB}]
    (tmp_path / "probe-7.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    run = assemble_run("timed", 0, _cgroup(), tmp_path)
    assert run.cgroup_peak == 400 * MiB and run.rss_peak == 200 * MiB
    assert assemble_run("leak", 1, _cgroup(), tmp_path).leak is None, "no driver records"
