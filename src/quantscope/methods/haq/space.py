"""The search space of a mixed-precision policy: one format per Linear, from formats a runtime executes.

A `Layer` is one searched weight (a GGUF tensor for llama.cpp, a Linear for torchao); its `name` is
the name the runtime's policy matches (`blk.3.ffn_down.weight`, `model.layers.3.mlp.down_proj`). The
formats of a backend are ordered from the fewest bytes per weight to the most, so HAQ's continuous
action in [0, 1] maps to a format the way its `_action_wall` maps to a bit width (equal strides).

llama.cpp formats are those the `gguf` package writes per tensor by itself (FACTS.md: F16, Q4_0,
Q4_1, Q5_0, Q5_1, Q8_0); K-quants need llama-quantize, which is not built here, so they are refused
with that reason rather than silently replaced.

>>> action_to_format(0.0, LLAMACPP_FORMATS), action_to_format(1.0, LLAMACPP_FORMATS)
('q4_0', 'f16')
"""

from __future__ import annotations

from dataclasses import dataclass

from quantscope.errors import UserError
from quantscope.hardware.formats import GGML_BLOCKS, ggml_bpw

# Ordered by bytes per weight (ggml type_traits): 0.5625, 0.625, 0.6875, 0.75, 1.0625, 2.
LLAMACPP_FORMATS = ("q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "f16")
# What llama.cpp executes but only llama-quantize writes (the gguf package only dequantizes K-quants).
LLAMACPP_NOT_WRITABLE = ("q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "iq4_nl", "iq4_xs", "bf16")
# torchao per-module configs that run on this CPU (FACTS.md), fewest bytes first; "none" keeps fp32.
TORCHAO_FORMATS = ("int4-weight-only", "int8-weight-only", "int8-dynamic", "none")
FORMATS = {"llamacpp": LLAMACPP_FORMATS, "torchao": TORCHAO_FORMATS}
# Layer kinds in block order: part of HAQ's state embedding (its "layer type" feature).
KINDS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down", "other")


@dataclass(frozen=True)
class Layer:
    """One searched weight: its runtime name, the HF module it comes from, its shape and block index."""

    name: str
    module: str
    out_features: int
    in_features: int
    block: int
    kind: str

    @property
    def params(self) -> int:
        return self.out_features * self.in_features

    @property
    def shape(self) -> tuple[int, int]:
        return self.out_features, self.in_features


def bytes_per_weight(backend: str, fmt: str, in_features: int = 4096) -> float:
    """Bytes one weight of `fmt` takes in `backend`'s layout (hardware/formats.py's sources).

    >>> bytes_per_weight("llamacpp", "q4_0"), bytes_per_weight("torchao", "int8-weight-only", 576)
    (0.5625, 1.0069444444444444)
    """
    if backend == "llamacpp":
        return ggml_bpw(fmt)
    # torchao: int8 keeps one fp32 scale per output row; int4 (bf16 compute) a bf16 scale and zero per 64
    table = {"int4-weight-only": 0.5 + 2 * 2 / 64, "int8-weight-only": 1 + 4 / in_features,
             "int8-dynamic": 1 + 4 / in_features, "none": 4.0}
    return table[fmt]


def layer_bytes(backend: str, layer: Layer, fmt: str) -> float:
    return layer.params * bytes_per_weight(backend, fmt, layer.in_features)


def check_formats(backend: str, formats: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """The searched formats of `backend` in cost order; a format the runtime cannot execute (or that
    cannot be written per tensor here) is a UserError naming the valid ones."""
    if backend not in FORMATS:
        raise UserError(f"search runs on llamacpp or torchao, not {backend!r}")
    valid = FORMATS[backend]
    chosen = [f.strip().lower() for f in (formats or valid)]
    for f in chosen:
        if f in valid:
            continue
        if backend == "llamacpp" and (f in LLAMACPP_NOT_WRITABLE or f.upper() in GGML_BLOCKS):
            raise UserError(f"format {f} cannot be written per tensor here (the gguf package writes only "
                            f"{', '.join(valid)}; K-quants need llama-quantize --tensor-type): use those")
        raise UserError(f"the {backend} runtime cannot execute format {f!r} per layer; use {', '.join(valid)}")
    if len(set(chosen)) < 2:
        raise UserError(f"a search needs at least two formats, got {', '.join(chosen)}")
    return tuple(f for f in valid if f in chosen)


def action_to_format(action: float, formats: tuple[str, ...]) -> str:
    """HAQ's `_action_wall`: a in [0, 1] -> one of n formats with equal strides (round(a*n - 0.5)).

    >>> [action_to_format(a, ("a", "b", "c")) for a in (0.0, 0.33, 0.34, 0.99, 1.0)]
    ['a', 'a', 'b', 'c', 'c']
    """
    n = len(formats)
    return formats[min(max(int(float(action) * n), 0), n - 1)]


def format_to_action(fmt: str, formats: tuple[str, ...]) -> float:
    """The centre of `fmt`'s stride: the action the state embedding records for the previous layer."""
    return (formats.index(fmt) + 0.5) / len(formats)


def kind_of(name: str) -> str:
    for kind in KINDS[:-1]:
        if kind in name:
            return kind
    hf = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
          "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}
    return next((k for part, k in hf.items() if part in name), "other")


# GGUF kind -> (HF module under model.layers.N, out features, in features) for a llama-style block;
# architecture knowledge as data (DESIGN.md #8), the names of gguf's tensor map.
def _llama_block(shape) -> dict[str, tuple[str, int, int]]:
    q, kv = shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim
    h, f = shape.hidden, shape.intermediate
    return {"attn_q": ("self_attn.q_proj", q, h), "attn_k": ("self_attn.k_proj", kv, h),
            "attn_v": ("self_attn.v_proj", kv, h), "attn_output": ("self_attn.o_proj", h, q),
            "ffn_gate": ("mlp.gate_proj", f, h), "ffn_up": ("mlp.up_proj", f, h),
            "ffn_down": ("mlp.down_proj", h, f)}


def layers_from_shape(shape, backend: str = "llamacpp") -> list[Layer]:
    """Every block Linear of a llama-style model of `shape`, first block first, in GGUF order.

    >>> from quantscope.models.synthetic import config_for
    >>> from quantscope.models.shape import shape_from_config
    >>> ls = layers_from_shape(shape_from_config(config_for("tiny-llama")))
    >>> ls[0].name, ls[0].module.endswith("q_proj"), len({l.kind for l in ls})
    ('blk.0.attn_q.weight', True, 7)
    """
    if not shape.gated or shape.model_type not in ("llama", "mistral", "qwen2"):
        raise UserError(f"search knows llama-style blocks (llama, mistral, qwen2), not {shape.model_type}")
    out = []
    for i in range(shape.layers):
        for kind, (module, rows, cols) in _llama_block(shape).items():
            hf = f"model.layers.{i}.{module}"
            name = f"blk.{i}.{kind}.weight" if backend == "llamacpp" else hf
            out.append(Layer(name, hf, rows, cols, i, kind))
    return out
