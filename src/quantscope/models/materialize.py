"""A model source made concrete for a converter: its HF folder, its tokenizer folder, its cache keys.

A GGUF is read by transformers with `gguf_file=` by dequantizing every tensor (≈ 17 s for the bundled
135M model: the vocabulary is parsed twice); the saved safetensors folder then loads in about a
second. So the dequantized folder is one more recipe of the artifact cache (artifacts/cache.py):
kind "hf-dequant", keyed by the GGUF's sha256 and the transformers version, as it was keyed when it
had a cache of its own. A GGUF's tokenizer alone ("gguf-tokenizer") is another recipe. Dequantizing
imports torch and transformers: hf_from_gguf does it in this process (already a conversion child),
hf_from_gguf_isolated in a child of its own.

>>> folder = hf_from_gguf(resolve(parse_model(None)))              # doctest: +SKIP
>>> sorted(os.listdir(folder))[:2]                                 # doctest: +SKIP
['chat_template.jinja', 'config.json']
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from quantscope import paths
from quantscope.artifacts.cache import ArtifactCache, Cached, Recipe, tool_versions
from quantscope.errors import FormatError
from quantscope.models.base import ModelArtifact
from quantscope.models.safety import file_sha256

PROVENANCE = "quantscope-dequant.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                   "chat_template.jinja")


# --- identity: what a conversion's cache key is built from -----------------------------------------
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


def model_label(artifact: ModelArtifact) -> str:
    """A readable name for cache folders (made file-name safe by the cache; never part of a key)."""
    if artifact.synthetic:
        return f"synthetic-{artifact.arch}"
    path = Path(artifact.path or "model")
    return path.stem if artifact.format == "gguf" else path.name


def hf_folder(artifact: ModelArtifact) -> str | None:
    """The HF folder holding the artifact's weights (dequantized once for a GGUF); None if synthetic."""
    if artifact.format == "gguf":
        return hf_from_gguf(artifact)
    if artifact.format == "hf":
        return artifact.path
    return None


# --- the dequantized GGUF: one more cache recipe ----------------------------------------------------
def rope_theta(config: Any) -> float | None:
    """The rope base of a transformers config: `rope_parameters` in 5.x, `rope_theta` before."""
    params = getattr(config, "rope_parameters", None)
    if isinstance(params, dict) and "rope_theta" in params:
        return float(params["rope_theta"])
    theta = getattr(config, "rope_theta", None)
    return float(theta) if theta is not None else None


def dequant_recipe(artifact: ModelArtifact) -> Recipe:
    if artifact.format != "gguf" or not artifact.path:
        raise ValueError(f"dequantizing needs a gguf artifact, got {artifact.format!r}")
    digest = artifact.digest or file_sha256(artifact.path)
    return Recipe("hf-dequant", digest, {}, tool_versions("transformers"), label=model_label(artifact))


def legacy_dequant_dir(digest: str, transformers_version: str) -> Path:
    """Where quantscope kept this folder before it was an artifact-cache entry (until 2026-11-29)."""
    return paths.cache_root("dequant") / f"{digest[:16]}-tf{transformers_version}"


def write_dequantized(out_dir: str, artifact: dict[str, Any]) -> dict[str, Any]:
    """Load the GGUF through transformers and save model, tokenizer and provenance into `out_dir`."""
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    art, out = artifact_from_dict(artifact), Path(out_dir)
    digest = art.digest or file_sha256(art.path)
    folder, name = os.path.split(art.path)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    before = rope_theta(model.config)
    # save_pretrained refuses a GGUF-loaded model while its quantizer is attached (FACTS.md);
    # the weights are already plain dequantized tensors, so dropping both loses nothing.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    after = rope_theta(AutoConfig.from_pretrained(out))
    if before != after:  # an older reader once fell back to 10000 silently (FACTS.md)
        raise FormatError(f"dequantizing {art.path} changed rope_theta from {before} to {after}: the "
                          "saved config would give wrong outputs; report this with transformers "
                          f"{transformers.__version__}")
    provenance = {"source": art.path, "source_sha256": digest, "transformers": transformers.__version__,
                  "rope_theta": after, "dtype": str(model.dtype).removeprefix("torch.")}
    (out / PROVENANCE).write_text(json.dumps(provenance, indent=1))
    return provenance


def _adopt_legacy(recipe: Recipe, out: Path) -> dict[str, Any] | None:
    """Files of a folder dequantized by an earlier quantscope for the same key, linked (or copied)
    into `out`, so an upgrade does not dequantize again; None when there is none."""
    legacy = legacy_dequant_dir(recipe.source_digest, recipe.tools["transformers"])
    try:
        provenance = json.loads((legacy / PROVENANCE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(provenance, dict) or provenance.get("source_sha256") != recipe.source_digest:
        return None
    for src in legacy.iterdir():
        if src.is_file() and not src.is_symlink():
            try:
                os.link(src, out / src.name)  # same file system: no copy of the weights
            except OSError:
                shutil.copy2(src, out / src.name)
    return {**provenance, "adopted_from": str(legacy)}


def dequantized(artifact: ModelArtifact, cache: ArtifactCache | None = None, isolated: bool = False) -> Cached:
    """The cache entry of the GGUF's dequantized HF folder, built here or (`isolated`) in a child."""
    recipe = dequant_recipe(artifact)
    cache = cache or ArtifactCache()

    def build(out: Path) -> dict[str, Any]:
        adopted = _adopt_legacy(recipe, out)
        if adopted is not None:
            return adopted
        args = {"out_dir": str(out), "artifact": artifact_to_dict(dataclasses.replace(
            artifact, digest=recipe.source_digest))}
        if not isolated:
            return write_dequantized(**args)
        from quantscope.artifacts.child import run_child

        return run_child("quantscope.models.materialize:write_dequantized", args)

    return cache.get_or_build(recipe, build)


def hf_from_gguf(artifact: ModelArtifact, cache: ArtifactCache | None = None) -> str:
    """Path of an HF folder (safetensors + tokenizer) holding the GGUF's weights, dequantized here
    when not cached (for a process that is itself a conversion child).

    The cache builds the folder in a temporary sibling and renames it into place under a lock, so a
    reader never sees a half-written folder and two workers racing dequantize once.
    """
    return str(dequantized(artifact, cache, isolated=False).path)


def hf_from_gguf_isolated(artifact: ModelArtifact, cache: ArtifactCache | None = None) -> str:
    """hf_from_gguf, dequantizing in a child process when the folder is not cached yet.

    Dequantizing holds the GGUF's tensors and the fp32 model at once; done in the measuring worker it
    would raise the run's peak RSS (VmHWM never goes down) on the first run of a file and not on later
    ones, so two runs of one configuration would report different memory.
    """
    return str(dequantized(artifact, cache, isolated=True).path)


# --- a GGUF's tokenizer alone, and reading a tokenizer folder ---------------------------------------
def save_gguf_tokenizer(out_dir: str, gguf_path: str) -> dict[str, Any]:
    """Child side: transformers' tokenizer of a GGUF (as write_dequantized makes it for the torch
    reference), saved as an HF tokenizer folder; the model's tensors are not read (~4 s, not ~17 s)."""
    from transformers import AutoTokenizer

    folder, name = os.path.split(gguf_path)
    AutoTokenizer.from_pretrained(folder, gguf_file=name).save_pretrained(out_dir)
    return {"source": gguf_path}


def gguf_tokenizer_dir(artifact: ModelArtifact, cache: ArtifactCache | None = None) -> Cached:
    """The cache entry of an HF tokenizer folder for a GGUF source (built in a child process)."""
    from quantscope.artifacts.child import run_child

    cache = cache or ArtifactCache()
    tools = tool_versions("transformers", "tokenizers")
    label = Path(artifact.path or "model").stem
    recipe = Recipe("gguf-tokenizer", source_digest(artifact, 0), {}, tools, label=label)
    return cache.get_or_build(recipe, lambda out: run_child(
        "quantscope.models.materialize:save_gguf_tokenizer", {"out_dir": str(out), "gguf_path": artifact.path}))


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
