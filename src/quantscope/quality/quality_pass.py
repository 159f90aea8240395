"""The quality pass: per-token nll of a model on a recipe's windows, and its divergence from a reference.

Backend-neutral: it asks the model only for `tokenize`, `bos_token_id`, `vocab_size` and `logits`
(backends/base.py), and works in numpy. Two uses:

    measurements, ref = run_quality(fp32_backend, spec, model_digest=d, tokenizer_name=t)   # reference run
    save_reference(ref)
    measurements, _ = run_quality(int4_backend, spec, model_digest=d4, tokenizer_name=t, reference=ref)

Measurements (raw per-token samples; figures are derived with perplexity.py / kld.py):
  nll        nat   per-token negative log-likelihood         PPL = exp(mean), ppl_with_se()
  kld        nat   per-token KL(reference || model)           kld_summary()
  delta_p    prob  p_model - p_ref of the correct token       delta_p_summary()
  same_top1  1     1 when both models' most probable token agree   same_top_summary()
  nll_delta  nat   nll - nll_ref on the same token            mean = ln(PPL/PPL_ref); compare_ppl()
(the last four only against a reference).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from quantscope.errors import UserError
from quantscope.quality.kld import compact_rows, entry_budget, kld_compact, log_softmax, row_starts
from quantscope.quality.recipes import Plan, make_plan, recipe_ctx
from quantscope.quality.reference import ENTRIES_PER_TOKEN, ReferenceData, ReferenceKey
from quantscope.quality.text import Text, load_text
from quantscope.result import Measurement
from quantscope.spec import QualitySpec

ROW_BLOCK = 128  # log-softmax rows at a time: 128 x V float64 (50 MB at V = 49k) bounds peak memory


def resolve_add_bos(model: Any, add_bos: bool | None) -> bool:
    """Whether the vocab adds BOS (llama_vocab_get_add_bos). Backends may expose it as `add_bos`;
    default False: adding a BOS the vocab does not add changes perplexity (llama.cpp would not add it)."""
    if add_bos is not None:
        return bool(add_bos)
    return bool(getattr(model, "add_bos", False) or False)


def _tokens(model: Any, text: Text) -> list[int]:
    ids = model.tokenize(text.text)
    if ids is None:
        raise UserError(
            "this model has no tokenizer (synthetic weights): run it with the quality pass disabled"
        )
    return list(ids)


def plan_for(
    model: Any,
    spec: QualitySpec,
    *,
    add_bos: bool | None = None,
    model_ctx: int | None = None,
    text: Text | None = None,
) -> tuple[Plan, Text]:
    """The windows a run of `spec` feeds this model (tokenizes the text)."""
    text = text or load_text(spec.text)
    ctx = recipe_ctx(spec.recipe, spec.ctx, model_ctx)
    plan = make_plan(
        spec.recipe,
        _tokens(model, text),
        ctx=ctx,
        max_tokens=spec.max_tokens,
        bos_token_id=model.bos_token_id,
        add_bos=resolve_add_bos(model, add_bos),
    )
    return plan, text


def reference_key(plan: Plan, text: Text, *, model_digest: str, tokenizer_name: str) -> ReferenceKey:
    return ReferenceKey(
        model_digest=model_digest,
        text_sha256=text.sha256,
        recipe=plan.recipe,
        ctx=plan.ctx,
        tokenizer=tokenizer_name,
        bos=plan.bos,
    )


def plan_from_reference(
    ref: ReferenceData, spec: QualitySpec, model_ctx: int | None = None
) -> tuple[Plan, Text, ReferenceData]:
    """The reference's own token windows, cut to this run's budget.

    As llama-perplexity --kl-divergence reads the tokens from the base model's file, a model compared
    with a reference is fed the reference's tokens: runtimes whose tokenizers differ in corner cases
    (llama.cpp's against transformers') still score the same positions.
    """
    text = load_text(spec.text)
    ctx = recipe_ctx(spec.recipe, spec.ctx, model_ctx)
    k = ref.key
    if (text.sha256, spec.recipe, ctx) != (k.text_sha256, k.recipe, k.ctx):
        raise UserError(
            f"the reference was computed on another evaluation (recipe {k.recipe}, ctx {k.ctx}, text "
            f"sha256 {k.text_sha256[:12]}) than this run (recipe {spec.recipe}, ctx {ctx}, text "
            f"{text.sha256[:12]}): recompute the reference with the same text, recipe and ctx"
        )
    n = ref.windows_for(spec.max_tokens)
    if n > ref.n_windows:
        raise UserError(
            f"the reference scores {ref.tokens_scored} tokens, this run asks max_tokens={spec.max_tokens}: "
            f"recompute the reference with max_tokens >= {spec.max_tokens}"
        )
    ref = ref.head(n)
    plan = Plan(recipe=k.recipe, ctx=k.ctx, first=ref.first, bos=k.bos,
                windows=ref.windows.astype(np.int64), stream_tokens=0,
                windows_available=ref.windows_available)
    return plan, text, ref


def _score_window(
    logits: np.ndarray,
    plan: Plan,
    targets: np.ndarray,
    ref: ReferenceData | None,
    row0: int,
    per_row: int,
    out: dict[str, list[np.ndarray]],
) -> None:
    """Score one window's positions first..ctx-2 (scored tokens row0.. of the pass), ROW_BLOCK at a time."""
    rows = logits[plan.first : plan.ctx - 1]
    for b in range(0, rows.shape[0], ROW_BLOCK):
        blk = slice(b, b + ROW_BLOCK)
        logq = log_softmax(rows[blk])
        tgt = targets[blk]
        nll = -np.take_along_axis(logq, tgt[:, None], axis=1)[:, 0]
        out["nll"].append(nll)
        if ref is None:
            for name, arr in zip(
                ("counts", "ids", "logp", "tail_logp"), compact_rows(logq, per_row), strict=True
            ):
                out[name].append(arr)
            continue
        r = ref.rows(row0 + b, row0 + b + logq.shape[0])
        nll_ref = r["nll"].astype(np.float64)
        out["kld"].append(kld_compact(r["counts"], r["ids"], r["logp"], r["tail_logp"], logq))
        ref_top = r["ids"][row_starts(r["counts"])]  # each token's first stored id is the reference's argmax
        out["same_top1"].append((np.argmax(logq, axis=1) == ref_top).astype(np.float64))
        out["delta_p"].append(np.exp(-nll) - np.exp(-nll_ref))  # perplexity.cpp: p_diff = p - p_base
        out["nll_delta"].append(nll - nll_ref)


def run_quality(
    model: Any,
    spec: QualitySpec,
    *,
    model_digest: str,
    tokenizer_name: str,
    reference: ReferenceData | None = None,
    add_bos: bool | None = None,
    model_ctx: int | None = None,
    entries_per_token: int | None = None,
) -> tuple[list[Measurement], ReferenceData | None]:
    """Score `model` on `spec`'s text and recipe. Prints nothing.

    Without `reference` this is the reference run: it returns the nll measurement and new ReferenceData
    (for save_reference). With one, it returns nll, kld, delta_p, same_top1 and nll_delta against it,
    and the reference it used.
    `add_bos`: whether the vocab adds BOS (GGUF tokenizer.ggml.add_bos_token); None asks `model.add_bos`.
    `model_ctx`: the model's context length, to clip the gptq recipe's 2048-token windows.
    `entries_per_token`: reference entries stored per token on average (default 1024, capped at 1/20 of
    a uint16 vocabulary row; reference.py).
    """
    if reference is None:
        plan, text = plan_for(model, spec, add_bos=add_bos, model_ctx=model_ctx)
        key = reference_key(plan, text, model_digest=model_digest, tokenizer_name=tokenizer_name)
        ref = None
    else:
        plan, text, ref = plan_from_reference(reference, spec, model_ctx)
        key = ref.key
    vocab = int(model.vocab_size)
    if ref is not None and ref.vocab_size != vocab:
        raise UserError(
            f"the reference has a {ref.vocab_size}-token vocabulary, this model {vocab}: "
            "KLD needs the same vocabulary"
        )
    names = (
        ("nll", "counts", "ids", "logp", "tail_logp")
        if ref is None
        else ("nll", "kld", "same_top1", "delta_p", "nll_delta")
    )
    out: dict[str, list[np.ndarray]] = {n: [] for n in names}
    targets = plan.targets
    per = plan.scored_per_window
    per_row = (
        entry_budget(vocab, ENTRIES_PER_TOKEN) if entries_per_token is None else min(entries_per_token, vocab)
    )
    from quantscope import progress

    forward_s = score_s = 0.0
    # A time cap (QualitySpec.max_seconds) ends a compared run's pass after the window that crosses it:
    # whole windows, at least one, the first ones of the reference's (their KLD and PPL change are on
    # the same tokens). The reference always scores every window: the others compare against it.
    cap = spec.max_seconds if ref is not None else None
    windows = plan.n_windows
    for i in range(plan.n_windows):
        if cap is not None and i > 0 and forward_s + score_s >= cap:
            windows = i
            break
        t0 = time.perf_counter()
        logits = np.asarray(model.logits(plan.windows[i]))
        t1 = time.perf_counter()
        if logits.shape != (plan.ctx, vocab):
            raise ValueError(  # a backend bug, not a user's mistake
                f"the backend returned logits of shape {logits.shape}, expected "
                f"({plan.ctx}, {vocab}): its logits() breaks the Backend contract"
            )
        _score_window(logits, plan, targets[i], ref, i * per, per_row, out)
        forward_s += t1 - t0
        score_s += time.perf_counter() - t1
        progress.report("quality", f"window {i + 1} of {plan.n_windows} ({plan.ctx} tokens each)",
                        tokens_per_s=(i + 1) * plan.ctx / (forward_s + score_s))
    cols = {n: np.concatenate(v) for n, v in out.items()}

    forward_tokens = windows * plan.ctx
    meta: dict[str, Any] = {
        "recipe": plan.recipe,
        "ctx": plan.ctx,
        "first_scored_position": plan.first,
        "windows": windows,
        "tokens_scored": plan.tokens_scored if windows == plan.n_windows else windows * per,
        "tokens_in_text": plan.stream_tokens,
        "bos": plan.bos,
        "text_source": text.source,
        "text_sha256": text.sha256,
        "tokenizer": tokenizer_name,
        "model_digest": model_digest,
        "reference": None
        if ref is None
        else {
            "model_digest": ref.key.model_digest,
            "key": ref.key.digest(),
            "entries_per_token": ref.entries_per_token,
            "kld_method": "stored top entries + tail mass (quality/kld.py kld_compact)",
        },
        "timing": {
            "forward_s": forward_s,
            "forward_tokens": forward_tokens,
            "forward_tokens_per_s": forward_tokens / forward_s if forward_s > 0 else None,
            "score_s": score_s,
            "pass_s": forward_s + score_s,
        },
    }
    if windows < plan.n_windows:
        meta["capped"] = {"max_seconds": cap, "windows_planned": plan.n_windows,
                          "tokens_planned": plan.tokens_scored}
    units = {"nll": "nat", "kld": "nat", "delta_p": "prob", "same_top1": "fraction", "nll_delta": "nat"}
    better = {"nll": False, "kld": False, "delta_p": None, "same_top1": True, "nll_delta": False}
    measured = [n for n in ("nll", "kld", "delta_p", "same_top1", "nll_delta") if n in cols]
    measurements = [
        Measurement(n, units[n], tuple(cols[n].tolist()), better[n], dict(meta)) for n in measured
    ]
    if ref is not None:
        return measurements, reference
    new_ref = ReferenceData(
        key=key,
        first=plan.first,
        vocab_size=vocab,
        windows_available=plan.windows_available,
        windows=plan.windows.astype(np.int32),
        nll=cols["nll"].astype(np.float32),
        counts=cols["counts"],
        ids=cols["ids"],
        logp=cols["logp"],
        tail_logp=cols["tail_logp"],
        meta={
            "text_source": text.source,
            "tokens_scored": plan.tokens_scored,
            "timing": meta["timing"],
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )
    return measurements, new_ref
