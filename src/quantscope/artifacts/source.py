"""The reference weights a conversion starts from: the same model the torch backend measures.

A GGUF source is read through its dequantized HF folder (models/materialize.py), an HF folder as
is, a synthetic architecture as random weights seeded exactly as the torch backend seeds them, so
a converted model and the FP32 reference agree to rounding.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from quantscope.models.base import ModelArtifact

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                   "chat_template.jinja")


def artifact_to_dict(artifact: ModelArtifact) -> dict[str, Any]:
    return dataclasses.asdict(artifact)


def artifact_from_dict(d: dict[str, Any]) -> ModelArtifact:
    return ModelArtifact(**d)


def source_digest(artifact: ModelArtifact, seed: int) -> str:
    """Content hash of the weights a conversion reads. Synthetic weights are a function of shape and seed."""
    if artifact.synthetic or not artifact.digest:
        blob = json.dumps({"config": artifact.config, "arch": artifact.arch, "seed": seed,
                           "digest": artifact.digest}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()
    return artifact.digest


def hf_folder(artifact: ModelArtifact) -> str | None:
    """The HF folder holding the artifact's weights (dequantized once for a GGUF); None if synthetic."""
    if artifact.format == "gguf":
        from quantscope.models.materialize import hf_from_gguf

        return hf_from_gguf(artifact)
    if artifact.format == "hf":
        return artifact.path
    return None


def reference_model(artifact: ModelArtifact, seed: int, attn_implementation: str | None = None) -> Any:
    """The FP32 transformers model of `artifact`, in eval mode, built as TorchBackend builds it."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from quantscope.backends.torch.backend import seed_random_weights

    extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
    if artifact.format == "synthetic":
        cfg = dict(artifact.config)
        config = AutoConfig.for_model(cfg.pop("model_type"), **cfg)
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, **extra)
        seed_random_weights(model, seed)
        return model.eval()
    model = AutoModelForCausalLM.from_pretrained(
        hf_folder(artifact), dtype=torch.float32, use_safetensors=not artifact.allow_pickle,
        trust_remote_code=artifact.trust_remote_code, revision=artifact.revision, **extra)
    return model.eval()


def save_gguf_tokenizer(out_dir: str, gguf_path: str) -> dict[str, Any]:
    """Child side: transformers' tokenizer of a GGUF (as models/materialize.py makes it for the torch
    reference), saved as an HF tokenizer folder; the model's tensors are not read (~4 s, not ~17 s)."""
    import os

    from transformers import AutoTokenizer

    folder, name = os.path.split(gguf_path)
    AutoTokenizer.from_pretrained(folder, gguf_file=name).save_pretrained(out_dir)
    return {"source": gguf_path}


def gguf_tokenizer_dir(artifact: ModelArtifact, cache: Any = None) -> Any:
    """The cache entry (artifacts.cache.Cached) of an HF tokenizer folder for a GGUF source."""
    from quantscope.artifacts.cache import ArtifactCache, Recipe, tool_versions
    from quantscope.artifacts.child import run_child

    cache = cache or ArtifactCache()
    tools = tool_versions("transformers", "tokenizers")
    label = Path(artifact.path or "model").stem
    recipe = Recipe("gguf-tokenizer", source_digest(artifact, 0), {}, tools, label=label)
    return cache.get_or_build(recipe, lambda out: run_child(
        "quantscope.artifacts.source:save_gguf_tokenizer", {"out_dir": str(out), "gguf_path": artifact.path}))


def hf_tokenizer(folder: str | Path, config_bos: int | None = None) -> tuple[Any, int | None] | None:
    """The folder's fast tokenizer (the `tokenizers` library: no torch) and its BOS id, found as
    transformers finds it (tokenizer_config's bos_token, else the model config's bos_token_id), so the
    token ids match the torch reference's exactly. None when the folder has no tokenizer.json."""
    folder = Path(folder)
    if not (folder / "tokenizer.json").is_file():
        return None
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    bos = None
    cfg_path = folder / "tokenizer_config.json"
    if cfg_path.is_file():
        token = json.loads(cfg_path.read_text()).get("bos_token")
        token = token.get("content") if isinstance(token, dict) else token
        bos = tok.token_to_id(token) if token else None
    if bos is None and (folder / "config.json").is_file():
        bos = json.loads((folder / "config.json").read_text()).get("bos_token_id")
    return tok, bos if bos is not None else config_bos
