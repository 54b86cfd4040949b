"""The history store, the same tests on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runner.errors import EXIT_HOST, HistoryError
from runner.history.model import Commit, check_record
from runner.history.series import series
from runner.history.store import SCHEMA_VERSION, open_store
from tests.history.conftest import MiB, results

REPO = Path(__file__).resolve().parents[2]
# values a float round trip through text would change
AWKWARD = [0.1 + 0.2, 123456789.00000001, 2.0**-1074, 1e308, 255.99999999999997 * MiB]


def commit(sha: str, when: str, branch: str | None = "main", dirty: bool = False) -> Commit:
    return Commit(sha=sha * 40 if len(sha) == 1 else sha, dirty=dirty, parent=None,
                  branch=branch, committed=when, subject=f"commit {sha}")


def test_round_trip_keeps_every_raw_value(store_url: str) -> None:
    checked = results({"100": AWKWARD, "200": [300 * MiB, 301 * MiB, 299 * MiB]})
    with open_store(store_url) as store:
        check_id = store.record(checked, commit("a", "2026-01-01T00:00:00+00:00"))
        points = store.points()
    got = {(p.case, p.metric): p.values for p in points}
    assert got == {("build[pages=100]", "peak"): AWKWARD,
                   ("build[pages=100]", "duration"): [1.0, 1.1, 1.2, 1.3, 1.4],
                   ("build[pages=200]", "peak"): [300 * MiB, 301 * MiB, 299 * MiB],
                   ("build[pages=200]", "duration"): [1.0, 1.1, 1.2]}
    point = points[0]
    assert point.check_id == check_id and point.scenario == "build"
    assert point.params == {"pages": 100} or point.params == {"pages": 200}
    assert point.commit is not None and point.commit.sha == "a" * 40
    assert point.commit.branch == "main" and point.commit.subject == "commit a"
    record = check_record(checked, None)
    assert point.environment == record.cases[0].environment.fingerprint


def test_points_in_commit_order_then_record_time(store_url: str) -> None:
    with open_store(store_url) as store:
        # recorded out of commit order (a backfill), and one commit measured twice
        store.record(results({"100": [3.0]}), commit("c", "2026-01-03T00:00:00+00:00"))
        store.record(results({"100": [1.0]}), commit("a", "2026-01-01T00:00:00+00:00"))
        store.record(results({"100": [2.0]}), commit("b", "2026-01-02T00:00:00+00:00"))
        store.record(results({"100": [3.5]}), commit("c", "2026-01-03T00:00:00+00:00"))
        peaks = store.points(metric="peak")
    assert [p.values for p in peaks] == [[1.0], [2.0], [3.0], [3.5]]
    assert [p.commit.sha[0] for p in peaks if p.commit] == ["a", "b", "c", "c"]


def test_filters(store_url: str) -> None:
    with open_store(store_url) as store:
        store.record(results({"100": [1.0], "200": [2.0]}),
                     commit("a", "2026-01-01T00:00:00+00:00", branch="main"))
        store.record(results({"100": [5.0]}),
                     commit("b", "2026-01-02T00:00:00+00:00", branch="feature"))
        assert len(store.points()) == 6
        assert [p.values for p in store.points(case="build[pages=100]", metric="peak")] == [
            [1.0], [5.0]]
        assert [p.values for p in store.points(metric="peak", branch="main")] == [[1.0], [2.0]]
        assert store.points(scenario="other") == []


def test_checks_listed_read_back_and_never_twice(store_url: str) -> None:
    checked = results({"100": [1.0, 2.0]}, status="fail")
    record = check_record(checked, commit("a", "2026-01-01T00:00:00+00:00", dirty=True))
    with open_store(store_url) as store:
        assert store.add(record) is True
        assert store.add(record) is False  # the same check again: nothing written twice
        store.record(results({"100": [1.0]}), None)  # outside git
        listed = store.checks()
        assert len(listed) == 2 and listed[0].commit is None  # newest first
        assert listed[1].id == record.id and listed[1].status == "fail"
        assert listed[1].cases == 1 and listed[1].values == 4
        assert listed[1].commit is not None and listed[1].commit.dirty
        assert store.checks(limit=1)[0].id == listed[0].id
        again = store.check(record.id[:8])
    assert again == record
    assert len(open_store(store_url).points(metric="peak")) == 2


def test_unknown_check_is_an_error(store_url: str) -> None:
    with open_store(store_url) as store, pytest.raises(HistoryError, match="no check 'f00'"):
        store.check("f00")


def test_accepted_changes(store_url: str) -> None:
    with open_store(store_url) as store:
        assert store.accepted() == []
        store.accept("build", "build[pages=100]", "peak", "a" * 40, "new parser")
        store.accept("build", "build[pages=100]", "peak", "a" * 40, "new parser, 15%")
        store.accept("build", "build[pages=200]", "peak", "b" * 40)
        found = store.accepted(case="build[pages=100]")
    assert [(a.sha, a.note) for a in found] == [("a" * 40, "new parser, 15%")]
    assert len(open_store(store_url).accepted(metric="peak")) == 2


def test_migration_from_an_empty_store(store_url: str, tmp_path: Path) -> None:
    if store_url.startswith("sqlite"):
        (tmp_path / "history.db").write_bytes(b"")  # an empty file is an empty store
    with open_store(store_url) as store:
        assert store.version() == SCHEMA_VERSION
        rows = store._rows("SELECT version, description FROM schema_version")
        assert [r[0] for r in rows] == list(range(1, SCHEMA_VERSION + 1))
    with open_store(store_url) as store:  # opened again: nothing to do
        assert store.migrate() == SCHEMA_VERSION


def test_a_newer_schema_is_refused(store_url: str) -> None:
    with open_store(store_url) as store, store._write():
        store._run("INSERT INTO schema_version (version, description, applied)"
                   " VALUES (?, ?, ?)", (SCHEMA_VERSION + 1, "from the future", "now"))
    with pytest.raises(HistoryError, match=r"schema version 2 is newer.*upgrade memsla") as e:
        open_store(store_url)
    assert e.value.exit_code == EXIT_HOST


def test_a_foreign_database_is_refused(store_url: str, tmp_path: Path) -> None:
    if store_url.startswith("sqlite"):
        with sqlite3.connect(tmp_path / "history.db") as conn:
            conn.execute("CREATE TABLE users (name TEXT)")
    else:
        import psycopg

        with psycopg.connect(store_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE checks (name TEXT)")
    with pytest.raises(HistoryError, match="not a memsla history store"):
        open_store(store_url)


def test_a_foreign_schema_version_table_is_refused(store_url: str, tmp_path: Path) -> None:
    if store_url.startswith("sqlite"):
        with sqlite3.connect(tmp_path / "history.db") as conn:
            conn.execute("CREATE TABLE schema_version (v TEXT)")
    else:
        import psycopg

        with psycopg.connect(store_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE schema_version (v TEXT)")
    with pytest.raises(HistoryError, match="schema_version table is not memsla's"):
        open_store(store_url)


def test_a_corrupt_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    path.write_bytes(b"this is not a database at all\n" * 200)
    with pytest.raises(HistoryError, match=r"history\.db: cannot .*not a database") as e:
        open_store(path)
    assert e.value.exit_code == EXIT_HOST


def test_a_truncated_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    with open_store(path) as store:
        for index in range(30):
            store.record(results({"100": [float(index)] * 50}), None)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = path.read_bytes()
    path.write_bytes(data[:100] + b"\xff" * 4000 + data[4100:])  # pages overwritten
    (tmp_path / "history.db-wal").unlink(missing_ok=True)
    with pytest.raises(HistoryError, match=r"history\.db: cannot"), open_store(path) as store:
        store.points()


def test_bad_urls(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="give a file path"):
        open_store("mysql://x/y")
    with pytest.raises(HistoryError, match="is a folder"):
        open_store(tmp_path)
    with pytest.raises(HistoryError, match="cannot connect"):
        open_store("postgresql://nobody:secret@127.0.0.1:1/none")


def test_a_relative_sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    open_store("sqlite:///sub/h.db").close()
    assert (tmp_path / "sub" / "h.db").is_file()
    open_store(f"sqlite:///{tmp_path}/abs.db").close()  # sqlite:////abs: absolute
    assert (tmp_path / "abs.db").is_file()


WRITER = textwrap.dedent("""\
    import sys
    from runner.history.store import open_store
    from tests.history.conftest import results
    url, who, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sys.stdout.write("ready\\n"); sys.stdout.flush(); sys.stdin.readline()
    for index in range(count):
        with open_store(url) as store:
            store.record(results({"100": [float(index), float(index) + 0.5],
                                  "200": [float(index) * 2]}), None)
    """)


def test_two_writers_at_once_lose_nothing(store_url: str) -> None:
    open_store(store_url).close()  # no race on creating the schema here: that is tested below
    count = 25
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, store_url, str(n), str(count)],
                                cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for n in range(2)]
    for writer in writers:
        assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
    for writer in writers:  # both start writing at once
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.flush()
    for writer in writers:
        _, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
    with open_store(store_url) as store:
        assert len(store.checks()) == 2 * count
        peaks = store.points(metric="peak", case="build[pages=100]")
    assert sorted(p.values[0] for p in peaks) == sorted([float(i) for i in range(count)] * 2)
    assert all(p.values[1] == p.values[0] + 0.5 for p in peaks)


def test_two_writers_creating_the_store_at_once(store_url: str) -> None:
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, store_url, str(n), "3"],
                                cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for n in range(2)]
    for writer in writers:
        assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
    for writer in writers:
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.flush()
    for writer in writers:
        _, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
    with open_store(store_url) as store:
        assert len(store.checks()) == 6


def test_series_break_where_the_environment_changes(store_url: str) -> None:
    with open_store(store_url) as store:
        for day, (limit, peak) in enumerate([(256, 1.0), (256, 1.1), (512, 1.2), (512, 1.3),
                                             (256, 1.4)], start=1):
            store.record(results({"100": [peak, peak]}, limit=limit * MiB),
                         commit(str(day), f"2026-01-0{day}T00:00:00+00:00"))
        found = series(store.points(metric="peak"), store.environments())
    assert [s.medians for s in found] == [[1.0, 1.1], [1.2, 1.3], [1.4]]
    assert found[0].broke == []
    assert found[1].broke == [f"limit {256 * MiB} -> {512 * MiB}"]
    assert found[2].broke == [f"limit {512 * MiB} -> {256 * MiB}"]
    assert found[1].values == [[1.2, 1.2], [1.3, 1.3]]
    assert found[0].key == ("build", "build[pages=100]", "peak")
    assert len({s.environment for s in found}) == 2
