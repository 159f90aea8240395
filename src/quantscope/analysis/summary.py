"""One stored run reduced to the figures that tables, plots and the recommendation read.

Every figure is derived from the raw samples (metrics.stats.describe and the quality summaries that
follow llama-perplexity); for a stored row the store derived them when the run was written and keeps
them beside the samples (store/stats.py), so a listing of 10,000 runs reads no sample. Turning these figures
into text is present/'s job (present.columns), not this module's.

>>> s = summarize(1, result)  # doctest: +SKIP
>>> s.decode.mean, s.kld   # tok/s, (mean nat, SE)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from quantscope.metrics.stats import Stats
from quantscope.present.labels import spec_label
from quantscope.result import Result


@dataclass(frozen=True)
class Summary:
    run_id: int
    result: Result
    decode: Stats | None  # tok/s per repetition
    prefill: Stats | None  # tok/s per repetition
    ttft: Stats | None  # s
    token_latency: Stats | None  # s per decode step
    peak_rss_bytes: float | None
    weight_bytes: float | None
    file_bytes: float | None
    ppl: tuple[float, float] | None  # (PPL, SE)
    kld: tuple[float, float] | None  # (mean nat, SE); (0, 0) for the reference itself
    top1: tuple[float, float] | None  # (same-top-1 fraction, SE); (1, 0) for the reference itself
    bandwidth_fraction: Stats | None
    achieved_bandwidth: Stats | None  # B/s
    energy: Stats | None  # J/token
    is_reference: bool

    @property
    def status(self) -> str:
        return self.result.status

    @property
    def ok(self) -> bool:
        return self.result.status == "ok"

    @property
    def label(self) -> str:
        """backend/quant plus backend options: what varies within one sweep (present.labels)."""
        return spec_label(self.result.spec)

    @property
    def energy_note(self) -> str:
        return str(self.result.info.get("energy", "not measured"))


def _stats(r: Result, name: str) -> Stats | None:
    m = r.get(name)
    return m.stats if m is not None and m.samples else None  # a store's rows: from its stats table


def _ppl(samples) -> tuple[float, float]:
    """quality.perplexity.ppl_with_se, from the store's mean and SE when the samples came from one."""
    from quantscope.store.stats import mean_se

    mean, se = mean_se(samples)
    ppl = math.exp(mean)
    return ppl, ppl * se


def _top1(samples) -> tuple[float, float]:
    """quality.kld.same_top_summary (p and sqrt(p (1-p) / (n-1))) from the store's mean when it has it."""
    from quantscope.store.stats import mean_se

    n, p = len(samples), mean_se(samples)[0]
    return p, math.sqrt(p * (1 - p) / (n - 1)) if n > 1 else math.nan


def _value(r: Result, name: str) -> float | None:
    m = r.get(name)
    return m.value if m is not None and m.samples else None


def is_reference(r: Result) -> bool:
    """The run is its own KLD reference: torch FP32 of the model with a quality pass and no KLD."""
    from quantscope.spec import reference_spec

    return r.get("nll") is not None and r.get("kld") is None and reference_spec(r.spec) == r.spec


def default_baseline(summaries: list[Summary]) -> Summary | None:
    """The row speed-ups are measured against: the KLD reference, else the plain torch FP32 row (the
    reference's configuration, when no quality pass ran), else the first ok row in the given order."""
    from quantscope.spec import reference_spec

    ok = [s for s in summaries if s.ok and s.decode is not None]
    return (next((s for s in ok if s.is_reference), None)
            or next((s for s in ok if reference_spec(s.result.spec) == s.result.spec), None)
            or (ok[0] if ok else None))


def summarize(run_id: int, r: Result) -> Summary:
    """The row's figures; a stored row's come from the store's stats table (store/stats.py, equal to
    those derived from the samples), so no sample is read."""
    from quantscope.store.stats import mean_se

    ref = is_reference(r)
    nll, kld, top = r.get("nll"), r.get("kld"), r.get("same_top1")
    kld_pair = top_pair = None
    if kld is not None and kld.samples:
        kld_pair = mean_se(kld.samples, sort=True)  # kld_summary's mean and SE (it sorts first)
    elif ref:
        kld_pair = (0.0, 0.0)  # KL(p || p) = 0 by definition
    if top is not None and top.samples:
        top_pair = _top1(top.samples)
    elif ref:
        top_pair = (1.0, 0.0)
    return Summary(
        run_id=run_id, result=r,
        decode=_stats(r, "decode_tps"), prefill=_stats(r, "prefill_tps"), ttft=_stats(r, "ttft_s"),
        token_latency=_stats(r, "token_latency_s"),
        peak_rss_bytes=_value(r, "peak_rss_bytes"), weight_bytes=_value(r, "weight_bytes"),
        file_bytes=_value(r, "file_bytes"),
        ppl=_ppl(nll.samples) if nll is not None and nll.samples else None,
        kld=kld_pair, top1=top_pair,
        bandwidth_fraction=_stats(r, "bandwidth_fraction"), achieved_bandwidth=_stats(r, "achieved_bandwidth_Bps"),
        energy=_stats(r, "energy_j_per_token"), is_reference=ref,
    )
