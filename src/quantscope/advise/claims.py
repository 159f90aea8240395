"""The study's claims that measured rows can test, each with a verdict: supported or contradicted by
which rows, or not testable here and why. Pure logic over summaries (one comparable group or several).

>>> [c.claim for c in judge_claims([])][0]
'avoid quantization below 1B parameters'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quantscope.advise.scenarios import QUALITY_MAX_KLD, SMALL_PARAMS


@dataclass(frozen=True)
class Verdict:
    claim: str
    verdict: str  # supported | contradicted | not testable here
    why: str

    def line(self) -> str:
        return f"{self.claim!r}: {self.verdict} ({self.why})"


def _size(s, sizes: dict[str, float | None]) -> float | None:
    return sizes.get(s.result.spec.model.label)


def small_model_quantization(rows: list[Any], sizes: dict[str, float | None]) -> Verdict:
    claim = "avoid quantization below 1B parameters"
    small = [s for s in rows if s.ok and s.kld and not s.is_reference and s.result.spec.quant.method != "none"
             and (_size(s, sizes) or SMALL_PARAMS) < SMALL_PARAMS]
    if not small:
        return Verdict(claim, "not testable here", "no quantized row with a KLD of a model under 1B parameters")
    fine = [s for s in small if s.kld[0] <= QUALITY_MAX_KLD]
    names = ", ".join(f"{s.label} (run {s.run_id}) KLD {s.kld[0]:.3g} nat" for s in (fine or small)[:4])
    if fine:
        return Verdict(claim, "contradicted", f"near-lossless (KLD <= {QUALITY_MAX_KLD} nat): {names}")
    return Verdict(claim, "supported", f"every quantized row loses more than KLD {QUALITY_MAX_KLD} nat: {names}")


def ort_beats_bnb(rows: list[Any], sizes: dict[str, float | None]) -> Verdict:
    claim = "ONNX Runtime beats bitsandbytes for small models"
    for model in dict.fromkeys(s.result.spec.model.label for s in rows):
        mine = [s for s in rows if s.ok and s.decode and s.result.spec.model.label == model
                and (sizes.get(model) or SMALL_PARAMS) < SMALL_PARAMS]
        ort = max((s for s in mine if s.result.spec.backend in ("ort", "ortgenai")), key=lambda s: s.decode.mean,
                  default=None)
        bnb = max((s for s in mine if s.result.spec.backend == "bnb"), key=lambda s: s.decode.mean, default=None)
        if ort and bnb:
            r = ort.decode.mean / bnb.decode.mean
            why = (f"{model}: best ONNX Runtime {ort.label} (run {ort.run_id}) {ort.decode.mean:.4g} tok/s vs best "
                   f"bitsandbytes {bnb.label} (run {bnb.run_id}) {bnb.decode.mean:.4g} tok/s, {r:.2f}x")
            return Verdict(claim, "supported" if r > 1 else "contradicted", why)
    return Verdict(claim, "not testable here", "no model under 1B parameters has ok rows of both ort and bnb")


def kv_cache_biggest(rows: list[Any], sizes: dict[str, float | None]) -> Verdict:
    claim = "KV cache is the biggest speed-up"
    from quantscope.analysis.summary import default_baseline

    off = [s for s in rows if s.ok and s.decode and ("kv_cache", False) in s.result.spec.options]
    for s in off:
        rest = tuple(o for o in s.result.spec.options if o[0] != "kv_cache")
        on = next((t for t in rows if t.ok and t.decode and t.result.spec.backend == s.result.spec.backend
                   and t.result.spec.quant == s.result.spec.quant and t.result.spec.options in (
                       rest, rest + (("kv_cache", True),))), None)
        base = default_baseline([t for t in rows if t.result.spec.model == s.result.spec.model])
        if on is None or base is None:
            continue
        kv = on.decode.mean / s.decode.mean
        best = max((t for t in rows if t.ok and t.decode and t.result.spec.model == s.result.spec.model
                    and ("kv_cache", False) not in t.result.spec.options), key=lambda t: t.decode.mean)
        q = best.decode.mean / base.decode.mean
        why = (f"KV cache on/off {on.label} (run {on.run_id}) vs run {s.run_id}: {kv:.2f}x; best configuration "
               f"{best.label} (run {best.run_id}) vs {base.label}: {q:.2f}x")
        return Verdict(claim, "supported" if kv > q else "contradicted", why)
    return Verdict(claim, "not testable here", "no row measured with kv_cache=False beside the same configuration "
                   "with it (ort's kv_cache option)")


def judge_claims(rows: list[Any], sizes: dict[str, float | None] | None = None) -> list[Verdict]:
    """Every claim's verdict on `rows` (Summaries); `sizes`: parameters per model label (unknown: None)."""
    sizes = sizes or {}
    return [small_model_quantization(rows, sizes), ort_beats_bnb(rows, sizes), kv_cache_biggest(rows, sizes)]
