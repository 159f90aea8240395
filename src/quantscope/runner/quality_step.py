"""The quality pass inside a run: the reference run writes the reference log-probs, others compare.

The reference of a configuration is the same model through PyTorch at FP32 (reference_spec); its
compact log-probs are saved once and every later run, in any process, reads them back.
"""

from __future__ import annotations

import time
from typing import Any

from quantscope.errors import UserError
from quantscope.result import Measurement
from quantscope.spec import RunSpec, reference_spec


def adds_bos(backend, artifact, gguf_info: dict[str, Any] | None) -> bool:
    """Whether the vocab puts BOS in front of a text (llama.cpp's llama_vocab_get_add_bos).

    For a GGUF source the worker's validate_gguf summary already holds it: no second parse of the file.
    """
    from quantscope.quality import hf_tokenizer_adds_bos

    if hasattr(backend, "add_bos"):
        return bool(backend.add_bos)
    if artifact.format == "gguf" and gguf_info is not None:
        return bool(gguf_info["add_bos"])
    tokenizer = getattr(backend, "tokenizer", None)
    return hf_tokenizer_adds_bos(tokenizer) if tokenizer is not None else False


def quality_measurements(backend, spec: RunSpec, artifact, reference_file: str | None,
                         gguf_info: dict[str, Any] | None = None) -> tuple[list[Measurement], dict[str, Any]]:
    from quantscope.quality import read_reference, run_quality, save_reference

    t0 = time.perf_counter()
    is_reference = reference_spec(spec) == spec and reference_file is None
    reference = None
    if not is_reference:
        if not reference_file:
            return [], {"quality": "not measured: no reference log-probs were given to this run "
                                   "(run the FP32 reference of this model first)"}
        reference = read_reference(reference_file)
    # Only the reference run (PyTorch) tokenizes the text, with the model's own HF tokenizer or, for a
    # GGUF source, llama.cpp's (quality/gguf_tokens.py); every other run is fed the reference's token
    # windows, so its tokenizer and BOS policy play no part.
    scored = backend
    tokenizer_name = f"transformers tokenizer of {artifact.format} model {(artifact.digest or '')[:16]}"
    if spec.quality.tokens == "llama.cpp" and is_reference:
        from quantscope.quality.gguf_tokens import WithTokens, llama_cpp_tokenizer

        if artifact.format != "gguf":
            raise UserError(f"quality tokens 'llama.cpp' need a GGUF model, not a {artifact.format} one")
        tokenize, name = llama_cpp_tokenizer(artifact.path)
        scored = WithTokens(backend, tokenize)
        tokenizer_name = f"{name} of gguf model {(artifact.digest or '')[:16]}"
    measurements, ref = run_quality(
        scored, spec.quality, model_digest=artifact.digest or "", tokenizer_name=tokenizer_name,
        reference=reference, add_bos=adds_bos(backend, artifact, gguf_info) if is_reference else False,
        model_ctx=getattr(backend, "max_context", None),
    )
    info: dict[str, Any] = {"quality_pass_s": time.perf_counter() - t0}
    timing = measurements[0].meta.get("timing", {})
    info["quality_forward_tokens_per_s"] = timing.get("forward_tokens_per_s")
    info["quality_scored_tokens_per_s"] = measurements[0].meta["tokens_scored"] / info["quality_pass_s"]
    if is_reference:
        info["reference_file"] = str(save_reference(ref))
    else:
        info["reference_file"] = reference_file
    return measurements, info
