"""The contention flag and GPU telemetry in the tables and the report's notes (issue 16)."""

import pytest
from helpers.results import make_result, make_spec, store_with

from quantscope.analysis.compare import contended, contention_notes
from quantscope.analysis.summary import summarize
from quantscope.metrics.contention import contention_info
from quantscope.present import columns as col

pytestmark = pytest.mark.unit


def rows():
    busy = make_result(make_spec(), info={"contention": contention_info([1.7, 1.72, 1.67], logical_cores=2)})
    alone = make_result(make_spec(dtype="bf16"), info={"contention": contention_info([0.02, 0.01], 2)})
    old = make_result(make_spec(dtype="fp16"))  # stored before the flag existed
    return [(1, busy), (2, alone), (3, old)]


def test_others_cpu_is_shown_with_the_flag_and_left_out_when_no_row_has_it():
    s = [summarize(i, r) for i, r in rows()]
    assert col.OTHERS_CPU.cell(s[0]) == "1.70 (contended)"
    assert col.OTHERS_CPU.cell(s[1]) == "0.01"
    assert col.OTHERS_CPU.cell(s[2]) == col.NONE
    assert col.OTHERS_CPU in col.shown(col.sweep_columns(s[0]), s)
    assert col.OTHERS_CPU not in col.shown(col.sweep_columns(s[2]), s[2:])


def test_only_flagged_rows_are_named_in_the_note():
    assert [contended(r) for _, r in rows()] == [True, False, False]
    (note,) = contention_notes(rows())
    assert note.startswith("Contended: run(s) 1 were measured") and "10%" in note and "1.70 cores" in note
    assert contention_notes(rows()[1:]) == []


def test_gpu_telemetry_reads_as_mean_and_peak_and_is_absent_on_cpu_rows():
    tel = {"measured": True, "gpu_util_pct": {"mean": 87.5, "peak": 100.0},
           "gpu_power_w": {"mean": 402.25, "peak": 611.0}}
    gpu = summarize(1, make_result(info={"gpu_telemetry": tel}))
    cpu = summarize(2, make_result())
    assert col.GPU_UTIL.cell(gpu) == "87.5 / 100" and col.GPU_POWER.cell(gpu) == "402 / 611"
    assert col.GPU_TEMP.cell(gpu) == col.NONE  # not reported: no number made up
    assert col.shown(col.EFFICIENCY, [cpu]) == [c for c in col.EFFICIENCY if not c.optional]


def test_rss_of_the_timed_work_is_shown_beside_the_peak_when_stored():
    from quantscope.result import Measurement

    r = make_result(rss_mib=900.0)
    with_timed = summarize(1, r.__class__(**{**r.__dict__, "measurements": r.measurements + (
        Measurement("timed_rss_bytes", "bytes", [620.0 * (1 << 20)], False),)}))
    assert col.cells(col.REPORT, with_timed)["RSS timed work [MiB]"] == "620.0"
    assert col.TIMED_RSS.cell(summarize(2, r)) == col.NONE  # a row stored before: not made up


def test_recommend_names_the_contended_rows_it_advises_on(tmp_path):
    from typer.testing import CliRunner

    from quantscope.cli import app
    from quantscope.env import fingerprint

    env = fingerprint()  # recommend prefers rows of this machine
    (busy, alone, _) = rows()
    ids = store_with(tmp_path / "s.sqlite", [r.__class__(**{**r.__dict__, "env": env}) for _, r in (busy, alone)])
    res = CliRunner().invoke(app, ["recommend", "--store", str(tmp_path / "s.sqlite")])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert f"Contended: run(s) {ids[0]} were measured" in out and f"run(s) {ids[1]}" not in out


def test_compare_shows_the_flag_and_names_the_contended_run(tmp_path):
    from typer.testing import CliRunner

    from quantscope.cli import app

    (busy, alone, _) = rows()
    ids = store_with(tmp_path / "s.sqlite", [alone[1], busy[1]])
    store = str(tmp_path / "s.sqlite")
    res = CliRunner().invoke(app, ["compare", str(ids[0]), str(ids[1]), "--wide", "--store", store])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "1.70 (contended)" in out and f"Contended: run(s) {ids[1]} were measured" in out


def test_a_ppl_over_the_capped_first_windows_says_so():
    from helpers.results import make_result

    from quantscope.analysis.summary import summarize
    from quantscope.present.columns import PPL

    full = summarize(1, make_result())
    cut = make_result()
    nll = cut.get("nll")
    nll.meta.update({"capped": {"max_seconds": 30.0, "windows_planned": 9, "tokens_planned": 2295},
                     "tokens_scored": 765})
    assert "first" not in PPL.cell(full)
    assert "first 765 tokens" in PPL.cell(summarize(2, cut))
