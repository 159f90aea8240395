"""The decision matrix, the runtimes table and the claims, on the fixture sweep and its projections."""

import pytest
from helpers.results import make_result, make_spec, sweep_fixture

from quantscope.advise import scenarios
from quantscope.advise.claims import judge_claims
from quantscope.advise.runtimes import runtime_rows
from quantscope.analysis.summary import summarize

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def summaries():
    return [summarize(i + 1, r) for i, r in enumerate(sweep_fixture())]


def fake_projection(decode, memory, fits=True, supported=True):
    from quantscope.hardware.project import Projection

    return Projection(hardware="x", model="m", backend="b", quant="q", dtype="d", format="f", batch=1,
                      prompt_tokens=8, context=16, supported=supported, decode_tps=decode if supported else None,
                      decode_tps_low=decode / 2, decode_tps_high=decode * 2, memory_bytes=memory, fits=fits,
                      reason=None if supported else "unsupported: no bf16")


def test_measured_matrix_picks_by_scenario(summaries):
    cells = scenarios.decision_matrix(scenarios.measured_candidates(summaries, params=1.35e8))
    pick = {c.scenario.name: c.winner.label for c in cells}
    # fixture: q4_0 is smallest (KLD 0.08 <= the edge bar 0.1), q8_0 the fastest within 0.05 nat and 0.005 nat
    assert pick == {"edge": "llamacpp/q4_0/fp32", "real-time": "llamacpp/q8_0/fp32", "balanced": "llamacpp/q8_0/fp32",
                    "quality-first": "llamacpp/q8_0/fp32", "small-model": "llamacpp/q8_0/fp32"}
    edge = next(c for c in cells if c.scenario.name == "edge")
    assert "200.0 MiB peak RSS" in edge.why and "95% CI" in edge.why


def test_small_model_scenario_does_not_apply_above_1b(summaries):
    cells = scenarios.decision_matrix(scenarios.measured_candidates(summaries, params=8e9))
    small = next(c for c in cells if c.scenario.name == "small-model")
    assert small.winner is None and small.why.startswith("not applicable: the model has 8 B parameters")


def test_projected_cells_use_the_projection_and_the_measured_quality(summaries):
    from quantscope.report.projected import ProjectedRow

    # on "gpu", the bf16 row is unsupported and q4_0 does not fit: real-time goes to q8_0, edge to q8_0
    proj = [ProjectedRow(1, "torch/fp32", "m", 1.35e8, "gpu", fake_projection(100.0, 4e9)),
            ProjectedRow(2, "torch/bf16", "m", 1.35e8, "gpu", fake_projection(0, 0, supported=False)),
            ProjectedRow(3, "llamacpp/q8_0/fp32", "m", 1.35e8, "gpu", fake_projection(300.0, 2e9)),
            ProjectedRow(4, "llamacpp/q4_0/fp32", "m", 1.35e8, "gpu", fake_projection(400.0, 1e9, fits=False)),
            ProjectedRow(4, "llamacpp/q4_0/fp32", "big", 7e10, "gpu", fake_projection(40.0, 1e9), scaled=True)]
    cands = scenarios.projected_candidates(proj, summaries)
    assert len(cands) == 4  # the scaled row has no measured quality: not a candidate
    cells = {(c.scenario.name, c.hardware): c for c in scenarios.decision_matrix(cands)}
    edge = cells[("edge", "gpu")]
    assert edge.winner.label == "llamacpp/q8_0/fp32" and edge.winner.projected
    assert "300 tok/s projected [150 to 600]" in edge.why and "(measured here)" in edge.why
    assert cells[("balanced", "gpu")].winner.label == "llamacpp/q8_0/fp32"
    assert "3.00x decode, 2.00x less memory than torch/fp32" in cells[("balanced", "gpu")].why


def test_runtimes_table_names_who_holds_each_figure(summaries):
    rows = {r["runtime"]: r for r in runtime_rows(summaries)}
    assert list(rows) == ["llamacpp", "torch", "torchao"]  # fastest runtime first
    assert rows["llamacpp"]["best decode"].startswith("llamacpp/q4_0/fp32: 59.99")
    assert rows["llamacpp"]["least peak RSS"] == "llamacpp/q4_0/fp32: 200.0 MiB"
    assert rows["torch"]["best quality (KLD)"].startswith("torch/bf16: 0.00187")
    assert rows["torchao"]["ok / rows"] == "0 / 1"
    assert "compute capability >= 8.9" in rows["torchao"]["could not run here"]


def test_claims_on_the_fixture(summaries):
    v = {c.claim: c for c in judge_claims(summaries, {"SmolLM2-135M-Instruct": 1.35e8})}
    small = v["avoid quantization below 1B parameters"]
    # q8_0 loses 0.0037 nat, under the near-lossless bar: the claim is contradicted by run 3
    assert small.verdict == "contradicted" and "llamacpp/q8_0/fp32 (run 3)" in small.why
    assert v["ONNX Runtime beats bitsandbytes for small models"].verdict == "not testable here"
    assert v["KV cache is the biggest speed-up"].verdict == "not testable here"


def test_kv_cache_claim_with_rows_that_test_it():
    rows = [summarize(1, make_result(make_spec("ort"), decode=10.0, seed=1)),
            summarize(2, make_result(make_spec("ort", options=(("kv_cache", False),)), decode=2.0, seed=2)),
            summarize(3, make_result(make_spec("ort", quant="int8"), decode=15.0, seed=3)),
            summarize(4, make_result(make_spec("torch"), decode=8.0, seed=4))]
    v = {c.claim: c for c in judge_claims(rows)}["KV cache is the biggest speed-up"]
    assert v.verdict == "supported", v.why
    assert "run 2" in v.why


def test_recommend_scenarios_prints_the_matrix_and_the_claims(tmp_path):
    from helpers.results import store_with
    from typer.testing import CliRunner

    from quantscope.cli import app

    store = tmp_path / "s.sqlite"
    store_with(store, sweep_fixture())
    res = CliRunner().invoke(app, ["recommend", "--scenarios", "--hardware", "t4", "--store", str(store)],
                             terminal_width=200)
    assert res.exit_code == 0, res.output
    out = res.output
    assert "memory-constrained (edge):" in out and "  here (measured): llamacpp/q4_0/fp32;" in out
    assert "  t4 (projected): llamacpp/q4_0/fp32; " in out and "tok/s projected [" in out
    assert "'KV cache is the biggest speed-up': not testable here" in out


def test_overlapping_decode_intervals_are_no_decision():
    from quantscope.advise.scenarios import SCENARIOS, Candidate, evaluate

    def cand(run_id, label, decode, half, projected=True):
        return Candidate(run_id, label, "h200", decode, decode - half, decode + half, 1e9, 0.001, 1e8, projected)

    real_time = next(s for s in SCENARIOS if s.name == "real-time")
    close = evaluate(real_time, [cand(1, "a", 100, 30), cand(2, "b", 90, 30)], "h200")
    assert close.winner is None and close.why.startswith("no decision") and "a " in close.why and "b " in close.why
    apart = evaluate(real_time, [cand(1, "a", 100, 5), cand(2, "b", 50, 5)], "h200")
    assert apart.winner is not None and apart.winner.label == "a"
