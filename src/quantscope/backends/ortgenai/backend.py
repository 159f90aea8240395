"""onnxruntime-genai: graphs written by its model builder (convert.py), run by its Generator.

quant "none" (the builder's FP32 graph) | "int4" | "int8" (its weight-only MatMulNBits precisions,
typed in methods/ortgenai_configs.py). Backend options (n_threads) are typed in options.py.

The runtime has no per-token timer of its own; the runner times each call here:
  batch 1   prefill = a fresh Generator and append_tokens(prompt); decode = append_tokens([token]).
            append_tokens runs the model at once, so each call is one forward pass, and a token is
            fed as given (the tests teacher-force a sequence through it).
  batch B   the library allows append_tokens once per Generator when B > 1, so prefill =
            append_tokens(B prompts) then generate_next_token() (it only picks the greedy tokens
            from the logits already computed); decode = generate_next_token(), which runs the
            model on the tokens picked last and picks the next ones. The tokens given to decode
            must be those picked (the runner passes back what prefill/decode returned).
Logits for the quality pass: a Generator over the whole window, append_tokens, get_output("logits").
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from quantscope.backends.exported import ExportedTokenizer
from quantscope.env import physical_cores
from quantscope.methods import METHODS, check_quant, config_from_spec, overrides_reason
from quantscope.models.base import ModelArtifact
from quantscope.spec import RunSpec

PRECISION = {"none": "fp32", "int4": "int4", "int8": "int8"}


def build_settings(spec: RunSpec) -> tuple[str, dict[str, Any]]:
    """(the builder's --precision, its --extra_options) for the run's method; bad params are a UserError."""
    if spec.quant.method == "none":
        check_quant("ortgenai", spec.quant)
        return "fp32", {}
    config = config_from_spec(spec.quant, "ortgenai")
    return config.precision, config.builder_options()  # type: ignore[attr-defined]


class OrtGenaiBackend(ExportedTokenizer):  # tokenize, vocab_size, bos_token_id
    name = "ortgenai"

    def __init__(self) -> None:
        self.model: Any = None
        self.params: Any = None
        self.generator: Any = None
        self.tokenizer: Any = None
        self.bos: int | None = None
        self.meta: dict[str, Any] = {}
        self.max_length = 0
        self.gen = 0
        self.batch = 1
        self.picked: np.ndarray | None = None  # tokens the Generator picked last (batches > 1)

    # --- capability -----------------------------------------------------------------------------
    def supports(self, spec: RunSpec) -> str | None:
        methods = ("none", *METHODS.names("ortgenai"))
        if spec.quant.method not in methods:
            return (f"ortgenai builds {', '.join(methods)}, not {spec.quant.method!r} "
                    "(none = the builder's FP32 graph, int4/int8 = its weight-only MatMulNBits)")
        if spec.quant.dtype != "fp32":
            return (f"the ortgenai backend runs the builder's CPU graphs with FP32 activations, not "
                    f"{spec.quant.dtype}: use --dtype fp32")
        build_settings(spec)
        from quantscope.backends.ortgenai.options import OrtGenaiOptions

        OrtGenaiOptions.of(spec)
        reason = overrides_reason(spec, "its builder takes one precision for the whole graph")
        if reason:
            return reason
        if spec.device != "cpu":
            return "the ortgenai backend builds CPU graphs here (-e cpu); CUDA graphs are not wired yet"
        try:
            import onnxruntime_genai  # noqa: F401
        except ImportError as e:
            return f"{e.name} is not installed: pip install onnxruntime-genai (quantscope[ortgenai])"
        return None

    # --- loading ----------------------------------------------------------------------------------
    def load(self, spec: RunSpec, artifact: ModelArtifact) -> dict[str, Any]:
        import onnxruntime_genai as og

        from quantscope.backends.ortgenai.convert import ensure_model
        from quantscope.backends.ortgenai.options import OrtGenaiOptions

        opts = OrtGenaiOptions.of(spec)
        precision, options = build_settings(spec)
        cached, facts = ensure_model(artifact, spec.seed, precision, options)
        self.meta = cached.meta
        t0 = time.perf_counter()
        config = og.Config(str(cached.path))
        if opts.n_threads:  # the session options of genai_config.json, overlaid without editing the file
            config.overlay(json.dumps({"model": {"decoder": {"session_options": {
                "intra_op_num_threads": opts.n_threads, "inter_op_num_threads": 1}}}}))
        self.model = og.Model(config)
        facts["session_s"] = time.perf_counter() - t0
        wl = spec.workload
        self.batch = wl.batch
        self.gen = wl.gen_tokens
        self.max_length = wl.prompt_tokens + wl.gen_tokens + 2  # + the token picked after the last step
        self.params = self._params(self.batch, self.max_length)
        if self.meta.get("tokenizer"):
            from quantscope.models.materialize import hf_tokenizer

            self.tokenizer, self.bos = hf_tokenizer(cached.path, self.meta.get("bos_token_id"))
        else:
            self.bos = self.meta.get("bos_token_id")
        threads = opts.n_threads or physical_cores()
        return {**facts, "threads": threads, "threads_source": "option" if opts.n_threads else "ort default",
                "precision": precision, "builder_options": options, "graph": str(cached.path),
                "onnxruntime_genai": og.__version__,
                "file_bytes": sum(p.stat().st_size for p in cached.path.glob("model.onnx*"))}

    def _params(self, batch: int, max_length: int) -> Any:
        import onnxruntime_genai as og

        params = og.GeneratorParams(self.model)
        params.set_search_options(max_length=max_length, batch_size=batch, do_sample=False)
        return params

    # --- the timed calls ------------------------------------------------------------------------
    def _last_logits(self) -> np.ndarray:
        return self.generator.get_output("logits")[:, -1]  # [B, V], on the host

    def prefill(self, input_ids: np.ndarray) -> np.ndarray:
        import onnxruntime_genai as og

        ids = np.ascontiguousarray(input_ids, dtype=np.int32)
        self.picked = None
        length = max(self.max_length, ids.shape[1] + self.gen + 2)  # the KV buffer is made for max_length
        same = ids.shape[0] == self.batch and length == self.max_length
        params = self.params if same else self._params(ids.shape[0], length)
        self.generator = og.Generator(self.model, params)
        self.generator.append_tokens(ids)
        if ids.shape[0] == 1:
            return self._last_logits().argmax(-1).astype(np.int64)
        self.generator.generate_next_token()  # picks from the logits above; runs nothing
        self.picked = np.asarray(self.generator.get_next_tokens(), dtype=np.int64)
        return self.picked

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        step = np.asarray(tokens, dtype=np.int64).reshape(-1)
        if len(step) == 1 and self.picked is None:
            self.generator.append_tokens(step[None].astype(np.int32))
            return self._last_logits().argmax(-1).astype(np.int64)
        if self.picked is None or not np.array_equal(step, self.picked):
            raise ValueError("ortgenai at batch > 1 decodes the tokens its Generator picked; it cannot be fed "
                             "other tokens (append_tokens runs once per Generator when batch > 1)")
        self.generator.generate_next_token()
        self.picked = np.asarray(self.generator.get_next_tokens(), dtype=np.int64)
        return self.picked

    def step_logits(self) -> np.ndarray:
        """[B, V] logits of the last call (prefill or decode): what the tests compare."""
        return np.array(self._last_logits(), dtype=np.float32)

    def logits(self, tokens: np.ndarray) -> np.ndarray:
        import onnxruntime_genai as og

        ids = np.asarray(tokens, dtype=np.int32).reshape(1, -1)
        generator = og.Generator(self.model, self._params(1, ids.shape[1]))
        generator.append_tokens(ids)
        out = np.array(generator.get_output("logits")[0], dtype=np.float32)
        del generator
        return out

    # --- facts ------------------------------------------------------------------------------------
    def weight_bytes(self) -> int:
        return int(self.meta.get("weight_bytes", 0))

    def device_memory(self) -> dict[str, int]:
        return {}

    def close(self) -> None:
        self.generator = self.params = self.model = self.tokenizer = None
        self.picked = None


__all__ = ["OrtGenaiBackend"]
