"""Recorded cgroup file contents, and a fake v2 tree made of them (v2 cannot run here)."""

from __future__ import annotations

from pathlib import Path

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

MiB = 1024 * 1024
SCOPE = "system.slice/docker-abc.scope"


def v2_tree(root: Path, **overrides: str) -> Path:
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    own = root / SCOPE
    own.mkdir(parents=True, exist_ok=True)
    files = {"memory.stat": V2_STAT, "memory.events": V2_EVENTS, "memory.peak": "209715200\n",
             "memory.current": "157286400\n", "memory.max": "268435456\n",
             "memory.swap.max": "0\n", "cgroup.procs": "12\n13\n",
             "cgroup.subtree_control": "memory pids\n", **overrides}
    for name, text in files.items():
        (own / name).write_text(text)
    proc = root / "proc" / "self"
    proc.mkdir(parents=True, exist_ok=True)
    (proc / "cgroup").write_text(f"0::/{SCOPE}\n")
    return own
