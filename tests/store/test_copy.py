"""`quantscope store copy` (issue 19): SQLite → PostgreSQL → SQLite keeps every sample byte for byte,
ids kept or mapped, duplicates refused (nothing written) or skipped."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.store import indexed_result

from quantscope.errors import UserError
from quantscope.store import open_store
from quantscope.store.copy import copy_runs

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def blobs(path: Path) -> dict:
    with sqlite3.connect(path) as conn:
        return {(r, i): (name, n, bytes(b)) for r, i, name, n, b in
                conn.execute("SELECT run_id, idx, name, n, samples FROM measurements")}


def test_sqlite_to_postgresql_and_back_keeps_every_sample_byte_for_byte(tmp_path, pg_url):
    src = tmp_path / "old.sqlite"
    shutil.copy(FIXTURES / "store-d6b39fc.sqlite", src)  # real rows of an old store, migrated on open
    with open_store(src) as st:
        st.add(indexed_result(7, n_samples=3000))
        before = {i: r for i, r in st.results()}
    cli = [sys.executable, "-m", "quantscope.cli", "store", "copy"]
    done = subprocess.run([*cli, str(src), pg_url, "--keep-ids"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"copied {len(before)} runs" in done.stdout and "ids kept" in done.stdout
    back = tmp_path / "back.sqlite"
    done = subprocess.run([*cli, pg_url, str(back), "--keep-ids"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert blobs(back) == blobs(src)
    with open_store(back, readonly=True) as st:
        after = dict(st.results())
        assert after == before
        for i, r in after.items():  # the statistics travelled too: every figure the same
            assert [m.stats for m in r.measurements] == [m.stats for m in before[i].measurements]
    # again: every run is a duplicate, refused with one line, nothing written
    done = subprocess.run([*cli, str(src), pg_url], capture_output=True, text=True)
    assert done.returncode == 2 and "already in" in done.stderr and "\n" not in done.stderr.strip()
    with open_store(pg_url, readonly=True) as st:
        assert st.count() == len(before)


def test_ids_mapped_and_duplicates_skipped(tmp_path):
    a, b = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    with open_store(a) as st:
        first = [st.add(indexed_result(i)) for i in range(3)]
    with open_store(b) as st:
        st.add(indexed_result(0))  # the same run as a's first: a duplicate
        st.add(indexed_result(50))
    with open_store(a, readonly=True) as s, open_store(b) as d:
        with pytest.raises(UserError, match="already in"):
            copy_runs(s, d)
        with pytest.raises(UserError, match="already uses run id"):
            copy_runs(s, d, keep_ids=True, skip_duplicates=True)
        mapping = copy_runs(s, d, skip_duplicates=True)
        assert sorted(mapping) == first[1:] and sorted(mapping.values()) == [3, 4]
        assert d.get(mapping[first[2]]) == indexed_result(2)
