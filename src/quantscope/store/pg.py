"""The result store in PostgreSQL (`--store postgresql://…`): one store a team shares, the same schema
and reads as the SQLite store (store/base.py), through psycopg 3 (`pip install 'quantscope[postgres]'`).

The same promises as store/db.py, each held by tests/store/test_pg.py against a real server:
- One transaction per Result: a client killed (kill -9) mid-add leaves every acknowledged run whole;
  the server rolls back the rest.
- Migrations run under a transaction-scoped advisory lock, so two clients never migrate at once; DDL is
  transactional, so a failed migration leaves the previous schema.
- A store written by a newer quantscope is refused before anything is written.
- Concurrent writers are safe: ids come from a sequence (never reused), each add is its own transaction.
- Only parameterised SQL.

>>> with PgStore("postgresql://db.example/quantscope") as st:  # doctest: +SKIP
...     run_id = st.add(result)
"""

from __future__ import annotations

from typing import Any

from quantscope.errors import StoreError
from quantscope.result import Result
from quantscope.store.base import RUN_ROW, ReadingStore, rows_of
from quantscope.store.stats import STAT_COLUMNS, STATS_VERSION, figures_of

SCHEMES = ("postgresql://", "postgres://")
LOCK_KEY = 0x7175616E7473  # "quants": the advisory lock every quantscope migration takes
CONNECT_TIMEOUT_S = 10

_STATS_COLUMNS_SQL = ", ".join(f"{c} DOUBLE PRECISION" for c in STAT_COLUMNS[1:])
# The steps of store/migrations.py in PostgreSQL's dialect, numbered alike. A PostgreSQL store starts at
# schema 4, so step 2 (recompute machine ids of rows written before it) has no row to touch.
PG_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE runs (
            id BIGSERIAL PRIMARY KEY,              -- a sequence: an id is never reused after delete
            key_hash TEXT NOT NULL, machine_id TEXT NOT NULL, model TEXT NOT NULL, status TEXT NOT NULL,
            reason TEXT, started_at TEXT NOT NULL, duration_s DOUBLE PRECISION NOT NULL, label TEXT NOT NULL,
            spec_json TEXT NOT NULL, env_json TEXT NOT NULL, info_json TEXT NOT NULL,
            schema_version INTEGER NOT NULL,
            created_at TEXT NOT NULL DEFAULT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
        )""",
        """CREATE TABLE measurements (
            run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL, name TEXT NOT NULL, unit TEXT NOT NULL, higher_is_better INTEGER,
            meta_json TEXT NOT NULL, n INTEGER NOT NULL,
            samples BYTEA NOT NULL,                -- n IEEE-754 float64, little-endian, as in SQLite
            PRIMARY KEY (run_id, idx)
        )""",
        "CREATE INDEX runs_key_hash ON runs(key_hash)",
        "CREATE INDEX runs_machine_id ON runs(machine_id)",
        "CREATE INDEX runs_status ON runs(status)",
        "CREATE INDEX runs_model ON runs(model)",
    ),
    (),
    (
        """CREATE TABLE claims (
            key_hash TEXT NOT NULL, machine_id TEXT NOT NULL, owner TEXT NOT NULL, pid INTEGER NOT NULL,
            pid_started TEXT NOT NULL, host TEXT NOT NULL, claimed_at TEXT NOT NULL,
            PRIMARY KEY (key_hash, machine_id)
        )""",
    ),
    (
        f"""CREATE TABLE measurement_stats (
            run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL, version INTEGER NOT NULL, n INTEGER NOT NULL, {_STATS_COLUMNS_SQL},
            PRIMARY KEY (run_id, idx)
        )""",
        "ALTER TABLE runs ADD COLUMN backend TEXT NOT NULL DEFAULT ''",
        "CREATE INDEX runs_backend ON runs(backend)",
        "CREATE INDEX runs_started_at ON runs(started_at)",
    ),
    ("CREATE INDEX runs_key_machine ON runs(key_hash, machine_id, id)",),
)
PG_SCHEMA = len(PG_MIGRATIONS)


def is_url(location: object) -> bool:
    return str(location).startswith(SCHEMES)


def _pg(sql: str) -> str:
    """SQL written with SQLite's `?` markers in psycopg's `%s` (no `?` or `%` appears in our SQL otherwise)."""
    return sql.replace("?", "%s")


def connect(url: str) -> Any:
    """An autocommit psycopg connection; StoreError (one line) when the driver or the server is missing."""
    try:
        import psycopg
    except ImportError as e:
        raise StoreError(f"store {url} is PostgreSQL, which needs psycopg 3: pip install "
                         "'quantscope[postgres]'") from e
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.Error as e:
        raise StoreError(f"cannot connect to store {url}: {' '.join(str(e).split())}: check the URL, "
                         "that the server runs and that this user may connect") from e


def pg_version(conn: Any) -> int | None:
    """The store schema in this database: 0 when it has no quantscope tables, None when it has `runs`
    without our version table (someone else's)."""
    if conn.execute("SELECT to_regclass('schema_version')").fetchone()[0] is not None:
        return int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0])
    return None if conn.execute("SELECT to_regclass('runs')").fetchone()[0] is not None else 0


def pg_migrate(conn: Any) -> int | None:
    """Bring the database to PG_SCHEMA in one transaction under the advisory lock; the version found."""
    from datetime import UTC, datetime

    from quantscope.version import __version__

    conn.execute("BEGIN")
    try:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        found = pg_version(conn)  # read under the lock: a check made before it may be stale
        if found is None or found >= PG_SCHEMA:
            conn.execute("ROLLBACK")
            return found
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                     "applied_at TEXT NOT NULL, quantscope TEXT NOT NULL)")
        now = datetime.now(UTC).isoformat(timespec="seconds")
        for version in range(found, PG_SCHEMA):
            for statement in PG_MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (%s, %s, %s)", (version + 1, now, __version__))
        conn.execute("COMMIT")
        return found
    except BaseException:
        conn.execute("ROLLBACK")
        raise


class PgStore(ReadingStore):
    """A result store in a PostgreSQL database. One instance per thread; a context manager."""

    def __init__(self, url: str, *, readonly: bool = False) -> None:
        from quantscope.store.migrations import READS_AS_CURRENT, STORE_SCHEMA

        assert PG_SCHEMA == STORE_SCHEMA, "a store migration without its PostgreSQL step"
        self.path = url
        self.readonly = readonly
        self._conn = connect(url)
        try:
            found = pg_version(self._conn) if readonly else pg_migrate(self._conn)
        except Exception as e:
            self._conn.close()
            raise StoreError(f"cannot prepare store {url}: {' '.join(str(e).split())}") from e
        problem = None
        if found is None:
            problem = f"store {url} has a `runs` table but is not a quantscope store: use another database"
        elif found > STORE_SCHEMA:
            problem = (f"store {url} was written by a newer quantscope (schema {found}, this one knows "
                       f"{STORE_SCHEMA}): upgrade quantscope, or use --store to pick another store")
        elif readonly and found < READS_AS_CURRENT:
            problem = (f"no store at {url}: run `quantscope run` first, or pass --store" if found == 0 else
                       f"store {url} has schema {found}: open it once with a command that writes to upgrade it")
        if problem:
            self._conn.close()
            raise StoreError(problem)

    def close(self) -> None:
        self._closed = True
        self._conn.close()

    def __enter__(self) -> PgStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PgStore({self.path!r}{', readonly=True' if self.readonly else ''})"

    def _reopen(self) -> PgStore:
        return PgStore(self.path, readonly=True)

    def _read(self, fn: Any) -> Any:
        import psycopg

        conn = self._conn

        def ex(sql: str, params: list[Any]) -> list:
            return conn.execute(_pg(sql), params).fetchall()

        if conn.info.transaction_status != 0:  # inside another read: its snapshot
            return fn(ex)
        try:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")  # one snapshot for the whole read
            try:
                return fn(ex)
            finally:
                conn.execute("COMMIT")
        except psycopg.Error as e:
            raise StoreError(f"cannot read store {self.path}: {' '.join(str(e).split())}") from e

    # -- writing ---------------------------------------------------------------------------------

    def _need_writable(self) -> None:
        if self.readonly:
            raise StoreError(f"store {self.path} was opened read-only: open it without readonly to write")

    def add(self, result: Result) -> int:
        """Store one Result in one transaction; its run id. What store/db.py's add does, in PostgreSQL."""
        return self.add_rows(*rows_of(result), label=result.spec.label)

    def add_rows(self, run_row: tuple, measurement_rows: list[tuple], stats_rows: list[tuple], *,
                 label: str, run_id: int | None = None) -> int:
        """Insert one run's rows (store/copy.py passes them through as read); `run_id` keeps an id."""
        import psycopg

        self._need_writable()
        conn = self._conn
        columns = RUN_ROW
        try:
            conn.execute("BEGIN")
            try:
                if run_id is None:
                    run_id = conn.execute(f"INSERT INTO runs ({columns}) VALUES ({', '.join(['%s'] * 13)})"
                                          " RETURNING id", run_row).fetchone()[0]
                else:
                    conn.execute(f"INSERT INTO runs (id, {columns}) VALUES ({', '.join(['%s'] * 14)})",
                                 (run_id, *run_row))
                    # keep the sequence past a kept id, so a later add never collides with it
                    conn.execute("SELECT setval(pg_get_serial_sequence('runs', 'id'), (SELECT MAX(id) FROM runs))")
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO measurements (run_id, idx, name, unit, higher_is_better, meta_json, n, samples)"
                        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", [(run_id, *r) for r in measurement_rows])
                    cur.executemany(
                        f"INSERT INTO measurement_stats (run_id, idx, version, {', '.join(STAT_COLUMNS)})"
                        f" VALUES ({', '.join(['%s'] * (3 + len(STAT_COLUMNS)))})", [(run_id, *r) for r in stats_rows])
                conn.execute("COMMIT")
            except BaseException:
                if conn.info.transaction_status != 0:
                    conn.execute("ROLLBACK")
                raise
        except psycopg.Error as e:
            raise StoreError(f"could not store run {label} in {self.path}: {' '.join(str(e).split())}; that "
                             "run was not kept and earlier results are intact") from e
        return int(run_id)

    def delete(self, run_id: int) -> bool:
        self._need_writable()
        return self._conn.execute("DELETE FROM runs WHERE id = %s", (int(run_id),)).rowcount > 0

    def rebuild_stats(self, only_missing: bool = False) -> int:
        """Every measurement's statistics from its samples, one transaction; how many were written."""
        from quantscope.store.db import unpack_samples

        self._need_writable()
        conn = self._conn
        conn.execute("BEGIN")
        try:
            keys = conn.execute("SELECT run_id, idx FROM measurements ORDER BY run_id, idx").fetchall()
            if only_missing:
                have = set(conn.execute("SELECT run_id, idx FROM measurement_stats WHERE version = %s",
                                        (STATS_VERSION,)).fetchall())
                keys = [k for k in keys if tuple(k) not in have]
            for run_id, idx in keys:
                blob = conn.execute("SELECT samples FROM measurements WHERE run_id = %s AND idx = %s",
                                    (run_id, idx)).fetchone()[0]
                row = figures_of(unpack_samples(bytes(blob))).row()
                conn.execute(f"INSERT INTO measurement_stats (run_id, idx, version, {', '.join(STAT_COLUMNS)})"
                             f" VALUES ({', '.join(['%s'] * (3 + len(STAT_COLUMNS)))}) ON CONFLICT (run_id, idx)"
                             f" DO UPDATE SET version = EXCLUDED.version, "
                             + ", ".join(f"{c} = EXCLUDED.{c}" for c in STAT_COLUMNS),
                             (run_id, idx, STATS_VERSION, *row))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return len(keys)


class ClaimsConnection:
    """A psycopg connection that answers as store/claims.py drives sqlite3: `?` markers, BEGIN IMMEDIATE
    (here: an advisory lock held to the transaction's end, so two sweeps never both win a claim),
    INSERT OR REPLACE into claims (here: ON CONFLICT DO UPDATE), `in_transaction`."""

    def __init__(self, url: str) -> None:
        self._conn = connect(url)

    def execute(self, sql: str, params: tuple = ()) -> Any:
        if sql == "BEGIN IMMEDIATE":
            self._conn.execute("BEGIN")
            return self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY + 1,))
        if sql.startswith("INSERT OR REPLACE INTO claims"):
            sql = ("INSERT" + sql[len("INSERT OR REPLACE"):] + " ON CONFLICT (key_hash, machine_id) DO UPDATE SET "
                   + ", ".join(f"{c} = EXCLUDED.{c}" for c in ("owner", "pid", "pid_started", "host", "claimed_at")))
        return self._conn.execute(_pg(sql), params)

    @property
    def in_transaction(self) -> bool:
        return self._conn.info.transaction_status != 0

    def close(self) -> None:
        self._conn.close()
