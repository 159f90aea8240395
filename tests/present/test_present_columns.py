"""present.columns: one row, the same cells in every view; the reference spelled one way."""

import io

import pytest
from helpers.results import make_result, make_spec, sweep_fixture
from rich.console import Console

from quantscope.advise.recommend import evidence
from quantscope.analysis.summary import summarize
from quantscope.present import columns as col
from quantscope.present import layout
from quantscope.present.units import fmt_pm

pytestmark = pytest.mark.unit


@pytest.fixture
def rows():
    return [summarize(i + 1, r) for i, r in enumerate(sweep_fixture())]


def test_every_figure_column_names_its_unit_or_is_dimensionless_and_says_which_way_is_better():
    figures = [c for c in vars(col).values() if isinstance(c, col.Column) and c.higher_is_better is not None]
    assert {c.header for c in figures} >= {"decode [tok/s]", "peak RSS [MiB]", "KLD [nat]", "same top-1 [%]"}
    assert all(c.unit or c.name == "PPL" for c in figures)


def test_the_reference_is_spelled_one_way_in_every_view(rows):
    ref = rows[0]
    assert ref.is_reference
    for view in (col.RESULTS, col.REPORT, col.sweep_columns(ref), col.compare_columns(ref)):
        assert col.cells(view, ref)["KLD [nat]"] == "0 (reference)"
    assert "KLD 0 nat (reference)" in evidence(ref)


def test_a_figure_reads_the_same_in_the_tables_the_report_compare_and_the_evidence(rows):
    bf16 = rows[1]
    decode = fmt_pm(bf16.decode.mean, bf16.decode.ci95)
    assert col.cells(col.sweep_columns(rows[0]), bf16)["decode [tok/s]"] == decode
    assert col.cells(col.REPORT, bf16)["decode [tok/s]"] == f"{decode} (N=5)"
    assert f"decode {decode} tok/s (95% CI, N=5)" in evidence(bf16)
    for view in (col.RESULTS, col.REPORT, col.sweep_columns(rows[0])):
        assert col.cells(view, bf16)["peak RSS [MiB]"] == "620.0"
    assert col.cells(col.compare_columns(rows[0]), bf16)["peak RSS [MiB]"] == "620.0 (-280.0, 0.69x)"
    assert "peak RSS 620.0 MiB" in evidence(bf16)
    # results describes single runs: its spread is the SD of the repetitions, not the CI of the mean
    assert col.cells(col.RESULTS, bf16)["decode [tok/s]"] == fmt_pm(bf16.decode.mean, bf16.decode.sd)


def test_ratio_column_marks_the_baseline_and_leaves_unmeasured_rows_empty(rows):
    ratio = col.ratio_column("decode", rows[0])
    assert ratio.cell(rows[0]) == "1 (baseline)"
    assert ratio.cell(rows[4]) == "-"  # unsupported: nothing measured
    assert col.ratio_column("decode", None).cell(rows[1]) == "-"


def test_quality_columns_are_shown_only_when_a_row_has_a_quality_figure():
    no_quality = [summarize(1, make_result(ppl_nll=None))]
    headers = [c.header for c in col.shown(col.RESULTS, no_quality)]
    assert "KLD [nat]" not in headers and "PPL" not in headers and "decode [tok/s]" in headers


def test_rich_table_escapes_markup_in_labels_and_reasons():
    spec = make_spec("ort", quant="int8", options=(("note", "[bold]x[/bold]"),))
    rows = [summarize(1, make_result(spec, status="failed", reason="[red]boom[/red]"))]
    console = Console(file=io.StringIO(), width=300)
    console.print(layout.rich_table(col.RESULTS, rows, "t"))
    text = console.file.getvalue()
    assert "note=[bold]x[/bold]" in text and "failed: [red]boom[/red]" in text


def test_phrases_skip_what_was_not_measured():
    s = summarize(1, make_result(ppl_nll=None))
    assert "KLD" not in col.phrases(col.EVIDENCE, s) and "PPL" not in col.phrases(col.EVIDENCE, s)
