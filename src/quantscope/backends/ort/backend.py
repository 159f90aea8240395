"""ONNX Runtime: FP32, INT8 (blockwise, dynamic or static QDQ) and INT4 weight-only graphs, with or without
a KV cache.

quant "none" | "int8" | "int4" (typed configs in methods/ort_configs.py; convert.py makes and caches
the graphs). Backend options (kv_cache, n_threads, opt_level, ep) are typed in options.py.

The timed calls keep the cache as OrtValues bound through IOBinding, so present key/values go back
in as the next step's past without a copy through numpy (as optimum's ORTModelForCausalLM does).
kv_cache=False runs the same graph with an empty past on the whole prefix each step (convert.py).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from quantscope.backends.exported import ExportedTokenizer
from quantscope.backends.ort.convert import ensure_graph, kv_names
from quantscope.backends.ort.options import OPT_LEVELS, PROVIDERS, OrtOptions
from quantscope.env import physical_cores
from quantscope.methods import METHODS, check_quant, config_from_spec, overrides_reason
from quantscope.methods.ort_configs import OrtConfig
from quantscope.models.base import ModelArtifact
from quantscope.spec import RunSpec

ORT_METHODS = ("none", *METHODS.names("ort"))
NO_CACHE_NOTE = "the KV graph with an empty past, the whole prefix each step (no export of its own)"


def ort_config(spec: RunSpec) -> OrtConfig | None:
    """The typed config of the run's method (None for FP32); bad parameters are a one-line UserError."""
    if spec.quant.method == "none":
        check_quant("ort", spec.quant)
        return None
    return config_from_spec(spec.quant, "ort")  # type: ignore[return-value]


def quantizer_params(config: OrtConfig | None) -> dict[str, Any]:
    return {} if config is None else config.quantizer_params()


class OrtBackend(ExportedTokenizer):  # tokenize, vocab_size, bos_token_id
    name = "ort"

    def __init__(self) -> None:
        self.session: Any = None
        self.tokenizer: Any = None
        self.bos: int | None = None
        self.meta: dict[str, Any] = {}
        self.kv_cache = True
        self.device = "cpu"
        self.past: list[Any] = []
        self.seq: np.ndarray | None = None

    # --- capability -----------------------------------------------------------------------------
    def supports(self, spec: RunSpec) -> str | None:
        if spec.quant.method not in ORT_METHODS:
            return (f"ort quantizes with {', '.join(ORT_METHODS)}, not {spec.quant.method!r} "
                    "(none = FP32, int8 = MatMulNBits 8-bit blocks, or quantize_dynamic / static QDQ by "
                    "--qparam scheme, int4 = MatMulNBits weight-only)")
        if spec.quant.dtype != "fp32":
            return (f"the ort backend runs FP32 graphs (INT8/INT4 are quantized from FP32), not "
                    f"{spec.quant.dtype}: use --dtype fp32")
        ort_config(spec)
        opts = OrtOptions.of(spec)
        reason = overrides_reason(spec, "its quantizers take one setting for the whole graph")
        if reason:
            return reason
        try:
            import onnx  # noqa: F401  (the exporter and quantizers need it)
            import onnxruntime as ort
        except ImportError as e:
            return f"{e.name} is not installed: pip install onnxruntime onnxscript (quantscope[onnx])"

        have = ort.get_available_providers()
        if PROVIDERS[opts.ep] not in have:
            return (f"onnxruntime {ort.__version__} here offers {', '.join(have)}, not "
                    f"{PROVIDERS[opts.ep]}: install onnxruntime-gpu on a machine with CUDA")
        return None

    # --- loading ----------------------------------------------------------------------------------
    def load(self, spec: RunSpec, artifact: ModelArtifact) -> dict[str, Any]:
        import onnxruntime as ort

        opts = OrtOptions.of(spec)
        method = spec.quant.method
        cached, facts = ensure_graph(artifact, spec.seed, method, quantizer_params(ort_config(spec)))
        self.meta, self.kv_cache = cached.meta, opts.kv_cache
        self.device = opts.ep
        so = ort.SessionOptions()
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPT_LEVELS[opts.opt_level])
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.inter_op_num_threads = 1
        if opts.n_threads:
            so.intra_op_num_threads = opts.n_threads
        t0 = time.perf_counter()
        providers = [PROVIDERS[opts.ep]] + (["CPUExecutionProvider"] if opts.ep != "cpu" else [])
        self.session = ort.InferenceSession(str(cached.file("model.onnx")), so, providers=providers)
        facts["session_s"] = time.perf_counter() - t0
        if self.meta.get("tokenizer"):
            from quantscope.models.materialize import hf_tokenizer

            self.tokenizer, self.bos = hf_tokenizer(cached.path, self.meta.get("bos_token_id"))
        else:
            self.bos = self.meta.get("bos_token_id")
        threads = opts.n_threads or physical_cores()
        source = "option" if opts.n_threads else "ort default"
        return {**facts, "threads": threads, "threads_source": source,
                "ep": self.session.get_providers()[0], "opt_level": opts.opt_level,
                "kv_cache": self.kv_cache, **({} if self.kv_cache else {"kv_cache_off": NO_CACHE_NOTE}),
                "onnxruntime": ort.__version__, "graph": str(cached.path),
                "file_bytes": sum(p.stat().st_size for p in cached.path.glob("model.onnx*"))}

    # --- the timed calls ------------------------------------------------------------------------
    def _run(self, ids: np.ndarray, index: np.ndarray, past: list[Any] | None) -> np.ndarray:
        """One graph call; returns logits [B, K, V] and keeps the presents as the next past."""
        io = self.session.io_binding()
        io.bind_cpu_input("input_ids", np.ascontiguousarray(ids, dtype=np.int64))
        io.bind_cpu_input("logits_index", index)
        for name, value in zip(kv_names(self.meta["n_layers"], "past"), past or self._empty(ids.shape[0]),
                               strict=True):
            io.bind_ortvalue_input(name, value)
        for name in self.meta["outputs"]:
            io.bind_output(name, self.device)
        self.session.run_with_iobinding(io)
        outs = io.get_outputs()
        self.past = list(outs[1:]) if self.kv_cache else []
        return outs[0].numpy()  # copies the logits to host: the device work is done when this returns

    def _empty(self, batch: int) -> list[Any]:
        import onnxruntime as ort

        shape = (batch, self.meta["n_kv_heads"], 0, self.meta["head_dim"])
        empty = ort.OrtValue.ortvalue_from_numpy(np.zeros(shape, dtype=np.float32), self.device, 0)
        return [empty] * (2 * self.meta["n_layers"])

    def prefill(self, input_ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(input_ids, dtype=np.int64)
        self.seq = None if self.kv_cache else ids
        last = np.array([ids.shape[1] - 1], dtype=np.int64)
        return self._run(ids, last, None)[:, -1].argmax(-1)

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        step = np.asarray(tokens, dtype=np.int64)[:, None]
        if self.kv_cache:
            return self._run(step, np.zeros(1, dtype=np.int64), self.past)[:, -1].argmax(-1)
        self.seq = np.concatenate([self.seq, step], axis=1)  # no cache: the whole prefix again
        last = np.array([self.seq.shape[1] - 1], dtype=np.int64)
        return self._run(self.seq, last, None)[:, -1].argmax(-1)

    def logits(self, tokens: np.ndarray) -> np.ndarray:
        ids = np.asarray(tokens, dtype=np.int64)[None]
        out = self._run(ids, np.arange(ids.shape[1], dtype=np.int64), None)
        self.past = []
        return out[0].astype(np.float32, copy=False)

    # --- facts ------------------------------------------------------------------------------------
    def weight_bytes(self) -> int:
        return int(self.meta.get("weight_bytes", 0))

    def device_memory(self) -> dict[str, int]:
        return {}

    def close(self) -> None:
        self.session = self.tokenizer = self.seq = None
        self.past = []


__all__ = ["OrtBackend"]
