"""A store written before the architecture change (commit d6b39fc) opens and lists every row with the
same figures: same key hashes (so a resumed sweep reuses them), same labels, same derived statistics.

The fixture and its expected figures were written by that commit's code: tests/fixtures/make_old_store.py.
"""

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from quantscope.analysis.summary import summarize
from quantscope.store import Store

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
OLD = FIXTURES / "store-d6b39fc.sqlite"


@pytest.fixture
def old_rows(tmp_path):
    path = tmp_path / "old.sqlite"
    shutil.copy(OLD, path)  # a copy: opening may add WAL files beside it
    with Store(path, readonly=True) as st:
        return st.results()


def test_every_row_of_the_old_store_is_listed_with_its_key_and_status(old_rows):
    expected = json.loads((FIXTURES / "store-d6b39fc.expected.json").read_text())
    assert sorted(str(i) for i, _ in old_rows) == sorted(expected)
    for run_id, r in old_rows:
        want = expected[str(run_id)]
        assert (r.status, r.spec.key_hash(), r.reason) == (want["status"], want["key_hash"], want["reason"])
        assert sorted(m.name for m in r.measurements) == want["measurements"]


def test_every_figure_derived_from_the_old_rows_is_unchanged(old_rows):
    expected = json.loads((FIXTURES / "store-d6b39fc.expected.json").read_text())
    for run_id, r in old_rows:
        want, s = expected[str(run_id)], summarize(run_id, r)
        assert s.label == want["label"]
        for name, triple in want["stats"].items():
            got = getattr(s, name)
            assert (None if got is None else [got.n, got.mean, got.sd]) == triple, (run_id, name)
        for name in ("peak_rss_bytes", "weight_bytes", "is_reference"):
            assert getattr(s, name) == want[name], (run_id, name)
        for name in ("ppl", "kld", "top1"):
            got = getattr(s, name)
            assert (None if got is None else list(got)) == want[name], (run_id, name)


def test_the_old_store_opens_for_writing_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.sqlite"
    shutil.copy(OLD, path)
    with Store(path) as st:  # a command that writes (run, sweep) opens it like this
        before = len(st.results())
    with Store(path, readonly=True) as st:
        assert len(st.results()) == before == len(json.loads((FIXTURES / "store-d6b39fc.expected.json").read_text()))
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
