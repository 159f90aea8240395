"""Tables that fit a terminal (issue 21): at 80 or 120 columns the columns that fit, each number whole on
one line and nothing cut to "…"; the caption names what was left out; --wide shows everything."""

import io

import pytest
from helpers.results import make_result, make_spec, store_with, sweep_fixture
from rich.console import Console
from typer.testing import CliRunner

from quantscope.analysis.summary import summarize
from quantscope.present import columns as col
from quantscope.present import layout
from quantscope.tables import results_table

pytestmark = pytest.mark.unit


def summaries():
    rows = sweep_fixture() + [make_result(make_spec(model_ref="a-model-with-a-rather-long-name-v2"), decode=1234.5678)]
    return [summarize(i + 1, r) for i, r in enumerate(rows)]


def render(width, wide=False):
    console = Console(file=io.StringIO(), width=width, color_system=None)
    results_table([(s.run_id, s.result) for s in summaries()], console, wide=wide)
    return console.file.getvalue()


@pytest.mark.parametrize("width", [80, 120])
def test_results_fit_the_terminal_and_never_cut_a_number(width):
    text = render(width)
    table = [ln for ln in text.splitlines() if ln[:1] in "┏┃┡│└"]
    assert max(len(ln) for ln in table) <= width
    assert "…" not in text
    kept, dropped = layout.fit(col.RESULTS, summaries(), width)
    for c in kept:  # every number of a shown column appears whole on one line
        if not c.text:
            for s in summaries():
                assert c.cell(s) in text, (c.name, c.cell(s))
    assert f"not shown at {width} columns: {', '.join(c.name for c in dropped)}" in " ".join(text.split())
    assert [c.name for c in kept][:4] == ["run", "configuration", "status", "decode"]


def test_a_wider_terminal_shows_more_columns_and_wide_shows_them_all():
    n80 = len(layout.fit(col.RESULTS, summaries(), 80)[0])
    n120 = len(layout.fit(col.RESULTS, summaries(), 120)[0])
    assert n80 < n120 < len(col.shown(col.RESULTS, summaries()))
    text = render(80, wide=True)
    assert "not shown" not in text and "started" in text and "a-model-with-a-rather-long-name-v2" in text


def test_compact_results_put_each_reason_below_the_table():
    text = " ".join(render(80).split())
    assert "run 5 unsupported: torchao 0.18.0: Float8 dynamic quantization requires CUDA" in text


def test_results_and_compare_commands_take_wide(tmp_path):
    from quantscope.cli import app

    store = tmp_path / "s.sqlite"
    ids = store_with(store, sweep_fixture())
    res = CliRunner().invoke(app, ["results", "--store", str(store)], env={"COLUMNS": "80"})
    assert res.exit_code == 0 and "not shown at 80 columns" in res.output, res.output
    res = CliRunner().invoke(app, ["results", "--wide", "--store", str(store)], env={"COLUMNS": "80"})
    assert res.exit_code == 0 and "not shown" not in res.output and "started" in res.output
    res = CliRunner().invoke(app, ["compare", str(ids[0]), str(ids[2]), "--wide", "--store", str(store)])
    assert res.exit_code == 0 and "ΔKLD" in res.output, res.output
