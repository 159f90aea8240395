"""The FP32 reference model a conversion starts from: the same model the torch backend measures.

A GGUF source is read through its dequantized HF folder (models/materialize.py), an HF folder as
is, a synthetic architecture as random weights seeded exactly as the torch backend seeds them, so
a converted model (ONNX, GGUF) and the FP32 reference agree to rounding. Called inside a conversion
child (artifacts/child.py): it imports torch and transformers.
"""

from __future__ import annotations

from typing import Any

from quantscope.models.base import ModelArtifact


def reference_model(artifact: ModelArtifact, seed: int, attn_implementation: str | None = None) -> Any:
    """The FP32 transformers model of `artifact`, in eval mode, built as TorchBackend builds it."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from quantscope.backends.torch.backend import seed_random_weights
    from quantscope.models.materialize import hf_folder

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
