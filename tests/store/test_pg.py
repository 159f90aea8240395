"""The store in PostgreSQL keeps the SQLite store's promises (tests/store/test_store_db.py and
test_store_processes.py), against a real server that conftest.py starts: round trip with every sample,
the statistics table, a newer schema refused with nothing written, concurrent writers and first-time
migration, kill -9 mid-add losing no acknowledged run, claims shared between sweeps."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.store import add_many, indexed_result, samples_for

from quantscope.errors import StoreError, UserError
from quantscope.store import STORE_SCHEMA, open_store
from quantscope.store.pg import PgStore

pytestmark = pytest.mark.integration  # a server and worker processes

HERE = Path(__file__).resolve().parent


def sql(url: str, query: str, params=()) -> list:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def test_round_trip_filters_and_stats(pg_url):
    ok, failed = indexed_result(1, n_samples=1000), indexed_result(2, status="failed")
    with open_store(pg_url) as st:
        assert isinstance(st, PgStore)
        a, b = st.add(ok), st.add(failed)
        c = st.add(indexed_result(3, model_ref="tiny"))
        assert st.get(a) == ok and st.get(b) == failed
        back = st.get(a).get("decode_tps")
        assert back.samples == samples_for(1, 1000) and back.meta == {"stop": "ci", "reps": 1000}
        assert back.stats == ok.get("decode_tps").stats  # from the stats table, equal to the samples'
        assert [i for i, _ in st.results()] == [c, b, a]
        assert [i for i, _ in st.results(status="failed")] == [b]
        assert [i for i, _ in st.results(model="tiny")] == [c]
        assert [i for i, _ in st.results(limit=1, offset=1)] == [b]
        assert [i for i, _ in st.iter_results(backend="torch")] == [c, b, a]
        assert st.results(status="ok' OR '1'='1") == []
        assert st.count() == 3 and st.count(status="ok") == 2
        assert st.delete(c) and not st.delete(c)
        with pytest.raises(UserError, match=f"no run {c}"):
            st.get(c)
        assert st.add(indexed_result(4)) > c  # ids never reused
    with open_store(pg_url, readonly=True) as st:
        with pytest.raises(StoreError, match="read-only"):
            st.add(ok)
        rows = dict(st.results())
    assert rows[a] == ok  # samples read after the store closed: read through a fresh connection


def test_newer_schema_is_refused_and_nothing_is_written(pg_url):
    with open_store(pg_url) as st:
        st.add(indexed_result(0))
    sql(pg_url, "INSERT INTO schema_version VALUES (%s, '2099-01-01', '9.0')", (STORE_SCHEMA + 1,))
    before = sql(pg_url, "SELECT (SELECT COUNT(*) FROM runs), (SELECT COUNT(*) FROM schema_version)")
    for readonly in (False, True):
        with pytest.raises(StoreError) as err:
            open_store(pg_url, readonly=readonly)
        assert f"newer quantscope (schema {STORE_SCHEMA + 1}, this one knows {STORE_SCHEMA})" in str(err.value)
        assert "\n" not in str(err.value)
    assert sql(pg_url, "SELECT (SELECT COUNT(*) FROM runs), (SELECT COUNT(*) FROM schema_version)") == before


def test_readonly_never_creates_a_store(pg_url):
    with pytest.raises(StoreError, match="no store at"):
        open_store(pg_url, readonly=True)
    assert sql(pg_url, "SELECT to_regclass('runs')") == [(None,)]


def run_writers(url: str, writers: int, each: int) -> list[int]:
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=add_many, args=(url, each, w * each, start, out)) for w in range(writers)]
    for p in procs:
        p.start()
    start.set()
    reports = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert [msg for kind, msg in reports if kind == "error"] == []
    return [run_id for _, ids in reports for run_id in ids]


def test_concurrent_writers_and_first_migration(pg_url):
    ids = run_writers(pg_url, writers=4, each=8)  # four processes race to migrate the empty database too
    assert len(ids) == len(set(ids)) == 32
    assert sql(pg_url, "SELECT version FROM schema_version ORDER BY version") == [(v,) for v in
                                                                                 range(1, STORE_SCHEMA + 1)]
    with open_store(pg_url) as st:
        stored = dict(st.results())
    assert set(stored) == set(ids)
    for result in stored.values():
        assert result == indexed_result(result.spec.seed, n_samples=50)


CHILD = """
import sys
sys.path.insert(0, {here!r})
from helpers.store import crash_child
crash_child({url!r}, {n_samples})
"""


def test_kill_9_mid_add_keeps_every_acknowledged_run(pg_url):
    acknowledged: dict[int, int] = {}
    for round_, extra_s in enumerate((0.0, 0.017, 0.05)):
        code = CHILD.format(here=str(HERE.parent), url=pg_url, n_samples=20_000)
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
        got: dict[int, int] = {}
        try:
            while len(got) < 3 + round_:
                line = child.stdout.readline()
                assert line, f"child ended early: {child.stderr.read()[-2000:]}"
                run_id, index = map(int, line.split())
                got[run_id] = index
            time.sleep(extra_s)
        finally:
            os.kill(child.pid, signal.SIGKILL)
            rest, _ = child.communicate(timeout=30)
        for line in rest.splitlines():
            if line.strip():
                run_id, index = map(int, line.split())
                got[run_id] = index
        assert child.returncode == -signal.SIGKILL
        assert not set(got) & set(acknowledged)
        acknowledged.update(got)
    time.sleep(0.5)  # the server notices the dead clients and rolls their open transactions back
    with open_store(pg_url) as st:
        stored = dict(st.results())
        assert set(acknowledged) <= set(stored)
        for run_id, index in acknowledged.items():
            assert st.get(run_id) == indexed_result(index, n_samples=20_000)
        for result in stored.values():  # never a partial run
            assert len(result.measurements) == 3
    assert sql(pg_url, "SELECT COUNT(*) FROM measurements m LEFT JOIN runs r ON r.id = m.run_id"
                       " WHERE r.id IS NULL") == [(0,)]


def test_claims_on_a_shared_store(pg_url):
    from quantscope.store.claims import Claims

    open_store(pg_url).close()
    with Claims(pg_url, "m1") as first, Claims(pg_url, "m1") as second:
        assert first.claim("abc") is None
        holder = second.claim("abc")
        assert holder is not None and holder.pid == os.getpid()
        first.release("abc")
        assert second.claim("abc") is None
    assert sql(pg_url, "SELECT COUNT(*) FROM claims") == [(0,)]  # each released at close


def test_report_on_postgresql_draws_on_every_core_and_keeps_its_connection(pg_url, tmp_path):
    """report/html.py draws views in forked children while the parent holds the PostgreSQL connection:
    a child that finalised what it inherited would close the parent's session under it (found by
    benchmarks/store_scale.py: "cannot read store postgresql://…")."""
    fixture = HERE.parent / "fixtures" / "store-d6b39fc.sqlite"
    cli = [sys.executable, "-m", "quantscope.cli"]
    copied = subprocess.run([*cli, "store", "copy", str(fixture), pg_url], capture_output=True, text=True)
    assert copied.returncode == 0, copied.stderr
    out = tmp_path / "r.html"
    done = subprocess.run([*cli, "report", "--store", pg_url, "--out", str(out)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 10_000 and "data:image/svg+xml;base64," in out.read_text()
