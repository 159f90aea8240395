"""The HTML report: self-contained, every section present, user text escaped, images valid SVG."""

import base64
import re
import xml.etree.ElementTree as ET

import pytest
from helpers.results import make_result, make_spec, store_with, sweep_fixture
from typer.testing import CliRunner

from quantscope.report.html import render_report

pytestmark = pytest.mark.unit

EVIL = "<script>alert(1)</script>"


@pytest.fixture(scope="module")  # one page, read by several tests: drawing it is the slow part
def html():
    rows = [(i + 1, r) for i, r in enumerate(sweep_fixture())]
    return render_report(rows, notes=["Quality budget: 4096 scored tokens per configuration (quick sweep)"])


def test_every_section_is_there(html):
    for heading in ("Recommendation (goal: balanced)", "Results", "Not measured here, and why",
                    "Throughput per configuration", "Speed-up against torch/fp32 (run 1)", "Memory", "Quality",
                    "Speed against quality", "Per-token latency", "Hardware efficiency",
                    "Environment and provenance"):
        assert f">{heading}</h2>" in html, heading
    assert "Ship llamacpp/q8_0/fp32" in html
    assert "Quality budget: 4096 scored tokens" in html
    assert "Float8 dynamic quantization requires CUDA compute capability &gt;= 8.9" in html
    assert "RAPL not exposed (test)" in html  # energy: the reason it was not measured, not a number
    # provenance: each ok row's stop rule and repetitions, the quality recipe with the text's hash
    assert len(re.findall(r'<td class="l">ci</td>\s*<td>5</td>', html)) == 4
    assert "llama ctx 512, 256 tokens in 1 windows, BOS none, text sha256 ffffffffffff" in html


def test_self_contained_no_network_no_script(html):
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # nothing fetched at view time
    assert "default-src 'none'; img-src data:" in html  # and the page forbids it anyway
    assert "@import" not in html


def test_images_are_valid_svg_data_uris(html):
    uris = re.findall(r'<img src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(uris) == 11  # report.html.PAGE's views that apply without projected rows or telemetry
    for b64 in uris:
        root = ET.fromstring(base64.b64decode(b64))
        assert root.tag.endswith("svg")


def test_a_hostile_model_name_appears_escaped():
    spec = make_spec(model_ref=EVIL, model_source="hf")
    opts = make_spec("ort", quant="int8", options=(("note", EVIL),), model_ref=EVIL, model_source="hf")
    rows = [(1, make_result(spec)), (2, make_result(opts, kld=0.01, top1=0.9)),
            (3, make_result(make_spec("torch", "bf16", model_ref=EVIL, model_source="hf"), status="failed",
                            reason=EVIL))]
    html = render_report(rows)
    assert EVIL not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<title>quantscope report: hf:&lt;script&gt;alert(1)&lt;/script&gt;</title>" in html


def test_report_command_writes_the_file(tmp_path):
    from quantscope.cli import app

    store = tmp_path / "s.sqlite"
    store_with(store, sweep_fixture())
    out = tmp_path / "r.html"
    res = CliRunner().invoke(app, ["report", "--out", str(out), "--goal", "speed", "--store", str(store)])
    assert res.exit_code == 0, res.output
    assert f"report: {out}" in res.output
    text = out.read_text()
    assert "Recommendation (goal: speed)" in text and "Ship llamacpp/q4_0/fp32" in text
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_report_baseline_option(tmp_path):
    from quantscope.cli import app

    store = tmp_path / "s.sqlite"
    ids = store_with(store, sweep_fixture())
    out = tmp_path / "r.html"
    res = CliRunner().invoke(app, ["report", "--out", str(out), "--baseline", str(ids[1]), "--store", str(store)])
    assert res.exit_code == 0, res.output
    assert f"Speed-up against torch/bf16 (run {ids[1]})" in out.read_text()


def test_report_with_projected_rows_for_two_gpus_shows_every_view():
    from quantscope.report.html import PAGE
    from quantscope.report.projected import project_rows

    rows = [(i + 1, r) for i, r in enumerate(sweep_fixture())]
    projected, notes = project_rows(rows, ["t4", "h200"], machine_id="test-machine",
                                    models=("synthetic:llama-1b",))
    html = render_report(rows, projected=projected, notes=notes)
    uris = re.findall(r'<img src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(uris) == len(PAGE) - 2  # every view but GPU telemetry and bits per layer (no NVML, no policy row)
    for heading in ("At a glance", "Decision matrix", "Runtimes compared",
                    "The study's claims, tested on these rows",
                    "Memory reduction against the baseline",
                    "Each configuration on every axis", "Hardware efficiency at a glance",
                    "Model size against each quantization&#39;s speed-up", "Memory against model size"):
        assert f">{heading}</h2>" in html, heading
    # the decision matrix: here measured, each GPU projected, the projected cells marked
    heads = ("here (measured)", "h200 (projected)", "t4 (projected)")
    assert "".join(f'<th class="l">{h}</th>' for h in heads) in html
    assert html.count('<td class="l projected">') == 10
    assert "tok/s projected [" in html and "(measured here)" in html


def test_report_command_hardware_draws_projected_rows(tmp_path):
    from quantscope.cli import app

    store = tmp_path / "s.sqlite"
    store_with(store, sweep_fixture())
    out = tmp_path / "r.html"
    res = CliRunner().invoke(app, ["report", "--out", str(out), "--hardware", "t4,h200", "--store", str(store)])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert '<th class="l">t4 (projected)</th>' in text
    assert ">Model size against each quantization&#39;s speed-up</h2>" in text
    # one line says where the projections are, not one line per row and hardware above the views
    assert text.count("PROJECTED on") == 1 and "PROJECTED on t4, h200, not measured" in text


def test_a_store_of_two_models_gives_a_section_each_and_the_views_across_them(tmp_path):
    from quantscope.cli import app

    tiny = [make_result(make_spec(dtype=d, model_source="synthetic", model_ref="tiny-llama"), decode=v, rss_mib=m,
                        kld=k, top1=0.99, seed=10 + i)
            for i, (d, v, m, k) in enumerate((("fp32", 80.0, 60.0, None), ("bf16", 100.0, 40.0, 0.003)))]
    store = tmp_path / "s.sqlite"
    store_with(store, sweep_fixture() + tiny)
    out = tmp_path / "r.html"
    res = CliRunner().invoke(app, ["report", "--out", str(out), "--group", "all", "--store", str(store)])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert text.count('<section class="group">') == 3  # two models, then the views across them
    assert text.index(">Across models</h2>") > text.rindex(">At a glance</h2>")
    assert ">Model size against each quantization&#39;s speed-up</h2>" in text
