"""The Backend protocol: what the runner and the quality pass ask of a runtime.

The runner owns all timing; a backend only does work. Every call that returns host data
(numpy arrays) has finished its device work, so a clock read after it is honest on CUDA too.
No torch types cross this interface: the quality pass and the runner see numpy only.

Adding a runtime touches one file: a class with these methods, registered in backends/__init__.py
as a lazy "module:attr" string, heavy imports inside `load`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    import numpy as np

    from quantscope.models.base import ModelArtifact
    from quantscope.spec import RunSpec


class Unsupported(Exception):
    """Raised by a backend when a combination cannot run here; the message is the library's reason."""


class Backend(Protocol):
    name: ClassVar[str]

    def supports(self, spec: RunSpec) -> str | None:
        """None when `spec` can run here, else the reason it cannot (found by a capability check)."""

    def load(self, spec: RunSpec, artifact: ModelArtifact) -> dict[str, Any]:
        """Load (and quantize/convert) the model. Returns facts to record (e.g. compile_s, convert_s)."""

    def tokenize(self, text: str) -> list[int] | None:
        """Token ids of `text`, or None when the model has no tokenizer (synthetic weights)."""

    @property
    def vocab_size(self) -> int: ...

    @property
    def bos_token_id(self) -> int | None: ...

    def prefill(self, input_ids: np.ndarray) -> np.ndarray:
        """Start a fresh sequence: [B, P] int64 prompt -> [B] greedy next tokens (cache kept)."""

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        """One step: [B] last tokens -> [B] greedy next tokens, extending the cache."""

    def logits(self, tokens: np.ndarray) -> np.ndarray:
        """No cache: [T] int64 token ids -> [T, V] float32 logits (position t predicts token t+1)."""

    def weight_bytes(self) -> int:
        """Bytes of the tensors as loaded (packed data, scales, zero points), not params x bits."""

    def device_memory(self) -> dict[str, int]:
        """Accelerator memory facts in bytes (torch max allocated/reserved); {} on CPU."""

    def close(self) -> None: ...
