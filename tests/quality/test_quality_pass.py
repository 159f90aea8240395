"""run_quality end to end on numpy models: ground truths (uniform -> PPL = V, self -> KLD 0) and pairing."""

import math

import numpy as np
import pytest
from helpers.quality import CharModel, NoisyModel, UniformModel, text_of

from quantscope.errors import UserError
from quantscope.quality.kld import compact_rows, kld_compact, kld_exact, log_softmax, row_starts
from quantscope.quality.perplexity import compare_ppl, ppl_with_se
from quantscope.quality.quality_pass import run_quality
from quantscope.spec import QualitySpec

pytestmark = pytest.mark.unit


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(text_of(3000))
    return f"file:{path}"


def spec_for(text: str, recipe: str = "llama", ctx: int = 64, max_tokens: int = 500) -> QualitySpec:
    return QualitySpec(recipe=recipe, ctx=ctx, max_tokens=max_tokens, text=text)


def test_uniform_logits_give_perplexity_equal_to_vocab_size(text_file):
    model = UniformModel(vocab=97)
    ms, ref = run_quality(model, spec_for(text_file), model_digest="u", tokenizer_name="chars")
    (nll,) = ms
    ppl, se = ppl_with_se(nll.samples)
    assert nll.name == "nll" and nll.unit == "nat"
    assert ppl == pytest.approx(97.0, rel=1e-12) and se == pytest.approx(0.0, abs=1e-9)
    assert len(nll.samples) == 500 // 31 * 31 + 31  # whole chunks of 64 // 2 - 1 = 31 scored tokens
    assert ref is not None and ref.tokens_scored == len(nll.samples)


def test_scores_the_right_tokens_of_each_chunk(text_file):
    model = CharModel(add_bos=True)
    ms, _ = run_quality(
        model, spec_for(text_file, ctx=16, max_tokens=14), model_digest="m", tokenizer_name="c"
    )
    assert len(model.calls) == 2 and all(call[0] == 1 for call in model.calls)  # BOS starts each chunk
    want = []
    for window in list(model.calls):
        logp = log_softmax(model.logits(window))
        want += [-logp[p, window[p + 1]] for p in range(8, 15)]  # first = 16/2, last logit scored = 14
    assert np.allclose(ms[0].samples, want, rtol=1e-12)
    meta = ms[0].meta
    assert (meta["recipe"], meta["ctx"], meta["tokens_scored"], meta["bos"]) == (
        "llama",
        16,
        14,
        "each-chunk:1",
    )
    assert meta["text_source"] == text_file and len(meta["text_sha256"]) == 64 and meta["tokenizer"] == "c"
    assert meta["timing"]["forward_tokens"] == 32 and meta["timing"]["forward_tokens_per_s"] > 0


def test_a_model_against_itself_has_zero_kld_and_all_top_tokens_the_same(text_file):
    model = CharModel()
    spec = spec_for(text_file)
    _, ref = run_quality(model, spec, model_digest="m", tokenizer_name="c")
    ms, used = run_quality(model, spec, model_digest="m", tokenizer_name="c", reference=ref)
    got = {m.name: np.array(m.samples) for m in ms}
    assert set(got) == {"nll", "kld", "delta_p", "same_top1", "nll_delta"} and used is ref
    assert np.abs(got["kld"]).max() < 1e-6
    assert got["same_top1"].mean() == 1.0
    assert np.abs(got["delta_p"]).max() < 1e-6 and np.abs(got["nll_delta"]).max() < 1e-6
    assert ms[1].meta["reference"]["entries_per_token"] == ref.entries_per_token


def test_kld_against_a_perturbed_model_matches_the_exact_divergence(text_file):
    base = CharModel(vocab=97)
    noisy = NoisyModel(base, noise=0.3)
    spec = spec_for(text_file, ctx=32, max_tokens=300)
    _, ref_full = run_quality(base, spec, model_digest="m", tokenizer_name="c", entries_per_token=97)
    _, ref_small = run_quality(base, spec, model_digest="m", tokenizer_name="c", entries_per_token=4)
    full, _ = run_quality(noisy, spec, model_digest="q", tokenizer_name="c", reference=ref_full)
    small, _ = run_quality(noisy, spec, model_digest="q", tokenizer_name="c", reference=ref_small)
    # exact, from both full distributions in memory
    exact, same, dp = [], [], []
    for window in ref_full.windows:
        # ctx 32: first = 16; logits 16..30 score tokens 17..31
        logp, logq = log_softmax(base.logits(window))[16:31], log_softmax(noisy.logits(window))[16:31]
        tgt = window[17:32]
        exact += kld_exact(logp, logq).tolist()
        same += (logp.argmax(1) == logq.argmax(1)).tolist()
        dp += (np.exp(logq[np.arange(15), tgt]) - np.exp(logp[np.arange(15), tgt])).tolist()
    get = {m.name: np.array(m.samples) for m in full}
    # all entries stored: no tail; the log-probs are float16, whose first-order error kld_compact cancels
    assert np.allclose(get["kld"], exact, rtol=5e-3, atol=1e-6)
    assert get["kld"].mean() == pytest.approx(np.mean(exact), rel=5e-4)
    assert np.array_equal(get["same_top1"], same) and np.allclose(get["delta_p"], dp, atol=1e-6)
    approx = np.array(next(m.samples for m in small if m.name == "kld"))
    assert (approx <= np.array(exact) + 1e-6).all()  # grouping the tail is a lower bound
    c = compare_ppl(get["nll"], ref_full.nll)
    assert get["nll_delta"].mean() == pytest.approx(c.ln_ratio, abs=1e-6)
    assert c.ln_ratio == pytest.approx(
        math.log(ppl_with_se(get["nll"])[0] / ppl_with_se(ref_full.nll)[0]), abs=1e-6
    )


def test_compact_rows_keeps_the_most_probable_entries_of_a_block_and_each_rows_argmax():
    logp = log_softmax(np.array([[0.0, 3.0, 3.0, 2.0, -1.0], [0.0, 5.0, 0.0, 0.0, 0.0]]))
    counts, ids, vals, tail = compact_rows(logp, 2)  # 4 entries for the block: the 4 largest probabilities
    assert counts.tolist() == [3, 1] and ids.tolist() == [1, 2, 3, 1]  # row 0: ties by lower id
    assert ids[row_starts(counts)].tolist() == np.argmax(logp, axis=1).tolist()
    assert np.allclose(vals, logp[[0, 0, 0, 1], [1, 2, 3, 1]], atol=1e-3) and vals.dtype == np.float16
    assert float(np.exp(tail[0])) == pytest.approx(float(np.exp(logp[0, [0, 4]]).sum()), rel=1e-6)
    full = compact_rows(logp, 5)
    assert np.isneginf(full[3]).all() and np.abs(kld_compact(*full, logp)).max() < 1e-6


def test_compact_kld_is_a_lower_bound_that_tightens_with_more_entries():
    rng = np.random.default_rng(3)
    logp = log_softmax(2.0 * rng.standard_normal((64, 500)))
    logq = log_softmax(logp + 0.2 * rng.standard_normal((64, 500)))
    exact = kld_exact(logp, logq).mean()
    approx = [kld_compact(*compact_rows(logp, k), logq).mean() for k in (4, 32, 128, 500)]
    assert all(a <= exact * (1 + 1e-3) for a in approx) and approx == sorted(approx)
    assert approx[-1] == pytest.approx(exact, rel=2e-3)


def test_reference_from_another_evaluation_is_refused(text_file, tmp_path):
    model = CharModel()
    _, ref = run_quality(model, spec_for(text_file, max_tokens=100), model_digest="m", tokenizer_name="c")
    with pytest.raises(UserError, match="another evaluation"):
        run_quality(
            model,
            spec_for(text_file, ctx=32, max_tokens=100),
            model_digest="m",
            tokenizer_name="c",
            reference=ref,
        )
    with pytest.raises(UserError, match="max_tokens"):
        run_quality(
            model, spec_for(text_file, max_tokens=1000), model_digest="m", tokenizer_name="c", reference=ref
        )
    other = tmp_path / "other.txt"
    other.write_text(text_of(3000, seed=5))
    with pytest.raises(UserError, match="another evaluation"):
        run_quality(
            model,
            spec_for(f"file:{other}", max_tokens=100),
            model_digest="m",
            tokenizer_name="c",
            reference=ref,
        )


def test_a_smaller_budget_uses_a_prefix_of_the_reference(text_file):
    model, noisy = CharModel(), NoisyModel(CharModel(), noise=0.2)
    _, ref = run_quality(model, spec_for(text_file, max_tokens=300), model_digest="m", tokenizer_name="c")
    ms, _ = run_quality(
        noisy, spec_for(text_file, max_tokens=60), model_digest="q", tokenizer_name="c", reference=ref
    )
    assert len(ms[0].samples) == 62 and ref.n_windows == 10


def test_gptq_recipe_end_to_end(text_file):
    model = UniformModel(vocab=50)
    ms, _ = run_quality(
        model,
        spec_for(text_file, recipe="gptq", ctx=100, max_tokens=200),
        model_digest="u",
        tokenizer_name="c",
    )
    assert len(model.calls) == 3 and len(ms[0].samples) == 3 * 99
    assert ppl_with_se(ms[0].samples)[0] == pytest.approx(50.0, rel=1e-12)


def test_a_model_without_tokenizer_is_a_user_error(text_file):
    class Synthetic(CharModel):
        def tokenize(self, text):
            return None

    with pytest.raises(UserError, match="no tokenizer"):
        run_quality(Synthetic(), spec_for(text_file), model_digest="s", tokenizer_name="none")


def test_a_time_cap_ends_a_compared_pass_after_whole_windows_and_never_the_reference(text_file):
    import dataclasses
    import time

    from quantscope.analysis.compare import capped_notes

    class Slow(CharModel):
        def logits(self, tokens):
            time.sleep(0.02)
            return super().logits(tokens)

    spec = dataclasses.replace(spec_for(text_file), max_seconds=0.01)
    ref_ms, ref = run_quality(Slow(), spec, model_digest="m", tokenizer_name="c")
    assert "capped" not in ref_ms[0].meta and ref.tokens_scored == len(ref_ms[0].samples) > 31
    ms, _ = run_quality(Slow(), spec, model_digest="m", tokenizer_name="c", reference=ref)
    meta = ms[0].meta
    assert meta["windows"] == 1 and meta["tokens_scored"] == 31 and all(len(m.samples) == 31 for m in ms)
    assert meta["capped"] == {"max_seconds": 0.01, "windows_planned": ref.n_windows,
                              "tokens_planned": ref.tokens_scored}

    class Row:  # what capped_notes reads of a Result
        def get(self, name):
            return ms[0] if name == "nll" else None

    (note,) = capped_notes([(7, Row())])
    assert "run 7 31 of" in note and "0.01 s cap" in note
