"""Does quantscope's harness cost decode speed? Its decode t/s beside a bare, hand-timed KV-cache loop.

Both run the same model (the bundled SmolLM2-135M at FP32 by default), the same prompt length and the
same number of greedy steps; the bare loop is the simplest honest code (transformers + DynamicCache +
perf_counter around the whole decode). They alternate, never overlap, so drift hits both alike.
The harness passes when ours / bare >= 0.98.

    .venv/bin/python benchmarks/harness_overhead.py [--model synthetic:llama-1b --dtype bf16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np


def bare_loop(model, ids, gen_tokens: int, reps: int) -> list[float]:
    """Decode t/s of a hand-written greedy loop with a KV cache, one sample per repetition."""
    import torch
    from transformers import DynamicCache

    out = []
    with torch.inference_mode():
        for _ in range(reps + 1):  # first repetition is warm-up
            cache = DynamicCache(config=model.config)
            logits = model(input_ids=ids, past_key_values=cache, use_cache=True, logits_to_keep=1).logits
            tok = logits[:, -1].argmax(-1, keepdim=True)
            t0 = time.perf_counter()
            for _ in range(gen_tokens):
                logits = model(input_ids=tok, past_key_values=cache, use_cache=True).logits
                tok = logits[:, -1].argmax(-1, keepdim=True)
            out.append(gen_tokens / (time.perf_counter() - t0))
    return out[1:]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--dtype", default="fp32")
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--gen-tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    import torch

    from quantscope.backends.torch.backend import TorchBackend
    from quantscope.models import parse_model, resolve
    from quantscope.runner import run_spec
    from quantscope.runner.prompt import prompt_ids
    from quantscope.spec import QualitySpec, QuantSpec, RunSpec, WorkloadSpec

    wl = WorkloadSpec(prompt_tokens=args.prompt_tokens, gen_tokens=args.gen_tokens, min_reps=5, max_reps=5)
    spec = RunSpec(model=parse_model(args.model), quant=QuantSpec(dtype=args.dtype), workload=wl,
                   quality=QualitySpec(enabled=False))
    # The bare loop loads the model the way quantscope's torch backend does, in this process.
    backend = TorchBackend()
    backend.load(spec, resolve(spec.model))
    ids, _ = prompt_ids(backend, wl.prompt_tokens, 1, 0)
    ids_t = torch.from_numpy(np.ascontiguousarray(ids))

    bare_all, ours_all = [], []
    for r in range(args.rounds):
        bare = bare_loop(backend.model, ids_t, wl.gen_tokens, reps=5)
        result = run_spec(spec)  # quantscope: its own worker process, its own timing
        if result.status != "ok":
            print(f"quantscope run failed: {result.status}: {result.reason}")
            return 1
        ours = list(result.get("decode_tps").samples)
        bare_all += bare
        ours_all += ours
        print(f"round {r + 1}: bare {statistics.mean(bare):.2f} tok/s, quantscope {statistics.mean(ours):.2f} tok/s")
    b, o = statistics.mean(bare_all), statistics.mean(ours_all)
    ratio = o / b
    print(f"model {spec.model.label} {args.dtype}, P={wl.prompt_tokens} G={wl.gen_tokens}, torch threads "
          f"{torch.get_num_threads()}")
    print(f"bare loop   : {b:.2f} ± {statistics.stdev(bare_all):.2f} tok/s (N={len(bare_all)})")
    print(f"quantscope  : {o:.2f} ± {statistics.stdev(ours_all):.2f} tok/s (N={len(ours_all)})")
    print(f"ratio quantscope/bare = {ratio:.3f}  ->  {'PASS' if ratio >= 0.98 else 'FAIL'} (>= 0.98)")
    return 0 if ratio >= 0.98 else 1


if __name__ == "__main__":
    sys.exit(main())
