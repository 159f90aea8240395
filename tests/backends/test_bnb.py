"""bitsandbytes backend on a tiny synthetic llama built in-process: accuracy, bytes, reasons, compile."""

import functools
import os

import numpy as np
import pytest

from quantscope.backends.base import Unsupported
from quantscope.backends.torch.backend import TorchBackend
from quantscope.backends.torch.weights import module_weight_bytes, tensor_bytes
from quantscope.models.base import ModelArtifact
from quantscope.spec import QuantSpec, RunSpec, WorkloadSpec

torch = pytest.importorskip("torch")
bnb = pytest.importorskip("bitsandbytes")
from quantscope.backends.bnb.backend import BnbBackend, probe, quant_state_tensors  # noqa: E402

pytestmark = pytest.mark.integration

# Widths: multiples of bitsandbytes' 4-bit block (64) and of its CPU packing block (32).
TINY = {"model_type": "llama", "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512,
        "max_position_embeddings": 256, "tie_word_embeddings": True}
TOKENS = np.random.default_rng(0).integers(0, TINY["vocab_size"], 32)
ARTIFACT = ModelArtifact(format="synthetic", synthetic=True, config=TINY, arch="tiny")

# (method, params) -> (max |logit error| / max |reference logit|, bits stored per weight).
# Tolerances sit ~3x above what this model measured (int8 ~0.01, nf4 ~0.085, fp4 ~0.11).
EXPECT = {
    ("int8", ()): (0.03, 8),
    ("nf4", ()): (0.25, 4),
    ("nf4", (("double_quant", True),)): (0.25, 4),
    ("fp4", ()): (0.35, 4),
}
# Scales and codebooks per weight: fp32 absmax per block of 64 (4/64) plus the per-layer code tables.
OVERHEAD_BYTES_PER_WEIGHT = 8 / 64


def run(method, dtype="fp32", params=(), options=()):
    return RunSpec(backend="bnb", quant=QuantSpec(dtype=dtype, method=method, params=params), options=options,
                   workload=WorkloadSpec(prompt_tokens=8, gen_tokens=4))


@functools.cache
def reference(dtype):
    ref = TorchBackend()
    ref.load(RunSpec(quant=QuantSpec(dtype=dtype)), ARTIFACT)
    out = ref.model.get_output_embeddings()
    linears = [m for m in ref.model.modules() if isinstance(m, torch.nn.Linear) and m is not out]
    params = sum(m.weight.numel() for m in linears)
    linear_bytes = sum(m.weight.numel() * m.weight.element_size() for m in linears)
    return ref.logits(TOKENS), ref.weight_bytes(), params, linear_bytes


def loaded(method, dtype="fp32", params=()):
    spec = run(method, dtype, params)
    backend = BnbBackend()
    reason = backend.supports(spec)
    if reason:
        pytest.skip(reason)
    facts = backend.load(spec, ARTIFACT)
    return backend, facts


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize("method, params", list(EXPECT))
def test_handler_keeps_logits_close_and_shrinks_weight_bytes(method, params, dtype):
    backend, facts = loaded(method, dtype, params)
    tol, bits = EXPECT[(method, params)]
    ref_logits, ref_bytes, n_params, linear_bytes = reference(dtype)
    logits = backend.logits(TOKENS)
    err = float(np.abs(logits - ref_logits).max() / np.abs(ref_logits).max())
    assert 1e-5 < err <= tol
    assert facts["bnb_layers"] == (["Linear8bitLt"] if method == "int8" else ["Linear4bit"])
    per_weight = (backend.weight_bytes() - (ref_bytes - linear_bytes)) / n_params
    assert bits / 8 <= per_weight <= bits / 8 + OVERHEAD_BYTES_PER_WEIGHT, per_weight


@pytest.mark.parametrize("params", [(), (("double_quant", True),)])
def test_4bit_quant_state_is_counted_beyond_the_parameters(params):
    backend, _ = loaded("nf4", params=params)
    states = [m.weight.quant_state for m in backend.model.modules() if type(m).__name__ == "Linear4bit"]
    assert states and all(s is not None for s in states)
    if params:
        assert all(s.nested for s in states)  # double quantization: absmax is itself quantized
    seen: set[int] = set()
    side = sum(tensor_bytes(t, seen) for s in states for t in quant_state_tensors(s))
    assert side > 0
    assert backend.weight_bytes() == module_weight_bytes(backend.model) + side


def test_int8_row_scales_are_counted_before_and_after_the_first_forward():
    backend, _ = loaded("int8")
    before = backend.weight_bytes()
    layer = next(m for m in backend.model.modules() if type(m).__name__ == "Linear8bitLt")
    scb = layer.weight.SCB if layer.weight.SCB is not None else layer.state.SCB
    assert before == module_weight_bytes(backend.model) + sum(
        (m.weight.SCB if m.weight.SCB is not None else m.state.SCB).numel() * 4
        for m in backend.model.modules() if type(m).__name__ == "Linear8bitLt")
    backend.logits(TOKENS)  # the first forward moves SCB from the weight to the layer's state
    assert backend.weight_bytes() == before
    assert scb.dtype == torch.float32


def test_a_library_error_in_the_probe_becomes_the_reason(monkeypatch):
    def no_kernel(*args, **kwargs):
        raise NotImplementedError("4-bit quantization is not available for this device in this build\nmore")

    probe.cache_clear()
    monkeypatch.setattr(bnb.functional, "quantize_4bit", no_kernel)
    try:
        reason = BnbBackend().supports(run("fp4"))
    finally:
        probe.cache_clear()
    assert reason == (f"bitsandbytes {bnb.__version__}: NotImplementedError: "
                      "4-bit quantization is not available for this device in this build")


def test_methods_of_other_backends_are_reasons_and_unsupported_from_load():
    backend = BnbBackend()
    assert backend.supports(run("int4-weight-only")) == \
        "'int4-weight-only' is a torchao method; run it with --backend torchao"
    with pytest.raises(Unsupported, match="torchao method"):
        backend.load(run("int4-weight-only"), ARTIFACT)


def test_handler_gives_transformers_the_config_and_the_device():
    from quantscope.methods import config_from_spec, handler_for

    spec = run("nf4", "bf16", (("double_quant", True),))
    cfg = config_from_spec(spec.quant)
    kwargs = handler_for(cfg)(cfg, spec)
    qc = kwargs["quantization_config"]
    assert qc.load_in_4bit and qc.bnb_4bit_quant_type == "nf4" and qc.bnb_4bit_use_double_quant
    assert qc.bnb_4bit_compute_dtype == torch.bfloat16
    assert kwargs["device_map"] == {"": "cpu"}


def test_compile_warm_up_survives_the_cpu_repacking_of_4bit_weights(monkeypatch):
    # bitsandbytes repacks 4-bit weights on the first CPU forward; a graph traced before that fails.
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    torch._dynamo.reset()
    backend = BnbBackend()
    facts = backend.load(run("nf4", options=(("compile", True),)), ARTIFACT)
    plain, _ = loaded("nf4")
    assert facts["compile_s"] > 0
    np.testing.assert_allclose(backend.logits(TOKENS), plain.logits(TOKENS), rtol=1e-4, atol=1e-4)
    torch._dynamo.reset()


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("QUANTSCOPE_SLOW_TESTS"), reason="inductor compiles for minutes on 2 "
                    "cores; set QUANTSCOPE_SLOW_TESTS=1")
def test_inductor_compile_of_nf4_matches_eager():
    torch._dynamo.reset()
    backend = BnbBackend()
    facts = backend.load(run("nf4", options=(("compile", True),)), ARTIFACT)
    plain, _ = loaded("nf4")
    ids = TOKENS[None, :8]
    assert facts["compile_s"] > 0
    assert backend.prefill(ids).tolist() == plain.prefill(ids).tolist()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("method", ["int8", "nf4"])
def test_cuda_path_loads_on_the_gpu(method):
    spec = RunSpec(backend="bnb", device="cuda", quant=QuantSpec(dtype="bf16", method=method))
    backend = BnbBackend()
    reason = backend.supports(spec)
    if reason:
        assert reason.startswith("bitsandbytes ")
        return
    backend.load(spec, ARTIFACT)
    assert all(p.device.type == "cuda" for p in backend.model.parameters())
    assert np.isfinite(backend.logits(TOKENS)).all()
    assert backend.device_memory()["torch_max_allocated_bytes"] > 0
