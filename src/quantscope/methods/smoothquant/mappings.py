"""Which norm feeds which Linears: the smoothing groups of a decoder layer, keyed by HF architecture.

Smoothing divides a norm's output channel j by s_j and multiplies input column j of every Linear
that reads that output by s_j; it is exact only when the norm feeds those Linears and nothing else
(the residual stream is the norm's *input*, so it is untouched). The pairs follow the reference code
(mit-han-lab/smoothquant, smoothquant/smooth.py `smooth_lm`): OPT self_attn_layer_norm -> q,k,v and
final_layer_norm -> fc1; Bloom input_layernorm -> query_key_value and post_attention_layernorm ->
dense_h_to_4h; Llama/Mistral input_layernorm -> q,k,v and post_attention_layernorm -> gate,up.
GPT-2's ln_1/ln_2 feed Conv1D layers (weights stored [in, out]); Gemma's RMSNorm multiplies by
(1 + weight), so its fold keeps that offset; Gemma 2/3 feed the MLP from pre_feedforward_layernorm.

An architecture missing from the table gets the Llama pairs when every decoder layer has exactly
those module names (logged; the handler checks that the logits did not move after folding); otherwise it is refused.

>>> TABLE["LlamaForCausalLM"][1]
Pair(norm='post_attention_layernorm', linears=('mlp.gate_proj', 'mlp.up_proj'))
>>> groups_for(None, "BertModel")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
quantscope.errors.UserError: smoothquant: no norm -> Linear mapping for architecture BertModel; ...
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from quantscope.errors import UserError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pair:
    """A norm (relative to a decoder layer) and the Linears that read its output."""

    norm: str
    linears: tuple[str, ...]


@dataclass
class Group:
    """One smoothing group of a loaded model: modules resolved, names fully qualified."""

    norm_name: str
    norm: Any
    linear_names: tuple[str, ...]
    linears: tuple[Any, ...]
    norm_offset: float = 0.0  # Gemma: the norm multiplies by (offset + weight)


LLAMA = (Pair("input_layernorm", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")),
         Pair("post_attention_layernorm", ("mlp.gate_proj", "mlp.up_proj")))
GEMMA2 = (LLAMA[0], Pair("pre_feedforward_layernorm", ("mlp.gate_proj", "mlp.up_proj")))
# architecture -> (path of the decoder layer list, pairs, norm offset)
LAYOUTS: dict[str, tuple[str, tuple[Pair, ...], float]] = {
    "LlamaForCausalLM": ("model.layers", LLAMA, 0.0),
    "MistralForCausalLM": ("model.layers", LLAMA, 0.0),
    "Qwen2ForCausalLM": ("model.layers", LLAMA, 0.0),
    "Qwen3ForCausalLM": ("model.layers", LLAMA, 0.0),
    "GemmaForCausalLM": ("model.layers", LLAMA, 1.0),
    "Gemma2ForCausalLM": ("model.layers", GEMMA2, 1.0),
    "Phi3ForCausalLM": ("model.layers", (Pair("input_layernorm", ("self_attn.qkv_proj",)),
                                         Pair("post_attention_layernorm", ("mlp.gate_up_proj",))), 0.0),
    "OPTForCausalLM": ("model.decoder.layers", (Pair("self_attn_layer_norm", ("self_attn.q_proj",
                       "self_attn.k_proj", "self_attn.v_proj")), Pair("final_layer_norm", ("fc1",))), 0.0),
    "BloomForCausalLM": ("transformer.h", (Pair("input_layernorm", ("self_attention.query_key_value",)),
                         Pair("post_attention_layernorm", ("mlp.dense_h_to_4h",))), 0.0),
    "GPT2LMHeadModel": ("transformer.h", (Pair("ln_1", ("attn.c_attn",)), Pair("ln_2", ("mlp.c_fc",))), 0.0),
}
TABLE = {arch: pairs for arch, (_, pairs, _) in LAYOUTS.items()}


def architecture(model: Any) -> str | None:
    """The HF architecture name of a loaded model (config.architectures[0], else the class name);
    None for a bare module (the backend's probe Linear), which has no norms to smooth."""
    config = getattr(model, "config", None)
    if config is None:
        return None
    archs = getattr(config, "architectures", None) or [type(model).__name__]
    return archs[0]


def _layers(model: Any, path: str) -> list[Any] | None:
    obj = model
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return list(obj)


def _resolve(model: Any, layers_path: str, pairs: tuple[Pair, ...], offset: float) -> list[Group] | None:
    layers = _layers(model, layers_path)
    if not layers:
        return None
    out = []
    for i, layer in enumerate(layers):
        named = dict(layer.named_modules())
        for pair in pairs:
            if pair.norm not in named or any(n not in named for n in pair.linears):
                return None
            prefix = f"{layers_path}.{i}."
            out.append(Group(prefix + pair.norm, named[pair.norm], tuple(prefix + n for n in pair.linears),
                             tuple(named[n] for n in pair.linears), offset))
    return out


def groups_for(model: Any, arch: str | None = None) -> list[Group]:
    """The smoothing groups of `model`: the table's pairs for its architecture, else the Llama pairs
    when they fit every layer (logged), else a one-line UserError. A bare module: no groups."""
    arch = arch or architecture(model)
    if arch is None:
        return []
    if arch in LAYOUTS:
        path, pairs, offset = LAYOUTS[arch]
        groups = _resolve(model, path, pairs, offset)
        if groups is None:
            raise UserError(f"smoothquant: the {arch} model does not have the modules its mapping names "
                            f"({', '.join(p.norm for p in pairs)} under {path})")
        return groups
    groups = _resolve(model, "model.layers", LLAMA, 0.0) if model is not None else None
    if groups is None:
        raise UserError(f"smoothquant: no norm -> Linear mapping for architecture {arch}; "
                        f"mapped: {', '.join(LAYOUTS)}")
    log.warning("smoothquant: %s is not in the mapping table; its layers have the Llama names, "
                "so input_layernorm -> q,k,v and post_attention_layernorm -> gate,up are used", arch)
    return groups
