"""The SQLite result store: one row per Result, its measurements with every raw sample.

Reliability promises (each has a test in tests/store/):
- WAL + busy_timeout + one transaction per Result: a kill -9 at any point leaves every acknowledged
  result whole and `PRAGMA integrity_check` ok; a full disk rolls back only the result being added.
- Migrations run under SQLite's write lock (BEGIN IMMEDIATE), so two processes never migrate at once.
- A store written by a newer quantscope is refused before anything opens it for writing, so the file
  stays byte-for-byte as it was.
- Only parameterised SQL; the few column names in WHERE clauses come from a fixed table, never input.
- Each measurement's statistics are written with it (store/stats.py, measurement_stats) and equal those
  its samples give; reads (store/base.py, shared with PostgreSQL in store/pg.py) read samples only when
  used. Tests: tests/store/test_stats.py.

>>> with Store(tmp / "results.sqlite") as store:  # doctest: +SKIP
...     run_id = store.add(result)
...     assert store.get(run_id) == result
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from array import array
from pathlib import Path
from typing import Any

from quantscope import paths
from quantscope.errors import StoreError
from quantscope.result import Result
from quantscope.store.base import RUN_ROW, ReadingStore, rows_of
from quantscope.store.migrations import READS_AS_CURRENT, STORE_SCHEMA, current_version, migrate
from quantscope.store.stats import STAT_COLUMNS

SQLITE_MAGIC = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite 3 file (fileformat.html)
BUSY_TIMEOUT_S = 30.0



def default_store_path() -> Path:
    """$QUANTSCOPE_STORE, else $XDG_DATA_HOME/quantscope/results.sqlite (XDG default ~/.local/share)."""
    return paths.store_path()


def pack_samples(samples: tuple[float, ...]) -> bytes:
    """Samples as little-endian float64 bytes. array('d') is native order, so swap on big-endian hosts."""
    values = array("d", samples)
    if sys.byteorder == "big":
        values.byteswap()
    return values.tobytes()


def unpack_samples(blob: bytes) -> tuple[float, ...]:
    values = array("d")
    values.frombytes(blob)
    if sys.byteorder == "big":
        values.byteswap()
    return tuple(values)


def _newer_message(path: Path, found: int) -> str:
    return (
        f"store {path} was written by a newer quantscope (schema {found}, this one knows "
        f"{STORE_SCHEMA}): upgrade quantscope, or use --store to pick another file"
    )


def _foreign_message(path: Path) -> str:
    return (
        f"store {path} is an SQLite database but not a quantscope store (it has other tables): "
        "use --store to pick another file"
    )


def _hint(e: sqlite3.Error, otherwise: str) -> str:
    """What to do about an SQLite error: a lock held past busy_timeout has its own remedy."""
    if "locked" in str(e):
        return f"another process held the store for over {BUSY_TIMEOUT_S:.0f} s: wait for it, or use --store"
    return otherwise


def _check_file(path: Path) -> None:
    """Refuse a path that is not a file, or a non-empty file that is not SQLite, before SQLite sees it."""
    if path.is_dir():
        raise StoreError(f"store {path} is a directory: pass --store with a file path")
    try:
        with path.open("rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError as e:
        raise StoreError(f"cannot read store {path}: {e.strerror}: check its permissions") from e
    if head and head != SQLITE_MAGIC:
        raise StoreError(
            f"store {path} is not an SQLite file (its header is not 'SQLite format 3'): "
            "use --store to pick another file"
        )


MIN_FREE_BYTES = 16 << 20  # a run with every raw sample is KBs to a few MB; its WAL frames need as much again


def unwritable_reason(path: Path) -> str | None:
    """Why a store at `path` could not take a result, or None: checked before any work, so a run is
    not measured for minutes and then lost. os.access also reports a read-only mount (EROFS) to root.
    Tests: tests/store/test_unwritable.py.
    """
    folder = next((p for p in (path.parent, *path.parent.parents) if p.exists()), None)
    if path.exists() and not os.access(path, os.W_OK):
        return f"store {path} is read-only (the file): make it writable (chmod u+w) or pick another --store"
    # SQLite writes its -wal and -shm files beside the store, so the folder must be writable too
    if folder is not None and not os.access(folder, os.W_OK | os.X_OK):
        return f"store {path} is in a read-only folder ({folder}): pick another --store"
    try:
        fs = os.statvfs(folder or path.parent)
        free = fs.f_bavail * fs.f_frsize
    except OSError:
        return None
    if free < MIN_FREE_BYTES:
        return (f"the disk holding store {path} is full ({free >> 10} KiB free, a run needs about "
                f"{MIN_FREE_BYTES >> 20} MiB): free some space or pick another --store")
    return None


def _peek_version(path: Path) -> int | None:
    """The store schema of an existing file, read through a read-only connection (writes nothing)."""
    uri = path.resolve().as_uri() + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error as e:
        raise StoreError(f"cannot open store {path}: {e}: check the path and its permissions") from e
    try:
        return current_version(conn)
    except sqlite3.DatabaseError as e:
        raise StoreError(
            f"store {path} is not a usable SQLite database ({e}): use --store to pick another file"
        ) from e
    finally:
        conn.close()


def _enable_wal(conn: sqlite3.Connection) -> None:
    """PRAGMA journal_mode = WAL, retried: while another process is creating or writing the same new
    file, SQLite answers "database is locked" at once here without calling the busy handler (seen
    in ~1 of 40 two-process starts in tests/store), so wait as busy_timeout would."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


class Store(ReadingStore):
    """A result store in one SQLite file. Use as a context manager; one instance per thread.

    `readonly=True` never creates or changes the file (for report, compare, export).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, readonly: bool = False) -> None:
        self.path = Path(path).expanduser() if path is not None else default_store_path()
        self.readonly = readonly
        self._conn = self._open()

    def _open(self) -> sqlite3.Connection:
        path = self.path
        exists = path.exists()
        found = 0
        if exists:
            _check_file(path)
            found = _peek_version(path) if path.stat().st_size else 0
            if found is None:
                raise StoreError(_foreign_message(path))
            if found > STORE_SCHEMA:
                raise StoreError(_newer_message(path, found))
        if self.readonly:
            return self._open_readonly(path, exists, found)
        problem = unwritable_reason(path)
        if problem:
            raise StoreError(problem)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot create store {path}: {e}: pick a writable path with --store") from e
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")  # a constant, not input
            _enable_wal(conn)
            # FULL: in WAL mode each commit is synced, so an acknowledged result survives power loss too
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            found = migrate(conn)
        except sqlite3.Error as e:
            conn.close()
            hint = _hint(e, "check disk space and permissions")
            raise StoreError(f"cannot prepare store {path}: {e}: {hint}") from e
        if found is None:
            conn.close()
            raise StoreError(_foreign_message(path))
        if found > STORE_SCHEMA:  # upgraded by a newer quantscope between the check and the lock
            conn.close()
            raise StoreError(_newer_message(path, found))
        return conn

    def _open_readonly(self, path: Path, exists: bool, found: int) -> sqlite3.Connection:
        if not exists:
            raise StoreError(f"no store at {path}: run `quantscope run` first, or pass --store")
        if 1 <= found < READS_AS_CURRENT:
            return self._upgraded_copy(path, found)
        if found < 1:
            raise StoreError(
                f"store {path} has schema {found}, older than {STORE_SCHEMA}: open it once with a "
                "command that writes (e.g. `quantscope run`) to upgrade it"
            )
        uri = path.resolve().as_uri() + "?mode=ro"
        try:
            return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as e:
            raise StoreError(f"cannot open store {path} read-only: {e}: check its permissions") from e

    def _upgraded_copy(self, path: Path, found: int) -> sqlite3.Connection:
        """A store of an older schema, read-only: its rows copied into memory and migrated there.

        Reading must not write the file, yet rows must read as the current schema says (schema 2
        recomputes machine ids, so an old row never passes for this machine). The file is untouched;
        the copy costs the store's size in RAM for the life of this Store.
        """
        uri = path.resolve().as_uri() + "?mode=ro"
        try:
            src = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            mem = sqlite3.connect(":memory:", isolation_level=None)
            try:
                src.backup(mem)
            finally:
                src.close()
            migrate(mem)
        except sqlite3.Error as e:
            raise StoreError(f"cannot read store {path} (schema {found}): {e}: check its permissions") from e
        return mem

    # -- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        self._closed = True
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}{', readonly=True' if self.readonly else ''})"

    # -- writing ---------------------------------------------------------------------------------

    def add(self, result: Result) -> int:
        """Store one Result (run row + all measurements + their statistics) in one transaction; return
        its run id.

        On any SQLite error (full disk, I/O error) that one result is rolled back and StoreError raised;
        everything stored before is untouched.
        """
        self._need_writable()
        return self.add_rows(*rows_of(result), label=result.spec.label)

    def add_rows(self, run_row: tuple, measurement_rows: list[tuple], stats_rows: list[tuple], *,
                 label: str, run_id: int | None = None) -> int:
        """Insert one run's rows (base.rows_of, or another store's raw_run for store/copy.py) in one
        transaction; `run_id` keeps a given id (AUTOINCREMENT then continues past it)."""
        self._need_writable()
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            columns, marks = RUN_ROW, ", ".join("?" for _ in run_row)
            if run_id is None:
                cur = conn.execute(f"INSERT INTO runs ({columns}) VALUES ({marks})", run_row)
                run_id = int(cur.lastrowid)
            else:
                conn.execute(f"INSERT INTO runs (id, {columns}) VALUES (?, {marks})", (run_id, *run_row))
            conn.executemany(
                "INSERT INTO measurements (run_id, idx, name, unit, higher_is_better, meta_json, n, samples)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, *row) for row in measurement_rows],
            )
            conn.executemany(  # the statistics beside the samples, in the same transaction
                f"INSERT INTO measurement_stats (run_id, idx, version, {', '.join(STAT_COLUMNS)})"
                f" VALUES ({', '.join('?' for _ in range(3 + len(STAT_COLUMNS)))})",
                [(run_id, *row) for row in stats_rows],
            )
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            self._rollback()
            hint = _hint(e, "free disk space or pick another --store, then rerun it")
            raise StoreError(
                f"could not store run {label} in {self.path}: {e}; that run was not kept and earlier "
                f"results are intact: {hint}"
            ) from e
        except BaseException:  # KeyboardInterrupt mid-add: leave no half-open transaction behind
            self._rollback()
            raise
        return run_id

    def delete(self, run_id: int) -> bool:
        """Remove one run and its measurements; False if there was no such run."""
        self._need_writable()
        try:
            cur = self._conn.execute("DELETE FROM runs WHERE id = ?", (int(run_id),))
        except sqlite3.Error as e:
            raise StoreError(f"could not delete run {run_id} from {self.path}: {e}") from e
        return cur.rowcount > 0

    def _need_writable(self) -> None:
        if self.readonly:
            raise StoreError(f"store {self.path} was opened read-only: open it without readonly to write")

    def _rollback(self) -> None:
        # SQLite may already have rolled back by itself (e.g. after SQLITE_FULL); in_transaction knows.
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the connection is unusable; the error being raised already says why

    # -- reading (the queries are store/base.py's) --------------------------------------------------

    def _read(self, fn: Any) -> Any:
        # One deferred transaction: a run and its measurements come from the same snapshot even while
        # another process writes (WAL readers never block writers).
        conn = self._conn

        def ex(sql: str, params: list[Any]) -> list:
            return conn.execute(sql, params).fetchall()

        if conn.in_transaction:  # samples read from inside another read: the same snapshot
            return fn(ex)
        try:
            conn.execute("BEGIN")
            try:
                return fn(ex)
            finally:
                conn.execute("COMMIT")
        except sqlite3.ProgrammingError:
            raise  # used from another thread or after close: samples() reopens, anything else is a bug
        except sqlite3.Error as e:
            raise StoreError(f"cannot read store {self.path}: {e}: check the file with `sqlite3 "
                             f"{self.path} 'PRAGMA integrity_check'`") from e

    def _reopen(self) -> Store:
        return Store(self.path, readonly=True)

    def samples(self, run_id: int, idx: int, name: str, n: int) -> tuple[float, ...]:
        try:
            return super().samples(run_id, idx, name, n)
        except sqlite3.ProgrammingError:  # used from another thread than the one that opened it
            again = self._reopen()
            try:
                return again.samples(run_id, idx, name, n)
            finally:
                again.close()

    def rebuild_stats(self, only_missing: bool = False) -> int:
        """Recompute every measurement's statistics from its samples (`quantscope store rebuild-stats`),
        in one transaction; returns how many. Readers meanwhile see the old figures or the new."""
        from quantscope.store.migrations import build_stats

        self._need_writable()
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                done = build_stats(conn, only_missing=only_missing)
                conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        except sqlite3.Error as e:
            hint = _hint(e, "check disk space")
            raise StoreError(f"cannot rebuild the statistics of {self.path}: {e}: {hint}") from e
        return done
