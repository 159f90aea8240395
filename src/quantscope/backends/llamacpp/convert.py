"""GGUF files for the llama.cpp backend: written from the reference weights, then quantized by llama.cpp.

  reference weights (models/materialize.py's dequantized HF folder, an HF folder, or seeded random
  weights) --write_gguf--> F32 / F16 GGUF --llama_model_quantize--> Q8_0, Q6_K, Q4_K_M, IQ4_XS, ...

write_gguf does what llama.cpp's convert_hf_to_gguf.py does for the architectures in ARCHITECTURES
(its LlamaModel: hparams keys, the q/k row permutation, llama3 rope factors), with the `gguf`
package's GGUFWriter and tensor-name map; a GGUF source's tokenizer metadata is copied from the
source file. Quantization is llama.cpp's own (llama_model_quantize, the code behind llama-quantize).
Every step runs in a child process and is cached (artifacts/cache.py's get_chain); this module
holds only the GGUF-specific recipes and the child-side code.
"""

from __future__ import annotations

import collections
import ctypes
import math
from pathlib import Path
from typing import Any

from quantscope.artifacts.cache import ArtifactCache, Cached, Recipe, conversion_facts, tool_versions
from quantscope.models.base import ModelArtifact
from quantscope.models.materialize import artifact_to_dict, model_label, source_digest

# History: 1 (2026-11-24) llama/qwen2 writer; tokenizer copied from a GGUF source, else "none".
WRITER_VERSION = 1
FILE = "model.gguf"
# Architecture knowledge as data (DESIGN.md #8): HF architecture -> GGUF architecture, and whether
# q/k rows are permuted back to llama.cpp's rope layout (convert_hf_to_gguf LlamaModel.undo_permute).
ARCHITECTURES = {
    "LlamaForCausalLM": {"arch": "llama", "permute_qk": True},
    "MistralForCausalLM": {"arch": "llama", "permute_qk": True},
    "Qwen2ForCausalLM": {"arch": "qwen2", "permute_qk": False},
}
WRITER_TYPES = ("f32", "f16")


def llama_ftypes() -> dict[str, int]:
    """llama.cpp's file types by lower-case name (q4_k_m, iq4_xs, f16, ...), from the library's enum."""
    import llama_cpp

    out = {}
    for name in dir(llama_cpp):
        for prefix in ("LLAMA_FTYPE_MOSTLY_", "LLAMA_FTYPE_ALL_"):
            if name.startswith(prefix):
                out[name[len(prefix):].lower()] = getattr(llama_cpp, name)
    return out


def permute_qk(w: Any, n_head: int, n_head_kv: int | None) -> Any:
    """HF's rotary layout -> llama.cpp's (convert_hf_to_gguf LlamaModel.permute, verbatim logic)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama3_rope_factors(rope: dict[str, Any], head_dim: int) -> Any:
    """rope_freqs for llama3 rope scaling (convert_hf_to_gguf LlamaModel.generate_extra_tensors)."""
    import numpy as np

    base = rope.get("rope_theta", 10000.0)
    freqs = 1.0 / (base ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))
    factor = rope.get("factor", 8.0)
    low, high = rope.get("low_freq_factor", 1.0), rope.get("high_freq_factor", 4.0)
    old_ctx = rope.get("original_max_position_embeddings", 8192)
    low_wavelen, high_wavelen = old_ctx / low, old_ctx / high
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.asarray(out, dtype=np.float32)


def rope_params(config: Any) -> dict[str, Any]:
    """Rope settings: transformers 5 keeps them (scaling included) in config.rope_parameters; older
    configs in rope_theta and rope_scaling."""
    params = getattr(config, "rope_parameters", None)
    if isinstance(params, dict) and "rope_theta" in params:
        return dict(params)
    scaling = getattr(config, "rope_scaling", None) or {}
    return {**scaling, "rope_theta": getattr(config, "rope_theta", 10000.0)}


# --- child side: writing ------------------------------------------------------------------------------
def write_gguf(out_dir: str, artifact: dict[str, Any], seed: int, out_type: str) -> dict[str, Any]:
    """Write out_dir/model.gguf (F32 or F16 for 2-D weights, F32 norms) from the reference weights."""
    import gguf
    import numpy as np

    from quantscope.backends.base import Unsupported
    from quantscope.backends.torch.reference import reference_model
    from quantscope.models.materialize import artifact_from_dict

    art = artifact_from_dict(artifact)
    model = reference_model(art, seed)
    cfg = model.config
    hf_arch = (getattr(cfg, "architectures", None) or [type(model).__name__])[0]
    if hf_arch not in ARCHITECTURES:
        raise Unsupported(f"quantscope writes GGUF for {', '.join(ARCHITECTURES)}, not {hf_arch}: convert "
                          "it with llama.cpp's convert_hf_to_gguf.py and pass the .gguf file")
    info = ARCHITECTURES[hf_arch]
    arch = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}[info["arch"]]
    heads, hidden = cfg.num_attention_heads, cfg.hidden_size
    kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
    head_dim = getattr(cfg, "head_dim", None) or hidden // heads
    rope = rope_params(cfg)
    rope_type = rope.get("rope_type") or "default"
    if rope_type not in ("default", "linear", "llama3"):
        raise Unsupported(f"GGUF writing handles rope types default, linear and llama3, not {rope_type!r}")

    path = Path(out_dir) / FILE
    w = gguf.GGUFWriter(str(path), info["arch"])
    w.add_name(model_label(art))
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(hidden)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_freq_base(float(rope["rope_theta"]))
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_vocab_size(cfg.vocab_size)
    w.add_rope_dimension_count(head_dim)
    if head_dim != hidden // heads:
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    if rope_type == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(rope["factor"])
    w.add_file_type(gguf.LlamaFileType.ALL_F32 if out_type == "f32" else gguf.LlamaFileType.MOSTLY_F16)
    vocab = _write_vocab(w, art, cfg.vocab_size)

    names = gguf.get_tensor_name_map(arch, cfg.num_hidden_layers)
    tied = bool(getattr(cfg, "tie_word_embeddings", False))
    count = 0
    for hf_name, tensor in model.state_dict().items():
        if tied and hf_name == "lm_head.weight":
            continue  # llama.cpp uses token_embd as the output when output.weight is absent
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise Unsupported(f"GGUF writing does not know where tensor {hf_name!r} of {hf_arch} goes")
        data = tensor.detach().float().numpy()
        if info["permute_qk"] and hf_name.endswith("q_proj.weight"):
            data = permute_qk(data, heads, heads)
        elif info["permute_qk"] and hf_name.endswith("k_proj.weight"):
            data = permute_qk(data, heads, kv_heads)
        if out_type == "f16" and data.ndim == 2:
            data = data.astype(np.float16)
        w.add_tensor(name, np.ascontiguousarray(data))
        count += 1
    if rope_type == "llama3":
        freqs_name = gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight"
        w.add_tensor(freqs_name, llama3_rope_factors(rope, head_dim))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    bos = getattr(cfg, "bos_token_id", None)
    return {"type": out_type, "arch": info["arch"], "tensors": count, "vocab": vocab, "bos_token_id": bos,
            **gguf_summary(path)}


def _write_vocab(w: Any, art: ModelArtifact, vocab_size: int) -> str:
    """Copy a GGUF source's tokenizer.* metadata; otherwise write no vocabulary (llama.cpp's "none")."""
    import gguf

    if art.format != "gguf":
        w.add_tokenizer_model("none")  # llama.cpp adds vocab_size dummy tokens (llama-vocab.cpp)
        return "none"
    reader = gguf.GGUFReader(art.path)
    for field in reader.fields.values():
        if field.name.startswith("tokenizer."):
            vtype = field.types[0]
            sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
            w.add_key_value(field.name, field.contents(), vtype, sub_type=sub)
    tokens = reader.get_field("tokenizer.ggml.tokens")
    if tokens is not None and len(tokens.data) != vocab_size:
        from quantscope.errors import FormatError

        raise FormatError(f"{art.path} lists {len(tokens.data)} tokens but its model has {vocab_size}: "
                          "re-convert it")
    return "copied from source GGUF"


def gguf_summary(path: Path) -> dict[str, Any]:
    """Tensor types and bits per weight of a GGUF (what llama.cpp actually chose per tensor)."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    types = collections.Counter(t.tensor_type.name for t in reader.tensors)
    mats = [t for t in reader.tensors if len(t.shape) >= 2]
    elements = sum(int(t.n_elements) for t in mats)
    return {"file_bytes": path.stat().st_size, "tensor_types": dict(types),
            "weight_bytes": int(sum(int(t.n_bytes) for t in reader.tensors)),
            "bits_per_weight_2d": round(8 * sum(int(t.n_bytes) for t in mats) / max(elements, 1), 3)}


# --- child side: quantizing ---------------------------------------------------------------------------
def quantize_gguf(out_dir: str, src_path: str, ftype: str, allow_requantize: bool) -> dict[str, Any]:
    """llama_model_quantize(src, out_dir/model.gguf, ftype); a refusal is raised with llama.cpp's words."""
    import llama_cpp

    from quantscope.backends.base import Unsupported

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_ftypes()[ftype]
    params.allow_requantize = allow_requantize
    dst = Path(out_dir) / FILE
    with captured_log() as log:
        rc = llama_cpp.llama_model_quantize(src_path.encode(), str(dst).encode(), ctypes.byref(params))
    if rc != 0:
        reason = log_errors(log)
        if "importance matrix" in reason or "imatrix" in reason:
            raise Unsupported(f"llama.cpp cannot make {ftype.upper()} without an importance matrix: {reason}")
        raise RuntimeError(f"llama_model_quantize to {ftype.upper()} failed: {reason or 'no message'}")
    return {"type": ftype, "requantized": allow_requantize, **gguf_summary(dst)}


GGML_LOG_LEVEL_ERROR, GGML_LOG_LEVEL_CONT = 4, 5  # ggml.h enum ggml_log_level (NONE 0 .. ERROR 4, CONT 5)


class captured_log:
    """Route llama.cpp's log into a list while active (llama_log_set), then restore the library's handler.

    llama-cpp-python's own handler maps levels from an older ggml.h and prints warnings at "error"
    verbosity; the errors are kept here instead, to be quoted in one-line messages.
    """

    def __enter__(self) -> list[tuple[int, str]]:
        import llama_cpp

        self.lines: list[tuple[int, str]] = []

        def keep(level: int, text: bytes, _user: Any) -> None:
            if level == GGML_LOG_LEVEL_CONT and self.lines:
                level = self.lines[-1][0]
            self.lines.append((level, text.decode(errors="replace")))
            del self.lines[:-200]  # a bounded tail is enough for a message

        self._callback = llama_cpp.llama_log_callback(keep)  # referenced, so ctypes keeps it alive
        llama_cpp.llama_log_set(self._callback, ctypes.c_void_p(0))
        return self.lines

    def __exit__(self, *exc: Any) -> None:
        import llama_cpp
        from llama_cpp import _logger

        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


def log_errors(lines: list[tuple[int, str]]) -> str:
    """llama.cpp's error lines as one line (banners and padding removed)."""
    text = " ".join(t for level, t in lines if level == GGML_LOG_LEVEL_ERROR)
    return " ".join(text.replace("=", " ").split())


# --- parent side: recipes ----------------------------------------------------------------------------
def writer_recipe(artifact: ModelArtifact, seed: int, out_type: str) -> Recipe:
    tools = tool_versions("gguf", "transformers", "torch")
    return Recipe("gguf-write", source_digest(artifact, seed), {"type": out_type, "writer": WRITER_VERSION},
                  tools, label=model_label(artifact))


def quant_recipe(base_key: str, ftype: str, requantize: bool, label: str) -> Recipe:
    return Recipe("gguf-quant", base_key, {"type": ftype, "requantize": requantize},
                  tool_versions("llama_cpp_python"), label=f"{label}-{ftype}")


def ensure_gguf(artifact: ModelArtifact, seed: int, target: str, requantize: bool = False,
                cache: ArtifactCache | None = None) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """(path, conversion facts, file facts) of the GGUF for `target`: "asis" (a GGUF source's own file),
    "f32"/"f16" (written from the reference weights) or a llama.cpp type quantized from the F32 file
    (or, with requantize, from the source GGUF itself, as llama-quantize --allow-requantize)."""
    from quantscope.artifacts.child import run_child
    from quantscope.backends.base import Unsupported

    if target == "asis":
        return Path(artifact.path), {"convert_s": 0.0, "cache_hit": None, "conversions": []}, {}
    cache = cache or ArtifactCache()
    written = "f32" if target not in WRITER_TYPES else target

    def write(out: Path, _prev: Cached | None) -> dict[str, Any]:
        return run_child("quantscope.backends.llamacpp.convert:write_gguf",
                         {"out_dir": str(out), "artifact": artifact_to_dict(artifact), "seed": seed,
                          "out_type": written}, raises=(Unsupported,))

    def quantize(out: Path, base: Cached | None) -> dict[str, Any]:
        src = str(base.file(FILE)) if base else artifact.path
        # What the quantized file does not say itself (no vocabulary: the model's BOS) comes from its base.
        inherit = {k: base.meta.get(k) for k in ("bos_token_id", "vocab", "arch")} if base else {}
        return {**inherit, **run_child(
            "quantscope.backends.llamacpp.convert:quantize_gguf",
            {"out_dir": str(out), "src_path": src, "ftype": target, "allow_requantize": requantize},
            raises=(Unsupported,))}

    writer = writer_recipe(artifact, seed, written)
    label = model_label(artifact)
    if target in WRITER_TYPES:
        steps = [(writer, write)]
    elif requantize:  # from the source GGUF itself, as llama-quantize --allow-requantize
        steps = [(quant_recipe(source_digest(artifact, seed), target, True, label), quantize)]
    else:
        steps = [(writer, write), (quant_recipe(writer.key(), target, False, label), quantize)]
    done = cache.get_chain(steps)
    return done[-1].file(FILE), conversion_facts(done), done[-1].meta
