"""Exporters: JSON carries raw samples and derived stats, CSV neutralises formulas, Markdown stays a table."""

from __future__ import annotations

import csv
import io
import json
import math

from helpers.store import indexed_result, make_env, samples_for

from quantscope.metrics.stats import describe
from quantscope.result import Result
from quantscope.spec import ModelSpec, RunSpec
from quantscope.store import Store
from quantscope.store.export import CSV_COLUMNS, neutralise, to_csv, to_json, to_markdown


def stored_rows(tmp_path, results):
    with Store(tmp_path / "r.sqlite") as store:
        for r in results:
            store.add(r)
        return store.results()


def test_json_holds_raw_samples_and_stats(tmp_path):
    rows = stored_rows(tmp_path, [indexed_result(3, n_samples=40), indexed_result(4, status="unsupported")])
    data = json.loads(to_json(rows))  # strict JSON: the one-sample SD (nan) became null
    assert [d["id"] for d in data] == [i for i, _ in rows]
    unsupported, ok = data
    assert unsupported["status"] == "unsupported" and unsupported["measurements"] == []
    assert unsupported["reason"] == "unsupported for test"
    decode = next(m for m in ok["measurements"] if m["name"] == "decode_tps")
    assert decode["samples"] == list(samples_for(3, 40))
    expected = describe(samples_for(3, 40))
    assert decode["stats"]["n"] == 40
    for name in ("mean", "sd", "ci95", "p50", "p90", "p99"):
        assert math.isclose(decode["stats"][name], getattr(expected, name))
    rss = next(m for m in ok["measurements"] if m["name"] == "peak_rss_bytes")
    assert rss["stats"]["sd"] is None and rss["stats"]["mean"] == 123456789.0
    assert ok["key_hash"] == indexed_result(3).spec.key_hash()
    # what was exported reads back into the same Result
    back = Result.from_dict({**ok, "measurements": [
        {k: v for k, v in m.items() if k != "stats"} for m in ok["measurements"]
    ]})
    assert back == indexed_result(3, n_samples=40)


def test_neutralise():
    assert neutralise("=1+1") == "'=1+1"
    assert neutralise("+1") == "'+1"
    assert neutralise("-1") == "'-1"
    assert neutralise("@SUM(A1)") == "'@SUM(A1)"
    assert neutralise("\t=1") == "'\t=1"
    assert neutralise("plain") == "plain"
    assert neutralise(-1.5) == -1.5


def test_csv_neutralises_formula_cells_and_keeps_units(tmp_path):
    evil_model = '=HYPERLINK("http://x","click")'
    base = indexed_result(0, n_samples=4)
    evil = Result(
        spec=RunSpec(model=ModelSpec("hub", evil_model)),  # label = ref for hub models
        env=make_env("@machine"),
        status="failed",
        reason="-2+3 raised",
        started_at="+2026",
    )
    rows = stored_rows(tmp_path, [base, evil])
    text = to_csv(rows)
    table = list(csv.DictReader(io.StringIO(text)))
    assert tuple(table[0]) == CSV_COLUMNS
    evil_row, *ok_rows = table
    assert evil_row["model"] == "'" + evil_model
    assert evil_row["label"].startswith("'=")
    assert evil_row["machine_id"] == "'@machine"
    assert evil_row["reason"] == "'-2+3 raised"
    assert evil_row["started_at"] == "'+2026"
    assert evil_row["measurement"] == "" and evil_row["mean"] == ""
    # no cell anywhere starts a formula
    for row in csv.reader(io.StringIO(text)):
        for cell in row:
            if cell and cell[0] in "=+@":
                raise AssertionError(f"formula cell {cell!r}")
    # one line per (run, measurement), unit in its own column, numbers as numbers
    assert [(r["measurement"], r["unit"]) for r in ok_rows] == [
        ("decode_tps", "tok/s"), ("prefill_latency_s", "s"), ("peak_rss_bytes", "bytes"),
    ]
    decode = ok_rows[0]
    assert float(decode["mean"]) == describe(samples_for(0, 4)).mean
    assert int(decode["n"]) == 4 and decode["higher_is_better"] == "true"
    assert ok_rows[2]["sd"] == ""  # one sample has no SD


def test_csv_leaves_negative_numbers_alone(tmp_path):
    from dataclasses import replace

    from quantscope.result import Measurement

    r = replace(indexed_result(0), measurements=(Measurement("delta_p", "1", (-0.5, -0.25)),))
    row = next(csv.DictReader(io.StringIO(to_csv(stored_rows(tmp_path, [r])))))
    assert row["mean"] == "-0.375" and row["min"] == "-0.5"


def test_markdown_is_one_table(tmp_path):
    evil = Result(spec=RunSpec(model=ModelSpec("hf", "a|b<script>")), env=make_env(), status="crashed",
                  reason="line one\nline two | pipe")
    rows = stored_rows(tmp_path, [indexed_result(0, n_samples=4), evil])
    lines = to_markdown(rows).splitlines()
    assert lines[0].startswith("| id | model |")
    assert len(lines) == 2 + 1 + 3  # header, rule, one failed run, three measurements
    columns = lines[0].count(" | ")
    for line in lines[2:]:
        assert line.replace("\\|", "").count(" | ") == columns  # escaped pipes do not add cells
    assert "<script>" not in "\n".join(lines)
    assert "line one line two \\| pipe" in lines[2]
    assert "| decode_tps | tok/s | " + f"{describe(samples_for(0, 4)).mean:.4g}" in "\n".join(lines)
