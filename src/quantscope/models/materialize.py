"""Dequantize a GGUF into a Hugging Face folder once, cached by content hash and transformers version.

transformers reads a GGUF with `gguf_file=` by dequantizing every tensor (≈ 17 s for the bundled
135M model: the vocabulary is parsed twice); the saved safetensors folder then loads in about a
second. Runs in the worker: it imports torch and transformers.

>>> folder = hf_from_gguf(resolve(parse_model(None)))              # doctest: +SKIP
>>> sorted(os.listdir(folder))[:2]                                 # doctest: +SKIP
['chat_template.jinja', 'config.json']
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from quantscope.errors import FormatError
from quantscope.models.base import ModelArtifact
from quantscope.models.safety import cache_root, file_sha256

PROVENANCE = "quantscope-dequant.json"


def rope_theta(config: Any) -> float | None:
    """The rope base of a transformers config: `rope_parameters` in 5.x, `rope_theta` before."""
    params = getattr(config, "rope_parameters", None)
    if isinstance(params, dict) and "rope_theta" in params:
        return float(params["rope_theta"])
    theta = getattr(config, "rope_theta", None)
    return float(theta) if theta is not None else None


def dequant_dir(digest: str, transformers_version: str) -> Path:
    # Keyed by content and tool version only: nothing from the file's name reaches the path.
    return cache_root("dequant") / f"{digest[:16]}-tf{transformers_version}"


def _write(artifact: ModelArtifact, digest: str, out: Path) -> None:
    """Load the GGUF through transformers and save model, tokenizer and provenance into `out`."""
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = os.path.split(artifact.path)
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
        raise FormatError(f"dequantizing {artifact.path} changed rope_theta from {before} to {after}: the "
                          "saved config would give wrong outputs; report this with transformers "
                          f"{transformers.__version__}")
    (out / PROVENANCE).write_text(json.dumps({
        "source": artifact.path, "source_sha256": digest, "transformers": transformers.__version__,
        "rope_theta": after, "dtype": str(model.dtype).removeprefix("torch."),
    }, indent=1))


def hf_from_gguf(artifact: ModelArtifact) -> str:
    """Path of an HF folder (safetensors + tokenizer) holding the GGUF's weights, dequantized.

    The folder is built in a temporary sibling and renamed into place, so a reader never sees a
    half-written folder and two workers racing both end up with one complete copy.
    """
    import transformers

    if artifact.format != "gguf" or not artifact.path:
        raise ValueError(f"hf_from_gguf needs a gguf artifact, got {artifact.format!r}")
    digest = artifact.digest or file_sha256(artifact.path)
    dest = dequant_dir(digest, transformers.__version__)
    if (dest / PROVENANCE).is_file():
        return str(dest)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp"))
    try:
        _write(artifact, digest, tmp)
        if dest.exists() and not (dest / PROVENANCE).is_file():
            shutil.rmtree(dest)  # an incomplete folder left by hand: ours to replace
        try:
            os.rename(tmp, dest)
        except OSError:
            if not (dest / PROVENANCE).is_file():  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(dest)


def hf_from_gguf_json(artifact: dict) -> dict:
    """hf_from_gguf for artifacts.child.run_child: JSON in, JSON out."""
    return {"path": hf_from_gguf(ModelArtifact(**artifact))}


def hf_from_gguf_isolated(artifact: ModelArtifact) -> str:
    """hf_from_gguf, dequantizing in a child process when the folder is not cached yet.

    Dequantizing holds the GGUF's tensors and the fp32 model at once; done in the measuring worker it
    would raise the run's peak RSS (VmHWM never goes down) on the first run of a file and not on later
    ones, so two runs of one configuration would report different memory.
    """
    import dataclasses

    import transformers

    from quantscope.artifacts.child import run_child

    dest = dequant_dir(artifact.digest or file_sha256(artifact.path), transformers.__version__)
    if (dest / PROVENANCE).is_file():
        return str(dest)
    return run_child("quantscope.models.materialize:hf_from_gguf_json", {"artifact": dataclasses.asdict(artifact)})[
        "path"
    ]
