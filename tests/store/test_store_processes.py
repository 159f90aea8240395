"""The store shared between processes: concurrent writers, concurrent first-time migration, kill -9."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.store import add_many, indexed_result

from quantscope.store import STORE_SCHEMA, Store

pytestmark = pytest.mark.integration  # spawns worker processes

HERE = Path(__file__).resolve().parent


def run_writers(path: Path, writers: int, each: int) -> list[int]:
    """Start `writers` processes on a fresh file at once; return every id they were given."""
    ctx = multiprocessing.get_context("spawn")  # no fork of a process that may hold SQLite handles
    start, out = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=add_many, args=(str(path), each, w * each, start, out)) for w in range(writers)
    ]
    for p in procs:
        p.start()
    start.set()
    reports = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    errors = [msg for kind, msg in reports if kind == "error"]
    assert errors == []
    return [run_id for _, ids in reports for run_id in ids]


def test_two_processes_add_concurrently(tmp_path):
    path = tmp_path / "r.sqlite"
    ids = run_writers(path, writers=2, each=15)
    assert len(ids) == len(set(ids)) == 30
    with Store(path) as store:
        stored = dict(store.results())
    assert set(stored) == set(ids)
    assert sorted(r.spec.seed for r in stored.values()) == list(range(30))
    for result in stored.values():
        assert result == indexed_result(result.spec.seed, n_samples=50)


def test_concurrent_first_open_migrates_once(tmp_path):
    path = tmp_path / "fresh.sqlite"
    run_writers(path, writers=4, each=1)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(v,) for v in range(1, STORE_SCHEMA + 1)]
    assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 4
    conn.close()


CHILD = """
import sys
sys.path.insert(0, {here!r})
from helpers.store import crash_child
crash_child({path!r}, {n_samples})
"""


def kill_during_adds(path: Path, wait_for: int, extra_s: float, n_samples: int) -> dict[int, int]:
    """Run a child that adds results, kill -9 it mid-series; return {run id: index} it acknowledged."""
    code = CHILD.format(here=str(HERE.parent), path=str(path), n_samples=n_samples)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    acknowledged: dict[int, int] = {}
    try:
        while len(acknowledged) < wait_for:
            line = child.stdout.readline()
            assert line, f"child ended early: {child.stderr.read()[-2000:]}"
            run_id, index = map(int, line.split())
            acknowledged[run_id] = index
        time.sleep(extra_s)  # let it get somewhere inside the next transaction
    finally:
        os.kill(child.pid, signal.SIGKILL)
        rest, _ = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    # lines it printed before dying were printed after their commit: acknowledged too
    for line in rest.splitlines():
        if line.strip():
            run_id, index = map(int, line.split())
            acknowledged[run_id] = index
    return acknowledged


def test_kill_9_during_adds_keeps_every_acknowledged_result(tmp_path):
    path = tmp_path / "r.sqlite"
    acknowledged: dict[int, int] = {}
    # Several kills at different moments; samples large enough that a commit takes a while.
    for round_, extra_s in enumerate((0.0, 0.013, 0.037, 0.11)):
        got = kill_during_adds(path, wait_for=3 + round_, extra_s=extra_s, n_samples=20_000)
        assert not set(got) & set(acknowledged)  # ids are never reused after a crash
        acknowledged.update(got)
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with Store(path) as store:
        stored = dict(store.results())
        assert set(acknowledged) <= set(stored)
        for run_id, index in acknowledged.items():
            assert stored[run_id].spec.seed == index
            assert store.get(run_id) == indexed_result(index, n_samples=20_000)  # every sample intact
        for result in stored.values():  # anything beyond the acknowledged is whole, never partial
            assert len(result.measurements) == 3
        store.add(indexed_result(999))  # and the store is usable afterwards
