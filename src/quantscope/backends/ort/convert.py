"""ONNX graphs for the ORT backend: export (torch.onnx's tracer) and quantization (onnxruntime.quantization).

One FP32 graph per model, taking `logits_index` (the positions whose logits to compute, transformers'
`logits_to_keep` as a tensor), so it serves the timed calls (last position only, as the torch backend's
logits_to_keep=1) and the quality pass (every position):

  input_ids [B,T], logits_index [K], past.{i}.key/value [B,Hkv,S,D]
  -> logits [B,K,V], present.{i}.key/value [B,Hkv,S+T,D]

A run with kv_cache=False runs the same graph with an empty past (S = 0) on the whole prefix every
step: the same arithmetic as a graph exported without the cache inputs (attention over T tokens,
positions 0..T-1), on the same operators.

The export is torch.onnx's TorchScript tracer (dynamo=False), not torch.export. benchmarks/ort_export.py
on the AVX2 machines (docs/measurements/ort-export-2026-11-30.txt): export and save 16.6-18.1 s with the
tracer against 94 s (dynamo, optimizer off) and 160 s (on); the 128-token prefill 287-351 ms against
312-321 ms (the spread between runs is as large as between exporters); the traced graph's logits within
5.1e-5 of PyTorch's over a prefill, five decode steps on its own cache and a 16-token chunk on the filled
cache (tests/backends/test_ort.py checks prefill and cached decode on a tiny model). The trace's
data-dependent branches (transformers' "one query token" SDPA shortcut) are taken as in a multi-token
call, which is also correct for one token. On a fresh machine the sweep's first ORT row (it exports for
all four) took 247-254 s with the dynamo exporter and 72-78 s with the tracer (the run1 logs in
docs/measurements/make-run-budget-2026-11-30/).

optimum-onnx exports the same two layouts but pins transformers<4.58 (FACTS.md), so the export is
done here with torch.onnx.export on a thin wrapper. Quantization is the library's:
quantize_dynamic (INT8) and MatMulNBitsQuantizer (INT4 weight-only).

Exports and quantizations run in a child process (artifacts/child.py) and are cached by source
content, options and tool versions (artifacts/cache.py); this module holds only the ONNX-specific
recipes and the child-side code.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

from quantscope.artifacts.cache import (
    MANIFEST,
    ArtifactCache,
    Cached,
    Recipe,
    conversion_facts,
    tool_versions,
)
from quantscope.models.base import ModelArtifact
from quantscope.models.materialize import TOKENIZER_FILES, artifact_to_dict, model_label, source_digest

# History: 1 (2026-11-24) first layout (logits_index input, past.{i}.key / present.{i}.key names).
#          2 (2026-11-24) Transpose(initializer) folded, so a tied lm_head is quantizable.
#          3 (2026-11-30) the TorchScript tracer instead of torch.export (22 s instead of 115-198 s).
EXPORT_VERSION = 3
GRAPH = "model.onnx"
OPSET = 18
METHODS = ("none", "int8", "int4")
# lm_head: quantize the output projection too (llama.cpp's default; --leave-output-tensor keeps it).
INT4_DEFAULTS = {"block_size": 32, "symmetric": True, "accuracy_level": 4, "lm_head": True}  # 32 | 576


# --- parent side: recipes and the cache --------------------------------------------------------------
def export_recipe(artifact: ModelArtifact, seed: int) -> Recipe:
    # "kv_cache": True stays in the options: the exports cached before the no-cache graph went keep their key
    return Recipe("onnx-export", source_digest(artifact, seed),
                  options={"kv_cache": True, "export_version": EXPORT_VERSION, "dtype": "fp32"},
                  tools=tool_versions("torch", "transformers", "onnx", "onnxscript"),
                  label=model_label(artifact))


def quant_recipe(export: Recipe, method: str, params: dict[str, Any]) -> Recipe:
    return Recipe("ort-quant", export.key(), options={"method": method, **params},
                  tools=tool_versions("onnxruntime", "onnx"), label=f"{export.label}-{method}")


def ensure_graph(artifact: ModelArtifact, seed: int, method: str, params: dict[str, Any],
                 cache: ArtifactCache | None = None) -> tuple[Cached, dict[str, Any]]:
    """The (cached) graph to run and the conversion facts. A cached quantized graph is used
    without touching its export; otherwise export (cached) then quantize (cached)."""
    from quantscope.artifacts.child import run_child
    from quantscope.backends.base import Unsupported

    cache = cache or ArtifactCache()
    exp = export_recipe(artifact, seed)

    def build_export(out: Path, _prev: Cached | None) -> dict[str, Any]:
        return run_child("quantscope.backends.ort.convert:export_graph",
                         {"out_dir": str(out), "artifact": artifact_to_dict(artifact), "seed": seed},
                         raises=(Unsupported,))

    def build_quant(out: Path, exported: Cached | None) -> dict[str, Any]:
        return run_child("quantscope.backends.ort.convert:quantize_graph",
                         {"out_dir": str(out), "src_dir": str(exported.path), "method": method,
                          "params": params}, raises=(Unsupported,))

    steps = [(exp, build_export)]
    if method != "none":
        steps.append((quant_recipe(exp, method, params), build_quant))
    done = cache.get_chain(steps)
    return done[-1], conversion_facts(done)


# --- child side: export --------------------------------------------------------------------------------
def _with_cache(model: Any, n_layers: int) -> Any:
    import torch
    from transformers import DynamicCache

    class WithCache(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, logits_index, *past):
            pairs = [(past[2 * i], past[2 * i + 1]) for i in range(n_layers)]
            cache = DynamicCache(ddp_cache_data=pairs, config=self.model.config)
            out = self.model(input_ids=input_ids, past_key_values=cache, use_cache=True,
                             logits_to_keep=logits_index)
            present = []
            for layer in out.past_key_values.layers:
                present += [layer.keys, layer.values]
            return (out.logits, *present)

    return WithCache().eval()


def kv_names(n_layers: int, prefix: str) -> list[str]:
    return [f"{prefix}.{i}.{kv}" for i in range(n_layers) for kv in ("key", "value")]


def shape_facts(config: Any) -> dict[str, Any]:
    text = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config
    heads = text.num_attention_heads
    return {"n_layers": int(text.num_hidden_layers),
            "n_kv_heads": int(getattr(text, "num_key_value_heads", None) or heads),
            "head_dim": int(getattr(text, "head_dim", None) or text.hidden_size // heads),
            "vocab_size": int(text.vocab_size),
            "bos_token_id": getattr(text, "bos_token_id", None)}


def export_graph(out_dir: str, artifact: dict[str, Any], seed: int) -> dict[str, Any]:
    """Export the FP32 model of `artifact` into out_dir/model.onnx (+ .data); returns the graph's facts."""
    import torch

    from quantscope.backends.torch.reference import reference_model
    from quantscope.models.materialize import artifact_from_dict, hf_folder

    art = artifact_from_dict(artifact)
    model = reference_model(art, seed)
    facts = shape_facts(model.config)
    n, hkv, hd = facts["n_layers"], facts["n_kv_heads"], facts["head_dim"]
    module = _with_cache(model, n)
    # Example sizes > 1 (batch 2, 5 new tokens on a past of 3), so that no size is traced as a constant.
    ids = torch.zeros((2, 5), dtype=torch.int64)
    index = torch.tensor([3, 4], dtype=torch.int64)
    past = tuple(torch.zeros((2, hkv, 3, hd)) for _ in range(2 * n))
    inputs = ["input_ids", "logits_index", *kv_names(n, "past")]
    outputs = ["logits", *kv_names(n, "present")]
    axes = {"input_ids": {0: "batch", 1: "seq"}, "logits_index": {0: "keep"}, "logits": {0: "batch", 1: "keep"}}
    axes.update({name: {0: "batch", 2: "past"} for name in kv_names(n, "past")})
    axes.update({name: {0: "batch", 2: "total"} for name in kv_names(n, "present")})
    out = Path(out_dir)
    raw = out / "raw"
    raw.mkdir()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's warnings about the branches above, and its deprecation
        torch.onnx.export(module, (ids, index, *past), str(raw / GRAPH), dynamo=False, input_names=inputs,
                          output_names=outputs, dynamic_axes=axes, opset_version=OPSET)
    fold_weight_transposes(raw / GRAPH, out / GRAPH)
    shutil.rmtree(raw)
    folder = hf_folder(art)
    tokenizer = copy_tokenizer(folder, out) if folder else False
    return {**facts, "kv_cache": True, "inputs": inputs, "outputs": outputs, "tokenizer": tokenizer,
            "weight_bytes": onnx_weight_bytes(out / GRAPH), "quant": "none"}


def fold_weight_transposes(src: Path, dst: Path) -> int:
    """Replace Transpose(initializer) by the transposed initializer; returns how many were folded.

    A tied lm_head exports as MatMul(x, Transpose(embedding)): ORT would fold it at session start
    anyway, but the quantizers only quantize a MatMul whose weight is an initializer, so unfolded the
    largest matrix of a small model (49152 x 576 here) would stay FP32 in the INT8 and INT4 graphs.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    inits = {t.name: t for t in model.graph.initializer}
    folded = 0
    for node in list(model.graph.node):
        if node.op_type != "Transpose" or node.input[0] not in inits:
            continue
        perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
        array = numpy_helper.to_array(inits[node.input[0]])
        model.graph.initializer.append(numpy_helper.from_array(array.transpose(perm).copy(), node.output[0]))
        model.graph.node.remove(node)
        folded += 1
    onnx.save_model(model, str(dst), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=dst.name + ".data")
    return folded


def copy_tokenizer(src: str | Path, dst: Path) -> bool:
    """Copy the tokenizer files beside the graph, so the ORT run needs neither torch nor the source."""
    copied = False
    for name in TOKENIZER_FILES:
        if (Path(src) / name).is_file():
            shutil.copy2(Path(src) / name, dst / name)
            copied = copied or name == "tokenizer.json"
    return copied


def onnx_weight_bytes(path: Path) -> int:
    """Bytes of the graph's initializers and constants as stored (packed int4 blocks, scales, zero points)."""
    import onnx
    from onnx.helper import tensor_dtype_to_np_dtype

    model = onnx.load(str(path), load_external_data=False)

    def nbytes(t: Any) -> int:
        count = 1
        for d in t.dims:
            count *= d
        return count * tensor_dtype_to_np_dtype(t.data_type).itemsize

    total = sum(nbytes(t) for t in model.graph.initializer)
    for node in model.graph.node:
        if node.op_type == "Constant":
            total += sum(nbytes(a.t) for a in node.attribute if a.name == "value")
    return total


# --- child side: quantization -----------------------------------------------------------------------
def quantize_graph(out_dir: str, src_dir: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """Quantize src_dir/model.onnx into out_dir/model.onnx with onnxruntime.quantization."""
    import json

    src, out = Path(src_dir), Path(out_dir)
    facts = json.loads((src / MANIFEST).read_text())["meta"]
    exclude = [] if params["lm_head"] else lm_head_nodes(src / GRAPH, facts["vocab_size"])
    scheme = params.get("scheme", "dynamic")  # version-1 int8 graphs had no scheme: dynamic
    if method == "int8" and scheme == "static":
        facts["calibration"] = _int8_static(src, out / GRAPH, facts, params, exclude)
    elif method == "int8" and scheme == "blockwise":
        _nbits(src / GRAPH, out / GRAPH, {**params, "symmetric": True}, exclude, bits=8)
    elif method == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(src / GRAPH, out / GRAPH, weight_type=QuantType.QInt8,
                         per_channel=bool(params["per_channel"]), reduce_range=bool(params["reduce_range"]),
                         nodes_to_exclude=exclude, use_external_data_format=True)
    elif method == "int4":
        _nbits(src / GRAPH, out / GRAPH, params, exclude, bits=4)
    else:
        raise ValueError(f"unknown ORT quantization {method!r}")
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, out / name)
    return {**facts, "quant": method, "quant_params": params, "weight_bytes": onnx_weight_bytes(out / GRAPH)}


def _int8_static(src: Path, dst: Path, facts: dict[str, Any], params: dict[str, Any],
                 exclude: list[str]) -> dict[str, Any]:
    """QDQ INT8 (quantize_static): activation ranges calibrated on the calibration text (stdlib
    docstrings, never the evaluation text), weights per channel or per tensor. Only MatMuls with a
    constant weight are quantized (MatMulConstBOnly): the attention's activation x activation
    products stay FP32, as quantize_dynamic leaves them. Returns the calibration's identity."""
    import numpy as np
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    from quantscope.methods.calibration import CalibrationSpec, calibration_batches
    from quantscope.models.materialize import hf_tokenizer

    found = hf_tokenizer(src, facts.get("bos_token_id")) if facts.get("tokenizer") else None

    def tokenize(text: str) -> list[int] | None:
        return None if found is None else found[0].encode(text, add_special_tokens=False).ids

    cal = calibration_batches(CalibrationSpec(int(params["calib_samples"]), int(params["calib_seq_len"])),
                              tokenize, facts["vocab_size"])
    n, hkv, hd = facts["n_layers"], facts["n_kv_heads"], facts["head_dim"]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.rows = iter(cal.batches)

        def get_next(self) -> dict[str, Any] | None:
            row = next(self.rows, None)
            if row is None:
                return None
            feeds = {"input_ids": np.array([row], dtype=np.int64),
                     "logits_index": np.arange(len(row), dtype=np.int64)}  # every row through the lm_head
            if facts.get("kv_cache"):
                empty = np.zeros((1, hkv, 0, hd), dtype=np.float32)
                feeds.update({name: empty for name in kv_names(n, "past")})
            return feeds

    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile}
    quantize_static(src / GRAPH, dst, Reader(), quant_format=QuantFormat.QDQ, op_types_to_quantize=["MatMul"],
                    per_channel=bool(params["per_channel"]), reduce_range=bool(params["reduce_range"]),
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=exclude,
                    calibrate_method=methods[params["calib_method"]], use_external_data_format=True,
                    extra_options={"MatMulConstBOnly": True, "CalibMovingAverage": False,
                                   "QDQOpTypePerChannelSupportToAxis": {"MatMul": 1}})  # per output column
    return cal.info


def lm_head_nodes(path: Path, vocab_size: int) -> list[str]:
    """Names of the MatMul nodes whose weight has the vocabulary as output width (the output projection)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    heads = {t.name for t in model.graph.initializer if len(t.dims) == 2 and t.dims[1] == vocab_size}
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and any(i in heads for i in n.input)]


def _nbits(src: Path, dst: Path, params: dict[str, Any], exclude: list[str], bits: int) -> None:
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    from quantscope.backends.base import Unsupported

    block = int(params["block_size"])
    model = onnx.load(str(src))
    widths = {init.name: init.dims[0] for init in model.graph.initializer if len(init.dims) == 2}
    bad = sorted({widths[i] for node in model.graph.node if node.op_type == "MatMul"
                  for i in node.input if i in widths and widths[i] % block})
    if bad:
        raise Unsupported(f"int{bits} block_size {block} does not divide the MatMul input width(s) {bad}: "
                          "choose a block size dividing them (e.g. --qparam block_size=32)")
    quant = MatMulNBitsQuantizer(model, bits=bits, block_size=block, is_symmetric=bool(params["symmetric"]),
                                 accuracy_level=int(params["accuracy_level"]), nodes_to_exclude=exclude)
    quant.process()
    quant.model.save_model_to_file(str(dst), use_external_data_format=True)
