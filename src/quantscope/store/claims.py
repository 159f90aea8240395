"""Claims: which sweep is measuring which configuration, so two sweeps on one store share the work.

A sweep claims a configuration (a row of the `claims` table, keyed by key hash and machine) before it
measures it, and the machine's one measuring slot (key_hash '*') while its worker runs: a second
sweep skips what the first has claimed (and takes the first's row when it lands), and never measures
at the same time on the same machine, where each measurement would slow the other.

A claim names its owner: a random token, the pid, the process's start time and the host. It is
released when the measurement is stored and, all at once, when the sweep ends (`close`). A claim
whose owner is gone (kill -9, a crash) is stale and taken over: on this host, when that pid no longer
runs the process that claimed it (pids are reused, so the start time is compared too); from another
host sharing the store, after STALE_OTHER_HOST_S. Every change is one BEGIN IMMEDIATE transaction, so
two sweeps never both win one claim. Tests: tests/sweep/test_claims.py.

>>> with Claims(tmp / "results.sqlite", "machine-1") as claims:  # doctest: +SKIP
...     if claims.claim(key) is None:  # ours now
...         with claims.slot():
...             measure()
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from quantscope.errors import StoreError

SLOT = "*"  # the key of the machine's measuring slot
POLL_S = 0.5  # how often a waiting sweep looks again (it sleeps in between)
STALE_OTHER_HOST_S = 24 * 3600.0  # no way to ask another host whether its pid lives: age decides


@dataclass(frozen=True)
class Holder:
    """Who holds a claim: `pid 4242 on host-a since 2026-11-29T19:02:11+00:00`."""

    pid: int
    host: str
    claimed_at: str

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host} since {self.claimed_at}"


def process_started(pid: int) -> str:
    """The start time of process `pid` in clock ticks since boot (/proc/PID/stat field 22), '' if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]  # fields after the command name; field 22 overall


def alive(pid: int, started: str) -> bool:
    """Whether `pid` still runs the process that started at `started` ('' = cannot tell: the pid decides)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    now = process_started(pid)
    return not (started and now and now != started)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class Claims:
    """The claims of one sweep process on the store at `path`, for machine `machine_id`."""

    def __init__(self, path: str | os.PathLike[str], machine_id: str, poll_s: float = POLL_S) -> None:
        from quantscope.store.db import BUSY_TIMEOUT_S

        self.machine_id = machine_id
        self.poll_s = poll_s
        self.owner = secrets.token_hex(8)
        self.pid = os.getpid()
        self.started = process_started(self.pid)
        self.host = socket.gethostname()
        self._errors: tuple[type[Exception], ...] = (sqlite3.Error,)
        from quantscope.store.pg import ClaimsConnection, is_url

        if is_url(path):  # a shared PostgreSQL store: the same statements through store/pg.py's adapter
            import psycopg

            self._errors = (psycopg.Error,)
            self._conn = ClaimsConnection(str(path))
            return
        try:
            self._conn = sqlite3.connect(Path(path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
            self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")  # a constant
        except sqlite3.Error as e:
            raise StoreError(f"cannot open store {path} for claims: {e}: check its permissions") from e

    def __enter__(self) -> Claims:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release every claim of this sweep (its end, normal or not) and close the connection."""
        try:
            self._conn.execute("DELETE FROM claims WHERE owner = ?", (self.owner,))
        except self._errors:
            pass  # a claim left behind is stale once this process is gone, and is taken over then
        finally:
            self._conn.close()

    def _stale(self, pid: int, started: str, host: str, claimed_at: str) -> bool:
        if host == self.host:
            return not alive(pid, started)
        age = dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(claimed_at)
        return age.total_seconds() > STALE_OTHER_HOST_S

    def claim(self, key_hash: str) -> Holder | None:
        """Claim `key_hash` for this sweep: None when it is ours (new, already ours, or taken over from a
        stale owner), else who holds it."""
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT owner, pid, pid_started, host, claimed_at FROM claims"
                                   " WHERE key_hash = ? AND machine_id = ?", (key_hash, self.machine_id)).fetchone()
                if row is not None and row[0] != self.owner and not self._stale(*row[1:]):
                    conn.execute("COMMIT")
                    return Holder(row[1], row[3], row[4])
                conn.execute("INSERT OR REPLACE INTO claims (key_hash, machine_id, owner, pid, pid_started, host,"
                             " claimed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (key_hash, self.machine_id, self.owner, self.pid, self.started, self.host, _now()))
                conn.execute("COMMIT")
                return None
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except self._errors as e:
            raise StoreError(f"cannot claim a configuration in the store: {e}: check the store's file") from e

    def release(self, key_hash: str) -> None:
        try:
            self._conn.execute("DELETE FROM claims WHERE key_hash = ? AND machine_id = ? AND owner = ?",
                               (key_hash, self.machine_id, self.owner))
        except self._errors as e:
            raise StoreError(f"cannot release a claim in the store: {e}") from e

    def wait_for(self, key_hash: str, on_wait: Callable[[Holder], None] | None = None) -> None:
        """Claim `key_hash`, sleeping while another live sweep holds it; on_wait(holder) once per holder."""
        seen = None
        while (holder := self.claim(key_hash)) is not None:
            if on_wait is not None and holder != seen:
                on_wait(holder)
            seen = holder
            time.sleep(self.poll_s)

    @contextlib.contextmanager
    def slot(self, on_wait: Callable[[Holder], None] | None = None) -> Iterator[None]:
        """The machine's measuring slot, held for the body: one measurement at a time on this machine."""
        self.wait_for(SLOT, on_wait)
        try:
            yield
        finally:
            self.release(SLOT)
