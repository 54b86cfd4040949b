"""cgroup v1 and v2 files parsed from recorded contents under a fake root (v2 cannot run here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.inbuild import cgroups
from runner.inbuild.cgroups import v1, v2

# Recorded on a GitHub ubuntu-24.04 runner layout (kernel 6.8, cgroup v2, systemd driver).
V2_STAT = """anon 104857600
file 52428800
kernel 3145728
kernel_stack 98304
pagetables 466944
sock 0
shmem 0
file_mapped 1048576
file_dirty 0
"""
V2_EVENTS = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 2\noom_group_kill 0\n"
V1_STAT = "cache 1000\nrss 2000\ntotal_cache 52428800\ntotal_rss 104857600\n"
V1_OOM = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"


def _v2_tree(root: Path) -> Path:
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    own = root / "system.slice" / "docker-abc.scope"
    own.mkdir(parents=True)
    files = {"memory.stat": V2_STAT, "memory.events": V2_EVENTS, "memory.peak": "209715200\n",
             "memory.current": "157286400\n", "memory.max": "268435456\n",
             "memory.swap.max": "0\n", "cgroup.procs": "12\n13\n"}
    for name, text in files.items():
        (own / name).write_text(text)
    proc = root / "proc" / "self"
    proc.mkdir(parents=True)
    (proc / "cgroup").write_text("0::/system.slice/docker-abc.scope\n")
    return own


def test_v2_files_read_through_the_common_api(tmp_path: Path) -> None:
    own_dir = _v2_tree(tmp_path)
    own = cgroups.own_cgroup(root=str(tmp_path), proc=str(tmp_path / "proc"))
    assert own is not None and own.version == 2 and own.path == str(own_dir)
    assert own.peak() == 200 * 1024**2
    assert own.current() == 150 * 1024**2
    assert own.anon() == 100 * 1024**2 and own.cache() == 50 * 1024**2
    assert own.oom_kills() == 2
    assert own.limit() == 256 * 1024**2
    assert own.swap_allowed() is False
    assert own.pids() == [12, 13]


def test_v2_inside_a_container_falls_back_to_the_mount_root(tmp_path: Path) -> None:
    _v2_tree(tmp_path)
    (tmp_path / "proc" / "self" / "cgroup").write_text("0::/\n")
    for name in ("memory.peak", "memory.stat"):
        (tmp_path / name).write_text("1\n" if name == "memory.peak" else V2_STAT)
    own = cgroups.own_cgroup(root=str(tmp_path), proc=str(tmp_path / "proc"))
    assert own is not None and own.path == str(tmp_path)


def test_v2_without_memory_controller_is_none(tmp_path: Path) -> None:
    _v2_tree(tmp_path)
    (tmp_path / "cgroup.controllers").write_text("cpu pids\n")
    assert cgroups.own_cgroup(root=str(tmp_path), proc=str(tmp_path / "proc")) is None


def test_v2_limit_writes_hold_swap_to_zero(tmp_path: Path) -> None:
    own = cgroups.Cgroup(str(_v2_tree(tmp_path)), 2)
    own.set_limit(64 * 1024**2)
    assert Path(own.file("memory.max")).read_text() == str(64 * 1024**2)
    assert Path(own.file("memory.swap.max")).read_text() == "0"
    assert v2.limit_writes(None) == [("memory.max", "max"), ("memory.swap.max", "0")]
    assert own.reset_peak() is False, "v2 peaks reset per file descriptor, never globally"


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
    assert own.reset_peak() is True
    assert (memory / "memory.max_usage_in_bytes").read_text() == "0"
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


def test_oom_kill_parsers_ignore_other_lines() -> None:
    assert v2.parse_oom_kills("oom 4\noom_group_kill 9\n") == 0
    assert v1.parse_oom_kills("under_oom 1\n") == 0
    assert v2.parse_stat("anon 5\nbogus\n") == {"anon": 5}
