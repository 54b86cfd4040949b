"""A stand-in for the user's systemd on a host that has none (this CI: cgroup v1, no systemd).

``systemd-run --user --scope [-p MemoryMax=N -p MemorySwapMax=0] --unit=U -- CMD`` makes the
scope a memory cgroup below the caller's own, with the limit on memory and swap, and runs CMD
as its first process (entered before exec); ``--collect``: the scope is removed once CMD exits.
``systemctl --user kill --signal=SIGKILL U.scope`` kills what is in it, ``systemctl --user
list-units`` lists the scopes. Every call is appended to $FAKE_SYSTEMD_LOG as a JSON line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from runner.inbuild import cgroups

SCOPE_PREFIX = "fake-scope-"


def _log(argv: list[str]) -> None:
    log = os.environ.get("FAKE_SYSTEMD_LOG")
    if log:
        with open(log, "a") as handle:
            handle.write(json.dumps(argv) + "\n")


def _parent() -> cgroups.Cgroup:
    own = cgroups.own_cgroup()
    assert own is not None, "the fake needs a memory cgroup"
    return own


def _scope(unit: str) -> cgroups.Cgroup:
    parent = _parent()
    return cgroups.Cgroup(os.path.join(parent.path, SCOPE_PREFIX + unit), parent.version)


def systemd_run(args: list[str]) -> int:
    split = args.index("--")
    options, command = args[:split], args[split + 1:]
    if "--user" not in options or "--scope" not in options:
        sys.stderr.write("fake systemd-run: only --user --scope is emulated\n")
        return 1
    unit = next(o.split("=", 1)[1] for o in options if o.startswith("--unit="))
    properties = dict(options[i + 1].split("=", 1) for i, o in enumerate(options) if o == "-p")
    limit = int(properties["MemoryMax"]) if "MemoryMax" in properties else None
    if limit is not None and properties.get("MemorySwapMax") != "0":
        sys.stderr.write("fake systemd-run: the scope would allow swap\n")
        return 1
    scope = _parent().create_child(SCOPE_PREFIX + unit)
    try:
        scope.set_limit(limit)
        enter = scope.enter_file()

        def join_scope() -> None:
            with open(enter, "w") as handle:
                handle.write("0")

        child = subprocess.Popen(command, preexec_fn=join_scope)
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, lambda signum, frame: child.send_signal(signum))
        code = child.wait()
    finally:
        scope.kill_all()
        scope.remove()
    return code if code >= 0 else 128 - code


def systemctl(args: list[str]) -> int:
    if args[:2] == ["--user", "kill"]:
        unit = args[-1][:-len(".scope")]
        scope = _scope(unit)
        if not scope.exists():
            sys.stderr.write(f"Failed to kill unit {unit}.scope: Unit not loaded.\n")
            return 1
        scope.kill_all()
        return 0
    if args[:2] == ["--user", "list-units"]:
        for entry in sorted(Path(_parent().path).glob(SCOPE_PREFIX + "*")):
            print(f"{entry.name[len(SCOPE_PREFIX):]}.scope loaded active running memsla build")
        return 0
    sys.stderr.write(f"fake systemctl: {args} is not emulated\n")
    return 1


def main() -> int:
    argv = sys.argv
    _log([Path(argv[0]).name, *argv[1:]])
    return systemd_run(argv[1:]) if Path(argv[0]).name == "systemd-run" else systemctl(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
