"""Quality figures of a stored Result as text: PPL ± SE with its recipe, KLD, Δp and same-top-1."""

from __future__ import annotations

from quantscope.quality.kld import delta_p_summary, kld_summary, same_top_summary
from quantscope.quality.perplexity import mean_se, ppl_with_se
from quantscope.result import Result


def ppl_text(r: Result) -> str:
    m = r.get("nll")
    if m is None:
        return "-"
    ppl, se = ppl_with_se(m.samples)
    return f"{ppl:.4g} ± {se:.2g}"


def describe_quality(r: Result) -> list[str]:
    """The quality block of `quantscope run`, as llama-perplexity prints its figures."""
    nll = r.get("nll")
    meta = nll.meta
    recipe = (f"{meta['recipe']} recipe: ctx {meta['ctx']}, {meta['tokens_scored']} tokens scored in "
              f"{meta['windows']} windows, BOS {meta['bos']}, text {meta['text_source']} "
              f"sha256 {meta['text_sha256'][:12]}")
    tps = r.info.get("quality_scored_tokens_per_s")
    lines = [f"  quality     PPL {ppl_text(r)}   ({recipe})",
             f"              pass {r.info.get('quality_pass_s', 0):.1f} s, {tps or 0:.0f} scored tok/s, "
             f"forward {r.info.get('quality_forward_tokens_per_s') or 0:.0f} tok/s"]
    kld = r.get("kld")
    if kld is None:
        lines.append("              (this run is the reference: KLD is measured for other configurations)")
        return lines
    k = kld_summary(kld.samples)
    dp = delta_p_summary(r.get("delta_p").samples)
    top, top_se = same_top_summary(r.get("same_top1").samples)
    ln_ratio, ln_se = mean_se(r.get("nll_delta").samples)
    ref = kld.meta.get("reference") or {}
    lines += [
        f"  vs reference (FP32 torch, model {str(ref.get('model_digest', ''))[:12]}):",
        f"              KLD {k['mean']:.5f} ± {k['se']:.5f} nat   median {k['median']:.5f}  "
        f"p90 {k['p90']:.5f}  p99 {k['p99']:.5f}  max {k['max']:.4f}",
        f"              Δp mean {dp['mean'] * 100:+.3f} ± {dp['se'] * 100:.3f} %   "
        f"RMS {dp['rms'] * 100:.3f} ± {dp['rms_se'] * 100:.3f} %",
        f"              same top-1 {top * 100:.2f} ± {top_se * 100:.2f} %   "
        f"ln(PPL/PPL_ref) {ln_ratio:+.5f} ± {ln_se:.5f}",
    ]
    return lines
