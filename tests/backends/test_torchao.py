"""torchao backend on a tiny synthetic llama built in-process: accuracy, bytes, reasons, compile."""

import functools
import os

import numpy as np
import pytest

from quantscope.backends import BACKENDS, get_backend
from quantscope.backends.base import Unsupported
from quantscope.backends.torch.backend import TorchBackend
from quantscope.errors import UserError
from quantscope.models.base import ModelArtifact
from quantscope.spec import QuantSpec, RunSpec, WorkloadSpec

torch = pytest.importorskip("torch")
pytest.importorskip("torchao")
from quantscope.backends.torchao.backend import TorchaoBackend, probe  # noqa: E402

pytestmark = pytest.mark.integration

# Widths are multiples of every group size used below (64) and of 32 (torchao's DA8W4 N % 32).
TINY = {"model_type": "llama", "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512,
        "max_position_embeddings": 256, "tie_word_embeddings": True}
TOKENS = np.random.default_rng(0).integers(0, TINY["vocab_size"], 32)

# method -> (max |logit error| / max |reference logit|, bits stored per weight).
# Tolerances sit ~3x above what this model measured (int8 ~0.01, float8 ~0.02, 4-bit ~0.09).
# intx keeps its 4-bit values unpacked in int8 bytes (IntxUnpackedToInt8Tensor), so 8 bits are stored.
EXPECT = {
    "int8-weight-only": (0.03, 8),
    "int8-dynamic": (0.03, 8),
    "int4-weight-only": (0.25, 4),
    "float8-weight-only": (0.06, 8),
    "intx-weight-only": (0.25, 8),
    "int8-dynamic-intx": (0.25, 8),
}
# Scale (and zero point) overhead per weight: at most two fp32 values per group of 64 (8/64 bytes).
OVERHEAD_BYTES_PER_WEIGHT = 8 / 64


def artifact(**overrides):
    return ModelArtifact(format="synthetic", synthetic=True, config={**TINY, **overrides}, arch="tiny")


def run(method, dtype="fp32", options=(), **params):
    quant = QuantSpec(dtype=dtype, method=method, params=tuple(params.items()))
    return RunSpec(backend="torchao", quant=quant, options=options,
                   workload=WorkloadSpec(prompt_tokens=8, gen_tokens=4))


@functools.cache
def reference(dtype):
    """Unquantized logits, weight bytes and the quantizable Linears' parameter count and bytes."""
    ref = TorchBackend()
    ref.load(RunSpec(quant=QuantSpec(dtype=dtype)), artifact())
    out = ref.model.get_output_embeddings()
    linears = [m for m in ref.model.modules() if isinstance(m, torch.nn.Linear) and m is not out]
    params = sum(m.weight.numel() for m in linears)
    linear_bytes = sum(m.weight.numel() * m.weight.element_size() for m in linears)
    return ref.logits(TOKENS), ref.weight_bytes(), params, linear_bytes


def rel_error(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize("method", list(EXPECT))
def test_handler_keeps_logits_close_and_shrinks_weight_bytes(method, dtype):
    spec = run(method, dtype)
    backend = TorchaoBackend()
    reason = backend.supports(spec)
    if reason:
        pytest.skip(reason)
    facts = backend.load(spec, artifact())
    tol, bits = EXPECT[method]
    ref_logits, ref_bytes, params, linear_bytes = reference(dtype)
    err = rel_error(backend.logits(TOKENS), ref_logits)
    assert 1e-5 < err <= tol  # changed (it is quantized), but within the stated tolerance
    assert facts["quantized_linears"] == facts["linears"] - 1  # all but the tied lm_head
    quantized = backend.weight_bytes() - (ref_bytes - linear_bytes)
    per_weight = quantized / params
    assert bits / 8 <= per_weight <= bits / 8 + OVERHEAD_BYTES_PER_WEIGHT, per_weight


def test_int8_weight_bytes_are_the_packed_tensors_exactly():
    # Int8Tensor stores qdata (1 byte per weight), an fp32 scale and an int8 zero point per output row.
    backend = TorchaoBackend()
    backend.load(run("int8-weight-only"), artifact())
    _, ref_bytes, params, linear_bytes = reference("fp32")
    out = backend.model.get_output_embeddings()
    linears = [m for m in backend.model.modules() if isinstance(m, torch.nn.Linear) and m is not out]
    rows = sum(m.out_features for m in linears)
    assert backend.weight_bytes() == ref_bytes - linear_bytes + params * 1 + rows * (4 + 1)


def test_lm_head_option_unties_and_quantizes_the_output_projection():
    backend = TorchaoBackend()
    facts = backend.load(run("int8-weight-only", lm_head=True), artifact())
    assert facts["quantized_linears"] == facts["linears"]
    plain = TorchaoBackend()
    plain.load(run("int8-weight-only"), artifact())
    # The fp32 embedding stays for the input side; the output side gains an int8 copy plus a
    # scale and a zero point per row.
    vocab, hidden = TINY["vocab_size"], TINY["hidden_size"]
    assert backend.weight_bytes() - plain.weight_bytes() == vocab * hidden + vocab * (4 + 1)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this GPU may have float8")
def test_float8_dynamic_on_cpu_is_unsupported_with_torchaos_message():
    reason = TorchaoBackend().supports(run("float8-dynamic"))
    assert reason.startswith("torchao ") and "compute capability" in reason


@pytest.mark.parametrize("packing, dtype, message", [
    ("plain-int32", "bf16", "does not support device 'cpu'"),
    ("tile-packed", "fp32", "Only bfloat16 is supported"),
])
def test_int4_packings_without_a_cpu_path_give_the_librarys_reason(packing, dtype, message):
    reason = TorchaoBackend().supports(run("int4-weight-only", dtype, packing=packing))
    assert reason is not None and message in reason


def test_probe_reports_a_weight_torchao_left_unquantized(monkeypatch):
    import quantscope.methods.torchao_configs as tc

    probe.cache_clear()
    monkeypatch.setattr(tc, "_filter", lambda model, config: lambda module, fqn: False)
    try:
        reason = TorchaoBackend().supports(run("int8-weight-only"))
    finally:
        probe.cache_clear()
    assert "left the weight unquantized" in reason


def test_methods_of_other_backends_and_no_method_are_reasons_not_crashes():
    backend = TorchaoBackend()
    assert backend.supports(run("nf4")) == "'nf4' is a bnb method; run it with --backend bnb"
    assert "give --quant METHOD" in backend.supports(run("none"))
    with pytest.raises(Unsupported, match="bnb method"):
        backend.load(run("nf4"), artifact())


def test_group_size_that_does_not_divide_the_width_is_a_user_error_before_quantizing():
    wide = artifact(hidden_size=192, num_attention_heads=3, num_key_value_heads=3)  # 192 = 3 x 64
    message = r"group_size=128 does not divide in_features=192 .* use group_size=64"
    with pytest.raises(UserError, match=message):
        TorchaoBackend().load(run("int4-weight-only", group_size=128), wide)


def test_compile_is_warmed_inside_load_and_reported_apart(monkeypatch):
    # The eager dynamo backend checks the plumbing in seconds; inductor itself is the slow test below.
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    torch._dynamo.reset()
    compiled = TorchaoBackend()
    facts = compiled.load(run("int8-weight-only", options=(("compile", True),)), artifact())
    plain = TorchaoBackend()
    plain.load(run("int8-weight-only"), artifact())
    assert facts["compile_s"] > 0 and "compile_wrap_s" in facts
    assert compiled.cache is None  # the warm-up leaves no sequence behind
    np.testing.assert_allclose(compiled.logits(TOKENS), plain.logits(TOKENS), rtol=1e-5, atol=1e-5)
    torch._dynamo.reset()


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("QUANTSCOPE_SLOW_TESTS"), reason="inductor compiles for minutes on 2 "
                    "cores; set QUANTSCOPE_SLOW_TESTS=1")
def test_inductor_compile_of_int8_weight_only_matches_eager():
    torch._dynamo.reset()
    compiled = TorchaoBackend()
    facts = compiled.load(run("int8-weight-only", options=(("compile", True),)), artifact())
    plain = TorchaoBackend()
    plain.load(run("int8-weight-only"), artifact())
    ids = TOKENS[None, :8]
    assert facts["compile_s"] > 0
    assert compiled.prefill(ids).tolist() == plain.prefill(ids).tolist()


def test_registry_knows_the_quantizing_backends():
    assert isinstance(get_backend("torchao"), TorchaoBackend)
    with pytest.raises(UserError, match="Did you mean 'torchao'"):
        get_backend("torchoa")
    with pytest.raises(ValueError, match="already registered"):
        BACKENDS.add("torchao", "quantscope.backends.torchao.backend:TorchaoBackend")


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("method, dtype", [("int4-weight-only", "bf16"), ("int8-weight-only", "bf16"),
                                           ("float8-dynamic", "bf16")])
def test_cuda_paths_run_or_give_a_reason(method, dtype):
    spec = RunSpec(backend="torchao", device="cuda", quant=QuantSpec(dtype=dtype, method=method))
    backend = TorchaoBackend()
    reason = backend.supports(spec)
    if reason:  # e.g. float8 below sm 8.9: torchao's own message
        assert reason.startswith("torchao ")
        return
    facts = backend.load(spec, artifact())
    assert facts["quantized_linears"] > 0
    logits = backend.logits(TOKENS)
    assert np.isfinite(logits).all()
    assert rel_error(logits, reference("fp32")[0]) <= 0.25
