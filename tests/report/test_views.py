"""Every registered view draws what it is given: no empty axis, units in its labels, projected rows
hatched or hollow and named "projected", measured ones never; hostile names stay literal; nothing to draw
gives a figure that says so."""

import io

import pytest
from helpers.results import make_result, make_spec, sweep_fixture

from quantscope.analysis.summary import summarize
from quantscope.present.units import GiB
from quantscope.report import views
from quantscope.report.projected import project_rows

pytestmark = pytest.mark.unit

DIMENSIONLESS = ("PPL",)  # a ratio of likelihoods: no unit to name
HOSTILE = "$x$ <script>alert(1)</script>"


@pytest.fixture(scope="module")
def rows():
    return [(i + 1, r) for i, r in enumerate(sweep_fixture())]


@pytest.fixture(scope="module")
def projected(rows):
    # two GPUs, and one larger model for the scaling views (the full ladder costs more time than it tests)
    out, notes = project_rows(rows, ["t4", "h200"], machine_id="test-machine", models=("synthetic:llama-1b",))
    assert notes == []
    return out


def visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


def drawn(ax) -> int:
    return len(ax.patches) + len(ax.lines) + len(ax.images) + len(ax.collections) + len(ax.texts)


def bars(fig):
    """(label, hatched and unfilled, widths) of every bar series in the figure."""
    out = []
    for ax in fig.axes:
        for c in ax.containers:
            patches = list(c.patches) if hasattr(c, "patches") else []
            if patches:
                hollow = all(p.get_hatch() and p.get_facecolor()[3] == 0 for p in patches)
                out.append((c.get_label(), hollow, [p.get_width() for p in patches]))
    return out


def points(fig):
    """(label, hollow markers, xs, ys) of every marker line in the figure."""
    return [(ln.get_label(), str(ln.get_markerfacecolor()) == "none", list(ln.get_xdata()), list(ln.get_ydata()))
            for ax in fig.axes for ln in ax.lines if ln.get_marker() not in (None, "None", "")]


def test_every_view_is_registered_once_and_a_typo_names_the_near_one():
    names = views.view_names()
    assert len(names) == len(set(names)) >= 14
    from quantscope.errors import UserError

    with pytest.raises(UserError, match="Did you mean 'dashboard'"):
        views.get_view("dashbord")


def policy_row(run_id: int = 99):
    """A torchao mixed-precision row: int4 in the first two blocks' MLPs, int8 elsewhere."""
    modules = {f"model.layers.{i}.{m}": {"config": "int4-weight-only(group_size=64)" if i < 2 and "mlp" in m
                                         else "int8-weight-only", "weight": "Tensor"}
               for i in range(4) for m in ("self_attn.q_proj", "mlp.up_proj")}
    spec = make_spec("torchao", "fp32", "int8-weight-only")
    return run_id, make_result(spec, info={"quant_modules": modules, "policy": ["re:.*mlp.*=int4-weight-only"]})


def test_bits_per_layer_draws_the_policy_block_by_block():
    from quantscope.report.policy import layer_bits

    s = summarize(*policy_row())
    assert layer_bits(s) == {0: 6.0, 1: 6.0, 2: 8.0, 3: 8.0}
    (line,) = [ln for ax in views.get_view("bits-per-layer").draw([policy_row()]).axes for ln in ax.lines]
    assert list(line.get_ydata()) == [6.0, 6.0, 8.0, 8.0]


@pytest.mark.parametrize("name", sorted(views.view_names()))
def test_view_draws_every_axis_with_units(name, rows, projected):
    from matplotlib.figure import Figure

    if name == "bits-per-layer":  # drawn only for mixed-precision rows
        rows = [*rows, policy_row()]
    fig = views.get_view(name).draw(rows, projected)
    assert isinstance(fig, Figure)
    axes = visible_axes(fig)
    assert axes, name
    for ax in axes:
        assert drawn(ax), f"{name}: an empty axis"
        if ax.name == "polar":  # the radar: every spoke names its raw range and unit
            assert len(ax.texts) >= 3 and all(" to " in t.get_text() and "[" in t.get_text() for t in ax.texts)
            continue
        if not ax.axison:  # the decision tree: boxes and arrows, no scale; each scenario names its picks
            assert sum("here (measured)" in t.get_text() for t in ax.texts) == 5
            assert sum("h200 (projected)" in t.get_text() for t in ax.texts) == 5
            continue
        labels = [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()] + [t.get_text() for t in ax.get_xticklabels()]
        assert any("[" in lb and "]" in lb or lb.startswith(DIMENSIONLESS) for lb in labels), \
            f"{name}: no unit in {labels}"


@pytest.mark.parametrize("name", ["dashboard", "memory-reduction"])
def test_projected_bars_are_hatched_and_named_projected_measured_ones_are_filled(name, rows, projected):
    series = bars(views.get_view(name).draw(rows, projected))
    named = [lb for lb, _, _ in series if "projected" in lb]
    assert any("t4" in lb for lb in named) and any("h200" in lb for lb in named), named
    for label, hollow, _ in series:
        assert hollow == ("projected" in label), (name, label)


def test_dashboard_bars_are_the_rows_figures(rows, projected):
    fig = views.get_view("dashboard").draw(rows, projected)
    decode = fig.axes[0]
    measured = [c for c in decode.containers if c.get_label() == "measured here"][0]
    ok = [summarize(*r) for r in rows[:4]]
    assert [p.get_width() for p in measured.patches] == pytest.approx([s.decode.mean for s in ok])
    h200 = [c for c in decode.containers if c.get_label() == "projected on h200"][0]
    want = [r.p.decode_tps for r in projected if r.hardware == "h200" and not r.scaled and r.ok]
    assert [p.get_width() for p in h200.patches] == pytest.approx(want)
    # t4 cannot run bf16: that configuration has no t4 bar rather than a zero one
    t4 = [c for c in decode.containers if c.get_label() == "projected on t4"][0]
    assert len(t4.patches) == 3


@pytest.mark.parametrize("name", ["size-vs-speedup", "memory-scalability"])
def test_scaling_views_draw_measured_solid_and_projected_hollow(name, rows, projected):
    pts = points(views.get_view(name).draw(rows, projected))
    measured = [p for p in pts if "projected" not in p[0]]
    proj = [p for p in pts if "projected" in p[0]]
    assert measured and proj
    assert not any(hollow for _, hollow, _, _ in measured)
    assert all(hollow for _, hollow, _, _ in proj)
    if name == "memory-scalability":
        rss = sorted(y for _, _, _, ys in measured for y in ys)
        assert rss == pytest.approx(sorted(s.peak_rss_bytes / GiB for s in map(lambda r: summarize(*r), rows[:4])))
        # each projected line spans the measured model's size and the larger one
        assert all(len(xs) == 2 for _, _, xs, _ in proj)


def test_memory_reduction_of_the_baseline_is_one(rows):
    series = bars(views.get_view("memory-reduction").draw(rows))
    weights = [w for lb, _, w in series if lb.startswith("weights")][0]
    assert weights[0] == pytest.approx(1.0)
    assert weights[3] == pytest.approx(513 / 80)  # fixture: 513 MiB against 80 MiB


def test_radar_axes_are_normalised_with_raw_ranges(rows):
    from quantscope.report.radar import normalise

    fig = views.get_view("radar").draw(rows)
    polar = [ax for ax in fig.axes if ax.name == "polar" and ax.get_visible()]
    assert len(polar) == 4
    spokes = [t.get_text() for t in polar[0].texts]
    assert spokes[0].startswith("decode\n[tok/s]\n")
    assert spokes[0].endswith(f" to {summarize(*rows[3]).decode.mean:.3g}")  # the fastest row's mean
    assert normalise([2.0, 2.0]) == [0.5, 0.5]


def test_heatmap_cells_show_raw_values(rows):
    fig = views.get_view("efficiency-heatmap").draw(rows)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    s = summarize(*rows[0])
    assert f"{s.decode.mean:.3g}" in texts
    assert f"{s.bandwidth_fraction.mean * 100:.3g}" in texts


def test_nothing_to_draw_says_so_for_every_view():
    failed = [(1, make_result(status="failed", reason="boom"))]
    for name in views.view_names():
        for given in ([], failed):
            fig = views.get_view(name).draw(given)
            assert fig.texts or any(drawn(ax) for ax in fig.axes), name


def test_a_hostile_name_stays_literal_in_every_view():
    spec = make_spec(model_ref=HOSTILE, model_source="hf", options=(("note", HOSTILE),))
    rows = [(1, make_result(make_spec(options=(("note", HOSTILE),)), seed=1)),
            (2, make_result(make_spec("llamacpp", quant="q8_0", options=(("note", HOSTILE),)), kld=0.004, top1=0.97,
                            decode=40, rss_mib=300, weights_mib=137, seed=2)),
            (3, make_result(spec, kld=0.01, top1=0.9, seed=3))]
    pid, policy = policy_row(4)
    rows.append((pid, make_result(make_spec("torchao", quant="int8-weight-only", options=(("note", HOSTILE),)),
                                  info=policy.info, seed=4)))
    for name in views.view_names():
        fig = views.get_view(name).draw(rows)
        fig.savefig(io.BytesIO(), format="svg")  # mathtext would raise on an unescaped "$"
        texts = [t.get_text() for ax in fig.axes for t in ax.get_yticklabels() + ax.texts + [ax.title]]
        legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
        texts += [t.get_text() for lg in legends for t in lg.get_texts()]
        shown = [t for t in texts if "alert" in t]
        assert shown or name == "gpu-telemetry", name  # no NVML series here: that view names no row
        assert all(r"\$x\$" in t for t in shown), (name, [t for t in shown if r"\$x" not in t])


def test_views_across_two_models(rows):
    tiny = [(10 + i, make_result(make_spec(dtype=d, model_source="synthetic", model_ref="tiny-llama"), decode=v,
                                 rss_mib=m, kld=k, top1=0.99, seed=10 + i))
            for i, (d, v, m, k) in enumerate((("fp32", 80.0, 60.0, None), ("bf16", 100.0, 40.0, 0.003)))]
    both = list(rows) + tiny
    pts = points(views.get_view("size-vs-speedup").draw(both))
    assert len({x for _, _, xs, _ in pts for x in xs}) == 2  # one column of points per model size
    assert views.get_view("size-vs-speedup").applies([summarize(*r) for r in both if r[1].status == "ok"], [])
    assert not views.get_view("size-vs-speedup").applies([summarize(*r) for r in rows[:4]], [])


def test_plot_command_lists_views_and_writes_one(tmp_path):
    from helpers.results import store_with
    from typer.testing import CliRunner

    from quantscope.cli import app

    res = CliRunner().invoke(app, ["plot", "--list"])
    assert res.exit_code == 0 and "dashboard" in res.output and "memory-scalability" in res.output
    store = tmp_path / "s.sqlite"
    store_with(store, sweep_fixture())
    out = tmp_path / "radar.png"
    res = CliRunner().invoke(app, ["plot", "radar", "--out", str(out), "--store", str(store)])
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = CliRunner().invoke(app, ["plot", "radr", "--store", str(store)])
    assert res.exit_code != 0 and "Did you mean 'radar'" in str(res.exception)
