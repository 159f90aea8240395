"""llama.cpp backend: a GGUF written here from the tiny synthetic llama agrees with torch; quantization,
the artifact cache and llama.cpp's own refusals (types that need an importance matrix)."""

import numpy as np
import pytest

from quantscope.errors import UserError
from quantscope.models.base import ModelArtifact
from quantscope.spec import ModelSpec, QualitySpec, QuantSpec, RunSpec, WorkloadSpec

pytest.importorskip("llama_cpp")
pytestmark = pytest.mark.integration

TINY = ModelSpec("synthetic", "tiny-llama")




def ll_spec(method="none", model=TINY, batch=1, **options):
    return RunSpec(model=model, backend="llamacpp", quant=QuantSpec(method=method),
                   options={"n_threads": 1, **options}, workload=WorkloadSpec(threads=1, batch=batch),
                   quality=QualitySpec(ctx=64))


def loaded(spec, artifact=None):
    from quantscope.backends.llamacpp.backend import LlamaCppBackend
    from quantscope.models import resolve

    backend = LlamaCppBackend()
    assert backend.supports(spec) is None
    return backend, backend.load(spec, artifact or resolve(spec.model))


def teacher_forced(backend, seq, start):
    preds = [int(backend.prefill(seq[None, :start])[0])]
    for tok in seq[start:-1]:
        preds.append(int(backend.decode(np.array([tok]))[0]))
    return np.array(preds)


def rel_err(a, ref):
    return float(np.abs(a - ref).max() / ref.std())


def test_written_gguf_matches_torch(cache_home, reference):
    seq, ref = reference
    # n_batch 16: the prompt and the logits pass both cross chunk boundaries
    backend, facts = loaded(ll_spec(n_batch=16, n_ubatch=16))
    assert facts["gguf_type"] == "f32" and facts["gguf_tensor_types"] == {"F32": 20}
    assert facts["cache_hit"] is False
    logits = backend.logits(seq)
    assert logits.shape == (48, 256)
    assert rel_err(logits, ref) < 5e-3  # F16 KV cache: close, not bitwise
    assert (logits.argmax(-1) == ref.argmax(-1)).all()
    np.testing.assert_array_equal(teacher_forced(backend, seq, 20), ref[19:-1].argmax(-1))
    assert backend.tokenize("hi") is None and backend.bos_token_id == 0  # synthetic: no vocabulary
    backend.close()


def test_quantized_file_is_cached_and_close(cache_home, reference):
    seq, ref = reference
    backend, facts = loaded(ll_spec("q8_0"))
    assert [c["kind"] for c in facts["conversions"]] == ["gguf-write", "gguf-quant"]
    assert facts["gguf_tensor_types"]["Q8_0"] > 0 and facts["bits_per_weight_2d"] == 8.5
    logits = backend.logits(seq)
    assert rel_err(logits, ref) < 0.1 and (logits.argmax(-1) == ref.argmax(-1)).mean() > 0.9
    small = backend.weight_bytes()
    backend.close()
    again, facts = loaded(ll_spec("q8_0"))
    assert facts["cache_hit"] is True and facts["cache_saved_s"] > 0
    assert [c["kind"] for c in facts["conversions"]] == ["gguf-quant"]  # found without its F32 base
    fp32, _ = loaded(ll_spec())
    assert small < fp32.weight_bytes() / 3
    again.close()
    fp32.close()


def test_type_needing_an_importance_matrix_is_unsupported(cache_home):
    """Widths divisible by 256, so llama.cpp does not fall back to another type and asks for an imatrix."""
    from quantscope.backends.base import Unsupported

    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 256,
              "intermediate_size": 512, "num_hidden_layers": 1, "num_attention_heads": 4,
              "num_key_value_heads": 2, "vocab_size": 256, "max_position_embeddings": 256,
              "tie_word_embeddings": True, "rms_norm_eps": 1e-5, "rope_theta": 10000.0}
    artifact = ModelArtifact(format="synthetic", config=config, arch="wide", digest="0" * 64, synthetic=True)
    with pytest.raises(Unsupported, match="importance matrix"):
        loaded(ll_spec("iq2_xxs"), artifact)


def test_bundled_gguf_runs_as_is(cache_home):
    from quantscope.models.bundled import bundled_path

    try:
        bundled_path()
    except UserError:
        pytest.skip("bundled model not installed")
    backend, facts = loaded(ll_spec(model=ModelSpec()))
    assert facts["gguf_type"] == "asis" and facts["conversions"] == []
    ids = backend.tokenize("The quick brown fox")
    assert len(ids) > 2 and backend.vocab_size == 49152
    first = backend.prefill(np.array([ids]))
    assert first.shape == (1,) and 0 <= first[0] < 49152
    assert backend.logits(np.array(ids)).shape == (len(ids), 49152)
    backend.close()


def test_supports_and_options():
    from quantscope.backends.llamacpp.backend import LlamaCppBackend, target_type

    backend = LlamaCppBackend()
    assert "GPU offload" in backend.supports(RunSpec(model=TINY, backend="llamacpp", device="cuda"))
    def spec(**kw):
        return RunSpec(model=TINY, backend="llamacpp", **kw)

    assert "q4_k_m" in backend.supports(spec(quant=QuantSpec(method="q9_9")))
    assert backend.supports(spec(workload=WorkloadSpec(batch=2))) is None  # B sequences in one llama_batch
    with pytest.raises(UserError, match="n_thread"):
        backend.supports(RunSpec(model=TINY, backend="llamacpp", options={"n_thread": 2}))
    assert target_type(RunSpec(quant=QuantSpec(dtype="fp16")), "synthetic") == "f16"
    assert target_type(RunSpec(), "gguf") == "asis"
    with pytest.raises(UserError, match="--quant f16"):
        target_type(RunSpec(quant=QuantSpec(dtype="fp16")), "gguf")


def test_corrupt_cached_gguf_is_rebuilt(cache_home, reference):
    from pathlib import Path

    seq, ref = reference
    backend, facts = loaded(ll_spec("q8_0"))
    backend.close()
    path = Path(facts["gguf_file"])
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # one flipped bit pattern in the last tensor's data
    path.write_bytes(bytes(data))
    again, facts = loaded(ll_spec("q8_0"))
    step = facts["conversions"][-1]
    assert step["cache_hit"] is False and "checksum" in step["rebuilt"]
    assert rel_err(again.logits(seq), ref) < 0.1
    again.close()


def test_batch_of_sequences_matches_each_decoded_alone(cache_home):
    """B = 3 different prompts prefilled together (n_batch 16: the flattened prompts cross chunks) and
    decoded one llama_decode per step: each row's greedy tokens and logits are those of the sequence
    run alone (llama.cpp's full-sequence logits, no batch). Tolerance 5e-3 of the logits' spread:
    the F16 KV cache and the kernels' row blocking differ between the two, nothing else."""
    rng = np.random.default_rng(7)
    prompts = rng.integers(0, 256, (3, 12))
    backend, facts = loaded(ll_spec(batch=3, n_batch=16, n_ubatch=16))
    assert facts["n_seq_max"] == 3
    steps = 6
    tokens = [backend.prefill(prompts)]
    logits = [backend.last_logits.copy()]
    for _ in range(steps):
        tokens.append(backend.decode(tokens[-1]))
        logits.append(backend.last_logits.copy())
    assert tokens[0].shape == (3,) and logits[0].shape == (3, 256)
    generated = np.stack(tokens, axis=1)  # [3, steps + 1]
    for b in range(3):
        alone = backend.logits(np.concatenate([prompts[b], generated[b, :-1]]))
        ref = alone[len(prompts[b]) - 1:]  # the rows that predicted each generated token
        np.testing.assert_array_equal(ref.argmax(-1), generated[b])
        assert rel_err(np.stack([step[b] for step in logits]), ref) < 5e-3
    backend.close()
