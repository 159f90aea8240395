"""The calibrated-method seam end to end: a test-only calibrated config (tests/helpers/calibrated.py),
registered as a plug-in, runs through the real worker on synthetic:tiny-llama: prepare hooks every
Linear, the torchao backend feeds the calibration batches, convert checks them and quantizes."""

from pathlib import Path

import pytest

from quantscope.methods.calibration import CalibrationSpec, calibration_batches
from quantscope.spec import ModelSpec, Override, QualitySpec, QuantSpec, RunSpec, WorkloadSpec

pytestmark = pytest.mark.integration

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture
def plugin(monkeypatch):
    monkeypatch.setenv("QUANTSCOPE_PLUGINS", "helpers.calibrated")
    monkeypatch.setenv("PYTHONPATH", str(TESTS))  # the worker is a fresh interpreter


def test_a_calibrated_method_sees_exactly_the_calibration_batches_in_the_worker(tmp_path, plugin):
    import quantscope

    params = (("calib_samples", 3), ("calib_seq_len", 16))
    spec = RunSpec(model=ModelSpec("synthetic", "tiny-llama"), backend="torchao",
                   quant=QuantSpec("fp32", "test-absmax-int8", params, overrides=(Override("*.mlp.down_proj"),)),
                   workload=WorkloadSpec(prompt_tokens=8, gen_tokens=4, warmup=0, min_reps=1, max_reps=1),
                   quality=QualitySpec(enabled=False))
    run_id, result = quantscope.measure(spec, store=tmp_path / "s.sqlite")
    assert result.status == "ok", result.reason
    seen = result.info["calibration_seen"]
    assert len(seen) == 12  # 14 Linears less the two down_proj the policy keeps; lm_head is left alone
    assert all(s["batches"] == 3 and s["tokens"] == [16] and s["absmax"] > 0 for s in seen.values()), seen
    assert not any("down_proj" in n for n in seen)
    assert result.info["quantized_linears"] == 12
    # the stored hash is the hash of the tokens this process derives from the same text
    cal = result.info["calibration"]
    from quantscope.models import resolve

    vocab = resolve(spec.model).config["vocab_size"]  # no tokenizer: the text's bytes modulo the vocabulary
    again = calibration_batches(CalibrationSpec(samples=3, seq_len=16), lambda text: None, vocab)
    assert cal["tokens_sha256"] == again.info["tokens_sha256"]
    assert cal["source"] == "stdlib-docstrings" and cal["samples"] == 3 and cal["seq_len"] == 16
