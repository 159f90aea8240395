"""Model sources: turn the user's --model argument into a ModelSpec, and a ModelSpec into a ModelArtifact.

parse_model runs in the parent and reads at most a few bytes; resolve may hash files and parse
headers, and runs in the worker. Adding a source touches one file plus one line below.

>>> parse_model("synthetic:tiny-llama")
ModelSpec(source='synthetic', ref='tiny-llama', allow_pickle=False, trust_remote_code=False, revision=None)
>>> parse_model(None).source
'bundled'
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from quantscope.errors import FormatError, UserError
from quantscope.models.base import ModelArtifact
from quantscope.registry import Registry
from quantscope.spec import ModelSpec

BUNDLED_REF = ModelSpec().ref
SYNTHETIC_PREFIX = "synthetic:"
PATH_SUFFIXES = (".gguf", ".bin", ".safetensors", ".pt", ".pth")
# A hub id: org/name, each part letters, digits, "-", "_", "." (huggingface_hub's validate_repo_id).
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")

sources: Registry[Callable[[ModelSpec], ModelArtifact]] = Registry("model source")
sources.add("bundled", "quantscope.models.bundled:resolve")
sources.add("gguf", "quantscope.models.gguf:resolve")
sources.add("hf", "quantscope.models.hf:resolve")
sources.add("hub", "quantscope.models.hub:resolve")
sources.add("synthetic", "quantscope.models.synthetic:resolve")


def _looks_like_path(arg: str) -> bool:
    """True when the user evidently meant a file or folder (so a miss is a missing path, not a hub id)."""
    if arg.startswith((".", "~", "/")) or arg.lower().endswith(PATH_SUFFIXES):
        return True
    if "/" in arg:
        first = Path(arg).parts[0]
        return arg.count("/") > 1 or os.path.exists(first)
    return False


def parse_model(arg: str | None, *, allow_pickle: bool = False, trust_remote_code: bool = False,
                revision: str | None = None) -> ModelSpec:
    """Decide which source `arg` names: bundled, synthetic:NAME, a folder, a GGUF file, or org/name.

    Files are told apart by their first bytes, never by their names.
    """
    if trust_remote_code and not revision:
        raise UserError("--trust-remote-code runs the model's own Python code: pin it with --revision "
                        "<commit sha> so that code cannot change under you")
    opts = {"allow_pickle": allow_pickle, "trust_remote_code": trust_remote_code, "revision": revision}
    if arg is None or arg == "bundled":
        return ModelSpec("bundled", BUNDLED_REF, **opts)
    if arg.startswith(SYNTHETIC_PREFIX):
        from quantscope.models.synthetic import architectures

        name = arg[len(SYNTHETIC_PREFIX):]
        if name not in architectures:
            raise UserError(architectures.unknown_message(name))
        return ModelSpec("synthetic", name, **opts)
    path = Path(arg).expanduser()
    if path.is_dir():
        return ModelSpec("hf", str(path.resolve()), **opts)
    if path.is_file():
        from quantscope.models.gguf import GGUF_MAGIC
        from quantscope.models.safety import head

        start = head(path, 4)
        if start != GGUF_MAGIC:
            raise FormatError(f"model file {path} is not a GGUF file (it starts with {start!r}, not "
                              f"{GGUF_MAGIC!r}): pass a .gguf file or a Hugging Face model folder")
        return ModelSpec("gguf", str(path.resolve()), **opts)
    if path.exists():
        raise UserError(f"model path {arg} is neither a file nor a folder")
    if _looks_like_path(arg):
        raise UserError(f"model path {arg} does not exist")
    if HUB_ID.match(arg) and ".." not in arg:
        return ModelSpec("hub", arg, **opts)
    raise UserError(f"model {arg!r} is not a folder, a .gguf file, a hub id (org/name), 'bundled' or "
                    "'synthetic:NAME'")


def resolve(spec: ModelSpec) -> ModelArtifact:
    """The artifact for `spec`, through the source registered under spec.source."""
    return sources.get(spec.source)(spec)
