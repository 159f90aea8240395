"""bitsandbytes through transformers: LLM.int8(), NF4 and FP4 weights quantized while loading.

Loading goes through `from_pretrained(..., quantization_config=BitsAndBytesConfig(...))` (the
handler of the config gives those arguments), which is how bitsandbytes is used in practice. A
synthetic model is written to a private temporary folder first so that it takes the same path.
Which configs run here is found by trying: one bitsandbytes layer, then a tiny model loaded the
same way, are quantized and run once; the library's own message becomes the reason.

Weight bytes: bitsandbytes keeps part of a quantized weight outside the module's parameters
(Params4bit.quant_state: absmax, nested absmax and code; Int8Params/MatmulLtState: SCB), so
`weight_bytes` adds those to the parameters' storage.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Iterator
from typing import Any

from quantscope.backends.base import Unsupported
from quantscope.backends.torch.backend import TORCH_DTYPES, TorchBackend, cuda_reason
from quantscope.backends.torch.weights import tensor_bytes
from quantscope.backends.torchao.backend import library_reason, method_reason
from quantscope.methods import QuantConfig, handler_for, overrides_reason
from quantscope.models.base import ModelArtifact
from quantscope.spec import QuantSpec, RunSpec

# The probe model: widths that are multiples of bitsandbytes' 4-bit block (64) and of the CPU
# 4-bit packing's block_n (32); small enough to load in well under a second.
PROBE_CONFIG = {"model_type": "llama", "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 1,
                "num_attention_heads": 2, "num_key_value_heads": 2, "vocab_size": 128,
                "max_position_embeddings": 64, "tie_word_embeddings": True}


def quant_state_tensors(state: Any) -> Iterator[Any]:
    """Tensors held by a bitsandbytes QuantState, including the nested state of double quantization."""
    import torch

    for value in vars(state).values():
        if isinstance(value, torch.Tensor):
            yield value
        elif type(value).__name__ == "QuantState":
            yield from quant_state_tensors(value)


def bnb_weight_bytes(model: Any) -> int:
    """Parameters and buffers plus bitsandbytes' side tensors, each storage counted once."""
    seen: set[int] = set()
    tensors = [p.data for p in model.parameters()] + list(model.buffers())
    for module in model.modules():
        weight = getattr(module, "weight", None)
        state = getattr(weight, "quant_state", None)  # Params4bit
        if state is not None:
            tensors += list(quant_state_tensors(state))
        # LLM.int8 row scales: on the weight until the first forward, then on the module's state.
        for holder in (weight, getattr(module, "state", None)):
            scb = getattr(holder, "SCB", None)
            if scb is not None:
                tensors.append(scb)
    return sum(tensor_bytes(t, seen) for t in tensors)


def probe_layer(kwargs: dict[str, Any], device: str, dtype: str) -> None:
    """Quantize one bitsandbytes Linear as transformers' replace_with_bnb_linear builds it, run it once.

    transformers gathers per-weight errors into one RuntimeError of its own while loading, so this
    stage is what surfaces bitsandbytes' own message (e.g. a build without a 4-bit kernel here).
    """
    import bitsandbytes as bnb
    import torch

    qc = kwargs["quantization_config"]
    width = PROBE_CONFIG["hidden_size"]
    weight = torch.randn(width, width, generator=torch.Generator().manual_seed(0)) * 0.02
    if qc.load_in_8bit:
        layer = bnb.nn.Linear8bitLt(width, width, bias=False, has_fp16_weights=False,
                                    threshold=qc.llm_int8_threshold)
        layer.weight = bnb.nn.Int8Params(weight, requires_grad=False, has_fp16_weights=False)
        x_dtype = getattr(torch, TORCH_DTYPES[dtype])
    else:
        layer = bnb.nn.Linear4bit(width, width, bias=False, compute_dtype=qc.bnb_4bit_compute_dtype,
                                  compress_statistics=qc.bnb_4bit_use_double_quant,
                                  quant_type=qc.bnb_4bit_quant_type)
        layer.weight = bnb.nn.Params4bit(weight, requires_grad=False, quant_type=qc.bnb_4bit_quant_type,
                                         compress_statistics=qc.bnb_4bit_use_double_quant, module=layer)
        x_dtype = qc.bnb_4bit_compute_dtype
    layer = layer.to(device)  # bitsandbytes quantizes here
    with torch.inference_mode():
        layer(torch.randn(2, width, dtype=x_dtype, device=device))


@functools.lru_cache(maxsize=32)
def probe(config: QuantConfig, device: str, dtype: str) -> str | None:
    """None if bitsandbytes quantizes and runs one layer, then a tiny model through transformers, here."""
    import numpy as np

    try:
        import bitsandbytes
    except ImportError as e:
        return f"bitsandbytes is not installed ({e}); pip install 'quantscope[bnb]'"
    quant = QuantSpec(dtype=dtype, method=config.method, params=tuple(config.to_dict()["params"].items()))
    spec = RunSpec(backend="bnb", device=device, quant=quant)
    artifact = ModelArtifact(format="synthetic", synthetic=True, config=PROBE_CONFIG, arch="probe")
    backend = BnbBackend()
    try:
        probe_layer(handler_for(config)(config, spec), device, dtype)
        backend.load(spec, artifact)
        out = backend.logits(np.arange(8, dtype=np.int64))
    except Exception as e:  # noqa: BLE001 - the library's error is the reason this cannot run here
        return library_reason("bitsandbytes", bitsandbytes.__version__, e)
    finally:
        backend.close()
    if not np.isfinite(out).all():
        return f"bitsandbytes {bitsandbytes.__version__}: {config.describe()} gives non-finite logits"
    return None


class BnbBackend(TorchBackend):
    name = "bnb"

    def supports(self, spec: RunSpec) -> str | None:
        why = "transformers quantizes every Linear while loading (llm_int8_skip_modules is not wired)"
        reason = overrides_reason(spec, why)
        if reason:
            return reason
        config, reason = method_reason(spec, self.name)
        if reason:
            return reason
        return cuda_reason(spec.device) or probe(config, spec.device, spec.quant.dtype)

    def _config(self, spec: RunSpec) -> QuantConfig:
        config, reason = method_reason(spec, self.name)
        if reason:
            raise Unsupported(reason)
        return config

    def load_kwargs(self, spec: RunSpec) -> dict[str, Any]:
        config = self._config(spec)
        return handler_for(config)(config, spec)

    def _build(self, spec: RunSpec, artifact: ModelArtifact, dtype: Any) -> Any:
        if artifact.format != "synthetic":
            return super()._build(spec, artifact, dtype)
        from transformers import AutoModelForCausalLM

        device, self.device = self.device, "cpu"  # build the random weights on the host, then reload
        try:
            model = super()._build(spec, artifact, dtype)
        finally:
            self.device = device
        with tempfile.TemporaryDirectory(prefix="quantscope-bnb-") as folder:
            model.save_pretrained(folder)
            del model
            return AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, use_safetensors=True,
                                                        **self.load_kwargs(spec))

    def quantize(self, spec: RunSpec) -> dict[str, Any]:
        import bitsandbytes

        config = self._config(spec)
        modules = self.model.modules()
        kinds = sorted({type(m).__name__ for m in modules if type(m).__module__.startswith("bitsandbytes")})
        if not kinds:
            raise Unsupported(f"transformers put no bitsandbytes layer in this model for {config.describe()}")
        return {"quant_config": config.to_dict(), "bnb_layers": kinds,
                "bitsandbytes": bitsandbytes.__version__}

    def weight_bytes(self) -> int:
        return bnb_weight_bytes(self.model)

