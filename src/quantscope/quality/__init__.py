"""Backend-neutral quality pass: perplexity and divergence from a reference model, with their recipes.

numpy only (scipy for log_softmax); no torch here, so any backend's logits can be scored the same way.
"""

from quantscope.quality.kld import delta_p_summary, kld_summary, same_top_summary
from quantscope.quality.perplexity import compare_ppl, mean_se, ppl_with_se
from quantscope.quality.quality_pass import plan_for, reference_key, run_quality
from quantscope.quality.recipes import Plan, gguf_adds_bos, hf_tokenizer_adds_bos, make_plan, recipe_ctx
from quantscope.quality.reference import (
    ReferenceData,
    ReferenceKey,
    load_reference,
    read_reference,
    save_reference,
)
from quantscope.quality.text import Text, load_text

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
