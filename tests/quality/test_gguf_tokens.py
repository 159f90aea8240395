"""A GGUF source's quality pass cuts the text with llama.cpp's tokenizer, not transformers' conversion."""

from __future__ import annotations

import numpy as np
import pytest

from quantscope.models import parse_model
from quantscope.quality.gguf_tokens import WithTokens, llama_cpp_tokenizer, tokens_for
from quantscope.quality.quality_pass import plan_for
from quantscope.spec import QualitySpec, RunSpec

llama_cpp = pytest.importorskip("llama_cpp")
pytestmark = pytest.mark.unit

TEXTS = {
    "prose": "The quick brown fox jumps over the lazy dog. It was not amused, and said so twice.",
    # issue 16's case: indented paragraphs after blank lines ("\n\n  ") split otherwise by transformers
    "indented": "GNU GENERAL PUBLIC LICENSE\n\n  Version 3, 29 June 2007\n\n    Preamble\n\n  The licenses "
                "for most software\n\t\tare designed to take away your freedom.\n\n\n   End.\n",
    "code": "def f(x):\n    if x:\n        return {'a': [1, 2]}\n\n\n    return None  # done\n",
}


def cpp_ids(path: str, text: str) -> list[int]:
    """llama.cpp's tokenizer through its C API, as llama-perplexity calls it (no BOS, no special parsing)."""
    model = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
    data = text.encode()
    buf = (llama_cpp.llama_token * (len(data) + 8))()
    n = llama_cpp.llama_tokenize(model._model.vocab, data, len(data), buf, len(buf), False, False)
    return list(buf[:n])


@pytest.fixture(scope="module")
def gguf() -> str:
    from quantscope.models.bundled import bundled_path

    return bundled_path()


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_quality_tokens_are_llama_cpps_own(gguf, name):
    tokenize, label = llama_cpp_tokenizer(gguf)
    assert tokenize(TEXTS[name]) == cpp_ids(gguf, TEXTS[name])
    assert label.startswith("llama.cpp tokenizer")


def test_the_plan_of_a_gguf_reference_is_made_of_llama_cpp_tokens(gguf):
    class Backend:  # only what plan_for reads; its own tokenize must not be used
        bos_token_id, add_bos, vocab_size = 1, False, 49152

        def tokenize(self, text):
            raise AssertionError("the backend's tokenizer was used")

    text = TEXTS["indented"] * 60
    tokenize, _ = llama_cpp_tokenizer(gguf)
    from quantscope.quality.text import Text

    plan, _ = plan_for(WithTokens(Backend(), tokenize), QualitySpec(ctx=64, max_tokens=64),
                       text=Text("test", text, "0" * 64))
    ids = cpp_ids(gguf, text)
    assert np.array_equal(plan.windows[0], ids[:64])


def test_gguf_sources_ask_for_llama_cpp_tokens_and_keep_the_old_key_otherwise():
    assert tokens_for(parse_model(None)) == "llama.cpp"
    assert tokens_for(parse_model("synthetic:tiny-llama")) == "model"
    plain = RunSpec(model=parse_model(None))
    assert "tokens" not in plain.to_dict()["quality"]  # stored form and key hash as before
    cut = RunSpec(model=parse_model(None), quality=QualitySpec(tokens="llama.cpp"))
    assert cut.key_hash() != plain.key_hash()
