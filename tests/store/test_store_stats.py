"""The statistics table (issue 19): built on add and by the migration, equal bit for bit to the figures
derived from the samples, rebuilt by `store rebuild-stats`; rows read with samples read only on use;
an old store gets the table from the migration and lists the same figures."""

from __future__ import annotations

import json
import math
import pickle
import shutil
import sqlite3
from pathlib import Path

import pytest
from helpers.store import indexed_result, samples_for

from quantscope.metrics.stats import describe
from quantscope.quality.kld import kld_summary, same_top_summary
from quantscope.quality.perplexity import mean_se, ppl_with_se
from quantscope.result import Measurement, Result
from quantscope.store import Store, export, open_store
from quantscope.store.stats import STATS_VERSION, StoredSamples, figures_of
from quantscope.store.stats import mean_se as stored_mean_se

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.mark.parametrize("values", [(), (3.0,), (0.1, 0.7, 0.2, 1e-9, 5.0), tuple(math.sin(k) for k in range(999))])
def test_figures_equal_those_derived_from_the_samples(values):
    f = figures_of(values)
    assert f.stats == describe(values) or (not values and f.stats.n == 0)
    assert _same(f.mean_se, mean_se(values)) and _same(f.sorted_mean_se, mean_se(sorted(values)))
    back = type(f).from_row(f.row())  # NaN travels as NULL and comes back
    assert _same(back.mean_se, f.mean_se) and back.stats.n == f.stats.n


def _same(a, b) -> bool:
    return all(x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b, strict=True))


def quality_result(i: int) -> Result:
    r = indexed_result(i, n_samples=200)
    extra = (Measurement("nll", "nat", tuple(2.0 + math.sin(k * i) for k in range(300))),
             Measurement("kld", "nat", tuple(abs(math.cos(k)) * 0.01 for k in range(300))),
             Measurement("same_top1", "fraction", tuple(float(k % 7 != 0) for k in range(300))))
    return Result(**{**r.__dict__, "measurements": r.measurements + extra})


def test_rows_read_no_sample_until_used_and_give_the_same_figures(tmp_path):
    path = tmp_path / "r.sqlite"
    with Store(path) as st:
        run_id = st.add(quality_result(3))
    with Store(path, readonly=True) as st:
        (got_id, got), = st.results()
        reads = []
        st_blob = st._blob
        st._blob = lambda *a: reads.append(a) or st_blob(*a)  # count every samples read
        kld, nll, top = got.get("kld").samples, got.get("nll").samples, got.get("same_top1").samples
        assert isinstance(kld, StoredSamples) and len(kld) == 300
        assert stored_mean_se(kld, sort=True) == (kld_summary(quality_result(3).get("kld").samples)["mean"],
                                                  kld_summary(quality_result(3).get("kld").samples)["se"])
        m, se = stored_mean_se(nll)
        assert (math.exp(m), math.exp(m) * se) == ppl_with_se(quality_result(3).get("nll").samples)
        assert stored_mean_se(top)[0] == same_top_summary(quality_result(3).get("same_top1").samples)[0]
        assert got.get("decode_tps").stats == describe(samples_for(3, 200))
        assert reads == []  # every figure above came from the table
        assert list(got.get("decode_tps").samples) == list(samples_for(3, 200))
        assert len(reads) == 1
        assert got == quality_result(3)  # equal to the Result it was made from, samples and all
    assert pickle.loads(pickle.dumps(got)) == quality_result(3)  # pickles as plain tuples, store closed
    assert got_id == run_id


def test_rebuild_stats_recomputes_a_damaged_table(tmp_path):
    path = tmp_path / "r.sqlite"
    with Store(path) as st:
        st.add(indexed_result(1))
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE measurement_stats SET mean = 99")
        conn.execute("DELETE FROM measurement_stats WHERE idx = 2")
    with Store(path) as st:
        assert st.rebuild_stats() == 3
        assert st.results()[0][1].get("decode_tps").stats == describe(samples_for(1, 5))


def test_a_stats_row_of_another_version_is_ignored(tmp_path):
    path = tmp_path / "r.sqlite"
    with Store(path) as st:
        st.add(indexed_result(1))
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE measurement_stats SET version = ?, mean = 99", (STATS_VERSION + 1,))
    with Store(path, readonly=True) as st:
        assert st.results()[0][1].get("decode_tps").stats.mean == describe(samples_for(1, 5)).mean


def test_old_store_gets_its_stats_table_from_the_migration(tmp_path):
    path = tmp_path / "old.sqlite"
    shutil.copy(FIXTURES / "store-d6b39fc.sqlite", path)
    with Store(path) as st:
        rows = st.results()
    with sqlite3.connect(path) as conn:
        measurements = conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]
        assert conn.execute("SELECT COUNT(*) FROM measurement_stats WHERE version = ?",
                            (STATS_VERSION,)).fetchone()[0] == measurements > 0
    for _, r in rows:  # every stored figure is the one the samples give
        for m in r.measurements:
            assert m.stats == describe(tuple(m.samples)) or m.stats.n < 2


def test_json_streams_the_same_text_as_one_dump(tmp_path):
    with Store(tmp_path / "r.sqlite") as st:
        for i in range(3):
            st.add(quality_result(i))
        rows = st.results()
        streamed = "".join(export.json_chunks(iter(rows)))
        whole = json.dumps(json.loads(streamed), indent=2)
        assert streamed == whole
        assert "".join(export.json_chunks([])) == "[]"
        assert [i for i, _ in st.iter_results()] == [i for i, _ in rows]


def test_results_filters_and_pages(tmp_path, monkeypatch):
    from quantscope.store import base

    monkeypatch.setattr(base, "PAGE_ROWS", 2)  # so iter_results crosses pages
    with open_store(tmp_path / "r.sqlite") as st:
        ids = [st.add(indexed_result(i, model_ref="a" if i % 2 else "b")) for i in range(5)]
        assert [i for i, _ in st.iter_results()] == ids[::-1]
        assert [i for i, _ in st.iter_results(model="a")] == [ids[3], ids[1]]
        assert [i for i, _ in st.results(limit=2, offset=2)] == [ids[2], ids[1]]
        assert [i for i, _ in st.results(since="2026-11-24T10:00:03+00:00")] == [ids[4], ids[3]]
        assert st.count(backend="torch") == 5 and st.count(backend="ort") == 0
        key = indexed_result(0, model_ref="b").spec.key_hash()
        assert [i for i, _ in st.results(key_prefix=key[:6])] == [ids[0]]


def test_a_postgresql_url_survives_a_path_option(monkeypatch):
    from quantscope.store import store_location

    url = "postgresql:///q?host=%2Ftmp%2Fpg&user=me"
    monkeypatch.setattr("sys.argv", ["quantscope", "report", "--store", url])
    assert store_location(Path(url)) == url  # typer's Path collapsed its '//': taken back as typed
    monkeypatch.setattr("sys.argv", ["quantscope"])
    assert store_location(Path("postgresql://db.example/q")) == "postgresql://db.example/q"
    monkeypatch.setenv("QUANTSCOPE_STORE", url)
    assert store_location(None) == url
    assert store_location("x.sqlite") == Path("x.sqlite")


def test_results_command_pages_and_filters(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "r.sqlite"
    with Store(path) as st:
        for i in range(60):
            st.add(indexed_result(i, model_ref="a" if i < 55 else "b"))
    cli = [sys.executable, "-m", "quantscope.cli", "results", "--store", str(path)]
    env = {**__import__("os").environ, "COLUMNS": "200"}
    first = subprocess.run(cli, capture_output=True, text=True, env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.rstrip().splitlines()[-1] == "rows 1-50 of 60; next: --page 2"
    second = subprocess.run([*cli, "--page", "2"], capture_output=True, text=True, env=env)
    assert second.stdout.rstrip().splitlines()[-1] == "rows 51-60 of 60"
    only_b = subprocess.run([*cli, "--model", "b", "--format", "json"], capture_output=True, text=True)
    assert [r["id"] for r in json.loads(only_b.stdout)] == [60, 59, 58, 57, 56]
    bad = subprocess.run([*cli, "--since", "yesterday"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--since takes an ISO date" in bad.stderr




def test_samples_read_from_another_thread(tmp_path):
    import threading

    with Store(tmp_path / "r.sqlite") as st:
        st.add(indexed_result(4, n_samples=50))
        (_, r), = st.results()
        got = []
        t = threading.Thread(target=lambda: got.append(tuple(r.get("decode_tps").samples)))
        t.start()
        t.join()
    assert got == [samples_for(4, 50)]
