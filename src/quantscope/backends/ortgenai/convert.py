"""Graphs for the onnxruntime-genai backend, written by its own model builder from an HF folder.

  reference weights (models/materialize.py's dequantized HF folder for a GGUF, an HF folder as is,
  seeded random weights saved as a folder for a synthetic model) --onnxruntime_genai.models.builder-->
  model.onnx (+ .data) and genai_config.json, at --precision fp32 | int4 | int8

The builder is given the local folder (never a hub name: it would ask the hub for a token) and the
typed config's `builder_options()` as its --extra_options. It runs in a child process
(artifacts/child.py: it imports torch and transformers) and its output is cached by source content,
precision, options and tool versions (artifacts/cache.py). A model the builder cannot read is an
Unsupported row carrying the builder's own message.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from quantscope.artifacts.cache import ArtifactCache, Cached, Recipe, conversion_facts, tool_versions
from quantscope.models.base import ModelArtifact
from quantscope.models.materialize import artifact_to_dict, model_label, source_digest

# History: 1 (2026-11-29) the builder's output as written, the source folder's tokenizer copied over it.
BUILD_VERSION = 1
GRAPH = "model.onnx"
CONFIG = "genai_config.json"


def build_recipe(artifact: ModelArtifact, seed: int, precision: str, options: dict[str, Any]) -> Recipe:
    return Recipe("ortgenai-build", source_digest(artifact, seed),
                  options={"precision": precision, "build_version": BUILD_VERSION, **options},
                  tools=tool_versions("onnxruntime-genai", "onnxruntime", "onnx", "transformers", "torch"),
                  label=f"{model_label(artifact)}-{precision}")


def ensure_model(artifact: ModelArtifact, seed: int, precision: str, options: dict[str, Any],
                 cache: ArtifactCache | None = None) -> tuple[Cached, dict[str, Any]]:
    """The (cached) builder output folder for `precision` and the conversion facts."""
    from quantscope.artifacts.child import run_child
    from quantscope.backends.base import Unsupported

    cache = cache or ArtifactCache()

    def build(out: Path, _prev: Cached | None) -> dict[str, Any]:
        return run_child("quantscope.backends.ortgenai.convert:build_model",
                         {"out_dir": str(out), "artifact": artifact_to_dict(artifact), "seed": seed,
                          "precision": precision, "options": options}, raises=(Unsupported,))

    done = cache.get_chain([(build_recipe(artifact, seed, precision, options), build)])
    return done[-1], conversion_facts(done)


# --- child side ------------------------------------------------------------------------------------------
def check_block_size(config: dict[str, Any], block: int) -> None:
    """Every MatMul's input width must be a multiple of the block (the builder does not check it)."""
    from quantscope.backends.base import Unsupported

    heads = int(config["num_attention_heads"])
    head_dim = int(config.get("head_dim") or config["hidden_size"] // heads)
    widths = {int(config["hidden_size"]), int(config["intermediate_size"]), heads * head_dim}
    bad = sorted(w for w in widths if w % block)
    if bad:
        raise Unsupported(f"block_size {block} does not divide the MatMul input width(s) {bad}: choose a "
                          "block size dividing them (e.g. --qparam block_size=32)")


def synthetic_folder(artifact: ModelArtifact, seed: int, folder: Path) -> None:
    """The seeded random weights as an HF folder, with a word-level tokenizer of the vocabulary's size
    (the builder insists on a tokenizer; the backend does not use it for a synthetic model)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    from quantscope.backends.torch.reference import reference_model

    reference_model(artifact, seed).save_pretrained(folder)
    vocab = {f"t{i}": i for i in range(int(artifact.config["vocab_size"]))}
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel(vocab, unk_token="t0")),
                                  bos_token="t0", eos_token="t1")
    tok.save_pretrained(folder)


def build_model(out_dir: str, artifact: dict[str, Any], seed: int, precision: str,
                options: dict[str, Any]) -> dict[str, Any]:
    """Run the model builder into out_dir; returns the graph's facts."""
    import json

    from onnxruntime_genai.models import builder

    from quantscope.backends.base import Unsupported
    from quantscope.backends.ort.convert import copy_tokenizer, onnx_weight_bytes
    from quantscope.models.materialize import artifact_from_dict, hf_folder

    art = artifact_from_dict(artifact)
    out = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="quantscope-ortgenai-") as tmp:
        folder = Path(hf_folder(art) or Path(tmp) / "hf")
        if art.synthetic:
            synthetic_folder(art, seed, folder)
        config = json.loads((folder / "config.json").read_text())
        if precision != "fp32":
            check_block_size(config, int(options["block_size"]))
        extra = [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in options.items()]
        try:
            kv = builder.parse_extra_options(str(folder), str(folder), str(out), precision, "cpu",
                                             str(Path(tmp) / "cache"), extra)
            builder.create_model(str(folder), str(folder), str(out), precision, "cpu", str(Path(tmp) / "cache"),
                                 **kv)
        except (NotImplementedError, ValueError, KeyError, OSError) as e:
            raise Unsupported(f"onnxruntime-genai's model builder cannot convert this model: "
                              f"{e.__class__.__name__}: {e}") from None
        tokenizer = False if art.synthetic else copy_tokenizer(folder, out)
    text = config.get("text_config", config)
    return {"precision": precision, "builder_options": options, "tokenizer": tokenizer,
            "vocab_size": int(text["vocab_size"]), "bos_token_id": text.get("bos_token_id"),
            "n_layers": int(text["num_hidden_layers"]), "weight_bytes": onnx_weight_bytes(out / GRAPH),
            "files": sorted(p.name for p in out.iterdir())}
