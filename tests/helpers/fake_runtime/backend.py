"""A numpy-only runtime satisfying quantscope.backends.base.Backend: a bigram table as its "weights".

It does real work (a matrix-vector product per token), so the timings it gives are real, if small.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from quantscope.backends.base import Unsupported


class FakeBackend:
    name: ClassVar[str] = "fake"

    def supports(self, spec) -> str | None:
        if spec.device != "cpu":
            return "the fake runtime runs on the CPU only"
        if spec.quant.method != "none":
            return f"the fake runtime has no quantization method {spec.quant.method!r}"
        return None

    def load(self, spec, artifact) -> dict[str, Any]:
        if not artifact.synthetic:
            raise Unsupported("the fake runtime runs synthetic shapes only")
        self._vocab = int(artifact.config["vocab_size"])
        width = int(artifact.config["hidden_size"])
        rng = np.random.default_rng(spec.seed)
        dtype = np.float32 if spec.quant.dtype == "fp32" else np.float16
        self.embed = rng.standard_normal((self._vocab, width)).astype(dtype)
        self.head = rng.standard_normal((width, self._vocab)).astype(dtype)
        return {"threads": 1, "fake_width": width}

    def tokenize(self, text: str) -> list[int] | None:
        return None

    @property
    def vocab_size(self) -> int:
        return self._vocab

    @property
    def bos_token_id(self) -> int | None:
        return None

    def _next(self, tokens: np.ndarray) -> np.ndarray:
        return np.argmax(self.embed[tokens] @ self.head, axis=-1).astype(np.int64)

    def prefill(self, input_ids: np.ndarray) -> np.ndarray:
        return self._next(input_ids[:, -1])

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        return self._next(tokens)

    def logits(self, tokens: np.ndarray) -> np.ndarray:
        return (self.embed[tokens] @ self.head).astype(np.float32)

    def weight_bytes(self) -> int:
        return int(self.embed.nbytes + self.head.nbytes)

    def device_memory(self) -> dict[str, int]:
        return {}

    def close(self) -> None:
        self.embed = self.head = None
