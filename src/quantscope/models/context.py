"""A model's context length, read from its config or GGUF metadata without loading any weights.

A run whose prompt plus generated tokens (or whose quality window) does not fit the context the model
was trained for measures nothing meaningful: transformers would index past its position table or
extrapolate RoPE, llama.cpp would warn and carry on. `check_fits` refuses it in the parent, before a
worker starts, in one line that gives the model's context (issue 20).

>>> from quantscope.models import parse_model, resolve
>>> context_length(resolve(parse_model("synthetic:tiny-llama")))
2048
"""

from __future__ import annotations

import json
import mmap
from pathlib import Path
from typing import Any

from quantscope.errors import UserError
from quantscope.models.base import ModelArtifact
from quantscope.spec import RunSpec

# HF config keys that hold the trained context, in the order transformers' model families use them
# (llama/mistral/qwen: max_position_embeddings; gpt2: n_positions; falcon/mpt/chatglm variants).
CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "max_seq_len",
                "n_ctx")
# GGUF metadata: "<arch>.context_length" (llama.cpp's LLM_KV_CONTEXT_LENGTH); architecture comes first
# in every converted file, the context a few keys later, so the scan stops long before the vocabulary.
MAX_KEYS_SCANNED = 64


def context_from_config(config: dict[str, Any]) -> int | None:
    """The trained context of an HF config dict, or None when it names none.

    >>> context_from_config({"n_positions": 1024})
    1024
    >>> context_from_config({"text_config": {"max_position_embeddings": 4096}})
    4096
    """
    for key in CONTEXT_KEYS:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    nested = config.get("text_config")  # multimodal configs keep the language model's apart
    return context_from_config(nested) if isinstance(nested, dict) else None


def gguf_context(path: str) -> int | None:
    """`<arch>.context_length` from a GGUF file's metadata, reading only the first keys (bounded)."""
    from quantscope.models.gguf import _Cursor, read_header

    header = read_header(path)
    arch: str | None = None
    found: dict[str, Any] = {}
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        cur = _Cursor(path, buf, header.endian, header.file_bytes)
        for i in range(min(header.kv_count, MAX_KEYS_SCANNED)):
            cur.what = f"metadata key #{i}"
            key = cur.string().decode("utf-8", "replace")
            cur.what = f"metadata key {key!r}"
            value = cur.value(cur.unpack("I"), key)
            if key == "general.architecture" and isinstance(value, bytes):
                arch = value.decode("utf-8", "replace")
            elif key.endswith(".context_length"):
                found[key] = value
            if arch is not None and f"{arch}.context_length" in found:
                break
    value = found.get(f"{arch}.context_length") if arch else None
    return value if isinstance(value, int) and value > 0 else None


def context_length(artifact: ModelArtifact) -> int | None:
    """The model's trained context in tokens, or None when its files do not say."""
    if artifact.format == "synthetic":
        return context_from_config(artifact.config)
    if artifact.format == "gguf" and artifact.path:
        return gguf_context(artifact.path)
    if artifact.format == "hf" and artifact.path:
        config_path = Path(artifact.path) / "config.json"
        try:
            config = json.loads(config_path.read_text())
        except (OSError, ValueError, RecursionError):
            return None  # resolve() already refused an unreadable config; nothing to add here
        return context_from_config(config) if isinstance(config, dict) else None
    return None


def check_fits(spec: RunSpec, artifact: ModelArtifact) -> None:
    """Refuse a workload or quality window longer than the model's context (UserError, one line).

    The timed work needs prompt + generated tokens positions; the quality pass one window of ctx tokens.
    """
    n_ctx = context_length(artifact)
    if n_ctx is None:
        return
    w, q = spec.workload, spec.quality
    name = spec.model.label
    if w.prompt_tokens + w.gen_tokens > n_ctx:
        most = max(n_ctx - w.gen_tokens, 0)
        raise UserError(f"--prompt-tokens {w.prompt_tokens} + --gen-tokens {w.gen_tokens} = "
                        f"{w.prompt_tokens + w.gen_tokens} tokens do not fit the context of {name}, "
                        f"{n_ctx} tokens: use at most --prompt-tokens {most} with --gen-tokens {w.gen_tokens}")
    if q.enabled and q.ctx > n_ctx:
        raise UserError(f"--ctx {q.ctx} is longer than the context of {name}, {n_ctx} tokens: use --ctx {n_ctx} "
                        "or less")
