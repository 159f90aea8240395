"""ONNX Runtime backend on the tiny synthetic llama: the exported graphs agree with torch's FP32 model."""

import numpy as np
import pytest

from quantscope.errors import UserError
from quantscope.spec import ModelSpec, QuantSpec, RunSpec, WorkloadSpec

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
pytestmark = pytest.mark.integration

TINY = ModelSpec("synthetic", "tiny-llama")




def ort_spec(method="none", params=(), **options):
    return RunSpec(model=TINY, backend="ort", quant=QuantSpec(method=method, params=params),
                   options={"n_threads": 1, **options}, workload=WorkloadSpec(threads=1))


def loaded(spec):
    from quantscope.backends.ort.backend import OrtBackend
    from quantscope.models import resolve

    backend = OrtBackend()
    assert backend.supports(spec) is None
    return backend, backend.load(spec, resolve(spec.model))


def teacher_forced(backend, seq, start):
    """Greedy predictions at positions start-1.. through prefill then decode fed the true tokens."""
    preds = [int(backend.prefill(seq[None, :start])[0])]
    for tok in seq[start:-1]:
        preds.append(int(backend.decode(np.array([tok]))[0]))
    return np.array(preds)


def rel_err(a, ref):
    return float(np.abs(a - ref).max() / ref.std())


def test_fp32_graph_matches_torch(cache_home, reference):
    seq, ref = reference
    backend, facts = loaded(ort_spec(kv_cache=True))
    assert facts["kv_cache"] is True and facts["cache_hit"] is False and facts["convert_s"] > 0
    assert rel_err(backend.logits(seq), ref) < 1e-4
    # prefill + decode with the true next tokens: each step's argmax is torch's at that position
    np.testing.assert_array_equal(teacher_forced(backend, seq, 16), ref[15:-1].argmax(-1))
    assert backend.weight_bytes() > 0 and backend.tokenize("x") is None  # synthetic: no tokenizer
    backend.close()
    again, facts = loaded(ort_spec(kv_cache=True))
    assert facts["cache_hit"] is True and facts["cache_saved_s"] > 0  # converted nothing the second time
    again.close()


def test_without_cache_runs_the_cached_graph_with_an_empty_past(cache_home, reference):
    """kv_cache=False converts nothing once the graph exists: the same export, fed an empty past on the whole
    prefix each step, and still torch's logits and greedy tokens."""
    seq, ref = reference
    loaded(ort_spec(kv_cache=True))[0].close()
    backend, facts = loaded(ort_spec(kv_cache=False))
    assert facts["cache_hit"] is True and facts["kv_cache"] is False and "empty past" in facts["kv_cache_off"]
    np.testing.assert_array_equal(teacher_forced(backend, seq, 16), ref[15:-1].argmax(-1))
    assert backend.past == []  # nothing carried between steps
    assert rel_err(backend.logits(seq), ref) < 1e-4
    backend.close()


STATIC = (("scheme", "static"), ("calib_samples", 2), ("calib_seq_len", 16))


@pytest.mark.parametrize(("method", "params"), [("int8", ()), ("int8", (("scheme", "dynamic"),)), ("int8", STATIC),
                                                ("int4", ())],
                         ids=["int8-blockwise", "int8-dynamic", "int8-static", "int4"])
def test_quantized_graphs_stay_close_and_shrink(cache_home, reference, method, params):
    seq, ref = reference
    fp32, _ = loaded(ort_spec())
    backend, facts = loaded(ort_spec(method, params))
    kinds = [c["kind"] for c in facts["conversions"]]
    assert kinds == ["onnx-export", "ort-quant"] and facts["conversions"][0]["cache_hit"] is True
    logits = backend.logits(seq)
    # quantized: changed, but still the same model. Static ranges calibrated on other text (32 tokens
    # here) quantize the activations coarsely: its largest error is about the logits' spread.
    err, same = rel_err(logits, ref), (logits.argmax(-1) == ref.argmax(-1)).mean()
    assert 0 < err < (1.5 if params == STATIC else 0.6) and same > (0.75 if params == STATIC else 0.9), (err, same)
    assert backend.weight_bytes() < fp32.weight_bytes()
    np.testing.assert_array_equal(teacher_forced(backend, seq, 16), logits[15:-1].argmax(-1))
    if params == STATIC:  # calibrated on the calibration text, whose identity is kept with the graph
        assert facts["conversions"][-1]["cache_hit"] is False
        assert backend.meta["calibration"]["samples"] == 2 and len(backend.meta["calibration"]["tokens_sha256"]) == 64


def test_int8_default_change_changes_the_run_key_and_the_graph_key():
    """Version 2 of ORT int8 (blockwise by default) must not reuse a stored version-1 row (dynamic,
    per-tensor, written with params ()) nor a cached version-1 graph."""
    from quantscope.artifacts.cache import Recipe
    from quantscope.backends.ort.backend import ort_config, quantizer_params
    from quantscope.backends.ort.convert import quant_recipe
    from quantscope.sweep.matrix import Entry

    old = RunSpec(model=TINY, backend="ort", quant=QuantSpec(method="int8"))  # how a v1 row was stored
    new = Entry("ort", "fp32", "int8").spec(RunSpec(model=TINY))
    assert new.key_hash() != old.key_hash()
    assert dict(new.quant.params) == {"scheme": "blockwise"}
    export = Recipe("onnx-export", "ab" * 32)
    v1 = {"per_channel": False, "reduce_range": False, "lm_head": True}
    assert quant_recipe(export, "int8", quantizer_params(ort_config(new))).key() != \
        quant_recipe(export, "int8", v1).key()
    # methods without key_params keep their specs and key hashes
    assert Entry("ort", "fp32", "int4").spec(RunSpec(model=TINY)).quant == QuantSpec(method="int4")


def test_int4_block_size_must_divide_widths(cache_home):
    from quantscope.backends.base import Unsupported

    with pytest.raises(Unsupported, match="block_size 128 does not divide"):
        loaded(ort_spec("int4", params={"block_size": 128}))


def test_supports_says_why():
    from quantscope.backends.ort.backend import OrtBackend

    backend = OrtBackend()
    assert "CUDAExecutionProvider" in backend.supports(RunSpec(model=TINY, backend="ort", device="cuda"))
    assert "fp32" in backend.supports(RunSpec(model=TINY, backend="ort", quant=QuantSpec(dtype="bf16")))
    assert "int4" in backend.supports(RunSpec(model=TINY, backend="ort", quant=QuantSpec(method="nf4")))
    with pytest.raises(UserError, match="scheme"):
        backend.supports(RunSpec(model=TINY, backend="ort", quant=QuantSpec("fp32", "int8", {"scheme": "qdq"})))
    with pytest.raises(UserError, match="kv_cach"):
        backend.supports(RunSpec(model=TINY, backend="ort", options={"kv_cach": False}))
    with pytest.raises(UserError, match="block"):
        backend.supports(RunSpec(model=TINY, backend="ort", quant=QuantSpec("fp32", "int8", {"block": 1})))

