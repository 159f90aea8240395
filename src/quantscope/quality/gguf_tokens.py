"""llama.cpp's own tokens for a GGUF source, so that our perplexity scores what llama-perplexity scores.

transformers converts a GGUF vocabulary into its own tokenizer, and the conversion does not always cut
a text where llama.cpp does: on an indented plain-text file the bundled model gave 7,658 tokens
against llama.cpp's 7,639, the first difference at token 795 ("\\n\\n  " split otherwise), and the
PyTorch perplexity landed 1.18 % from llama-perplexity's (issue 16). llama-cpp-python reads the same
vocabulary with llama.cpp's tokenizer (vocab_only: no weights are loaded), so a GGUF source's quality
pass takes its tokens from there when llama-cpp-python is installed; otherwise it keeps transformers'
and the spec says so (`QualitySpec.tokens`), never one while claiming the other.

Tokens come without BOS and with special-token text left as text (llama-perplexity's parse_special
is false); the recipe puts BOS at the head of each window as llama.cpp does.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any


def available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def tokens_for(model: Any) -> str:
    """The QualitySpec.tokens for a ModelSpec: llama.cpp's for a GGUF file (the bundled model is one)
    when llama-cpp-python is there to read it, else the model's own through transformers."""
    return "llama.cpp" if model.source in ("bundled", "gguf") and available() else "model"


def llama_cpp_tokenizer(gguf_path: str | Path) -> tuple[Callable[[str], list[int]], str]:
    """(tokenize, name): llama.cpp's tokenizer on the file's vocabulary, and a name for the reference key."""
    import llama_cpp

    vocab = llama_cpp.Llama(model_path=str(gguf_path), vocab_only=True, verbose=False)

    def tokenize(text: str) -> list[int]:
        return vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    return tokenize, f"llama.cpp tokenizer (llama-cpp-python {llama_cpp.__version__})"


class WithTokens:
    """A backend whose text is cut by another tokenizer; everything else is the backend's."""

    def __init__(self, backend: Any, tokenize: Callable[[str], list[int]]) -> None:
        self._backend = backend
        self.tokenize = tokenize

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)
