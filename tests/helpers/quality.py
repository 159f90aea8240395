"""Tiny numpy models that satisfy the part of the Backend protocol the quality pass uses."""

from __future__ import annotations

import numpy as np


class CharModel:
    """Tokens are characters (ord % vocab); logits depend causally on the current and previous token."""

    def __init__(
        self, vocab: int = 97, seed: int = 0, scale: float = 3.0, bos: int | None = 1, add_bos: bool = False
    ) -> None:
        rng = np.random.default_rng(seed)
        self.w_cur = (scale * rng.standard_normal((vocab, vocab))).astype(np.float32)
        self.w_prev = (scale * 0.5 * rng.standard_normal((vocab, vocab))).astype(np.float32)
        self._vocab = vocab
        self._bos = bos
        self.add_bos = add_bos
        self.calls: list[np.ndarray] = []

    @property
    def vocab_size(self) -> int:
        return self._vocab

    @property
    def bos_token_id(self) -> int | None:
        return self._bos

    def tokenize(self, text: str) -> list[int] | None:
        return [ord(c) % self._vocab for c in text]

    def logits(self, tokens: np.ndarray) -> np.ndarray:
        tokens = np.asarray(tokens, dtype=np.int64)
        self.calls.append(tokens.copy())
        prev = np.concatenate([[tokens[0]], tokens[:-1]])
        return (self.w_cur[tokens] + self.w_prev[prev]).astype(np.float32)


class NoisyModel(CharModel):
    """The same model with its logits perturbed: a stand-in for a quantized copy."""

    def __init__(self, base: CharModel, noise: float, seed: int = 1) -> None:
        self.__dict__.update(base.__dict__)
        rng = np.random.default_rng(seed)
        self.w_cur = base.w_cur + (noise * rng.standard_normal(base.w_cur.shape)).astype(np.float32)
        self.calls = []


class UniformModel(CharModel):
    """Every logit equal: every token has probability 1/V, so perplexity is exactly V."""

    def logits(self, tokens: np.ndarray) -> np.ndarray:
        self.calls.append(np.asarray(tokens).copy())
        return np.zeros((len(tokens), self._vocab), dtype=np.float32)


def text_of(n_chars: int, seed: int = 0) -> str:
    """Deterministic printable text."""
    rng = np.random.default_rng(seed)
    return "".join(chr(c) for c in rng.integers(32, 127, size=n_chars))
