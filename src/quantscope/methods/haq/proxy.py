"""The quality signal: a fast KLD proxy of a policy against the FP32 reference, on calibration text.

The reference model (backends/torch/reference.py) runs the calibration windows (methods/calibration.py:
standard-library docstrings, never the evaluation text) once; its log-probs are kept. A policy's
proxy is the mean over those positions of KL(reference || model with each searched Linear's weight
replaced by its round trip through the policy's format) — the same definition the quality pass uses
(llama-perplexity --kl-divergence), on other text and fewer tokens.

llama.cpp formats round-trip through the `gguf` package's quantize/dequantize, numpy ports of
ggml's reference quantizers, so the weights are those the exported GGUF holds. torchao formats use
their weight layouts (int8 per row, int4 asymmetric per group of 64, bf16 scale and zero); int8
dynamic's activation rounding is not simulated (noted in the search's output).

Round-tripped weights are kept in fp16 (half the memory of fp32; its rounding, ~1e-3 relative, is
far below any 8-bit format's) so an episode swaps tensors instead of re-quantizing them.
`sensitivity` is the per-layer table the ILP baseline needs: the proxy with one layer quantized.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from quantscope.methods.calibration import CalibrationSpec, calibration_batches
from quantscope.methods.haq.space import Layer


def roundtrip(backend: str, fmt: str, w: np.ndarray) -> np.ndarray:
    """`w` (out x in, fp32) as the runtime will hold it in `fmt`, dequantized to fp32."""
    if backend == "llamacpp":
        from gguf import quants

        from quantscope.methods.haq.export import ggml_type

        t = ggml_type(fmt)
        return quants.dequantize(quants.quantize(w, t), t).reshape(w.shape).astype(np.float32)
    if fmt == "none":
        return w
    if fmt in ("int8-weight-only", "int8-dynamic"):  # symmetric int8 per output row
        scale = np.maximum(np.abs(w).max(axis=1, keepdims=True), 1e-12) / 127
        return (np.clip(np.round(w / scale), -128, 127) * scale).astype(np.float32)
    if fmt == "int4-weight-only":  # asymmetric uint4 per group of 64 (tinygemm layout)
        g = w.reshape(w.shape[0], -1, 64)
        lo, hi = g.min(axis=2, keepdims=True), g.max(axis=2, keepdims=True)
        scale = np.maximum(hi - lo, 1e-12) / 15
        q = np.clip(np.round((g - lo) / scale), 0, 15)
        return (q * scale + lo).reshape(w.shape).astype(np.float32)
    raise ValueError(f"no round trip for {backend} {fmt}")


class KLDProxy:
    """Mean KL(reference || policy) on calibration windows; `policy` maps layer index -> format."""

    def __init__(self, artifact: Any, seed: int, layers: list[Layer], backend: str,
                 calibration: CalibrationSpec = CalibrationSpec(samples=2, seq_len=128)) -> None:
        import torch

        from quantscope.backends.torch.reference import reference_model
        from quantscope.models.materialize import hf_folder, hf_tokenizer

        self.backend, self.layers = backend, layers
        self.model = reference_model(artifact, seed)
        folder = hf_folder(artifact) if artifact.format != "synthetic" else None
        found = hf_tokenizer(folder) if folder else None
        tokenize = (lambda text: found[0].encode(text, add_special_tokens=False).ids) if found else (lambda _t: None)
        cal = calibration_batches(calibration, tokenize, self.model.config.vocab_size)
        self.calibration_info = cal.info
        self.ids = torch.tensor(cal.batches, dtype=torch.long)
        mods = dict(self.model.named_modules())
        self.linears = [mods[lay.module] for lay in layers]
        self.original = [m.weight.detach().clone() for m in self.linears]
        self.cache: dict[tuple[int, str], Any] = {}
        self.current: list[str | None] = [None] * len(layers)  # None: the reference weight
        with torch.inference_mode():
            self.ref_logp = torch.log_softmax(self.model(self.ids).logits.float(), dim=-1)

    def _weight(self, i: int, fmt: str) -> Any:
        import torch

        key = (i, fmt)
        if key not in self.cache:
            w = self.original[i].numpy()
            self.cache[key] = torch.from_numpy(roundtrip(self.backend, fmt, w)).to(torch.float16)
        return self.cache[key]

    def _set(self, i: int, fmt: str | None) -> None:
        if self.current[i] == fmt:
            return
        with __import__("torch").no_grad():
            src = self.original[i] if fmt is None else self._weight(i, fmt)
            self.linears[i].weight.copy_(src)
        self.current[i] = fmt

    def _kld(self) -> float:
        import torch

        with torch.inference_mode():
            logq = torch.log_softmax(self.model(self.ids).logits.float(), dim=-1)
            kl = (self.ref_logp.exp() * (self.ref_logp - logq)).sum(-1)
        return float(kl.mean())

    def kld(self, policy: list[str]) -> float:
        for i, fmt in enumerate(policy):
            self._set(i, fmt)
        return self._kld()

    def sensitivity(self, formats: tuple[str, ...], progress: Callable[[int, int], None] = lambda _a, _b: None
                    ) -> np.ndarray:
        """[layers x formats]: the proxy with only layer i in format f (every other layer FP32)."""
        for i in range(len(self.layers)):
            self._set(i, None)
        out = np.zeros((len(self.layers), len(formats)))
        for i in range(len(self.layers)):
            for j, fmt in enumerate(formats):
                self._set(i, fmt)
                out[i, j] = self._kld()
            self._set(i, None)
            self.cache = {k: v for k, v in self.cache.items() if k[0] != i} if len(self.layers) > 400 else self.cache
            progress(i + 1, len(self.layers))
        return out
