"""Stores to test against: a real SQLite file, and a real PostgreSQL server started once per
test session (initdb and pg_ctl in a temporary folder on a free port; as the ``postgres`` user
when run as root, which PostgreSQL refuses). In CI ``MEMSLA_REQUIRE_POSTGRES=1`` turns a
missing server into a failure; elsewhere the PostgreSQL tests skip."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.results import Case, Host, Results, Stats

PG_BIN = [Path("/usr/lib/postgresql") / v / "bin" for v in ("17", "16", "15", "14")]
MiB = 1024 * 1024
_databases = itertools.count()


def _pg_bin() -> Path | None:
    for folder in PG_BIN:
        if (folder / "pg_ctl").exists():
            return folder
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _missing(why: str) -> None:
    if os.environ.get("MEMSLA_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required here (MEMSLA_REQUIRE_POSTGRES=1): {why}")
    pytest.skip(f"no PostgreSQL server: {why}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """``postgresql://postgres@127.0.0.1:PORT``: a server of our own for the session."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _missing("psycopg is not installed (pip install 'memsla[postgres]')")
    bin_dir = _pg_bin()
    if bin_dir is None:
        _missing("no pg_ctl (apt-get install postgresql)")
        raise AssertionError  # unreachable
    folder = Path(tempfile.mkdtemp(prefix="memsla-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", _free_port()

    def pg(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*run_as, *args], capture_output=True, text=True, check=False,
                              timeout=120)

    init = pg(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
              "--no-sync", "-E", "UTF8")
    if init.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        _missing(f"initdb failed: {init.stderr.strip()[-300:]}")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l",
               str(folder / "log"), "-w", "start")
    if start.returncode != 0:
        log = (folder / "log").read_text() if (folder / "log").exists() else ""
        shutil.rmtree(folder, ignore_errors=True)
        _missing(f"pg_ctl start failed: {start.stderr.strip()[-300:]} {log[-300:]}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database on the session's server."""
    import psycopg

    name = f"history_{os.getpid()}_{next(_databases)}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{postgres_server}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same tests on both engines: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.db'}"
    return str(request.getfixturevalue("postgres_url"))


def host(**changes: object) -> Host:
    facts: dict[str, object] = dict(
        hostname="ci-1", kernel="6.8.0-45-generic", os="Debian GNU/Linux 12", python="3.11.7",
        cpus=4, memory_total=16 * 1024 * MiB, cgroup_version=2, backend="cgroup",
        backend_reason="a writable cgroup")
    facts.update(changes)
    return Host.model_validate(facts)


def results(peaks: dict[str, list[float]], *, limit: int | None = 256 * MiB,
            status: str = "pass", **host_changes: object) -> Results:
    """Results of one scenario "build" with a case per ``pages=N`` key of ``peaks``: each the
    given cgroup peaks (one per repeat) and durations of a tenth of a second more per repeat."""
    cases = []
    for pages, values in peaks.items():
        durations = [1.0 + i / 10 for i in range(len(values))]
        cases.append(Case(scenario="build", params={"pages": int(pages)}, size_parameter="pages",
                          size=int(pages), backend="cgroup", limit=limit,
                          metrics={"peak": Stats.of(values),
                                   "duration": Stats.of(durations)}))
    return Results.model_validate({
        "memsla_version": "0.1.0", "created": "2026-01-02T03:04:05+00:00",
        "sla_file": "sla.yaml", "host": host(**host_changes), "cases": cases,
        "status": status})
