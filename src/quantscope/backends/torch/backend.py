"""PyTorch through transformers: fp32 / bf16 / fp16 with a KV cache (DynamicCache).

Quantizing backends (torchao, bitsandbytes) subclass this and override `quantize`; the timed calls
(prefill, decode, logits) are the same code for all of them, so their speeds compare.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from quantscope.backends.base import Unsupported
from quantscope.backends.torch.options import TorchOptions
from quantscope.backends.torch.weights import module_weight_bytes
from quantscope.models.base import ModelArtifact
from quantscope.spec import RunSpec

TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def cuda_reason(device: str) -> str | None:
    """Why `device` cannot be used here, or None."""
    if device != "cuda":
        return None
    import torch

    if not torch.cuda.is_available():
        return f"CUDA is not available to this torch build ({torch.__version__}) on this machine"
    return None


def seed_random_weights(model: Any, seed: int) -> None:
    """Synthetic models: N(0, 0.02) weights, norms at 1 (shapes matter for speed, values do not)."""
    import torch

    gens: dict[Any, Any] = {}  # one generator per device the parameters live on (CPU values as before)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1:
                p.fill_(1.0 if "norm" in name else 0.0)
            else:
                gen = gens.setdefault(p.device, torch.Generator(device=p.device).manual_seed(seed))
                noise = torch.empty(p.shape, dtype=torch.float32, device=p.device).normal_(0.0, 0.02, generator=gen)
                p.copy_(noise.to(p.dtype))


def release_load_memory() -> dict[str, Any]:
    """After load and quantization on CUDA: keep the load's peak as a fact, then give the blocks freed
    by quantization (the unquantized weights) back to the driver and restart the peak counters.

    Without this the caching allocator keeps them reserved and every quantized configuration of an 8B
    model showed the bf16 build's 19.2 GB as its GPU memory (H200 session, 2026-11-30)."""
    import torch

    peak = int(torch.cuda.max_memory_allocated())
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    return {"load_peak_gpu_bytes": peak}


class TorchBackend:
    name = "torch"

    def __init__(self) -> None:
        self.model: Any = None
        self.tokenizer: Any = None
        self.cache: Any = None
        self.device = "cpu"

    # --- capability -----------------------------------------------------------------------
    def supports(self, spec: RunSpec) -> str | None:
        from quantscope.methods import check_quant, overrides_reason

        TorchOptions.parse(self.name, spec.options)  # an unknown option is a UserError naming the near one
        if spec.quant.method != "none":
            return (f"the torch backend runs unquantized weights; {spec.quant.method!r} belongs to "
                    "a quantizing backend (--backend torchao or bnb)")
        check_quant(self.name, spec.quant)  # --qparam with no method
        return overrides_reason(spec, "it runs unquantized weights") or cuda_reason(spec.device)

    # --- loading ----------------------------------------------------------------------------
    def load(self, spec: RunSpec, artifact: ModelArtifact) -> dict[str, Any]:
        import torch

        if spec.workload.threads:
            torch.set_num_threads(spec.workload.threads)
        torch.manual_seed(spec.seed)
        self.device = spec.device
        dtype = getattr(torch, TORCH_DTYPES[spec.quant.dtype])
        t0 = time.perf_counter()
        self.model = self._build(spec, artifact, dtype)
        facts: dict[str, Any] = {"load_model_s": time.perf_counter() - t0, "threads": torch.get_num_threads()}
        t1 = time.perf_counter()
        facts.update(self.quantize(spec) or {})
        self.model.eval()
        facts["quantize_s"] = time.perf_counter() - t1
        if self.device == "cuda":
            facts.update(release_load_memory())
        if spec.option("compile"):
            facts.update(self._compile(spec))
        return facts

    def _build(self, spec: RunSpec, artifact: ModelArtifact, dtype: Any) -> Any:
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        if artifact.format == "synthetic":
            cfg = dict(artifact.config)
            config = AutoConfig.for_model(cfg.pop("model_type"), **cfg)
            import torch

            # Built where it runs: an 8B model initialised and seeded on the CPU first takes minutes.
            with torch.device(self.device):
                model = AutoModelForCausalLM.from_config(config, dtype=dtype)
            seed_random_weights(model, spec.seed)
            return model
        path = artifact.path
        if artifact.format == "gguf":
            from quantscope.models.materialize import hf_from_gguf_isolated

            path = hf_from_gguf_isolated(artifact)
        self.tokenizer = AutoTokenizer.from_pretrained(
            path, trust_remote_code=artifact.trust_remote_code, revision=artifact.revision
        )
        extra = self.load_kwargs(spec)
        model = AutoModelForCausalLM.from_pretrained(
            path,
            dtype=dtype,
            use_safetensors=not artifact.allow_pickle,
            trust_remote_code=artifact.trust_remote_code,
            revision=artifact.revision,
            **extra,
        )
        # A quantizing loader places the model itself (device_map); moving it again would undo that.
        return model if "device_map" in extra else model.to(self.device)

    def load_kwargs(self, spec: RunSpec) -> dict[str, Any]:
        """Extra from_pretrained arguments (bitsandbytes passes its quantization_config here)."""
        return {}

    def quantize(self, spec: RunSpec) -> dict[str, Any] | None:
        """Quantize self.model in place after loading (torchao overrides this)."""
        return None

    def _compile(self, spec: RunSpec) -> dict[str, Any]:
        """torch.compile the model and compile now, outside the timed workload.

        The first forward after wrapping compiles (gpt-fast excludes it the same way: `start = -1 if
        compile else 0`). One prefill of the workload's shape and two decode steps compile the graphs
        the timed loop uses; compile_s is their wall time, stored apart from the measured run. The
        quality pass's no-cache graph compiles on its first call there (untimed).
        """
        import torch

        w = spec.workload
        ids = np.random.default_rng(spec.seed).integers(0, self.vocab_size, size=(w.batch, w.prompt_tokens))
        # One eager forward before wrapping: bitsandbytes repacks 4-bit weights for its CPU kernel on
        # the first call (Linear4bit.forward), and a graph traced before that asserts the old layout.
        self.prefill(ids[:, :2])
        t0 = time.perf_counter()
        self.model.forward = torch.compile(self.model.forward, dynamic=True)
        t1 = time.perf_counter()
        try:
            nxt = self.prefill(ids)
            for _ in range(2):
                nxt = self.decode(nxt)
        except MemoryError:
            raise  # out of memory is the worker's "oom" row, not a capability
        except Exception as e:  # noqa: BLE001 - a compiler error means this combination does not run here
            first = (str(e).strip().splitlines() or [repr(e)])[0]
            raise Unsupported(f"torch.compile {torch.__version__}: {type(e).__name__}: {first}") from e
        self.cache = None
        return {"compile_wrap_s": t1 - t0, "compile_s": time.perf_counter() - t1}

    # --- the timed calls ---------------------------------------------------------------------
    def tokenize(self, text: str) -> list[int] | None:
        if self.tokenizer is None:
            return None
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    @property
    def vocab_size(self) -> int:
        return int(self.model.config.vocab_size)

    @property
    def bos_token_id(self) -> int | None:
        if self.tokenizer is not None and self.tokenizer.bos_token_id is not None:
            return int(self.tokenizer.bos_token_id)
        return getattr(self.model.config, "bos_token_id", None)

    @property
    def max_context(self) -> int | None:
        return getattr(self.model.config, "max_position_embeddings", None)

    def _step(self, ids: Any) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self.model(input_ids=ids, past_key_values=self.cache, use_cache=True, logits_to_keep=1)
        self.cache = out.past_key_values
        # .cpu() waits for the device: the clock the runner reads after this call is honest on CUDA.
        return out.logits[:, -1].argmax(-1).cpu().numpy()

    def prefill(self, input_ids: np.ndarray) -> np.ndarray:
        import torch
        from transformers import DynamicCache

        self.cache = DynamicCache(config=self.model.config)
        return self._step(torch.from_numpy(input_ids).to(self.device))

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        import torch

        return self._step(torch.from_numpy(tokens).to(self.device)[:, None])

    def logits(self, tokens: np.ndarray) -> np.ndarray:
        import torch

        ids = torch.from_numpy(np.asarray(tokens, dtype=np.int64)).to(self.device)[None]
        with torch.inference_mode():
            out = self.model(input_ids=ids, use_cache=False)
        return out.logits[0].float().cpu().numpy()

    # --- facts ---------------------------------------------------------------------------------
    def weight_bytes(self) -> int:
        return module_weight_bytes(self.model)

    def device_memory(self) -> dict[str, int]:
        if self.device != "cuda":
            return {}
        import torch

        from quantscope.metrics.gpu_memory import nvml_process_bytes

        out = {
            "torch_max_allocated_bytes": int(torch.cuda.max_memory_allocated()),
            "torch_max_reserved_bytes": int(torch.cuda.max_memory_reserved()),
        }
        nvml = nvml_process_bytes(torch.cuda.current_device())
        if nvml is not None:
            out["nvml_process_bytes"] = nvml
        return out

    def close(self) -> None:
        self.model = self.cache = self.tokenizer = None


__all__ = ["TorchBackend"]
