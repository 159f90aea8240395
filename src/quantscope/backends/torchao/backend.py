"""torchao: PyTorch-native quantization (`torchao.quantization.quantize_`) of a transformers model.

Loading, the timed calls and the quality pass are TorchBackend's, so a torchao row compares with
a plain torch row; only `quantize` differs. Which configs run on this machine is found by trying
(`probe`): quantize a small Linear with the same config, dtype and device and run it once; the
library's own error message becomes the unsupported row's reason.

>>> from quantscope.spec import RunSpec, QuantSpec
>>> TorchaoBackend().supports(RunSpec(backend="torchao", quant=QuantSpec(method="nf4")))
"'nf4' is a bnb method; run it with --backend bnb"
"""

from __future__ import annotations

import functools
from typing import Any

from quantscope.backends.base import Unsupported
from quantscope.backends.torch.backend import TORCH_DTYPES, TorchBackend, cuda_reason
from quantscope.methods import QuantConfig, config_from_spec, handler_for
from quantscope.spec import RunSpec

# The probe's Linear: in_features a multiple of every group size torchao accepts (32..256),
# out_features a multiple of 32 (torchao's DA8W4 CPU kernel needs N % 32 == 0).
PROBE_IN, PROBE_OUT, PROBE_ROWS = 256, 64, 4


def library_reason(library: str, version: str, err: BaseException) -> str:
    """One line naming the library, its version and its own message."""
    text = str(err).strip().splitlines()
    first = text[0] if text else repr(err)
    return f"{library} {version}: {type(err).__name__}: {first}"


def method_reason(spec: RunSpec, backend: str) -> tuple[QuantConfig | None, str | None]:
    """The config of `spec` when `backend` runs it, else the reason it does not."""
    if spec.quant.method == "none":
        return None, (f"the {backend} backend quantizes; give --quant METHOD, "
                      f"or --backend torch for plain {spec.quant.dtype}")
    config = config_from_spec(spec.quant)
    if config.backend != backend:
        other = config.backend
        return None, f"{spec.quant.method!r} is a {other} method; run it with --backend {other}"
    return config, None


@functools.lru_cache(maxsize=64)
def probe(config: QuantConfig, device: str, dtype: str) -> str | None:
    """None if torchao quantizes and runs a small Linear with `config` here, else torchao's reason."""
    import torch

    try:
        import torchao
    except ImportError as e:
        return f"torchao is not installed ({e}); pip install 'quantscope[torchao]'"
    from quantscope.spec import QuantSpec

    spec = RunSpec(backend="torchao", device=device, quant=QuantSpec(dtype=dtype, method=config.method))
    torch_dtype = getattr(torch, TORCH_DTYPES[dtype])
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(PROBE_IN, PROBE_OUT, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.randn(PROBE_OUT, PROBE_IN, generator=gen) * 0.02)
    model = model.to(device=device, dtype=torch_dtype)
    x = torch.randn(PROBE_ROWS, PROBE_IN, generator=gen).to(device=device, dtype=torch_dtype)
    try:
        handler_for(config)(config, model, spec)
        with torch.inference_mode():
            y = model(x)
        if device == "cuda":
            torch.cuda.synchronize()
    except Exception as e:  # noqa: BLE001 - any library error is the reason this combination cannot run
        return library_reason("torchao", torchao.__version__, e)
    kind = type(model[0].weight).__name__
    if kind in ("Parameter", "Tensor"):
        return f"torchao {torchao.__version__} left the weight unquantized for {config.describe()}"
    if not bool(torch.isfinite(y).all()):
        return f"torchao {torchao.__version__}: {config.describe()} gives non-finite outputs on {device}"
    return None


class TorchaoBackend(TorchBackend):
    name = "torchao"

    def supports(self, spec: RunSpec) -> str | None:
        config, reason = method_reason(spec, self.name)
        if reason:
            return reason
        return cuda_reason(spec.device) or probe(config, spec.device, spec.quant.dtype)

    def quantize(self, spec: RunSpec) -> dict[str, Any]:
        config, reason = method_reason(spec, self.name)
        if reason:
            raise Unsupported(reason)
        facts = handler_for(config)(config, self.model, spec)
        if facts.get("quantized_linears", 0) == 0:
            raise Unsupported(f"torchao quantized no Linear layer of this model with {config.describe()}")
        return {"quant_config": config.to_dict(), **facts}
