"""A model's shape without its weights: what projections need (layers, widths, heads, vocabulary).

Read from a config.json (or a folder holding one), a synthetic architecture, the bundled model or a
GGUF file (from its metadata keys and tensor table: no tensor data is read), or a hub id's cached
config. Nothing here loads weights or imports torch.

Field names follow transformers' configs: LlamaConfig (hidden_size, intermediate_size,
num_hidden_layers, num_attention_heads, num_key_value_heads, head_dim) and GPT2Config (n_embd,
n_layer, n_head, n_inner); GGUF keys follow llama.cpp's `{arch}.block_count` etc. (gguf.md).

>>> s = shape_from_config({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
...     "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 256})
>>> s.linear_params, s.kv_bytes_per_token(2)
(90112, 256)
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quantscope.errors import FormatError, UserError

CONFIG = "config.json"
# model_type -> layout of the MLP: "gated" (SwiGLU: gate, up, down) or "plain" (fc in, fc out).
GATED = {"llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3", "olmo", "granite"}
PLAIN = {"gpt2", "gpt_neox", "opt", "phi", "falcon", "gptj", "bloom"}


@dataclass(frozen=True)
class ModelShape:
    """The dimensions that decide bytes and FLOPs. `tensors`: GGUF (name, ggml type, n_elements) when known."""

    name: str
    model_type: str
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool
    gated: bool = True
    qkv_bias: bool = False
    max_positions: int | None = None
    learned_positions: int = 0  # GPT-2 style position embedding rows
    tensors: tuple[tuple[str, int, int], ...] = field(default=(), compare=False)

    # --- parameter counts ----------------------------------------------------------------------
    @property
    def attn_params_per_layer(self) -> int:
        """q and o are hidden x (heads*head_dim); k and v are hidden x (kv_heads*head_dim)."""
        q = self.heads * self.head_dim
        kv = self.kv_heads * self.head_dim
        return self.hidden * (2 * q + 2 * kv)

    @property
    def mlp_params_per_layer(self) -> int:
        mats = 3 if self.gated else 2
        return mats * self.hidden * self.intermediate

    @property
    def block_linear_params(self) -> int:
        """Weights of every Linear inside the transformer blocks (what quantization methods convert)."""
        return self.layers * (self.attn_params_per_layer + self.mlp_params_per_layer)

    @property
    def embed_params(self) -> int:
        return self.vocab * self.hidden

    @property
    def linear_params(self) -> int:
        """Block linears plus the output projection (lm_head), which every decode step multiplies by."""
        return self.block_linear_params + self.embed_params

    @property
    def norm_params(self) -> int:
        return (2 * self.layers + 1) * self.hidden

    @property
    def total_params(self) -> int:
        embed = 0 if self.tied else self.embed_params
        return self.linear_params + embed + self.norm_params + self.learned_positions * self.hidden

    def kv_bytes_per_token(self, bytes_per_value: float) -> int:
        """K and V for one token across all layers: 2 x layers x kv_heads x head_dim values."""
        return int(2 * self.layers * self.kv_heads * self.head_dim * bytes_per_value)

    @property
    def in_features(self) -> set[int]:
        """The input widths of the block linears (group sizes must divide them)."""
        return {self.hidden, self.intermediate, self.heads * self.head_dim}


def _need(config: dict[str, Any], keys: tuple[str, ...], where: str) -> Any:
    for k in keys:
        v = config.get(k)
        if v is not None:
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise FormatError(f"{where}: field {k!r} is {v!r}, not a positive integer; fix the config")
            return v
    raise FormatError(f"{where} lacks the field {keys[0]!r} that the projection needs"
                      + (f" (or {', '.join(map(repr, keys[1:]))})" if keys[1:] else "") + "; add it")


def shape_from_config(config: Any, name: str = "config", where: str = "config.json") -> ModelShape:
    """A ModelShape from a transformers config dict; a missing or malformed field is named in a FormatError."""
    if not isinstance(config, dict):
        raise FormatError(f"{where} is not a JSON object; pass a model's config.json")
    mtype = str(config.get("model_type") or "")
    if not mtype:
        raise FormatError(f"{where} lacks the field 'model_type' that the projection needs; add it")
    if mtype not in GATED | PLAIN:
        known = ", ".join(sorted(GATED | PLAIN))
        raise UserError(f"{where}: model_type {mtype!r} has no shape rule here (known: {known})")
    gpt2 = mtype == "gpt2"
    hidden = _need(config, ("n_embd",) if gpt2 else ("hidden_size",), where)
    layers = _need(config, ("n_layer",) if gpt2 else ("num_hidden_layers",), where)
    heads = _need(config, ("n_head",) if gpt2 else ("num_attention_heads",), where)
    kv_heads = config.get("num_key_value_heads") or heads
    if gpt2:
        inter = config.get("n_inner") or 4 * hidden  # GPT2Config: n_inner None means 4 * n_embd
    else:
        inter = _need(config, ("intermediate_size",), where)
    head_dim = config.get("head_dim") or hidden // heads
    vocab = _need(config, ("vocab_size",), where)
    for k, v in (("num_key_value_heads", kv_heads), ("head_dim", head_dim), ("n_inner", inter)):
        if not isinstance(v, int) or v < 1:
            raise FormatError(f"{where}: field {k!r} is {v!r}, not a positive integer; fix the config")
    if heads % kv_heads:
        raise FormatError(f"{where}: num_attention_heads {heads} is not a multiple of num_key_value_heads "
                          f"{kv_heads}; fix the config")
    positions = config.get("n_positions" if gpt2 else "max_position_embeddings")
    return ModelShape(
        name=name, model_type=mtype, hidden=hidden, intermediate=inter, layers=layers, heads=heads,
        kv_heads=kv_heads, head_dim=head_dim, vocab=vocab,
        tied=bool(config.get("tie_word_embeddings", True)),  # PretrainedConfig's default is True
        gated=mtype in GATED, qkv_bias=mtype == "qwen2" or gpt2,
        max_positions=positions if isinstance(positions, int) else None,
        learned_positions=positions if gpt2 and isinstance(positions, int) else 0,
    )


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise FormatError(f"cannot read {path}: {e}") from None
    try:
        return json.loads(text)
    except ValueError as e:
        raise FormatError(f"{path} is not valid JSON ({e}); re-copy it") from None


def shape_from_gguf(path: str, name: str | None = None) -> ModelShape:
    """A ModelShape from a GGUF file's metadata and tensor table; tensor data is never read."""
    import mmap

    from quantscope.models.gguf import _scan, read_header

    header = read_header(path)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        keys, tensors, _ = _scan(path, header, buf)

    def text(v: Any) -> str:
        return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v or "")

    arch = text(keys.get("general.architecture"))
    where = f"GGUF file {path}"
    if not arch:
        raise FormatError(f"{where} lacks the key 'general.architecture'; re-convert it")

    def key(suffix: str, required: bool = True) -> Any:
        v = keys.get(f"{arch}.{suffix}")
        if v is None and required:
            raise FormatError(f"{where} lacks the key '{arch}.{suffix}' that the projection needs")
        return v

    hidden = key("embedding_length")
    heads = key("attention.head_count")
    by_name = {n: (t, e) for n, t, e, _ in tensors}
    embd = by_name.get("token_embd.weight")
    if embd is None:
        raise FormatError(f"{where} has no token_embd.weight tensor; re-convert it")
    head_dim = key("attention.key_length", False) or hidden // heads
    return ModelShape(
        name=name or text(keys.get("general.name")) or Path(path).stem,
        model_type=arch, hidden=hidden, intermediate=key("feed_forward_length"), layers=key("block_count"),
        heads=heads, kv_heads=key("attention.head_count_kv", False) or heads, head_dim=head_dim,
        vocab=embd[1] // hidden, tied="output.weight" not in by_name, gated=arch in GATED,
        max_positions=key("context_length", False),
        tensors=tuple((n, t, e) for n, t, e, _ in tensors),
    )


def model_shape(arg: str | None) -> ModelShape:
    """The shape of anything `run --model` accepts, or a config.json / a folder holding only one.

    >>> model_shape("synthetic:tiny-llama").layers
    2
    """
    path = Path(arg).expanduser() if arg else None
    if path is not None and path.is_file() and path.suffix == ".json":
        return shape_from_config(read_config_file(path), path.parent.name or path.stem, str(path))
    if path is not None and path.is_dir():
        cfg = path / CONFIG
        if not cfg.is_file():
            jsons = list(path.glob("*.json"))
            if len(jsons) != 1:
                raise UserError(f"{path} holds no config.json (and not exactly one .json file): pass the "
                                "config.json itself")
            cfg = jsons[0]
        return shape_from_config(read_config_file(cfg), path.name, str(cfg))
    from quantscope.models import parse_model

    spec = parse_model(arg)
    return shape_for_spec(spec)


def shape_for_spec(spec: Any) -> ModelShape:
    """The shape of a stored run's ModelSpec (synthetic, bundled, GGUF, folder or cached hub id)."""
    return _shape_for(spec.source, spec.ref, getattr(spec, "revision", None))


@functools.cache
def _shape_for(source: str, ref: str, revision: str | None) -> ModelShape:
    if source == "synthetic":
        from quantscope.models.synthetic import config_for

        return shape_from_config(config_for(ref), f"synthetic:{ref}", f"synthetic:{ref}")
    if source == "bundled":
        from quantscope.models.bundled import bundled_path

        return shape_from_gguf(bundled_path(), ref)
    if source == "gguf":
        return shape_from_gguf(ref)
    if source == "hf":
        return shape_from_config(read_config_file(Path(ref) / CONFIG), Path(ref).name, f"{ref}/config.json")
    from quantscope.models.hub import cached_snapshot

    folder = Path(cached_snapshot(ref, revision))
    return shape_from_config(read_config_file(folder / CONFIG), ref, f"{ref} config.json")
