"""ONNX Runtime: FP32, dynamic INT8 and INT4 weight-only graphs, with or without a KV cache.

quant "none" | "int8" | "int4" (convert.py makes and caches the graphs). Backend options, part of
the run's key (RunSpec.options, `--opt KEY=VALUE`):
  kv_cache   true (default): past key/values fed back each step | false: the whole prefix recomputed
  n_threads  intra-op threads (default: --threads, else ORT's default: one per physical core)
  opt_level  graph optimisation: all (default) | extended | basic | disable
  ep         execution provider: cpu | cuda (default: the run's device)

The timed calls keep the cache as OrtValues bound through IOBinding, so present key/values go back
in as the next step's past without a copy through numpy (as optimum's ORTModelForCausalLM does).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from quantscope.backends.ort.convert import METHODS, ensure_graph, kv_names, method_params
from quantscope.env import physical_cores
from quantscope.errors import UserError
from quantscope.models.base import ModelArtifact
from quantscope.spec import RunSpec

OPTIONS = {"kv_cache", "n_threads", "opt_level", "ep"}
OPT_LEVELS = {"all": "ORT_ENABLE_ALL", "extended": "ORT_ENABLE_EXTENDED", "basic": "ORT_ENABLE_BASIC",
              "disable": "ORT_DISABLE_ALL"}
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def ort_options(spec: RunSpec) -> dict[str, Any]:
    """The backend options with defaults; a bad name or value is a one-line UserError."""
    opts = dict(spec.options)
    unknown = sorted(set(opts) - OPTIONS)
    if unknown:
        raise UserError(f"ort backend option(s) {', '.join(unknown)} unknown; "
                        f"it takes {', '.join(sorted(OPTIONS))}")
    kv = opts.get("kv_cache", True)
    if not isinstance(kv, bool):
        raise UserError(f"ort option kv_cache must be true or false, got {kv!r}")
    level = opts.get("opt_level", "all")
    if level not in OPT_LEVELS:
        raise UserError(f"ort option opt_level {level!r} is not one of {', '.join(OPT_LEVELS)}")
    ep = opts.get("ep", spec.device)
    if ep not in PROVIDERS:
        raise UserError(f"ort option ep {ep!r} is not one of {', '.join(PROVIDERS)}")
    if (ep == "cuda") != (spec.device == "cuda"):
        raise UserError(f"ort option ep={ep} does not match --device {spec.device}; drop one of them")
    threads = opts.get("n_threads", spec.workload.threads)
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise UserError(f"ort option n_threads must be a positive integer, got {threads!r}")
    return {"kv_cache": kv, "opt_level": level, "ep": ep, "n_threads": threads}


class OrtBackend:
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
        if spec.quant.method not in METHODS:
            return (f"ort quantizes with {', '.join(METHODS)}, not {spec.quant.method!r} "
                    "(none = FP32, int8 = quantize_dynamic, int4 = MatMulNBits weight-only)")
        if spec.quant.dtype != "fp32":
            return (f"the ort backend runs FP32 graphs (INT8/INT4 are quantized from FP32), not "
                    f"{spec.quant.dtype}: use --dtype fp32")
        method_params(spec.quant.method, dict(spec.quant.params))
        opts = ort_options(spec)
        try:
            import onnx  # noqa: F401  (the exporter and quantizers need it)
            import onnxruntime as ort
        except ImportError as e:
            return f"{e.name} is not installed: pip install onnxruntime onnxscript (quantscope[onnx])"

        have = ort.get_available_providers()
        if PROVIDERS[opts["ep"]] not in have:
            return (f"onnxruntime {ort.__version__} here offers {', '.join(have)}, not "
                    f"{PROVIDERS[opts['ep']]}: install onnxruntime-gpu on a machine with CUDA")
        return None

    # --- loading ----------------------------------------------------------------------------------
    def load(self, spec: RunSpec, artifact: ModelArtifact) -> dict[str, Any]:
        import onnxruntime as ort

        opts = ort_options(spec)
        method = spec.quant.method
        cached, facts = ensure_graph(artifact, spec.seed, opts["kv_cache"], method,
                                     method_params(method, dict(spec.quant.params)))
        self.meta, self.kv_cache = cached.meta, opts["kv_cache"]
        self.device = opts["ep"]
        so = ort.SessionOptions()
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPT_LEVELS[opts["opt_level"]])
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.inter_op_num_threads = 1
        if opts["n_threads"]:
            so.intra_op_num_threads = opts["n_threads"]
        t0 = time.perf_counter()
        providers = [PROVIDERS[opts["ep"]]] + (["CPUExecutionProvider"] if opts["ep"] != "cpu" else [])
        self.session = ort.InferenceSession(str(cached.file("model.onnx")), so, providers=providers)
        facts["session_s"] = time.perf_counter() - t0
        if self.meta.get("tokenizer"):
            from quantscope.artifacts.source import hf_tokenizer

            self.tokenizer, self.bos = hf_tokenizer(cached.path, self.meta.get("bos_token_id"))
        else:
            self.bos = self.meta.get("bos_token_id")
        threads = opts["n_threads"] or physical_cores()
        source = "option" if opts["n_threads"] else "ort default"
        return {**facts, "threads": threads, "threads_source": source,
                "ep": self.session.get_providers()[0], "opt_level": opts["opt_level"],
                "kv_cache": self.kv_cache, "onnxruntime": ort.__version__, "graph": str(cached.path),
                "file_bytes": sum(p.stat().st_size for p in cached.path.glob("model.onnx*"))}

    # --- the timed calls ------------------------------------------------------------------------
    def tokenize(self, text: str) -> list[int] | None:
        if self.tokenizer is None:
            return None
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    @property
    def vocab_size(self) -> int:
        return int(self.meta["vocab_size"])

    @property
    def bos_token_id(self) -> int | None:
        return None if self.bos is None else int(self.bos)

    def _run(self, ids: np.ndarray, index: np.ndarray, past: list[Any] | None) -> np.ndarray:
        """One graph call; returns logits [B, K, V] and keeps the presents as the next past."""
        io = self.session.io_binding()
        io.bind_cpu_input("input_ids", np.ascontiguousarray(ids, dtype=np.int64))
        io.bind_cpu_input("logits_index", index)
        if self.kv_cache:
            for name, value in zip(kv_names(self.meta["n_layers"], "past"), past or self._empty(ids.shape[0]),
                                   strict=True):
                io.bind_ortvalue_input(name, value)
        for name in self.meta["outputs"]:
            io.bind_output(name, self.device)
        self.session.run_with_iobinding(io)
        outs = io.get_outputs()
        self.past = list(outs[1:])
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
