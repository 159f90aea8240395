"""Source: a Hugging Face hub id ("org/name"), taken from the local cache only (this tool never downloads).

The snapshot folder found in the cache is then checked exactly like a local folder (hf.py).

>>> resolve(ModelSpec("hub", "HuggingFaceTB/SmolLM2-135M"))        # doctest: +SKIP
ModelArtifact(format='hf', path='~/.cache/huggingface/hub/models--HuggingFaceTB--SmolLM2-135M/snapshots/…', …)
"""

from __future__ import annotations

from pathlib import Path

from quantscope.errors import UserError
from quantscope.models.base import ModelArtifact
from quantscope.models.hf import folder_artifact
from quantscope.spec import ModelSpec


def cached_snapshot(repo_id: str, revision: str | None = None, cache_dir: str | Path | None = None) -> str:
    """Path of the cached snapshot of `repo_id` at `revision`; UserError when it is not cached."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    at = f" at revision {revision}" if revision else ""
    try:
        return snapshot_download(repo_id, revision=revision, cache_dir=cache_dir, local_files_only=True)
    except HFValidationError:
        raise UserError(f"model {repo_id!r} is not a valid hub id (org/name): pass org/name, a local folder "
                        "or a .gguf file") from None
    except (LocalEntryNotFoundError, FileNotFoundError):
        raise UserError(f"model {repo_id}{at} is not in the local Hugging Face cache and this machine is "
                        "offline: download it elsewhere and copy it into ~/.cache/huggingface/hub, or pass a "
                        "local folder") from None


def resolve(spec: ModelSpec, cache_dir: str | Path | None = None) -> ModelArtifact:
    return folder_artifact(cached_snapshot(spec.ref, spec.revision, cache_dir), spec)
