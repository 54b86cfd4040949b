"""``runner merge``: the shards of one plan (``runner check --shard K/N``) joined into one results
file, then judged as one run would be.

The cases are put back in plan order and judged again from their runs
(``runner.judging.stage.judge``), with the SLA file the results name: fits across sizes measured
on different shards, growth against a baseline, the status. Shards merge only when they are one
plan measured one way: the same SLA file (by content), memsla version, backend and kind of host,
the same N and the same plan, each shard once and every shard there, each one ended.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from runner.errors import UsageError
from runner.judging.stage import judge
from runner.judging.status import settle
from runner.results import Host, Results, Shard
from runner.session import sla_digest
from runner.slafile import load_suite

GiB = 1024 ** 3


class MergeError(UsageError):
    """The shards cannot be merged into one run (exit 2)."""


def host_kind(host: Host) -> dict[str, object]:
    """What must match between hosts whose numbers are merged: the same machine type, OS,
    kernel series, cgroup version, engine and backend (not the same machine)."""
    return {"backend": host.backend, "os": host.os,
            "kernel": ".".join(host.kernel.split(".")[:2]),
            "cgroup_version": host.cgroup_version, "cpus": host.cpus,
            "memory_gib": round(host.memory_total / GiB), "docker": host.docker_version}


def check_mergeable(parts: Sequence[tuple[str, Results]]) -> list[Shard]:
    """The shards, in shard order; MergeError saying why when they are not one plan."""
    if not parts:
        raise MergeError("nothing to merge: give the results files of every shard")
    shards: list[Shard] = []
    for name, part in parts:
        if part.shard is None:
            raise MergeError(f"{name} holds no shard (it was not written by runner check "
                             "--shard K/N): only shards of one plan merge")
        if part.status == "running" or part.interrupted:
            raise MergeError(f"{name} is incomplete (shard {part.shard.index}/{part.shard.count} "
                             f"{'was interrupted' if part.interrupted else 'never ended'}): run "
                             "that shard again")
        measured = [case.label for case in part.cases]
        if measured != part.shard.cases:
            raise MergeError(f"{name} is incomplete: shard {part.shard.index}/"
                             f"{part.shard.count} planned {len(part.shard.cases)} case(s) and "
                             f"holds {len(measured)}")
        shards.append(part.shard)
    first_name, first = parts[0]
    for name, part in parts[1:]:
        _same(first_name, name, "SLA file", first.sla_digest, part.sla_digest,
              f"{first.sla_file} and {part.sla_file} differ in content")
        _same(first_name, name, "memsla version", first.memsla_version, part.memsla_version)
        _same(first_name, name, "backend", first.host.backend, part.host.backend)
        kind, other = host_kind(first.host), host_kind(part.host)
        differs = [f"{key} {kind[key]} / {other[key]}" for key in kind if kind[key] != other[key]]
        if differs:
            raise MergeError(f"{first_name} and {name} were measured on different kinds of host "
                             f"({'; '.join(differs)}): their numbers do not compare")
    if first.sla_digest is None:
        raise MergeError(f"{first_name} records no hash of its SLA file: merge shards written "
                         "by this memsla")
    count = shards[0].count
    for (name, _), shard in zip(parts, shards, strict=True):
        if shard.count != count or shard.planned != shards[0].planned:
            raise MergeError(f"{first_name} and {name} split different plans (shard counts "
                             f"{count} and {shard.count}, or another --only/--size/--backend)")
    seen: dict[int, str] = {}
    owner: dict[str, str] = {}
    for (name, _), shard in zip(parts, shards, strict=True):
        if shard.index in seen:
            raise MergeError(f"{seen[shard.index]} and {name} are both shard "
                             f"{shard.index}/{count}: each shard once")
        seen[shard.index] = name
        for label in shard.cases:
            if label in owner:
                raise MergeError(f"{owner[label]} and {name} overlap: both measured {label}")
            owner[label] = name
    missing = [str(k) for k in range(1, count + 1) if k not in seen]
    if missing:
        raise MergeError(f"shard(s) {', '.join(missing)} of {count} are missing: merge every "
                         "shard of the plan")
    unmeasured = [label for label in shards[0].planned if label not in owner]
    if unmeasured:
        raise MergeError(f"no shard measured {unmeasured[0]}"
                         + (f" and {len(unmeasured) - 1} more" if len(unmeasured) > 1 else ""))
    return sorted(shards, key=lambda s: s.index)


def _same(first: str, name: str, what: str, a: object, b: object, detail: str = "") -> None:
    if a != b:
        shown = detail or f"{a} / {b}"
        raise MergeError(f"{first} and {name} come from different {what}s ({shown}): only "
                         "shards of one plan, measured the same way, merge")


def merge(parts: Sequence[tuple[str, Results]], sla_file: Path | None = None,
          baseline: Results | None = None) -> Results:
    """The shards as one results file, judged as one run of the SLA file would be."""
    shards = check_mergeable(parts)
    first = parts[0][1]
    path = sla_file or Path(first.sla_file)
    if not path.is_file():
        raise MergeError(f"the SLA file {path} named in the results is not here: give it with "
                         "--sla PATH")
    digest = sla_digest(path)
    if digest != first.sla_digest:
        raise MergeError(f"{path} is not the SLA file the shards measured (its content hash "
                         "differs): check out the same revision")
    suite = load_suite(path)
    by_label = {case.label: case for _, part in parts for case in part.cases}
    hosts = list(dict.fromkeys(part.host.hostname for _, part in parts))
    merged = Results.new(
        memsla_version=first.memsla_version, sla_file=first.sla_file,
        sla_digest=first.sla_digest,
        host=first.host.model_copy(update={"hostname": ", ".join(hosts)}),
        jobs=max(part.jobs for _, part in parts), merged_from=shards,
        cases=[by_label[label] for label in shards[0].planned])
    judge(merged, suite, baseline)
    settle(merged)
    return merged
