"""cgroup v1 and v2 files parsed from recorded contents under a fake root (v2 cannot run here).

The fake trees go through ``cgroups.CGROUP_ROOT`` and ``cgroups.PROC_ROOT``, the constants every
cgroup and /proc lookup starts from.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import pytest

from runner.inbuild import cgroups
from runner.inbuild.cgroups import v1, v2
from tests.inbuild.recorded import V1_OOM, V1_STAT, V2_EVENTS, V2_STAT, MiB, v2_tree


@pytest.fixture
def fake_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """CGROUP_ROOT and PROC_ROOT pointed at an empty folder the test fills."""
    monkeypatch.setattr(cgroups, "CGROUP_ROOT", str(tmp_path))
    monkeypatch.setattr(cgroups, "PROC_ROOT", str(tmp_path / "proc"))
    return tmp_path


def test_v2_files_read_through_the_common_api(fake_root: Path) -> None:
    own_dir = v2_tree(fake_root)
    own = cgroups.own_cgroup()
    assert own is not None and own.version == 2 and own.path == str(own_dir)
    assert own.files is v2
    assert own.peak() == 200 * MiB and own.peak_file() == str(own_dir / "memory.peak")
    assert own.current() == 150 * MiB
    assert own.anon() == 100 * MiB and own.cache() == 50 * MiB
    assert own.oom_kills() == 2
    assert own.limit() == 256 * MiB
    assert own.swap_allowed() is False
    assert own.memory_for_children() is True
    assert own.pids() == [12, 13]


@pytest.mark.parametrize(("overrides", "limit", "swap"), [
    ({"memory.max": "max\n", "memory.swap.max": "max\n"}, None, True),
    ({"memory.swap.max": "4294967296\n"}, 256 * MiB, True),
    ({"memory.max": "max\n"}, None, False),
])
def test_v2_no_limit_and_swap_max(fake_root: Path, overrides: dict[str, str],
                                  limit: int | None, swap: bool) -> None:
    v2_tree(fake_root, **overrides)
    own = cgroups.own_cgroup()
    assert own is not None
    assert own.limit() == limit
    assert own.swap_allowed() is swap


def test_v2_without_swap_accounting_cannot_tell(fake_root: Path) -> None:
    (v2_tree(fake_root) / "memory.swap.max").unlink()
    own = cgroups.own_cgroup()
    assert own is not None and own.swap_allowed() is None
    own.set_limit(64 * MiB)  # the missing swap file is skipped, memory.max still written
    assert Path(own.file("memory.max")).read_text() == str(64 * MiB)


def test_v2_unreadable_counters_are_none(fake_root: Path) -> None:
    own_dir = v2_tree(fake_root)
    for name in ("memory.peak", "memory.events", "memory.max"):
        (own_dir / name).unlink()
    own = cgroups.own_cgroup()
    assert own is not None
    assert own.peak() is None, "kernels before 5.19 have no memory.peak"
    assert own.oom_kills() is None and own.limit() is None


def test_v2_children_need_memory_in_subtree_control(fake_root: Path) -> None:
    v2_tree(fake_root, **{"cgroup.subtree_control": "cpu pids\n"})
    own = cgroups.own_cgroup()
    assert own is not None and own.memory_for_children() is False
    assert v2.memory_in_subtree(None) is False
    assert v1.memory_in_subtree(None) is True, "v1 children always get the controller"


def test_v2_kill_all_writes_cgroup_kill(fake_root: Path) -> None:
    own_dir = v2_tree(fake_root, **{"cgroup.kill": "", "cgroup.procs": ""})
    own = cgroups.own_cgroup()
    assert own is not None
    own.kill_all(timeout=0)
    assert (own_dir / "cgroup.kill").read_text() == "1"


def test_v2_probe_resets_its_own_descriptor(fake_root: Path) -> None:
    v2_tree(fake_root)
    own = cgroups.own_cgroup()
    assert own is not None
    peak_file, mode = own.probe_peak()
    assert peak_file == own.peak_file() and mode == "v2"
    assert v2.CONTAINER_PEAK_FILE == "/sys/fs/cgroup/memory.peak"
    assert v1.CONTAINER_PEAK_FILE is None, "a v1 container's cgroupfs is read-only"
    assert v1.peak_resettable(is_root=False) is False and v1.peak_resettable(is_root=True)


def test_v2_inside_a_container_falls_back_to_the_mount_root(tmp_path: Path) -> None:
    v2_tree(tmp_path)
    (tmp_path / "proc" / "self" / "cgroup").write_text("0::/\n")
    for name in ("memory.peak", "memory.stat"):
        (tmp_path / name).write_text("1\n" if name == "memory.peak" else V2_STAT)
    own = cgroups.own_cgroup(root=str(tmp_path), proc=str(tmp_path / "proc"))
    assert own is not None and own.path == str(tmp_path)


def test_v2_without_memory_controller_is_none(tmp_path: Path) -> None:
    v2_tree(tmp_path)
    (tmp_path / "cgroup.controllers").write_text("cpu pids\n")
    assert cgroups.own_cgroup(root=str(tmp_path), proc=str(tmp_path / "proc")) is None


def test_v2_limit_writes_hold_swap_to_zero(tmp_path: Path) -> None:
    own = cgroups.Cgroup(str(v2_tree(tmp_path)), 2)
    own.set_limit(64 * 1024**2)
    assert Path(own.file("memory.max")).read_text() == str(64 * 1024**2)
    assert Path(own.file("memory.swap.max")).read_text() == "0"
    assert v2.limit_writes(None) == [("memory.max", "max"), ("memory.swap.max", "0")]


def test_v1_files_and_discovery(tmp_path: Path) -> None:
    memory = tmp_path / "memory" / "docker" / "abc"
    memory.mkdir(parents=True)
    files = {"memory.stat": V1_STAT, "memory.oom_control": V1_OOM,
             "memory.max_usage_in_bytes": "4096\n", "memory.usage_in_bytes": "2048\n",
             "memory.limit_in_bytes": "9223372036854771712\n",
             "memory.memsw.limit_in_bytes": "9223372036854771712\n"}
    for name, text in files.items():
        (memory / name).write_text(text)
    (tmp_path / "proc" / "self").mkdir(parents=True)
    (tmp_path / "proc" / "self" / "cgroup").write_text(
        "9:name=systemd:/\n4:memory:/docker/abc\n0::/\n")
    own = cgroups.own_cgroup(root=str(tmp_path), proc=str(tmp_path / "proc"))
    assert own is not None and own.version == 1 and own.path == str(memory)
    assert own.peak() == 4096 and own.current() == 2048
    assert own.anon() == 104857600 and own.cache() == 52428800
    assert own.oom_kills() == 3
    assert own.limit() is None, "v1's page-rounded LONG_MAX means no limit"
    assert own.swap_allowed() is False
    assert own.files is v1 and own.memory_for_children() is True
    assert v1.limit_writes(5) == [("memory.limit_in_bytes", "5"),
                                  ("memory.memsw.limit_in_bytes", "5")]


def test_v1_swap_allowed_when_memsw_is_larger(tmp_path: Path) -> None:
    (tmp_path / "memory.limit_in_bytes").write_text("100\n")
    (tmp_path / "memory.memsw.limit_in_bytes").write_text("200\n")
    assert cgroups.Cgroup(str(tmp_path), 1).swap_allowed() is True


@pytest.mark.parametrize(("text", "expected"), [
    ("12:memory:/a/b\n0::/x\n", {"memory": "/a/b", "": "/x"}),
    ("4:cpu,cpuacct:/c\n", {"cpu": "/c", "cpuacct": "/c"}),
    ("garbage\n", {}),
])
def test_parse_proc_cgroup(text: str, expected: dict[str, str]) -> None:
    assert cgroups.parse_proc_cgroup(text) == expected


def _public(module: ModuleType) -> dict[str, str]:
    return {name: type(getattr(module, name)).__name__ for name in vars(module)
            if not name.startswith("_") and name not in ("annotations", "os", "_io")}


def test_both_versions_define_the_same_names() -> None:
    """The facade asks either module the same things: one missing name would only fail on
    the other version's hosts."""
    public_v1, public_v2 = _public(v1), _public(v2)
    assert public_v1.keys() == public_v2.keys()
    for name, kind in public_v1.items():
        assert kind == public_v2[name] or "NoneType" in (kind, public_v2[name]), name
    assert cgroups.files_for(1) is v1 and cgroups.files_for(2) is v2
    with pytest.raises(ValueError):
        cgroups.files_for(3)


def test_oom_kill_parsers_ignore_other_lines() -> None:
    assert v2.parse_oom_kills("oom 4\noom_group_kill 9\n") == 0
    assert v1.parse_oom_kills("under_oom 1\n") == 0
    assert v2.parse_stat("anon 5\nbogus\n") == {"anon": 5}


def test_the_probe_follows_the_module_its_reset_mode_names(tmp_path: Path) -> None:
    """The probe inside the build loads the version's module alone (its package would import
    threading and typing into the build) and follows its files and rules, blind to the
    version: one reset for every reader (v1) is preceded by a segment of the peak so far; a
    reset per reader (v2) is done on a descriptor of the phase's own."""
    from runner.inbuild.probe.cgroup_peak import CgroupPeak, load_files

    written: list[dict[str, object]] = []

    class Records:
        def now(self) -> float:
            return 1.5

        def write(self, record: dict[str, object]) -> None:
            written.append(record)

    for files in cgroups.VERSIONS:
        loaded = load_files(files.PROBE_RESET_MODE)
        assert loaded is not None and loaded.VERSION == files.VERSION
        folder = tmp_path / f"v{files.VERSION}"
        folder.mkdir()
        (folder / files.PEAK_FILE).write_text("300\n")
        (folder / files.CURRENT_FILE).write_text("200\n")
        peak = CgroupPeak(str(folder / files.PEAK_FILE), files.PROBE_RESET_MODE,
                          Records())  # type: ignore[arg-type]
        assert peak.usage() == 200 and peak.peak() == 300
        handle = peak.open_reset()
        assert peak.reset() is (not files.PEAK_RESET_PER_READER)
        assert (handle is not None) is files.PEAK_RESET_PER_READER
        if handle is not None:
            handle.close()
        assert (folder / files.PEAK_FILE).read_text().startswith(files.PEAK_RESET_VALUE)
    assert written == [{"type": "cgroup_segment", "t": 1.5, "peak": 300}]
    assert load_files("v3") is None and load_files("../v1") is None
    assert CgroupPeak("/nonexistent", "", Records()).reset() is False  # type: ignore[arg-type]


def test_limits_of_both_versions_from_recorded_files(tmp_path: Path) -> None:
    v1_dir, v2_dir = tmp_path / "v1", tmp_path / "v2"
    v1_dir.mkdir()
    (v1_dir / "memory.limit_in_bytes").write_text("268435456\n")
    (v1_dir / "memory.memsw.limit_in_bytes").write_text("9223372036854771712\n")
    assert cgroups.Cgroup(str(v1_dir), 1).limits() == {
        "memory.limit_in_bytes": 256 * MiB, "memory.memsw.limit_in_bytes": None}
    v2_dir.mkdir()
    own = cgroups.Cgroup(str(v2_tree(v2_dir, **{"memory.swap.max": "max\n"})), 2)
    assert own.limits() == {"memory.max": 256 * MiB, "memory.swap.max": None}
    (v1_dir / "memory.memsw.limit_in_bytes").unlink()  # no swap accounting: not a limit here
    assert cgroups.Cgroup(str(v1_dir), 1).limits() == {"memory.limit_in_bytes": 256 * MiB}


def test_a_limit_watch_sees_every_change_and_stops_on_the_holding_one(tmp_path: Path) -> None:
    fence_dir = tmp_path / "fence"
    own_dir = fence_dir / "build"
    own_dir.mkdir(parents=True)
    for folder in (fence_dir, own_dir):
        (folder / "memory.max").write_text("268435456\n")
        (folder / "memory.swap.max").write_text("0\n")
    stopped: list[bool] = []
    fence, own = cgroups.Cgroup(str(fence_dir), 2), cgroups.Cgroup(str(own_dir), 2)
    watch = cgroups.LimitWatch({"fence": fence, "own": own}, holding="fence",
                               stop=lambda: stopped.append(True))
    watch.check(0.1)
    assert watch.changes == [] and stopped == []
    (own_dir / "memory.max").write_text("max\n")  # below a fence: reported, not stopped
    watch.check(0.2)
    assert watch.changes == [{"cgroup": "own", "file": "memory.max", "before": 256 * MiB,
                              "after": None, "at": 0.2, "stopped": False}]
    assert stopped == []
    (fence_dir / "memory.swap.max").write_text("max\n")
    watch.check(0.3)
    watch.check(0.4)
    assert watch.changes[1] == {"cgroup": "fence", "file": "memory.swap.max", "before": 0,
                                "after": None, "at": 0.3, "stopped": True}
    assert len(watch.changes) == 2 and stopped == [True], "each change once, one stop"


def test_v1_oom_kills_are_summed_over_the_subtree_v2_read_once(tmp_path: Path) -> None:
    """v1 counts a kill only in the killed process's cgroup; v2's memory.events counts the
    subtree's, so summing there would count a kill twice."""
    for version, name, text in ((1, "memory.oom_control", V1_OOM),
                                (2, "memory.events", V2_EVENTS)):
        top = tmp_path / f"v{version}"
        (top / "build" / "nested").mkdir(parents=True)
        for folder in (top, top / "build", top / "build" / "nested"):
            (folder / name).write_text(text)
        kills = cgroups.Cgroup(str(top), version).oom_kills()
        assert kills == (3 * 3 if version == 1 else 2), version
    assert v1.MEMORY_FOR_CHILDREN == ("memory.use_hierarchy", "1")
    assert v2.MEMORY_FOR_CHILDREN == ("cgroup.subtree_control", "+memory")


def test_enable_memory_for_children_writes_the_version_file(fake_root: Path) -> None:
    own_dir = v2_tree(fake_root, **{"cgroup.subtree_control": "pids\n"})
    own = cgroups.own_cgroup()
    assert own is not None
    own.enable_memory_for_children()
    # a real cgroupfs adds the controller; the recorded file just keeps what was written
    assert (own_dir / "cgroup.subtree_control").read_text() == "+memory"
    v1_dir = fake_root / "v1"
    v1_dir.mkdir()
    (v1_dir / "memory.use_hierarchy").write_text("0\n")  # before kernel 5.11 it could be off
    cgroups.Cgroup(str(v1_dir), 1).enable_memory_for_children()
    assert (v1_dir / "memory.use_hierarchy").read_text() == "1"

def test_v2_cpuset_is_the_memory_cgroup_itself(fake_root: Path) -> None:
    from runner.inbuild.cgroups import cpuset

    own_dir = v2_tree(fake_root, **{"cgroup.subtree_control": "cpuset memory pids\n"})
    child_dir = own_dir / "memsla-1-1"
    child_dir.mkdir()
    child = cgroups.Cgroup(str(child_dir), 2)
    confined = cpuset.confine(child, [1, 2, 3])
    assert confined.enter_file is None and not confined.owned  # nothing more to enter
    assert (child_dir / "cpuset.cpus").read_text() == "1-3"
    assert confined.cpus() == [1, 2, 3]
    assert cpuset.leftovers(v2, "memsla-") == []


def test_v2_cpuset_needs_the_controller_in_subtree_control(fake_root: Path) -> None:
    from runner.inbuild.cgroups import cpuset

    own_dir = v2_tree(fake_root)  # subtree_control: memory pids
    (own_dir / "memsla-1-1").mkdir()
    with pytest.raises(cgroups.CgroupError, match="cpuset controller is not enabled"):
        cpuset.confine(cgroups.Cgroup(str(own_dir / "memsla-1-1"), 2), [0])


def test_v1_cpuset_is_a_hierarchy_of_its_own(fake_root: Path) -> None:
    from runner.inbuild.cgroups import cpuset

    memory = fake_root / "memory" / "runner" / "memsla-7-1"
    memory.mkdir(parents=True)
    parent = fake_root / "cpuset" / "ci"
    parent.mkdir(parents=True)
    (parent / "cpuset.mems").write_text("0\n")
    proc = fake_root / "proc" / "self"
    proc.mkdir(parents=True)
    (proc / "cgroup").write_text("4:memory:/runner\n3:cpuset:/ci\n")
    confined = cpuset.confine(cgroups.Cgroup(str(memory), 1), [0, 1])
    assert confined.owned and confined.path == str(parent / "memsla-7-1")
    assert confined.enter_file == str(parent / "memsla-7-1" / "cgroup.procs")
    assert (parent / "memsla-7-1" / "cpuset.mems").read_text() == "0"  # before any task joins
    assert confined.cpus() == [0, 1]
    assert cpuset.leftovers(v1, "memsla-") == [str(parent / "memsla-7-1")]
    for name in os.listdir(confined.path):  # a real cgroup directory empties itself
        os.remove(os.path.join(confined.path, name))
    confined.remove()
    assert not (parent / "memsla-7-1").exists()


def test_a_build_cgroup_beside_a_container_on_v1_cgroupfs_only() -> None:
    """Where the runner can keep the harness out of a container's build: v1 with the cgroupfs
    driver; the systemd driver and v2 say why not (the figure then subtracts the harness)."""
    assert v1.container_parent_refused("cgroupfs") is None
    assert "systemd" in (v1.container_parent_refused("systemd") or "")
    assert "cgroup v2" in (v2.container_parent_refused("cgroupfs") or "")
    assert v2.container_parent_refused("systemd") is not None


def test_the_engine_made_parents_in_every_other_v1_hierarchy(tmp_path: Path) -> None:
    for name in ("memory", "cpu", "pids", "cpuset"):
        (tmp_path / name / "a" / "memsla-1-d1").mkdir(parents=True)
    (tmp_path / "blkio").mkdir()  # a hierarchy where the engine made nothing
    assert v1.engine_made(str(tmp_path), "/a/memsla-1-d1") == [
        str(tmp_path / name / "a" / "memsla-1-d1") for name in ("cpu", "cpuset", "pids")]
    v2_tree(tmp_path)
    assert v2.engine_made(str(tmp_path), "/system.slice/memsla-1-d1") == []


def test_hierarchy_path_is_the_path_below_the_mount(fake_root: Path) -> None:
    own_dir = v2_tree(fake_root)
    assert cgroups.Cgroup(str(own_dir), 2).hierarchy_path() == "/system.slice/docker-abc.scope"
    assert cgroups.Cgroup(str(fake_root), 2).hierarchy_path() == "/"
    memory = fake_root / "memory" / "a" / "b"
    memory.mkdir(parents=True)
    assert cgroups.Cgroup(str(memory), 1).hierarchy_path() == "/a/b"
    assert cgroups.Cgroup("/elsewhere", 1).hierarchy_path() is None
