"""What the two ONNX Runtime backends (ort, ortgenai) share: an exported model folder's tokenizer and
metadata answer the quality pass's questions, and a thread count option is checked the same way.

>>> check_threads("ort", None) is None
True
"""

from __future__ import annotations

from typing import Any

from quantscope.errors import UserError


def check_threads(backend: str, n_threads: int | None) -> None:
    """An `n_threads` option is a positive integer (or left out: the run's --threads, else ORT's default)."""
    if n_threads is not None and n_threads < 1:
        raise UserError(f"{backend}: n_threads must be a positive integer, got {n_threads}")


class ExportedTokenizer:
    """tokenize / vocab_size / bos_token_id from an exported folder's tokenizer.json (`tokenizer`, a
    `tokenizers.Tokenizer` or None) and its metadata (`meta`, with vocab_size; `bos`, the BOS id or None)."""

    tokenizer: Any = None
    meta: dict[str, Any]
    bos: Any = None

    def tokenize(self, text: str) -> list[int] | None:
        if self.tokenizer is None:
            return None
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    @property
    def vocab_size(self) -> int:
        return int(self.meta["vocab_size"])

    @property
    def bos_token_id(self) -> int | None:
        return None if self.bos is None else int(self.bos)
