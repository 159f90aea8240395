"""Bytes per weight of each (backend, quant, dtype) from the formats' real layouts, and what they compute in.

A `Layout` says how many bytes the block linears, the output projection (lm_head), the input
embedding and the norms take, which compute type the matmuls need from the hardware, and how
many bytes one KV-cache value takes. The names are `run`'s: `--backend torch --dtype bf16`,
`--backend torchao --quant int4-weight-only`, `--backend llamacpp --quant q4_k_m` ...

Sources, one per layout function:
- llama.cpp blocks: ggml/src/ggml.c `type_traits` (blck_size, type_size), e.g. Q4_0 = 18 bytes per
  32 weights (fp16 scale + 16 bytes of nibbles); tests/hardware pin the table to gguf.constants.
- torchao: int8 weight-only keeps one scale per output row; int4 weight-only (tinygemm) one bf16
  scale and one bf16 zero per group (torchao/quantization README, "int4wo-64").
- bitsandbytes 4-bit: one fp32 absmax per block of 64; with double quantization an 8-bit absmax
  plus one fp32 per 256 blocks (QLoRA, Dettmers et al. 2023, sec. 3: 0.5 -> 0.127 bits/param).
- LLM.int8(): int8 weights with one fp32 scale per row (SCB) (Dettmers et al. 2022).
- ONNX Runtime MatMulNBits: 4-bit blocks (32 here, convert.py INT4_DEFAULTS) with an fp32 scale
  each (symmetric: no zero points); int8 by default the same at 8 bits (scheme=blockwise: 1 + 4/32 bytes
  per weight), quantize_dynamic/static int8: one scale and zero point per tensor (or per row).

>>> lay = layout("llamacpp", "q4_0", "fp32", shape_like(hidden=4096))
>>> lay.linear_bpw, lay.compute
(0.5625, 'fp16')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from quantscope.errors import UserError

DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}

# ggml type -> (weights per block, bytes per block): ggml/src/ggml.c type_traits.
GGML_BLOCKS: dict[str, tuple[int, int]] = {
    "F32": (1, 4), "F16": (1, 2), "BF16": (1, 2),
    "Q4_0": (32, 18), "Q4_1": (32, 20), "Q5_0": (32, 22), "Q5_1": (32, 24), "Q8_0": (32, 34),
    "Q2_K": (256, 84), "Q3_K": (256, 110), "Q4_K": (256, 144), "Q5_K": (256, 176), "Q6_K": (256, 210),
    "IQ4_NL": (32, 18), "IQ4_XS": (256, 136),
}
# A K-quant needs rows that are multiples of 256; llama.cpp falls back per tensor
# (src/llama-quant.cpp, llama_tensor_get_type: "fallback" switch).
K_FALLBACK = {"Q2_K": "Q4_0", "Q3_K": "Q4_0", "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0", "IQ4_XS": "IQ4_NL"}


@dataclass(frozen=True)
class Layout:
    """Bytes per weight by tensor role, the compute type needed, and KV-cache bytes per value."""

    key: str  # backend/quant label used to group measurements for calibration
    linear_bpw: float
    head_bpw: float
    embed_bpw: float
    norm_bpw: float
    compute: str  # fp32 | bf16 | fp16 | int8 | fp8 ...
    kv_bytes: float
    all_logits: bool  # prefill computes logits for every prompt position (transformers) or only the last
    source: str
    tensor_bytes: int | None = None  # exact bytes when read from a file's tensor table
    unties: bool = False  # the runtime keeps a tied embedding apart from lm_head (an ONNX export does)

    def weight_bytes(self, shape: Any) -> int:
        """Every weight the runtime keeps: block linears, lm_head (once if tied), embedding, norms."""
        if self.tensor_bytes is not None:
            return self.tensor_bytes
        embed = 0 if shape.tied and not self.unties else shape.embed_params * self.embed_bpw
        pos = shape.learned_positions * shape.hidden * self.embed_bpw
        return int(shape.block_linear_params * self.linear_bpw + shape.embed_params * self.head_bpw + embed
                   + shape.norm_params * self.norm_bpw + pos)

    def streamed_bytes(self, shape: Any) -> int:
        """Bytes one decode step reads: every weight except the untied input embedding (one row each)."""
        if self.tensor_bytes is not None and not shape.tied:
            return int(self.tensor_bytes - shape.embed_params * self.embed_bpw)
        embed = 0 if shape.tied and not self.unties else shape.embed_params * self.embed_bpw
        return int(self.weight_bytes(shape) - embed - shape.learned_positions * shape.hidden * self.embed_bpw)


def shape_like(**kw: Any) -> Any:
    """A stand-in shape for doctests and tests: only the fields layouts read."""
    from types import SimpleNamespace

    base = {"hidden": 4096, "intermediate": 11008, "heads": 32, "head_dim": 128, "tensors": (), "tied": False}
    return SimpleNamespace(**{**base, **kw})


def _params(quant_params: Any) -> dict[str, Any]:
    return dict(quant_params or ())


def _dtype(dtype: str) -> int:
    if dtype not in DTYPE_BYTES:
        raise UserError(f"dtype {dtype!r} is not one of {', '.join(DTYPE_BYTES)}")
    return DTYPE_BYTES[dtype]


def _torch(quant: str, dtype: str, params: dict, shape: Any) -> Layout:
    if quant != "none":
        raise UserError(f"the torch backend runs plain dtypes (--quant none), not {quant!r}: "
                        "use --backend torchao or bnb for quantized weights")
    d = _dtype(dtype)
    return Layout(f"torch/{dtype}", d, d, d, d, dtype, d, True, "dense weights in the run's dtype")


def _torchao(quant: str, dtype: str, params: dict, shape: Any) -> Layout:
    from quantscope.methods import config_from_spec
    from quantscope.spec import QuantSpec

    if quant == "none":  # torchao without a method runs the plain dtype
        return _torch(quant, dtype, params, shape)
    cfg = config_from_spec(QuantSpec(dtype=dtype, method=quant, params=tuple(params.items())), "torchao")
    if getattr(cfg, "backend", "") != "torchao":
        raise UserError(f"{quant!r} is not a torchao method")
    d = _dtype(dtype)
    row = d / shape.hidden  # one scale per output row, spread over in_features ~ hidden weights
    group = getattr(cfg, "group_size", None)
    table: dict[str, tuple[float, str]] = {
        "int8-weight-only": (1 + row, dtype),
        "int8-dynamic": (1 + row, "int8"),
        # methods/smoothquant: the same int8 weights per row and int8 matmuls; smoothing moves no bytes
        "w8a8": (1 + row, "int8"),
        "smoothquant-w8a8": (1 + row, "int8"),
        # bf16 scale + bf16 zero per group; tinygemm (_weight_int4pack_mm) takes bf16 activations only
        "int4-weight-only": (0.5 + 2 * 2 / (group or 64), "bf16"),
        "float8-dynamic": (1 + 4 / shape.hidden, "fp8"),
        "float8-weight-only": (1 + 4 / shape.hidden, dtype),  # dequantized for a matmul in the run's dtype
        # intx keeps 1-8 bit values unpacked in int8 bytes, plus a scale (and zero) per group
        "intx-weight-only": (1 + (d + 1) / (group or shape.hidden), dtype),
        "int8-dynamic-intx": (1 + (d + 1) / (group or shape.hidden), "int8"),
        "int8-dynamic-int4": (0.5 + (d + 1) / (group or 64), "int8"),
    }
    if quant not in table:
        raise UserError(f"no byte layout for torchao {quant!r} yet; known: {', '.join(table)}")
    bpw, compute = table[quant]
    head = bpw if getattr(cfg, "lm_head", False) else d
    return Layout(f"torchao/{quant}", bpw, head, d, d, compute, d, True,
                  "torchao layouts: per-row scales (int8, float8), bf16 scale+zero per group (int4)")


def _bnb(quant: str, dtype: str, params: dict, shape: Any) -> Layout:
    d = _dtype(dtype)
    if quant == "int8":
        return Layout("bnb/int8", 1 + 4 / shape.hidden, d, d, d, "int8", d, True,
                      "LLM.int8(): int8 rows + one fp32 scale (SCB) per row; lm_head kept (transformers)")
    if quant in ("nf4", "fp4"):
        double = bool(params.get("double_quant", False))
        absmax = (1 / 64 + 4 / (64 * 256)) if double else 4 / 64  # bytes of scale per weight
        compute = params.get("compute_dtype", "auto")
        compute = dtype if compute == "auto" else compute
        return Layout(f"bnb/{quant}", 0.5 + absmax, d, d, d, compute, d, True,
                      "bnb 4-bit: fp32 absmax per 64 weights (double quant: 8-bit absmax + fp32 per 256 blocks)")
    raise UserError(f"bnb quantizes with int8, nf4 or fp4, not {quant!r}")


def _ort_layout(quant: str, dtype: str, params: dict, shape: Any) -> Layout:
    if quant == "none":
        return Layout("ort/none", 4, 4, 4, 4, "fp32", 4, True, "ONNX Runtime FP32 graph")
    if quant == "int8":
        scheme = params.get("scheme", "blockwise")
        if scheme == "blockwise":  # MatMulNBits 8-bit, symmetric (backends/ort/convert.py): a scale per block
            block = int(params.get("block_size", 32))
            bpw, source = 1 + 4 / block, f"MatMulNBits: 8-bit blocks of {block} with an fp32 scale each"
        else:  # quantize_dynamic / quantize_static: QDQ int8 weights, a scale and zero point per tensor or row
            per_row = params.get("per_channel", scheme == "static")
            bpw = 1 + (5 / shape.hidden if per_row else 0)
            source = f"quantize_{scheme}: int8 weights, a scale and zero point per {'row' if per_row else 'tensor'}"
        head = bpw if params.get("lm_head", True) else 4
        key = "ort/int8" if scheme == "blockwise" else f"ort/int8-{scheme}"  # another kernel: calibrated apart
        return Layout(key, bpw, head, 4, 4, "int8", 4, True, source)
    if quant == "int4":
        block = int(params.get("block_size", 32))
        bpw = 0.5 + 4 / block + (0 if params.get("symmetric", True) else 0.5 / block)
        head = bpw if params.get("lm_head", True) else 4
        return Layout("ort/int4", bpw, head, 4, 4, "int8", 4, True,
                      f"MatMulNBits: 4-bit blocks of {block} with an fp32 scale each")
    raise UserError(f"ort quantizes with none, int8 or int4, not {quant!r}")


def _ort(quant: str, dtype: str, params: dict, shape: Any) -> Layout:
    """The ONNX export keeps a tied embedding as its own fp32 Gather beside lm_head's MatMul: the stored
    graphs of the bundled model weigh 621 MiB (FP32), 252 MiB (int8), 188 MiB (int4), as this counts."""
    from dataclasses import replace

    return replace(_ort_layout(quant, dtype, params, shape), unties=True)


def _ortgenai(quant: str, dtype: str, params: dict, shape: Any) -> Layout:
    """onnxruntime-genai's model builder: MatMulNBits blocks like ORT's. Its files of the bundled model
    (515 MiB FP32, 254 MiB int8, 82 MiB int4) say how it treats a tied embedding: shared at FP32 and
    int4 (one 4-bit table for Gather and lm_head), an fp32 Gather beside an int8 lm_head at int8."""
    block = int(params.get("block_size", 32))
    zeros = 0 if params.get("symmetric", True) else 0.5 / block
    if quant == "none":
        return Layout("ortgenai/none", 4, 4, 4, 4, "fp32", 4, True, "onnxruntime-genai FP32 graph")
    if quant == "int4":
        bpw = 0.5 + 4 / block + zeros
        return Layout("ortgenai/int4", bpw, bpw, bpw, 4, "int8", 4, True,
                      f"MatMulNBits: 4-bit blocks of {block}, embedding shared with lm_head at 4 bits")
    if quant == "int8":
        bpw = 1 + 4 / block + 2 * zeros
        return Layout("ortgenai/int8", bpw, bpw, 4, 4, "int8", 4, True,
                      f"MatMulNBits: 8-bit blocks of {block}, fp32 embedding apart", unties=True)
    raise UserError(f"ortgenai quantizes with none, int8 or int4, not {quant!r}")


def ggml_bpw(type_name: str) -> float:
    """Bytes per weight of a ggml type (block bytes / block weights).

    >>> ggml_bpw("Q4_0"), ggml_bpw("Q8_0"), ggml_bpw("Q4_K")
    (0.5625, 1.0625, 0.5625)
    """
    block, size = GGML_BLOCKS[type_name.upper()]
    return size / block


def _ftype_types(ftype: str, shape: Any) -> tuple[str, str, str]:
    """(block-linear type, output type, embedding type) llama-quantize picks for an ftype name.

    Output tensor: Q6_K unless the ftype is Q8_0 or wider (llama-quant.cpp, llama_tensor_get_type);
    K-quant mixes (_S/_M/_L) are read as their base type; _M upgrades half of attn_v/ffn_down to Q6_K,
    which adds about 1/6 of the difference over the linears (2 of 7 matrices per layer, half the layers).
    """
    name = ftype.upper()
    if name in ("F32", "F16", "BF16"):
        return name, name, name
    base = name
    for suffix in ("_S", "_M", "_L"):
        if name.endswith(suffix) and name[: -len(suffix)] in GGML_BLOCKS:
            base = name[: -len(suffix)]
    if base not in GGML_BLOCKS:
        raise UserError(f"no byte layout for llama.cpp type {ftype!r}; known: "
                        f"{', '.join(sorted(t.lower() for t in GGML_BLOCKS))} (+ _s/_m/_l mixes)")
    if base in K_FALLBACK and any(w % 256 for w in (shape.hidden, shape.intermediate)):
        base = K_FALLBACK[base]  # rows not a multiple of 256 (e.g. SmolLM2's 576)
    wide = {"Q8_0", "F16", "BF16", "F32"}
    out = base if base in wide else ("Q8_0" if shape.hidden % 256 else "Q6_K")
    return base, out, base


def _llamacpp(quant: str, dtype: str, params: dict, shape: Any) -> Layout:
    q = quant.lower()
    if q == "none":
        if shape.tensors:  # a GGUF source runs as it is: its own tensor types, exact bytes
            from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

            total = 0
            for _name, ttype, n in shape.tensors:
                block, size = GGML_QUANT_SIZES[GGMLQuantizationType(ttype)]
                total += n // block * size
            per = total / max(shape.total_params, 1)
            return Layout("llamacpp/asis", per, per, per, 4, "fp16", 2, False,
                          "the GGUF file's own tensor types (tensor table)", tensor_bytes=total)
        q = {"fp32": "f32", "fp16": "f16", "bf16": "bf16"}[dtype]
    lin, out, emb = _ftype_types(q, shape)
    more = 0.0
    if q.endswith("_m") and lin in ("Q3_K", "Q4_K", "Q5_K"):
        more = (ggml_bpw("Q6_K") - ggml_bpw(lin)) / 7  # attn_v + ffn_down in half the layers
    compute = "fp16" if lin not in ("F32", "BF16") else lin.lower()
    return Layout(f"llamacpp/{q}", ggml_bpw(lin) + more, ggml_bpw(out), ggml_bpw(emb), 4, compute, 2, False,
                  f"ggml blocks: {lin} {GGML_BLOCKS[lin][1]} bytes per {GGML_BLOCKS[lin][0]} weights")


LAYOUTS: dict[str, Callable[[str, str, dict, Any], Layout]] = {
    "torch": _torch, "torchao": _torchao, "bnb": _bnb, "ort": _ort, "ortgenai": _ortgenai, "llamacpp": _llamacpp,
}


def layout(backend: str, quant: str, dtype: str, shape: Any, params: Any = ()) -> Layout:
    """The byte layout of `run --backend B --quant Q --dtype D` for a model of `shape`."""
    fn = LAYOUTS.get(backend)
    if fn is None:
        raise UserError(f"unknown backend {backend!r}; projections know {', '.join(LAYOUTS)}")
    return fn(quant, dtype, _params(params), shape)
