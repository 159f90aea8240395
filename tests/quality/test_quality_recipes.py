"""Recipes cut the stream as llama-perplexity / GPTQ do and score exactly the intended (logit, token)
pairs."""

import numpy as np
import pytest
from helpers.quality import CharModel

from quantscope.errors import UserError
from quantscope.quality.quality_pass import plan_for
from quantscope.quality.recipes import GPTQ_CTX, make_plan, recipe_ctx
from quantscope.spec import QualitySpec

pytestmark = pytest.mark.unit


def test_llama_recipe_two_chunks_of_8_with_bos():
    text = list(range(100, 117))  # 17 text tokens; with BOS in front the stream is 18 -> 2 chunks of 8
    plan = make_plan("llama", text, ctx=8, max_tokens=1000, bos_token_id=1, add_bos=True)
    # stream = [1, 100, ..., 116]; chunk i = stream[8i : 8i+8] with its first token replaced by BOS
    assert plan.windows.tolist() == [
        [1, 100, 101, 102, 103, 104, 105, 106],
        [1, 108, 109, 110, 111, 112, 113, 114],  # 107 (stream[8]) replaced by BOS
    ]
    assert plan.first == 4 and plan.positions.tolist() == [4, 5, 6]
    # logit at position p scores windows[i, p+1]: (4 -> 104), (5 -> 105), (6 -> 106) in chunk 0
    pairs = [(i, int(p), int(plan.windows[i, p + 1])) for i in range(2) for p in plan.positions]
    assert pairs == [(0, 4, 104), (0, 5, 105), (0, 6, 106), (1, 4, 112), (1, 5, 113), (1, 6, 114)]
    assert plan.targets.tolist() == [[104, 105, 106], [112, 113, 114]]
    assert plan.tokens_scored == 6 and plan.scored_per_window == 8 - 8 // 2 - 1
    assert plan.bos == "each-chunk:1" and plan.stream_tokens == 18 and plan.windows_available == 2


def test_llama_recipe_without_bos_keeps_tokens_and_takes_whole_chunks_for_the_budget():
    text = list(range(100, 140))  # 40 tokens -> 5 chunks of 8 available
    plan = make_plan("llama", text, ctx=8, max_tokens=7, bos_token_id=1, add_bos=False)
    assert plan.n_windows == 3  # ceil(7 / 3 per chunk)
    assert plan.windows[:, 0].tolist() == [100, 108, 116]
    assert plan.bos == "none" and plan.windows_available == 5
    assert make_plan("llama", text, ctx=8, max_tokens=10**6, bos_token_id=1, add_bos=False).n_windows == 5


def test_llama_recipe_refuses_fewer_than_two_contexts_like_llama_perplexity():
    with pytest.raises(UserError, match="at least 16"):
        make_plan("llama", list(range(15)), ctx=8, max_tokens=10, bos_token_id=1, add_bos=False)


def test_gptq_recipe_scores_every_token_but_each_windows_first():
    text = list(range(100, 125))  # 25 tokens -> 3 windows of 8, the last token dropped
    plan = make_plan("gptq", text, ctx=8, max_tokens=100, bos_token_id=1, add_bos=False)
    assert plan.windows.tolist() == [list(range(100, 108)), list(range(108, 116)), list(range(116, 124))]
    assert plan.first == 0 and plan.positions.tolist() == list(range(7))
    assert plan.targets.tolist() == [list(range(101, 108)), list(range(109, 116)), list(range(117, 124))]
    assert plan.tokens_scored == 21
    bos = make_plan("gptq", text, ctx=8, max_tokens=100, bos_token_id=1, add_bos=True)
    assert bos.windows[0, 0] == 1 and bos.windows[1, 0] == 107 and bos.bos == "stream-start:1"


def test_recipe_ctx_defaults_and_clipping():
    default = QualitySpec().ctx
    assert recipe_ctx("llama", default) == default
    assert recipe_ctx("gptq", default) == GPTQ_CTX
    assert recipe_ctx("gptq", default, model_ctx=1024) == 1024
    assert recipe_ctx("gptq", 256) == 256
    with pytest.raises(UserError):
        recipe_ctx("wikitext", 512)


def test_plan_for_feeds_the_model_exactly_the_plans_windows(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("abcdefghij" * 10)
    spec = QualitySpec(recipe="llama", ctx=16, max_tokens=20, text=f"file:{path}")
    plan, text = plan_for(CharModel(), spec, add_bos=True)
    assert plan.n_windows == 3 and (plan.windows[:, 0] == 1).all()
    assert text.sha256 and plan.stream_tokens == 101


def test_make_plan_needs_a_bos_id_to_add_one():
    with pytest.raises(UserError, match="BOS"):
        make_plan("llama", list(range(40)), ctx=8, max_tokens=5, bos_token_id=None, add_bos=True)
    assert np.array_equal(
        make_plan("llama", list(range(40)), ctx=8, max_tokens=5, bos_token_id=None, add_bos=False).windows[0],
        np.arange(8),
    )
