"""The history store: recorded checks in SQLite (a file, the default) or PostgreSQL (by URL),
one schema for both, created and upgraded by the numbered migrations in ``MIGRATIONS``.

I/O only: the store keeps and returns raw values; series and statistics are elsewhere. Every
failure to open, read or write it is one ``HistoryError`` (exit 3), never a silent pass.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from runner.errors import HistoryError
from runner.history.model import (
    CaseRecord,
    CheckRecord,
    Commit,
    Environment,
    Point,
    Requirements,
    check_record,
    now_iso,
)
from runner.results import Host, Results

Engine = Literal["sqlite", "postgresql"]

# (version, what it does, statements). Append only: a store records the versions applied, and
# a store of a newer memsla (a version beyond this list) is refused, never guessed at.
MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "memsla history: commits, environments, checks, cases, samples, accepted levels", [
        "CREATE TABLE commits (sha TEXT PRIMARY KEY, parent TEXT, committed TEXT NOT NULL,"
        " subject TEXT NOT NULL)",
        "CREATE TABLE environments (fingerprint TEXT PRIMARY KEY, body TEXT NOT NULL)",
        "CREATE TABLE checks (id TEXT PRIMARY KEY, sha TEXT REFERENCES commits (sha),"
        " dirty INTEGER NOT NULL, branch TEXT, recorded TEXT NOT NULL, created TEXT NOT NULL,"
        " status TEXT NOT NULL, memsla TEXT NOT NULL, sla_file TEXT NOT NULL,"
        " host TEXT NOT NULL)",
        "CREATE TABLE cases (check_id TEXT NOT NULL REFERENCES checks (id),"
        " label TEXT NOT NULL, scenario TEXT NOT NULL, params TEXT NOT NULL,"
        " environment TEXT NOT NULL REFERENCES environments (fingerprint),"
        " PRIMARY KEY (check_id, label))",
        "CREATE TABLE samples (check_id TEXT NOT NULL, label TEXT NOT NULL,"
        " metric TEXT NOT NULL, repeat_index INTEGER NOT NULL,"
        " value DOUBLE PRECISION NOT NULL,"
        " PRIMARY KEY (check_id, label, metric, repeat_index),"
        " FOREIGN KEY (check_id, label) REFERENCES cases (check_id, label))",
        "CREATE INDEX cases_by_scenario ON cases (scenario, label)",
        "CREATE INDEX samples_by_metric ON samples (metric)",
        "CREATE INDEX checks_by_branch ON checks (branch, recorded)",
        "CREATE TABLE accepted (scenario TEXT NOT NULL, label TEXT NOT NULL,"
        " metric TEXT NOT NULL, sha TEXT NOT NULL, accepted TEXT NOT NULL,"
        " note TEXT NOT NULL, PRIMARY KEY (scenario, label, metric, sha))",
    ]),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]
OUR_TABLES = {"schema_version", "commits", "environments", "checks", "cases", "samples",
              "accepted"}
BUSY_TIMEOUT = 60.0  # seconds a writer waits for another's transaction (SQLite)
PG_MIGRATION_LOCK = 0x6D656D736C61  # "memsla": one migration at a time per database


@dataclass(frozen=True)
class CheckSummary:
    """One recorded check, as ``runner history list`` shows it."""

    id: str
    commit: Commit | None
    recorded: str
    status: str
    memsla: str
    sla_file: str
    cases: int
    values: int


@dataclass(frozen=True)
class Acceptance:
    """A level shift accepted at a commit: from it on, its level is the reference."""

    scenario: str
    case: str
    metric: str
    sha: str
    accepted: str
    note: str


def open_store(url_or_path: str | Path, *, create: bool = True) -> Store:
    """A store by path or URL: ``PATH`` or ``sqlite:///PATH`` (relative; ``sqlite:////abs``
    absolute) for SQLite, ``postgresql://...`` for PostgreSQL (psycopg 3, the ``postgres``
    extra). Creates or upgrades the schema; HistoryError when it cannot, or (``create``
    False) when no SQLite file is there yet."""
    text = str(url_or_path)
    if text.startswith(("postgresql://", "postgres://")):
        return _open_postgres(text)
    if text.startswith("sqlite://"):
        text = text.removeprefix("sqlite://").removeprefix("/")
        if not text:
            raise HistoryError("history URL sqlite:/// names no file")
    elif "://" in text:
        raise HistoryError(f"history store {text!r}: give a file path, sqlite:///PATH or "
                           "postgresql://...")
    return _open_sqlite(Path(text), create)


def _open_sqlite(path: Path, create: bool = True) -> Store:
    where = str(path)
    if not create and not path.exists():
        raise HistoryError(f"no history store at {where}: record checks into it with "
                           "runner check --history, or runner history pull")
    if path.is_dir():
        raise HistoryError(f"history store {where}: is a folder, not a file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None,
                               check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise HistoryError(f"history store {where}: cannot open: {exc}") from None
    store = Store(conn, "sqlite", where)
    # Switching a new file to WAL takes an exclusive lock without waiting on SQLite's busy
    # handler, so two runners creating one store at once could fail: they take turns here.
    from filelock import FileLock, Timeout

    try:
        with FileLock(f"{path}.lock", timeout=BUSY_TIMEOUT), store.guard("open"):
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA foreign_keys = ON")
            store.migrate()
    except Timeout:
        conn.close()
        raise HistoryError(f"history store {where}: cannot open: another runner held "
                           f"{path}.lock for {BUSY_TIMEOUT:.0f} s") from None
    except HistoryError:
        conn.close()
        raise
    return store


def _open_postgres(url: str) -> Store:
    try:
        import psycopg
    except ImportError:
        raise HistoryError("a PostgreSQL history store needs psycopg 3: pip install "
                           "'memsla[postgres]'") from None
    where = redacted(url)
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=30)
    except psycopg.Error as exc:
        message = " ".join(str(exc).split())
        raise HistoryError(f"history store {where}: cannot connect: {message}") from None
    store = Store(conn, "postgresql", where)
    store.migrate()
    return store


def redacted(url: str) -> str:
    """The URL without its password."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class Store:
    """An open history store. Writes are one transaction each; SQLite takes its write lock at
    the start (``BEGIN IMMEDIATE``), so writers queue instead of failing half-way."""

    def __init__(self, conn: Any, engine: Engine, where: str) -> None:
        self.conn = conn
        self.engine: Engine = engine
        self.where = where

    # -- plumbing ---------------------------------------------------------------------------
    def _errors(self) -> tuple[type[BaseException], ...]:
        if self.engine == "sqlite":
            return (sqlite3.Error,)
        import psycopg

        return (psycopg.Error,)

    @contextmanager
    def guard(self, doing: str) -> Iterator[None]:
        """Any engine error inside becomes one HistoryError naming the store."""
        try:
            yield
        except HistoryError:
            raise
        except self._errors() as exc:
            message = " ".join(str(exc).split()) or type(exc).__name__
            raise HistoryError(f"history store {self.where}: cannot {doing}: {message}"
                               ) from None

    def _sql(self, sql: str) -> str:
        return sql if self.engine == "sqlite" else sql.replace("?", "%s")

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = self.conn.execute(self._sql(sql), tuple(params))
        return list(cursor.fetchall())

    def _run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(self._sql(sql), tuple(params))

    def _many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self.engine == "sqlite":
            self.conn.executemany(sql, rows)
        else:
            with self.conn.cursor() as cursor:
                cursor.executemany(self._sql(sql), rows)

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction."""
        if self.engine == "postgresql":
            with self.conn.transaction():
                yield
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _tables(self) -> set[str]:
        if self.engine == "sqlite":
            rows = self._rows("SELECT name FROM sqlite_master WHERE type = 'table'")
        else:
            rows = self._rows("SELECT table_name FROM information_schema.tables"
                              " WHERE table_schema = current_schema()")
        return {str(row[0]) for row in rows}

    # -- schema -----------------------------------------------------------------------------
    def version(self) -> int:
        """The schema version applied (0: an empty store); HistoryError for a store of
        something else, or of a newer memsla."""
        with self.guard("read the schema version"):
            tables = self._tables()
            if "schema_version" not in tables:
                ours = sorted(tables & OUR_TABLES)
                if ours or (self.engine == "sqlite" and tables):
                    raise HistoryError(
                        f"history store {self.where}: not a memsla history store (it holds "
                        f"tables {', '.join(sorted(ours or tables)[:5])} and no schema_version)")
                return 0
            try:
                rows = self._rows("SELECT version, description FROM schema_version"
                                  " ORDER BY version")
            except self._errors():
                raise HistoryError(f"history store {self.where}: not a memsla history store "
                                   "(its schema_version table is not memsla's)") from None
        if not rows or rows[0] != (1, MIGRATIONS[0][1]):
            raise HistoryError(f"history store {self.where}: not a memsla history store (its "
                               "schema_version table is not memsla's)")
        version = int(rows[-1][0])
        if version > SCHEMA_VERSION:
            raise HistoryError(f"history store {self.where}: schema version {version} is newer "
                               f"than this memsla reads ({SCHEMA_VERSION}): upgrade memsla")
        return version

    def migrate(self) -> int:
        """Apply every migration the store lacks, in one transaction; returns the version."""
        if self.version() == SCHEMA_VERSION:
            return SCHEMA_VERSION
        with self.guard("upgrade the schema"), self._write():
            if self.engine == "postgresql":
                self._run(f"SELECT pg_advisory_xact_lock({PG_MIGRATION_LOCK})")
            current = self.version()  # again, now that we hold the lock
            if current == 0:
                self._run("CREATE TABLE schema_version (version INTEGER PRIMARY KEY,"
                          " description TEXT NOT NULL, applied TEXT NOT NULL)")
            for number, description, statements in MIGRATIONS:
                if number <= current:
                    continue
                for statement in statements:
                    self._run(statement)
                self._run("INSERT INTO schema_version (version, description, applied)"
                          " VALUES (?, ?, ?)", (number, description, now_iso()))
        return SCHEMA_VERSION

    # -- writing ----------------------------------------------------------------------------
    def record(self, results: Results, commit: Commit | None,
               settings: dict[str, Requirements] | None = None) -> str:
        """Record a judged check: every case's every metric with values, all repeats, in one
        transaction. Returns the check's id."""
        record = check_record(results, commit, settings)
        self.add(record)
        return record.id

    def add(self, record: CheckRecord) -> bool:
        """Store a check record (from ``record`` or the git branch); False when a check of that
        id is already there (nothing is written twice)."""
        with self.guard("record a check"), self._write():
            if self._rows("SELECT 1 FROM checks WHERE id = ?", (record.id,)):
                return False
            commit = record.commit
            if commit is not None:
                self._run("INSERT INTO commits (sha, parent, committed, subject)"
                          " VALUES (?, ?, ?, ?) ON CONFLICT (sha) DO NOTHING",
                          (commit.sha, commit.parent, commit.committed, commit.subject))
            self._run("INSERT INTO checks (id, sha, dirty, branch, recorded, created, status,"
                      " memsla, sla_file, host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (record.id, commit.sha if commit else None,
                       int(commit.dirty) if commit else 0, commit.branch if commit else None,
                       record.recorded, record.created, record.status, record.memsla,
                       record.sla_file, record.host.model_dump_json()))
            environments = {c.environment.fingerprint: c.environment for c in record.cases}
            self._many(("INSERT INTO environments (fingerprint, body) VALUES (?, ?)"
                                 " ON CONFLICT (fingerprint) DO NOTHING"),
                       [(key, _canonical(env.model_dump(mode="json")))
                        for key, env in environments.items()])
            self._many(("INSERT INTO cases (check_id, label, scenario, params,"
                                 " environment) VALUES (?, ?, ?, ?, ?)"),
                       [(record.id, c.case, c.scenario, _canonical(c.params),
                         c.environment.fingerprint) for c in record.cases])
            self._many(("INSERT INTO samples (check_id, label, metric, repeat_index,"
                                 " value) VALUES (?, ?, ?, ?, ?)"),
                       [(record.id, c.case, metric, index, float(value))
                        for c in record.cases for metric, values in c.metrics.items()
                        for index, value in enumerate(values)])
        return True

    def accept(self, scenario: str, case: str, metric: str, commit_sha: str,
               note: str = "") -> Acceptance:
        """Accept the level shift at ``commit_sha`` of a case's metric: from that commit on
        its new level is the reference. Accepting again replaces the note."""
        acceptance = Acceptance(scenario, case, metric, commit_sha, now_iso(), note)
        with self.guard("accept a change"), self._write():
            self._run("DELETE FROM accepted WHERE scenario = ? AND label = ? AND metric = ?"
                      " AND sha = ?", (scenario, case, metric, commit_sha))
            self._run("INSERT INTO accepted (scenario, label, metric, sha, accepted, note)"
                      " VALUES (?, ?, ?, ?, ?, ?)",
                      (scenario, case, metric, commit_sha, acceptance.accepted, note))
        return acceptance

    # -- reading ----------------------------------------------------------------------------
    def accepted(self, scenario: str | None = None, case: str | None = None,
                 metric: str | None = None) -> list[Acceptance]:
        where, params = _filters(("scenario", scenario), ("label", case), ("metric", metric))
        with self.guard("read accepted changes"):
            rows = self._rows("SELECT scenario, label, metric, sha, accepted, note"
                              f" FROM accepted{where} ORDER BY accepted", params)
        return [Acceptance(*map(str, row)) for row in rows]

    def points(self, scenario: str | None = None, case: str | None = None,
               metric: str | None = None, branch: str | None = None) -> list[Point]:
        """Every (check, case, metric) with its raw values, in commit order: the commit's
        time, then the time the check was recorded (a check outside git: its record time)."""
        where, params = _filters(("k.scenario", scenario), ("k.label", case),
                                 ("s.metric", metric), ("c.branch", branch))
        with self.guard("read points"):
            rows = self._rows(
                "SELECT c.id, c.sha, c.dirty, c.branch, c.recorded, m.parent, m.committed,"
                " m.subject, k.scenario, k.label, k.params, k.environment, s.metric,"
                " s.repeat_index, s.value"
                " FROM samples s"
                " JOIN cases k ON k.check_id = s.check_id AND k.label = s.label"
                " JOIN checks c ON c.id = s.check_id"
                " LEFT JOIN commits m ON m.sha = c.sha" + where +
                " ORDER BY COALESCE(m.committed, c.recorded), c.recorded, c.id, k.label,"
                " s.metric, s.repeat_index", params)
        points: list[Point] = []
        for (check_id, sha, dirty, branch_, recorded, parent, committed, subject, scenario_,
             label, params_, environment, metric_, _, value) in rows:
            last = points[-1] if points else None
            if last and (last.check_id, last.case, last.metric) == (check_id, label, metric_):
                last.values.append(float(value))
                continue
            commit = None if sha is None else Commit(
                sha=sha, dirty=bool(dirty), parent=parent, branch=branch_, committed=committed,
                subject=subject)
            points.append(Point(check_id=check_id, commit=commit, recorded=recorded,
                                scenario=scenario_, case=label, params=json.loads(params_),
                                metric=metric_, values=[float(value)],
                                environment=environment))
        return points

    def environments(self) -> dict[str, Environment]:
        with self.guard("read environments"):
            rows = self._rows("SELECT fingerprint, body FROM environments")
        return {key: Environment.model_validate_json(body) for key, body in rows}

    def check_ids(self) -> set[str]:
        with self.guard("read checks"):
            return {str(row[0]) for row in self._rows("SELECT id FROM checks")}

    def checks(self, limit: int | None = None) -> list[CheckSummary]:
        """The recorded checks, newest first."""
        with self.guard("read checks"):
            rows = self._rows(
                "SELECT c.id, c.sha, c.dirty, c.branch, c.recorded, c.status, c.memsla,"
                " c.sla_file, m.parent, m.committed, m.subject,"
                " (SELECT COUNT(*) FROM cases k WHERE k.check_id = c.id),"
                " (SELECT COUNT(*) FROM samples s WHERE s.check_id = c.id)"
                " FROM checks c LEFT JOIN commits m ON m.sha = c.sha"
                " ORDER BY c.recorded DESC, c.id" +
                ("" if limit is None else f" LIMIT {int(limit)}"))
        return [CheckSummary(id=row[0], commit=_commit(row[1], row[2], row[3], row[8], row[9],
                                                       row[10]),
                             recorded=row[4], status=row[5], memsla=row[6], sla_file=row[7],
                             cases=int(row[11]), values=int(row[12])) for row in rows]

    def check(self, check_id: str) -> CheckRecord:
        """One recorded check in full, by its id or a unique prefix of it."""
        with self.guard("read a check"):
            found = self._rows("SELECT id FROM checks WHERE id LIKE ? ORDER BY id",
                               (check_id.replace("%", "").replace("_", "") + "%",))
            if len(found) != 1:
                raise HistoryError(f"history store {self.where}: "
                                   + (f"no check {check_id!r}" if not found else
                                      f"{len(found)} checks start with {check_id!r}"))
            full = found[0][0]
            (sha, dirty, branch, recorded, created, status, memsla, sla_file, host, parent,
             committed, subject) = self._rows(
                "SELECT c.sha, c.dirty, c.branch, c.recorded, c.created, c.status, c.memsla,"
                " c.sla_file, c.host, m.parent, m.committed, m.subject"
                " FROM checks c LEFT JOIN commits m ON m.sha = c.sha WHERE c.id = ?",
                (full,))[0]
            cases = self._rows("SELECT label, scenario, params, environment FROM cases"
                               " WHERE check_id = ? ORDER BY label", (full,))
            samples = self._rows("SELECT label, metric, value FROM samples WHERE check_id = ?"
                                 " ORDER BY label, metric, repeat_index", (full,))
        environments = self.environments()
        metrics: dict[str, dict[str, list[float]]] = {}
        for label, metric, value in samples:
            metrics.setdefault(label, {}).setdefault(metric, []).append(float(value))
        return CheckRecord(
            id=full, commit=_commit(sha, dirty, branch, parent, committed, subject),
            recorded=recorded, created=created, status=status, memsla=memsla,
            sla_file=sla_file, host=Host.model_validate_json(host),
            cases=[CaseRecord(scenario=scenario, case=label, params=json.loads(params),
                              environment=environments[environment],
                              metrics=metrics.get(label, {}))
                   for label, scenario, params, environment in cases])

    def close(self) -> None:
        try:
            self.conn.close()
        except self._errors():
            pass

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _filters(*pairs: tuple[str, str | None]) -> tuple[str, list[str]]:
    kept = [(column, value) for column, value in pairs if value is not None]
    if not kept:
        return "", []
    return (" WHERE " + " AND ".join(f"{column} = ?" for column, _ in kept),
            [value for _, value in kept])


def _commit(sha: str | None, dirty: object, branch: str | None, parent: str | None,
            committed: str | None, subject: str | None) -> Commit | None:
    if sha is None:
        return None
    return Commit(sha=sha, dirty=bool(dirty), parent=parent, branch=branch,
                  committed=committed or "", subject=subject or "")
