"""Backend-neutral quality pass: perplexity and divergence from a reference model, with their recipes.

numpy only (scipy for log_softmax); no torch here, so any backend's logits can be scored the same way.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> submodule; loaded on first use (PEP 562): a command that reads stored outcomes (`recommend`,
# `report`) imports quality.tasks.outcomes, which must not pull numpy in through this package.
_WHERE = {
    "delta_p_summary": "kld", "kld_summary": "kld", "same_top_summary": "kld",
    "compare_ppl": "perplexity", "mean_se": "perplexity", "ppl_with_se": "perplexity",
    "plan_for": "quality_pass", "reference_key": "quality_pass", "run_quality": "quality_pass",
    "Plan": "recipes", "gguf_adds_bos": "recipes", "hf_tokenizer_adds_bos": "recipes", "make_plan": "recipes",
    "recipe_ctx": "recipes",
    "ReferenceData": "reference", "ReferenceKey": "reference", "load_reference": "reference",
    "read_reference": "reference", "save_reference": "reference",
    "Text": "text", "load_text": "text",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)


__all__ = [
    "Plan",
    "ReferenceData",
    "ReferenceKey",
    "Text",
    "compare_ppl",
    "gguf_adds_bos",
    "hf_tokenizer_adds_bos",
    "delta_p_summary",
    "kld_summary",
    "load_reference",
    "load_text",
    "make_plan",
    "mean_se",
    "plan_for",
    "ppl_with_se",
    "read_reference",
    "recipe_ctx",
    "reference_key",
    "run_quality",
    "same_top_summary",
    "save_reference",
]
