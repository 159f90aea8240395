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
from quantscope.backends.torch.options import TorchOptions
from quantscope.methods import (
    METHODS,
    QuantConfig,
    check_quant,
    config_from_spec,
    handler_for,
    is_calibrated,
    resolve_policy,
)
from quantscope.spec import QuantSpec, RunSpec

# The probe's Linear: in_features a multiple of every group size torchao accepts (32..256),
# out_features a multiple of 32 (torchao's DA8W4 CPU kernel needs N % 32 == 0).
PROBE_IN, PROBE_OUT, PROBE_ROWS = 256, 64, 4


def library_reason(library: str, version: str, err: BaseException) -> str:
    """One line naming the library, its version and its own message."""
    text = str(err).strip().splitlines()
    first = text[0] if text else repr(err)
    return f"{library} {version}: {type(err).__name__}: {first}"


def method_reason(spec: RunSpec, backend: str) -> tuple[QuantConfig | None, str | None]:
    """The config of `spec` when `backend` runs it, else the reason it does not.

    Options and parameters are checked first (a UserError naming the near one); a method of another
    backend is a reason, so a sweep's cross product becomes unsupported rows.
    """
    TorchOptions.parse(backend, spec.options)
    check_quant(backend, spec.quant)
    if spec.quant.method == "none":
        return None, (f"the {backend} backend quantizes; give --quant METHOD, "
                      f"or --backend torch for plain {spec.quant.dtype}")
    owners = METHODS.owners(spec.quant.method)
    if backend not in owners:
        return None, f"{spec.quant.method!r} is a {owners[0]} method; run it with --backend {owners[0]}"
    return config_from_spec(spec.quant, backend), None


def policy_configs(spec: RunSpec) -> tuple[list[QuantConfig], str | None]:
    """Every distinct config of the run's policy (default first), or the reason torchao cannot run it.

    A policy may leave the default at "none" and quantize only what its overrides name.
    """
    if spec.quant.overrides and spec.quant.method == "none":
        TorchOptions.parse("torchao", spec.options)
        check_quant("torchao", spec.quant)
        default = []
    else:
        config, reason = method_reason(spec, "torchao")
        if reason:
            return [], reason
        default = [config]
    rules = [config_from_spec(QuantSpec(method=o.method, params=o.params), "torchao")
             for o in spec.quant.overrides if o.method != "none"]
    return list(dict.fromkeys(default + rules)), None


def apply_config(config: QuantConfig, model: Any, spec: RunSpec, select: Any, feed: Any) -> dict[str, Any]:
    """One config on the modules `select` keeps: a plain handler at once, a calibrated one as
    prepare -> feed() (the calibration batches through the model, when its variant needs them) -> convert."""
    handler = handler_for(config)
    if not is_calibrated(config):
        return handler(config, model, spec, select)
    handler.prepare(config, model, spec, select)
    if config.needs_data:
        feed(config)
    return handler.convert(config, model, spec, select)


@functools.lru_cache(maxsize=64)
def probe(config: QuantConfig, device: str, dtype: str) -> str | None:
    """None if torchao quantizes and runs a small Linear with `config` here, else torchao's reason."""
    import torch

    try:
        import torchao
    except ImportError as e:
        return f"torchao is not installed ({e}); pip install 'quantscope[torchao]'"
    spec = RunSpec(backend="torchao", device=device, quant=QuantSpec(dtype=dtype, method=config.method))
    torch_dtype = getattr(torch, TORCH_DTYPES[dtype])
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(PROBE_IN, PROBE_OUT, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.randn(PROBE_OUT, PROBE_IN, generator=gen) * 0.02)
    model = model.to(device=device, dtype=torch_dtype)
    x = torch.randn(PROBE_ROWS, PROBE_IN, generator=gen).to(device=device, dtype=torch_dtype)
    def feed(config: Any) -> None:  # a calibrated config sees as many (random) batches as it asks for
        with torch.no_grad():
            for _ in range(config.calibration.samples):
                model(x)

    try:
        apply_config(config, model, spec, None, feed)
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
        configs, reason = policy_configs(spec)
        if reason:
            return reason
        cuda = cuda_reason(spec.device)
        if cuda:
            return cuda
        return next((r for c in configs if (r := probe(c, spec.device, spec.quant.dtype))), None)

    def quantize(self, spec: RunSpec) -> dict[str, Any]:
        """Each Linear gets its config from the policy (first matching override, else the default),
        one quantize_ call per distinct config over the modules it got."""
        import torch

        configs, reason = policy_configs(spec)
        if reason:
            raise Unsupported(reason)
        out = self.model.get_output_embeddings() if hasattr(self.model, "get_output_embeddings") else None
        linears = {n: m for n, m in self.model.named_modules() if isinstance(m, torch.nn.Linear)}
        plan = resolve_policy(spec.quant, self.name, linears)
        for name, config in plan.items():
            chosen = spec.quant.method_for(name)[2] is not None
            # The default leaves the output embedding alone unless lm_head=true; an override that
            # names it means it.
            if config is not None and not chosen and linears[name] is out and not getattr(config, "lm_head", True):
                plan[name] = None
        facts: dict[str, Any] = {}
        for config in configs:
            mine = {n for n, c in plan.items() if c == config}
            if mine:
                facts.update(apply_config(config, self.model, spec, lambda m, fqn, mine=mine: fqn in mine,
                                          self._feed_calibration(spec, facts)))
        if facts.get("quantized_linears", 0) == 0:
            described = configs[0].describe() if configs else "this policy"
            raise Unsupported(f"torchao quantized no Linear layer of this model with {described}")
        if configs and spec.quant.method != "none":
            facts["quant_config"] = configs[0].to_dict()
        if spec.quant.overrides:
            facts["policy"] = [o.label for o in spec.quant.overrides]
            facts["quant_modules"] = {n: {"config": c.describe() if c else "none",
                                          "weight": type(linears[n].weight).__name__} for n, c in plan.items()}
        return facts

    def _feed_calibration(self, spec: RunSpec, facts: dict[str, Any]) -> Any:
        """feed(config): the config's calibration batches through the model, untimed; their ids' hash
        goes into the run's facts (Result.info["calibration"])."""
        def feed(config: Any) -> None:
            import time

            import torch

            from quantscope.methods.calibration import calibration_batches

            t0 = time.perf_counter()
            cal = calibration_batches(config.calibration, self.tokenize, self.vocab_size)
            with torch.no_grad():
                for row in cal.batches:
                    self.model(input_ids=torch.tensor([row], device=self.device))
            facts["calibration"] = {**cal.info, "config": config.describe(),
                                    "calibrate_s": time.perf_counter() - t0}

        return feed
