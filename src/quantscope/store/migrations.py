"""The store's schema as an ordered list of steps: step i takes a store from version i to i + 1.

This is the version of the *file layout* (tables, columns, indexes), kept apart from
`quantscope.result.SCHEMA_VERSION`, the version of the Result record that each row carries.

History (append only; never edit a step that has shipped, add a new one):
  1  2026-11-24  runs (one row per Result) + measurements (raw samples as little-endian float64),
                 indexes on key_hash, machine_id, status, model.
  2  2026-11-29  machine identity scheme 2 (issue 16): every row's machine_id (column and env_json) is
                 recomputed from its stored fingerprint by env.machine_identity. Rows written before
                 lack CPU vendor/family/model/stepping, so they get ids apart from any row measured
                 since: kept and readable, never reused by a resumed sweep nor compared with new rows.
  3  2026-11-29  claims (issue 21): the configuration a sweep is measuring, and the machine's one measuring
                 slot (key_hash '*'), with the owner's pid, process start time and host; store/claims.py.
  4  2026-11-29  measurement_stats (issue 19): per measurement the figures derived from its samples
                 (store/stats.py, STATS_VERSION 1), built here for every stored run and on each add, so a
                 listing reads no samples; runs.backend (from spec_json) and an index on started_at, for
                 `results --backend/--since`.
  5  2026-11-30  an index on (key_hash, machine_id, id): a sweep's resume check asks, per configuration,
                 for the newest row of one key on one machine; with one-column indexes PostgreSQL
                 intersected key_hash with machine_id and sorted (14 ms a query on 10,000 runs, 0.35 s
                 for the default sweep's 23), with this one it reads one index entry.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime


def _recompute_machine_ids(conn: sqlite3.Connection) -> None:
    """Step 2: machine_id from the stored fingerprint (env.machine_identity), in column and JSON."""
    from quantscope.env import machine_identity  # here: env imports psutil and importlib.metadata (~50 ms)

    rows = conn.execute("SELECT id, env_json FROM runs").fetchall()
    for run_id, env_json in rows:
        env = json.loads(env_json)
        env["machine_id"] = machine_identity(env)
        conn.execute("UPDATE runs SET machine_id = ?, env_json = ? WHERE id = ?",
                     (env["machine_id"], json.dumps(env, sort_keys=True), run_id))


def build_stats(conn: sqlite3.Connection, only_missing: bool = True) -> int:
    """Step 4 and `quantscope store rebuild-stats`: each measurement's figures from its samples, one
    measurement in memory at a time; returns how many were written."""
    from quantscope.store.db import unpack_samples
    from quantscope.store.stats import STAT_COLUMNS, STATS_VERSION, figures_of

    where = ("WHERE NOT EXISTS (SELECT 1 FROM measurement_stats s WHERE s.run_id = m.run_id AND s.idx = m.idx"
             " AND s.version = ?)") if only_missing else ""
    keys = conn.execute(f"SELECT m.run_id, m.idx FROM measurements m {where} ORDER BY m.run_id, m.idx",
                        (STATS_VERSION,) if only_missing else ()).fetchall()
    marks = ", ".join("?" for _ in range(3 + len(STAT_COLUMNS)))
    for run_id, idx in keys:
        (blob,) = conn.execute("SELECT samples FROM measurements WHERE run_id = ? AND idx = ?",
                               (run_id, idx)).fetchone()
        row = figures_of(unpack_samples(blob)).row()
        conn.execute(f"INSERT OR REPLACE INTO measurement_stats (run_id, idx, version, {', '.join(STAT_COLUMNS)})"
                     f" VALUES ({marks})", (run_id, idx, STATS_VERSION, *row))
    return len(keys)


def _fill_backend(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE runs SET backend = json_extract(spec_json, '$.backend')")


# Each step is a tuple of single statements (no executescript: in Python 3.11 it commits any open
# transaction first, which would break "all steps in one transaction"). A callable step rewrites
# data in Python, inside the same transaction.
MIGRATIONS: tuple[tuple[str | Callable[[sqlite3.Connection], None], ...], ...] = (
    (
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: an id is never reused after delete
            key_hash TEXT NOT NULL,                -- RunSpec.key_hash(): what makes two runs comparable
            machine_id TEXT NOT NULL,
            model TEXT NOT NULL,                   -- spec.model.ref, for filtering
            status TEXT NOT NULL,
            reason TEXT,
            started_at TEXT NOT NULL,
            duration_s REAL NOT NULL,
            label TEXT NOT NULL,
            spec_json TEXT NOT NULL,
            env_json TEXT NOT NULL,
            info_json TEXT NOT NULL,
            schema_version INTEGER NOT NULL,       -- the Result record's version
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        )""",
        """CREATE TABLE measurements (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,                  -- position in Result.measurements
            name TEXT NOT NULL,
            unit TEXT NOT NULL,
            higher_is_better INTEGER,              -- NULL: no better direction
            meta_json TEXT NOT NULL,
            n INTEGER NOT NULL,
            samples BLOB NOT NULL,                 -- n IEEE-754 float64, little-endian
            PRIMARY KEY (run_id, idx)
        )""",
        "CREATE INDEX runs_key_hash ON runs(key_hash)",
        "CREATE INDEX runs_machine_id ON runs(machine_id)",
        "CREATE INDEX runs_status ON runs(status)",
        "CREATE INDEX runs_model ON runs(model)",
    ),
    (_recompute_machine_ids,),
    (
        """CREATE TABLE claims (
            key_hash TEXT NOT NULL,                -- the configuration claimed; '*' = the measuring slot
            machine_id TEXT NOT NULL,
            owner TEXT NOT NULL,                   -- a random token per sweep process
            pid INTEGER NOT NULL,
            pid_started TEXT NOT NULL,             -- the process's start time ('' if unknown): pids are reused
            host TEXT NOT NULL,
            claimed_at TEXT NOT NULL,
            PRIMARY KEY (key_hash, machine_id)
        )""",
    ),
    (
        """CREATE TABLE measurement_stats (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,                  -- the measurement's idx
            version INTEGER NOT NULL,              -- stats.STATS_VERSION that derived it; others are ignored
            n INTEGER NOT NULL,
            mean REAL, sd REAL, se REAL, ci95 REAL, p50 REAL, p90 REAL, p99 REAL, min REAL, max REAL,
            mean_np REAL, se_np REAL,              -- quality.perplexity.mean_se over the samples as stored
            mean_sorted REAL, se_sorted REAL,      -- the same over the sorted samples (kld_summary)
            PRIMARY KEY (run_id, idx)
        )""",
        "ALTER TABLE runs ADD COLUMN backend TEXT NOT NULL DEFAULT ''",
        _fill_backend,
        "CREATE INDEX runs_backend ON runs(backend)",
        "CREATE INDEX runs_started_at ON runs(started_at)",
        build_stats,
    ),
    ("CREATE INDEX runs_key_machine ON runs(key_hash, machine_id, id)",),
)

STORE_SCHEMA = len(MIGRATIONS)
# The oldest schema whose rows read as the current one's: the steps after it only add indexes, so a
# read-only open (which never writes) reads such a store as it is instead of migrating a copy in memory.
READS_AS_CURRENT = 4

_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    applied_at TEXT NOT NULL,
    quantscope TEXT NOT NULL
)"""


def current_version(conn: sqlite3.Connection) -> int | None:
    """The store schema of an open database: 0 for an empty file, None if it holds foreign tables."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "schema_version" in tables:
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)
    tables.discard("sqlite_sequence")
    return None if tables else 0


def migrate(conn: sqlite3.Connection) -> int | None:
    """Bring the store up to STORE_SCHEMA inside one transaction; return the version found before.

    BEGIN IMMEDIATE takes SQLite's write lock before the version is read, so two processes opening a
    fresh file never both migrate: the second waits (busy_timeout), then finds the work done.
    The version is re-read under the lock (a check made before it may be stale). A version newer
    than STORE_SCHEMA, or None (foreign tables), is returned with nothing written: the caller refuses.
    `conn` must be in autocommit mode (isolation_level=None).
    """
    from quantscope.version import __version__

    conn.execute("BEGIN IMMEDIATE")
    try:
        found = current_version(conn)
        if found is None or found >= STORE_SCHEMA:
            conn.execute("ROLLBACK")
            return found
        conn.execute(_VERSION_TABLE)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        for version in range(found, STORE_SCHEMA):
            for statement in MIGRATIONS[version]:
                if callable(statement):
                    statement(conn)
                else:
                    conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version (version, applied_at, quantscope) VALUES (?, ?, ?)",
                (version + 1, now, __version__),
            )
        conn.execute("COMMIT")
        return found
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
