"""Plots: each returns a Figure from results, touches no file, and copes with nothing to draw."""

import os

import pytest
from helpers.results import sweep_fixture

from quantscope.analysis.summary import summarize
from quantscope.report import plots

pytestmark = pytest.mark.unit


@pytest.fixture
def rows():
    return [(i + 1, r) for i, r in enumerate(sweep_fixture())]


def test_every_plot_returns_a_figure_and_writes_no_file(rows, tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    monkeypatch.chdir(tmp_path)
    baseline = summarize(*rows[0])
    figs = [plots.throughput(rows), plots.speedup(rows, baseline), plots.memory(rows), plots.quality(rows),
            plots.speed_vs_quality(rows), plots.token_latency(rows)]
    assert all(isinstance(f, Figure) for f in figs)
    assert os.listdir(tmp_path) == []
    # bars for the four ok rows only (the unsupported row has nothing to draw)
    decode_ax = figs[0].axes[0]
    assert [t.get_text() for t in decode_ax.get_yticklabels()] == [
        "torch/fp32", "torch/bf16", "llamacpp/q8_0/fp32", "llamacpp/q4_0/fp32"]
    heights = [p.get_width() for p in decode_ax.patches]
    assert heights == pytest.approx([summarize(*r).decode.mean for r in rows[:4]])


def test_speedup_of_the_baseline_is_one(rows):
    fig = plots.speedup(rows, summarize(*rows[0]))
    assert fig.axes[0].patches[0].get_width() == pytest.approx(1.0)


def test_pareto_front_on_the_fixture(rows):
    pts = [(s.kld[0], s.decode.mean) for s in (summarize(*r) for r in rows[:4])]
    # every fixture row trades quality for speed, so all four are on the front
    assert plots.pareto_front(pts) == [0, 1, 2, 3]
    assert plots.pareto_front([(0.0, 10.0), (0.1, 5.0)]) == [0]  # slower and worse: dominated


def test_plots_with_nothing_measured_still_return_a_figure():
    from matplotlib.figure import Figure

    for fn in (plots.throughput, plots.memory, plots.quality, plots.speed_vs_quality, plots.token_latency):
        assert isinstance(fn([]), Figure)


def test_first_row_is_on_top_in_every_bar_chart(rows):
    for fig in (plots.throughput(rows), plots.quality(rows), plots.memory(rows)):
        for ax in fig.axes:
            assert ax.yaxis_inverted()  # row 0 at the top, as in the tables
