"""The Python API for notebooks: stored results as a pandas DataFrame.

One row per stored run. Column names carry their units (SI as stored: `_s`, `_bytes`, `_tps` = tokens
per second, `_nat`, `_Bps` = bytes per second, `_fraction`). For each measurement there are
`<name>_mean`, `<name>_sd`, `<name>_ci95`, `<name>_n` and the raw samples as a list in `<name>_samples`,
so any other statistic can be computed from the samples. Quality figures are derived as
llama-perplexity derives them: `ppl`, `ppl_se`, `kld_nat_mean`, `kld_nat_se`, `same_top1_fraction`...

>>> import quantscope
>>> df = quantscope.load_results()  # doctest: +SKIP
>>> df[["backend", "quant", "decode_tps_mean", "kld_nat_mean"]]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from quantscope.present.labels import spec_label
from quantscope.result import Result

# Stored measurement names that do not end in a unit get one in the DataFrame.
UNIT_NAMES = {"nll": "nll_nat", "kld": "kld_nat", "delta_p": "delta_p_prob", "same_top1": "same_top1_fraction",
              "nll_delta": "nll_delta_nat", "bandwidth_fraction": "bandwidth_fraction"}


def _spec_columns(run_id: int, r: Result) -> dict[str, Any]:
    spec, w, q = r.spec, r.spec.workload, r.spec.quality
    return {
        "run_id": run_id, "key_hash": spec.key_hash(), "machine_id": r.env.machine_id, "status": r.status,
        "reason": r.reason, "started_at": r.started_at, "duration_s": r.duration_s,
        "model": spec.model.label, "model_source": spec.model.source, "backend": spec.backend,
        "dtype": spec.quant.dtype, "quant": spec.quant.method, "config": spec_label(spec),
        "quant_params": json.dumps(dict(spec.quant.params), sort_keys=True),
        "quant_overrides": json.dumps([o.label for o in spec.quant.overrides]),  # the policy's rules, in order
        "options": json.dumps(dict(spec.options), sort_keys=True), "device": spec.device, "seed": spec.seed,
        "prompt_tokens": w.prompt_tokens, "gen_tokens": w.gen_tokens, "batch": w.batch,
        "quality_recipe": q.recipe if q.enabled else None, "quality_ctx": q.ctx if q.enabled else None,
        "quality_max_tokens": q.max_tokens if q.enabled else None,
        "stop_rule": r.info.get("stop_rule"), "reps": r.info.get("reps"),
        "cpu_model": r.env.cpu_model, "git_sha": r.env.git_sha, "quantscope_version": r.env.quantscope_version,
    }


def _quality_columns(r: Result) -> dict[str, Any]:
    from quantscope.analysis.summary import is_reference
    from quantscope.store.stats import mean_se

    out: dict[str, Any] = {"ppl": math.nan, "ppl_se": math.nan, "kld_nat_se": math.nan,
                           "same_top1_fraction_se": math.nan, "is_reference": is_reference(r)}
    nll, kld, top = r.get("nll"), r.get("kld"), r.get("same_top1")
    # ppl_with_se, kld_summary and same_top_summary's figures, from the store's stats table (no sample read)
    if nll is not None and nll.samples:
        mean, se = mean_se(nll.samples)
        out["ppl"], out["ppl_se"] = math.exp(mean), math.exp(mean) * se
    if kld is not None and kld.samples:
        out["kld_nat_se"] = mean_se(kld.samples, sort=True)[1]
    if top is not None and top.samples:
        n, p = len(top.samples), mean_se(top.samples)[0]
        out["same_top1_fraction_se"] = math.sqrt(p * (1 - p) / (n - 1)) if n > 1 else math.nan
    return out


def result_record(run_id: int, r: Result, samples: bool = True) -> dict[str, Any]:
    """One DataFrame row as a dict (also usable without pandas); `samples=False` leaves out the
    `<name>_samples` columns, so a stored row's samples are never read."""
    rec = _spec_columns(run_id, r)
    for m in r.measurements:
        name = UNIT_NAMES.get(m.name, m.name)
        s = m.stats  # a stored row's: from the store's stats table
        rec.update({f"{name}_mean": s.mean, f"{name}_sd": s.sd, f"{name}_ci95": s.ci95, f"{name}_n": s.n})
        if samples:
            rec[f"{name}_samples"] = list(m.samples)
    rec.update(_quality_columns(r))
    return rec


def load_results(store: str | os.PathLike[str] | None = None, *, samples: bool = True, **filters: Any):
    """Every stored run as a pandas DataFrame, oldest first (run ids ascending).

    `store`: a result store path or postgresql:// URL (default: $QUANTSCOPE_STORE or the XDG data dir,
    as the CLI). Opened read-only: loading never creates or changes a store. `samples=False` leaves out
    the raw samples (a store of 10,000 runs then loads in seconds, in little memory); `filters` are the
    store's: status, model, machine_id, backend, since (e.g. since="2026-11-01").
    """
    import pandas as pd  # lazy: pandas is an optional dependency (quantscope[report])

    from quantscope.store import open_store

    with open_store(store, readonly=True) as st:  # open while the records read what they need
        records = [result_record(i, r, samples) for i, r in st.iter_results(**filters)]
    return pd.DataFrame.from_records(records[::-1])


def measure(spec: Any, store: str | os.PathLike[str] | None = None, timeout: float = 900.0,
            say: Any = None, on_progress: Any = None) -> tuple[int, Result]:
    """Measure one RunSpec in an isolated worker (after its KLD reference when the quality pass needs
    one), store it, and return (run id, Result). What `quantscope run` does, for notebooks and scripts.

    >>> from quantscope.spec import ModelSpec, Override, QuantSpec, RunSpec, WorkloadSpec
    >>> policy = QuantSpec(method="int8-weight-only", overrides=(Override("lm_head", "none"),))
    >>> spec = RunSpec(model=ModelSpec("synthetic", "tiny-llama"), backend="torchao", quant=policy)
    >>> run_id, result = quantscope.measure(spec, store="runs.db")  # doctest: +SKIP
    """
    from quantscope.env import fingerprint
    from quantscope.models import resolve
    from quantscope.models.context import check_fits
    from quantscope.runner import run_spec
    from quantscope.runner.reference import find_reference
    from quantscope.store import open_store
    from quantscope.store.claims import Claims
    from quantscope.sweep.matrix import check_entry

    check_entry(spec.backend, spec.quant, spec.options)  # a typo in an option or parameter: one line, now
    # cheap checks (paths, pickle, safetensors headers, the model's context) give one-line errors up front
    check_fits(spec, resolve(spec.model))
    with open_store(Path(store) if store is not None else None) as st:  # a store we may not write: refused first
        ref_file = None
        if spec.quality.enabled:
            ref_file = find_reference(st, spec, timeout, say=say or (lambda _line: None))
        # on_progress(report): the worker's phases while it runs (quantscope.progress)
        more = {"on_progress": on_progress} if on_progress is not None else {}
        tell = say or (lambda _line: None)
        # the machine's measuring slot (store/claims.py): never measured while a sweep on this store measures
        with Claims(st.path, fingerprint().machine_id) as claims, claims.slot(
                on_wait=lambda holder: tell(f"waiting: another sweep ({holder}) is measuring on this machine")):
            result = run_spec(spec, timeout, reference_file=ref_file, **more)
        return st.add(result), result
