"""The SQLite store: round trip, migrations, refusals that leave files untouched, full disk."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from helpers.store import indexed_result, samples_for

from quantscope.errors import StoreError, UserError
from quantscope.store import STORE_SCHEMA, Store, default_store_path
from quantscope.store.db import pack_samples, unpack_samples


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_default_store_path(monkeypatch, tmp_path):
    monkeypatch.setenv("QUANTSCOPE_STORE", str(tmp_path / "x.sqlite"))
    assert default_store_path() == tmp_path / "x.sqlite"
    monkeypatch.delenv("QUANTSCOPE_STORE")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_store_path() == tmp_path / "data" / "quantscope" / "results.sqlite"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_store_path() == tmp_path / "home" / ".local" / "share" / "quantscope" / "results.sqlite"


def test_samples_are_little_endian_float64():
    blob = pack_samples((1.0, -2.5))
    assert blob == bytes.fromhex("000000000000f03f") + bytes.fromhex("00000000000004c0")
    assert unpack_samples(blob) == (1.0, -2.5)


def test_round_trip_keeps_every_sample(tmp_path):
    ok = indexed_result(1, n_samples=1000)
    failed = indexed_result(2, status="failed")
    with Store(tmp_path / "r.sqlite") as store:
        ok_id = store.add(ok)
        failed_id = store.add(failed)
        assert store.get(ok_id) == ok
        assert store.get(failed_id) == failed
        back = store.get(ok_id)
    # the same after reopening, bit for bit, and meta (not part of ==) too
    with Store(tmp_path / "r.sqlite") as store:
        again = store.get(ok_id)
    assert again == ok
    assert again.get("decode_tps").samples == samples_for(1, 1000)
    assert again.get("decode_tps").meta == {"stop": "ci", "reps": 1000}
    assert again.get("peak_rss_bytes").higher_is_better is None
    assert [m.name for m in again.measurements] == [m.name for m in ok.measurements]
    assert back.info == {"index": 1, "model_digest": "sha256:abc"}


def test_queries_filter_and_order_newest_first(tmp_path):
    with Store(tmp_path / "r.sqlite") as store:
        a = store.add(indexed_result(0))
        b = store.add(indexed_result(0, machine_id="other"))
        c = store.add(indexed_result(0))  # same configuration again, later
        d = store.add(indexed_result(1, status="timeout", model_ref="tiny"))
        key = indexed_result(0).spec.key_hash()
        assert [i for i, _ in store.results()] == [d, c, b, a]
        assert [i for i, _ in store.results(limit=2)] == [d, c]
        assert [i for i, _ in store.results(status="timeout")] == [d]
        assert [i for i, _ in store.results(model="tiny")] == [d]
        assert [i for i, _ in store.results(key_hash=key, machine_id="test-machine")] == [c, a]
        assert store.latest_ok(key, "test-machine")[0] == c
        assert store.latest_ok(key, "nowhere") is None
        assert store.latest_ok(indexed_result(1).spec.key_hash(), "test-machine") is None  # only a timeout
        # a filter value is data, never SQL
        assert store.results(status="ok' OR '1'='1") == []
        assert store.count() == 4


def test_delete_cascades_and_ids_are_not_reused(tmp_path):
    path = tmp_path / "r.sqlite"
    with Store(path) as store:
        first = store.add(indexed_result(0))
        last = store.add(indexed_result(1))
        assert store.delete(last) is True
        assert store.delete(last) is False
        with pytest.raises(UserError, match=f"no run {last}"):
            store.get(last)
        assert store.add(indexed_result(2)) > last
    with raw(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM measurements WHERE run_id = ?", (last,)).fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM measurements WHERE run_id = ?", (first,)).fetchone()[0] == 3


@pytest.mark.parametrize("existing", [False, True])
def test_migration_from_empty_file(tmp_path, existing):
    path = tmp_path / "deep" / "er" / "r.sqlite"
    if existing:
        path.parent.mkdir(parents=True)
        path.touch()
    with Store(path) as store:
        store.add(indexed_result(0))
    conn = raw(path)
    # one row per step applied, in order
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(v,) for v in range(1, STORE_SCHEMA + 1)]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "measurements", "schema_version"} <= tables
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"runs_key_hash", "runs_machine_id", "runs_status"} <= indexes
    conn.close()
    with Store(path) as store:  # reopening migrates nothing again
        assert store.count() == 1
    with raw(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == STORE_SCHEMA


def test_newer_schema_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "r.sqlite"
    with Store(path) as store:
        store.add(indexed_result(0))
    conn = raw(path)
    conn.execute("INSERT INTO schema_version VALUES (?, '2099-01-01', '9.0')", (STORE_SCHEMA + 1,))
    conn.close()  # the last connection checkpoints the WAL into the file
    before = sha256(path)
    listing = sorted(p.name for p in tmp_path.iterdir())
    for readonly in (False, True):
        with pytest.raises(StoreError) as err:
            Store(path, readonly=readonly)
        message = str(err.value)
        assert "\n" not in message
        newer = f"written by a newer quantscope (schema {STORE_SCHEMA + 1}, this one knows {STORE_SCHEMA})"
        assert newer in message
        assert "--store" in message
    assert sha256(path) == before
    # The version is read through a read-only connection, which may leave SQLite's own empty -wal and
    # -shm beside the file (a reader cannot remove them); it never writes a page.
    extra = {p.name for p in tmp_path.iterdir()} - set(listing)
    assert extra <= {"r.sqlite-wal", "r.sqlite-shm"}
    wal = tmp_path / "r.sqlite-wal"
    assert not wal.exists() or wal.stat().st_size == 0


@pytest.mark.parametrize(
    "content",
    [b"runs,status\n1,ok\n", b"SQLite format 3\x00" + b"\xff" * 200],
    ids=["text", "corrupt-header"],
)
def test_a_file_that_is_not_sqlite_is_refused(tmp_path, content):
    path = tmp_path / "results.csv"
    path.write_bytes(content)
    with pytest.raises(StoreError) as err:
        Store(path)
    assert "\n" not in str(err.value)
    assert str(path) in str(err.value)
    assert path.read_bytes() == content


def test_a_foreign_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "other.sqlite"
    with raw(path) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    before = sha256(path)
    with pytest.raises(StoreError, match="not a quantscope store"):
        Store(path)
    assert sha256(path) == before


def test_readonly_creates_nothing_and_refuses_writes(tmp_path):
    missing = tmp_path / "missing.sqlite"
    with pytest.raises(StoreError, match="no store at"):
        Store(missing, readonly=True)
    assert not missing.exists()
    path = tmp_path / "r.sqlite"
    with Store(path) as store:
        run_id = store.add(indexed_result(0))
    with Store(path, readonly=True) as store:
        assert store.get(run_id) == indexed_result(0)
        with pytest.raises(StoreError, match="read-only"):
            store.add(indexed_result(1))


def test_unserialisable_info_is_refused_and_nothing_is_kept(tmp_path):
    bad = indexed_result(0)
    bad.info["handle"] = object()  # info is a plain dict: a caller could put anything in it
    with Store(tmp_path / "r.sqlite") as store:
        with pytest.raises(StoreError, match="JSON"):
            store.add(bad)
        assert store.count() == 0


def test_full_disk_loses_nothing_already_stored(tmp_path):
    path = tmp_path / "r.sqlite"
    with Store(path) as store:
        kept = {store.add(indexed_result(i, n_samples=100)): indexed_result(i, n_samples=100) for i in range(5)}
        conn = store._conn  # the test reaches in to cap the file's size, as a full disk would
        pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
        conn.execute(f"PRAGMA max_page_count = {pages + 2}")
        with pytest.raises(StoreError) as err:
            store.add(indexed_result(99, n_samples=200_000))  # 1.6 MB of samples: cannot fit
        assert "full" in str(err.value) and "\n" not in str(err.value)
        assert not conn.in_transaction
        assert store.count() == len(kept)
        for run_id, result in kept.items():
            assert store.get(run_id) == result
        conn.execute("PRAGMA max_page_count = 1073741823")  # space freed: the store works again
        store.add(indexed_result(100, n_samples=200_000))
    with raw(path) as check:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert check.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == len(kept) + 1
        seed_99 = "SELECT COUNT(*) FROM runs WHERE json_extract(spec_json, '$.seed') = 99"
        assert check.execute(seed_99).fetchone()[0] == 0


def test_a_store_one_index_behind_is_read_in_place_and_indexed_on_write(tmp_path):
    """Schema 5 only adds an index: a read-only open of a schema-4 store reads the file as it is (no
    migrated copy of a 1 GB store in memory), and the first open for writing adds the index."""
    from quantscope.store.migrations import READS_AS_CURRENT

    path = tmp_path / "r.sqlite"
    with Store(path) as store:
        ok_id = store.add(indexed_result(1))
    conn = raw(path)
    conn.execute("DROP INDEX runs_key_machine")
    conn.execute("DELETE FROM schema_version WHERE version > ?", (READS_AS_CURRENT,))
    conn.close()
    before = sha256(path)
    with Store(path, readonly=True) as store:
        assert store._conn.execute("PRAGMA database_list").fetchone()[2] == str(path.resolve())  # not :memory:
        assert store.get(ok_id) == indexed_result(1)
    assert sha256(path) == before
    with Store(path) as store:
        assert store.get(ok_id) == indexed_result(1)
    indexes = {r[0] for r in raw(path).execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "runs_key_machine" in indexes
    plan = " ".join(str(r) for r in raw(path).execute(
        "EXPLAIN QUERY PLAN SELECT id FROM runs WHERE key_hash = 'k' AND machine_id = 'm' ORDER BY id DESC LIMIT 1"))
    assert "runs_key_machine" in plan
