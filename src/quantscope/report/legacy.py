"""The report's first views (report/plots.py, report/telemetry.py) registered beside the new ones, so the
page and `quantscope plot` reach every view by one name. They draw measured rows only."""

from __future__ import annotations

from typing import Any

from quantscope.report.views import register, summaries


def _baseline(s):
    from quantscope.analysis.summary import default_baseline

    return default_baseline(s)


@register("throughput", "Throughput per configuration",
          "Mean of the timed repetitions; error bars: 95 % CI of the mean.")
def throughput(rows: list[Any], projected=()):
    from quantscope.report import plots

    return plots.throughput(summaries(rows))


@register("speedup", "Speed-up against the baseline",
          "Ratio of means against the baseline (the FP32 reference); error bars: 95 % CI of the ratio "
          "(delta method on the log means).", applies=lambda s, p: _baseline(s) is not None)
def speedup(rows: list[Any], projected=(), baseline=None):
    from quantscope.report import plots

    s = summaries(rows)
    b = baseline or _baseline(s)
    return plots.speedup(s, b) if b is not None else plots._empty("speed-up (no baseline)")


@register("memory", "Memory", "Weights as loaded (packed data, scales), the model file, and the run's peak RSS "
          "(worker process, load and timed work).")
def memory(rows: list[Any], projected=()):
    from quantscope.report import plots

    return plots.memory(summaries(rows))


@register("quality", "Quality", "Perplexity and KLD against the FP32 reference on the same tokens, each ± its "
          "standard error (llama-perplexity's formulas).", applies=lambda s, p: any(x.ppl or x.kld for x in s))
def quality(rows: list[Any], projected=()):
    from quantscope.report import plots

    return plots.quality(summaries(rows))


@register("speed-vs-quality", "Speed against quality",
          "Red: the Pareto front (nothing else is both faster and closer to the reference); error bars: 95 % CI "
          "of decode, SE of KLD.", applies=lambda s, p: any(x.kld and x.decode for x in s))
def speed_vs_quality(rows: list[Any], projected=()):
    from quantscope.report import plots

    return plots.speed_vs_quality(summaries(rows))


@register("token-latency", "Per-token latency", "Every decode step of every timed repetition.",
          applies=lambda s, p: any(x.token_latency for x in s))
def token_latency(rows: list[Any], projected=()):
    from quantscope.report import plots

    return plots.token_latency(summaries(rows))


def _has_telemetry(s, p) -> bool:
    from quantscope.report import telemetry

    return telemetry.has_telemetry(s)


@register("gpu-telemetry", "GPU telemetry", "NVML samples through the timed work: busy time (a kernel ran), "
          "board power, die temperature, SM clock.", applies=_has_telemetry)
def gpu_telemetry(rows: list[Any], projected=()):
    from quantscope.report import telemetry

    return telemetry.gpu_telemetry(summaries(rows))
