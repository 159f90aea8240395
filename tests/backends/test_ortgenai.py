"""onnxruntime-genai backend on the tiny synthetic llama: the builder's graphs agree with torch, are
cached, and a batch of sequences decodes as each sequence alone."""

import numpy as np
import pytest

from quantscope.backends.base import Unsupported
from quantscope.errors import UserError
from quantscope.spec import ModelSpec, QualitySpec, QuantSpec, RunSpec, WorkloadSpec

pytest.importorskip("onnxruntime_genai")
pytestmark = pytest.mark.integration

TINY = ModelSpec("synthetic", "tiny-llama")


def og_spec(method="none", batch=1, prompt=12, gen=6, **params):
    return RunSpec(model=TINY, backend="ortgenai", quant=QuantSpec(method=method, params=params),
                   options={"n_threads": 1}, quality=QualitySpec(ctx=64),
                   workload=WorkloadSpec(threads=1, batch=batch, prompt_tokens=prompt, gen_tokens=gen))


def loaded(spec):
    from quantscope.backends.ortgenai.backend import OrtGenaiBackend
    from quantscope.models import resolve

    backend = OrtGenaiBackend()
    assert backend.supports(spec) is None
    return backend, backend.load(spec, resolve(spec.model))


def rel_err(a, ref):
    return float(np.abs(a - ref).max() / ref.std())


def test_fp32_graph_matches_torch_and_is_cached(cache_home, reference):
    seq, ref = reference
    backend, facts = loaded(og_spec(prompt=20, gen=28))
    assert facts["precision"] == "fp32" and facts["cache_hit"] is False
    logits = backend.logits(seq)
    assert logits.shape == (48, 256) and logits.dtype == np.float32
    assert rel_err(logits, ref) < 1e-3
    # teacher-forced through the Generator: prefill then one append_tokens per token
    preds = [int(backend.prefill(seq[None, :20])[0])]
    preds += [int(backend.decode(np.array([t]))[0]) for t in seq[20:-1]]
    np.testing.assert_array_equal(preds, ref[19:-1].argmax(-1))
    assert backend.tokenize("hi") is None and backend.bos_token_id == 0  # synthetic: no tokenizer
    backend.close()
    again, facts = loaded(og_spec())
    assert facts["cache_hit"] is True and facts["conversions"][0]["kind"] == "ortgenai-build"
    again.close()


def test_int4_is_smaller_and_close(cache_home, reference):
    seq, ref = reference
    backend, facts = loaded(og_spec("int4", block_size=32))
    assert facts["builder_options"]["block_size"] == 32
    logits = backend.logits(seq)
    # random weights in 4 bits: close on average, not everywhere (the largest error is ~half the spread)
    mean_err = float(np.abs(logits - ref).mean() / ref.std())
    same_top1 = float((logits.argmax(-1) == ref.argmax(-1)).mean())
    assert mean_err < 0.15 and same_top1 > 0.6, (mean_err, same_top1)
    small = backend.weight_bytes()
    backend.close()
    fp32, _ = loaded(og_spec())
    assert small < fp32.weight_bytes() / 2
    fp32.close()


def test_batch_of_sequences_matches_each_decoded_alone(cache_home):
    """B = 3 different prompts through one Generator (append_tokens once, then generate_next_token):
    each row's tokens and logits are those of the sequence run alone (one Generator, append_tokens
    per token). FP32 graph: the batched and single kernels differ only in summation order, 1e-4 of
    the logits' spread."""
    prompts = np.random.default_rng(3).integers(0, 256, (3, 12))
    backend, _ = loaded(og_spec(batch=3))
    tokens = [backend.prefill(prompts)]
    logits = []
    for _ in range(5):
        tokens.append(backend.decode(tokens[-1]))
        logits.append(backend.step_logits())
    with pytest.raises(ValueError, match="picked"):
        backend.decode(tokens[-1] + 1)
    for b in range(3):
        backend.prefill(prompts[b:b + 1])
        alone = []
        for step in tokens[:-1]:
            backend.decode(step[b:b + 1])
            alone.append(backend.step_logits()[0])
        alone = np.stack(alone)
        got = np.stack([step[b] for step in logits])
        np.testing.assert_array_equal(alone.argmax(-1), [step[b] for step in tokens[1:]])
        assert rel_err(got, alone) < 1e-4
    backend.close()


def test_block_size_that_does_not_divide_is_unsupported(cache_home):
    from quantscope.backends.ortgenai.backend import OrtGenaiBackend
    from quantscope.models import resolve

    spec = og_spec("int4", block_size=256)  # tiny-llama's width is 64
    with pytest.raises(Unsupported, match="block_size 256 does not divide"):
        OrtGenaiBackend().load(spec, resolve(TINY))


def test_supports_and_params():
    from quantscope.backends.ortgenai.backend import OrtGenaiBackend

    backend = OrtGenaiBackend()
    assert "q4_0" in backend.supports(RunSpec(model=TINY, backend="ortgenai", quant=QuantSpec(method="q4_0")))
    assert "--dtype fp32" in backend.supports(RunSpec(model=TINY, backend="ortgenai", quant=QuantSpec(dtype="bf16")))
    with pytest.raises(UserError, match="block_size=48"):
        backend.supports(og_spec("int4", block_size=48))
    with pytest.raises(UserError, match="algo"):
        backend.supports(og_spec("int8", algo="gptq"))
    with pytest.raises(UserError, match="n_thread"):
        backend.supports(RunSpec(model=TINY, backend="ortgenai", options={"n_thread": 2}))
