"""Source: a local Hugging Face model folder (config.json plus weights), checked before any load.

safetensors weights are validated header by header; pickle checkpoints (*.bin, *.pt, *.pth, found
by content) are refused unless the user passed --allow-pickle, and then transformers loads them with
torch.load(weights_only=True). A folder with both uses the safetensors and never touches the pickle.

>>> artifact = folder_artifact("path/to/SmolLM2-135M")             # doctest: +SKIP
>>> artifact.format, artifact.arch                                 # doctest: +SKIP
('hf', 'LlamaForCausalLM')
"""

from __future__ import annotations

import json
from pathlib import Path

from quantscope.errors import FormatError, UnsafeArtifactError
from quantscope.models.base import ModelArtifact
from quantscope.models.safety import check_safetensors, combined_digest, looks_like_pickle
from quantscope.spec import ModelSpec

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
SAFETENSORS_INDEX = "model.safetensors.index.json"


def resolve(spec: ModelSpec) -> ModelArtifact:
    return folder_artifact(spec.ref, spec)


def read_config(folder: Path) -> dict:
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise FormatError(f"{folder} has no config.json, so it is not a Hugging Face model folder: pass the "
                          "folder that holds config.json, or a .gguf file")
    try:
        config = json.loads(cfg_path.read_text())
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # RecursionError: nested too deep
        raise FormatError(f"{cfg_path} is not valid JSON ({e}); re-copy it") from None
    if not isinstance(config, dict):
        raise FormatError(f"{cfg_path} is not a JSON object; re-copy it")
    return config


def _check_index(folder: Path) -> None:
    """A sharded checkpoint's index must name shards that are present (a half-copied folder fails here)."""
    index = folder / SAFETENSORS_INDEX
    if not index.is_file():
        return
    try:
        weight_map = json.loads(index.read_text()).get("weight_map", {})
        shards = set(weight_map.values())
    except (UnicodeDecodeError, ValueError, AttributeError, RecursionError) as e:
        raise FormatError(f"{index} is not a valid safetensors index ({e}); re-copy it") from None
    missing = sorted(s for s in shards if not (folder / s).is_file())
    if missing:
        raise FormatError(f"{folder} is incomplete: {index.name} lists {len(missing)} missing shard(s), "
                          f"first {missing[0]}; re-copy the whole folder")


def weight_files(folder: Path, allow_pickle: bool) -> tuple[list[Path], bool]:
    """The weight files transformers will read, each checked, and whether they are pickles.

    Raises on unsafe or missing weights.
    """
    safetensors = sorted(folder.glob("*.safetensors"))
    if safetensors:
        _check_index(folder)
        for f in safetensors:
            check_safetensors(f)
        return safetensors, False
    candidates = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in PICKLE_SUFFIXES)
    pickles = [p for p in candidates if looks_like_pickle(p)]
    if pickles and not allow_pickle:
        raise UnsafeArtifactError(
            f"{folder} holds pickle weights, which can run code when loaded: convert them to safetensors, "
            "or pass --allow-pickle to load them with torch.load(weights_only=True)"
        )
    if pickles:
        return pickles, True
    ggufs = sorted(folder.glob("*.gguf"))
    hint = f"; it holds {ggufs[0].name}: pass that file instead" if ggufs else ""
    raise FormatError(f"{folder} has no weight files (*.safetensors, or pickle *.bin/*.pt/*.pth){hint}")


def folder_artifact(path: str | Path, spec: ModelSpec | None = None) -> ModelArtifact:
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise FormatError(f"{folder} is not a folder: pass a Hugging Face model folder or a .gguf file")
    config = read_config(folder)
    files, pickled = weight_files(folder, bool(spec and spec.allow_pickle))
    archs = config.get("architectures")
    return ModelArtifact(
        format="hf",
        path=str(folder),
        config={},  # the backend reads config.json itself; kept empty so the artifact stays small
        arch=archs[0] if isinstance(archs, list) and archs and isinstance(archs[0], str) else None,
        digest=combined_digest(files, folder),
        file_bytes=sum(f.stat().st_size for f in files),
        allow_pickle=pickled,  # False when safetensors exist, so the backend never falls back to a pickle
        trust_remote_code=bool(spec and spec.trust_remote_code),
        revision=spec.revision if spec else None,
    )
