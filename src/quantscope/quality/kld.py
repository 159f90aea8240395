"""Per-token divergence from a reference model, and the summaries llama-perplexity --kl-divergence prints.

Source: ggml-org/llama.cpp tools/perplexity/perplexity.cpp, `log_softmax(..., kl_divergence_result &)`
and `kl_divergence()`. Per scored token, with p the reference's distribution and q the model's:
  KLD      = sum_i p_i (log p_i - log q_i)                       (KL(ref || model), nats)
  Δp       = q(correct token) - p(correct token)                 (the token that actually follows,
                                                                  not the reference's top token)
  same top = argmax q == argmax p
llama.cpp reads p from a uint16-quantized full-vocabulary row and skips terms with log p <= -16. We read
it from a compact store (the most probable entries plus the tail mass, see reference.py) and use the
standard grouped approximation instead:
  KLD ~= sum_{i in S} p_i (log p_i - log q_i) + p_tail (log p_tail - log q_tail),
  p_tail = 1 - sum_S p,  q_tail = 1 - sum_S q  (over the same ids S).
Grouping the tail can only lower the divergence (log-sum inequality), so the approximation is a lower
bound that converges to the exact value as S grows. Between fp32 and bf16 weights the divergence is
spread thinly over the whole vocabulary: on the bundled model (765 pydoc tokens) a fixed top-64 missed
11 %, top-1024 1.5 %; choosing the globally most probable entries of a block (1024 per token on average)
missed 1.0 %. tests/quality/test_quality_integration.py pins it below 2 %.

Summaries: mean +/- SE as mean_and_uncertainty; percentiles by linear interpolation between closest ranks
(llama.cpp's `percentile` lambda == numpy's 'linear' method); RMS Δp = sqrt(mean Δp^2) with uncertainty
0.5/RMS * SE(Δp^2); same-top rate p +/- sqrt(p (1-p) / (n-1)).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from quantscope.quality.perplexity import mean_se

KLD_PERCENTILES = (99.9, 99.0, 95.0, 90.0, 10.0, 5.0, 1.0, 0.1)  # as printed by llama-perplexity
DELTA_P_PERCENTILES = (99.9, 99.0, 95.0, 90.0, 75.0, 25.0, 10.0, 5.0, 1.0, 0.1)


# --- per-token arithmetic ------------------------------------------------------------------------


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-probabilities in float64 (scipy's max-shifted log_softmax)."""
    from scipy.special import log_softmax as _log_softmax

    return _log_softmax(np.asarray(logits, dtype=np.float64), axis=-1)


def kld_exact(logp: np.ndarray, logq: np.ndarray) -> np.ndarray:
    """Per-row KL(p || q) over the full vocabulary; terms with p = 0 contribute 0."""
    p = np.exp(logp)
    with np.errstate(invalid="ignore"):
        terms = np.where(p > 0, p * (logp - logq), 0.0)
    return terms.sum(axis=-1)


def entry_budget(vocab_size: int, wanted: int = 1024) -> int:
    """Stored (id, log-prob) entries per scored token: `wanted`, capped so a token's record (4 bytes per
    entry + 12 bytes of count, tail and nll) stays within 1/20 of a full-vocabulary uint16 row."""
    limit = (vocab_size * 2 // 20 - 12) // 4
    return max(1, min(wanted, limit, vocab_size))


def compact_rows(logp: np.ndarray, per_row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The most probable (row, id) entries of a block of rows, `per_row` x rows of them in all.

    The entries are chosen across the block, not row by row: a low-entropy row needs a handful, a flat one
    hundreds, and the uncovered probability mass (what the tail term cannot resolve) is smallest for a
    given size when the globally largest probabilities are kept. Each row's argmax is always kept.
    Returns counts int32 [R], ids [E] (uint16 when the vocab fits), log-probs float16 [E] (rows in order,
    each most probable first, ties by lower id, so a row's first id is np.argmax), tail float32 [R] =
    log of the probability not stored (-inf when none is left).
    """
    rows, vocab = logp.shape
    n = min(per_row * rows, rows * vocab)
    flat = logp.reshape(-1)
    chosen = np.argpartition(-flat, n - 1)[:n] if n < flat.size else np.arange(flat.size)
    chosen = np.union1d(chosen, np.arange(rows) * vocab + np.argmax(logp, axis=1))
    r, ids = np.divmod(chosen, vocab)
    vals = flat[chosen]
    order = np.lexsort((ids, -vals, r))  # last key first: row, then probability down, then id up
    r, ids, vals = r[order], ids[order], vals[order]
    rest = np.exp(logp)
    rest[r, ids] = 0.0  # the tail summed over the other ids: 1 - sum(stored) would cancel when ~all stored
    with np.errstate(divide="ignore"):
        tail = np.log(rest.sum(axis=1))
    id_type = np.uint16 if vocab <= 1 << 16 else np.int32
    counts = np.bincount(r, minlength=rows).astype(np.int32)
    return counts, ids.astype(id_type), vals.astype(np.float16), tail.astype(np.float32)


def kld_compact(
    counts: np.ndarray, ids: np.ndarray, stored_logp: np.ndarray, tail_logp: np.ndarray, logq: np.ndarray
) -> np.ndarray:
    """Per-row KL(ref || model) from the reference's stored entries and tail mass, against the full logq.

    sum_stored p (log p - log q) + p_tail (log p_tail - log q_tail) + (1 - sum_stored p - p_tail).
    The last term is 0 for exact values; it makes the sum the generalized KL of a not-quite-normalized p,
    whose first-order error in the float16-rounded log p cancels (d/dp [p log(p/q) - p] = log(p/q) ~ 0).
    """
    rows = counts.shape[0]
    r = np.repeat(np.arange(rows), counts)
    ids64 = ids.astype(np.int64)
    lp = stored_logp.astype(np.float64)
    p = np.exp(lp)
    head = np.bincount(r, weights=p * (lp - logq[r, ids64]), minlength=rows)
    head_mass = np.bincount(r, weights=p, minlength=rows)
    q_rest = np.exp(logq)
    q_rest[r, ids64] = 0.0
    q_tail = np.maximum(q_rest.sum(axis=1), np.finfo(np.float64).tiny)
    lt = tail_logp.astype(np.float64)
    p_tail = np.exp(lt)  # 0 where the tail is -inf
    with np.errstate(invalid="ignore"):
        tail = np.where(p_tail > 0, p_tail * (lt - np.log(q_tail)), 0.0)
    return head + tail + (1.0 - head_mass - p_tail)


def row_starts(counts: np.ndarray) -> np.ndarray:
    """Offsets of each row's first stored entry (its argmax), from the per-row counts."""
    return np.concatenate([[0], np.cumsum(counts, dtype=np.int64)[:-1]])


# --- summaries of stored samples -------------------------------------------------------------------


def _sorted(samples: Sequence[float] | np.ndarray) -> np.ndarray:
    return np.sort(np.asarray(samples, dtype=np.float64).reshape(-1))


def _pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if values.size else math.nan


def kld_summary(samples: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Mean +/- SE, median, percentiles, min and max of per-token KLD ("KL divergence statistics").

    >>> s = kld_summary([0.0, 0.1, 0.2])
    >>> round(s["mean"], 3), s["median"], s["max"]
    (0.1, 0.1, 0.2)
    """
    v = _sorted(samples)
    mean, se = mean_se(v)
    out = {
        "n": float(v.size),
        "mean": mean,
        "se": se,
        "median": _pct(v, 50.0),
        "min": float(v[0]) if v.size else math.nan,
        "max": float(v[-1]) if v.size else math.nan,
    }
    out.update({f"p{q:g}": _pct(v, q) for q in KLD_PERCENTILES})
    return out


def rms_with_se(samples: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """RMS and its uncertainty: sqrt(mean x^2), 0.5/RMS * SE(x^2) (first-order, as perplexity.cpp)."""
    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    mse, mse_se = mean_se(x * x)
    rms = math.sqrt(mse) if mse == mse else math.nan
    return rms, (0.5 / rms * mse_se) if rms > 0 else math.nan


def delta_p_summary(samples: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Δp of the correct token: mean +/- SE, percentiles, RMS +/- uncertainty.

    llama-perplexity prints these under "Token probability statistics".
    """
    v = _sorted(samples)
    mean, se = mean_se(v)
    rms, rms_se = rms_with_se(v)
    out = {
        "n": float(v.size),
        "mean": mean,
        "se": se,
        "median": _pct(v, 50.0),
        "rms": rms,
        "rms_se": rms_se,
        "min": float(v[0]) if v.size else math.nan,
        "max": float(v[-1]) if v.size else math.nan,
    }
    out.update({f"p{q:g}": _pct(v, q) for q in DELTA_P_PERCENTILES})
    return out


def same_top_summary(samples: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Same-top-token rate p and its binomial uncertainty sqrt(p (1-p) / (n-1)).

    >>> same_top_summary([1, 1, 1, 0])
    (0.75, 0.25)
    """
    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    n = x.size
    if n == 0:
        return math.nan, math.nan
    p = float(x.mean())
    return p, math.sqrt(p * (1 - p) / (n - 1)) if n > 1 else math.nan
