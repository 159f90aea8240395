"""A resolved model: where its files are and what they are, decided before any backend loads it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelArtifact:
    """What a source plug-in hands to a backend.

    format: "hf" (a folder with config.json and weights), "gguf" (one file), "synthetic" (a config only).
    For "gguf", `hf_dir` is filled in the worker once the file is dequantized for transformers.
    """

    format: str
    path: str | None = None  # HF folder or GGUF file
    config: dict[str, Any] = field(default_factory=dict)  # synthetic: the HF config to instantiate
    arch: str | None = None  # synthetic architecture name, or the HF architecture
    digest: str | None = None  # sha256 of the weight file(s), for cache keys and provenance
    file_bytes: int = 0  # bytes of the weight files on disk
    synthetic: bool = False
    allow_pickle: bool = False
    trust_remote_code: bool = False
    revision: str | None = None
