"""Does quantscope's llama.cpp backend measure what llama-bench measures? Both on the same GGUF, side by side.

llama-bench (llama.cpp's own benchmark, JSON output) and quantscope's llamacpp backend run the same
file with the same threads, prompt length P and generation length G, alternating round by round
(never at once: 2 cores, FACTS.md). The methods are matched to llama-bench.cpp (test_prompt /
test_gen): prefill = P tokens from an empty cache, one llama_decode per n_batch chunk, logits of the
last position only; decode = G one-token llama_decode calls. llama-bench's tg test starts from an
empty cache, quantscope decodes after its prompt, so llama-bench's tg runs with -d P (depth P).
quantscope's side is the backend in this process timed by quantscope.runner.timing.timed_workload,
the loop `quantscope run` uses. Pass: quantscope / llama-bench within 0.95-1.05 for both.

On a machine shared with other jobs a repetition can only be slowed, never sped up, so the fastest
repetition of each side is the least disturbed estimate of its speed (the argument of Python's
timeit docs for reporting the minimum time): --criterion best judges the ratio of the fastest
repetitions. On the 2-core AVX2 machines that argument failed: speed varied both ways between
rounds (quantscope's fastest prefill 222.5 t/s against llama-bench's 190.7, while their means were
171.1 and 172.0), so one lucky repetition decided the verdict. --criterion median (default) judges the
ratio of the medians of all rounds' repetitions, which neither a stall nor one fast repetition moves;
--criterion mean the ratio of means (right on a quiet machine). All three are shown.

    .venv/bin/python benchmarks/vs_llama_bench.py --llama-bench /path/to/llama-bench [--gguf FILE]
        [-t 2 -p 128 -n 64 -r 5 --rounds 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys

PASS_BAND = (0.95, 1.05)


def ratio_ci95(num: list[float], den: list[float]) -> tuple[float, float, float]:
    """mean(num) / mean(den) with a 95 % CI: delta method on the log ratio, Welch-Satterthwaite
    degrees of freedom (the usual interval for a ratio of two independent means)."""
    from quantscope.metrics.stats import describe, t_quantile

    a, b = describe(num), describe(den)
    ratio = a.mean / b.mean
    va, vb = (a.se / a.mean) ** 2, (b.se / b.mean) ** 2
    if not (va + vb > 0):
        return ratio, math.nan, math.nan
    dof = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    half = t_quantile(0.95, max(1, round(dof))) * math.sqrt(va + vb)
    return ratio, ratio * math.exp(-half), ratio * math.exp(half)


def llama_cpp_lib_dir() -> str:
    """The folder of the libllama/libggml that llama-cpp-python loads (the libraries quantscope measures)."""
    import llama_cpp

    return os.path.join(os.path.dirname(llama_cpp.__file__), "lib")


def llama_bench(binary: str, gguf: str, threads: int, prompt: int, gen: int,
                reps: int, same_libs: bool = False) -> dict[str, list[float]]:
    """Tokens/s samples of llama-bench's pp test (depth 0) and tg test (depth = prompt). With
    `same_libs`, llama-bench loads llama-cpp-python's own libllama and libggml (same llama.cpp commit,
    so the same ABI): what remains between the two sides is the timing method, not the build flags."""
    dirs = [llama_cpp_lib_dir()] if same_libs else []
    env = {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join([*dirs, os.path.dirname(os.path.abspath(binary))])}
    out: dict[str, list[float]] = {}
    for key, args in (("pp", ["-p", str(prompt), "-n", "0"]),
                      ("tg", ["-p", "0", "-n", str(gen), "-d", str(prompt)])):
        cmd = [binary, "-m", gguf, "-t", str(threads), "-r", str(reps), "-o", "json", *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise SystemExit(f"llama-bench failed ({proc.returncode}): {last}")
        tests = json.loads(proc.stdout)
        out[key] = [float(x) for x in tests[0]["samples_ts"]]
    return out


def quantscope_side(gguf: str | None, threads: int, prompt: int, gen: int, reps: int):
    """A loaded llamacpp backend, its prompt ids and the workload, as `quantscope run` would make them."""
    from quantscope.backends.llamacpp.backend import LlamaCppBackend
    from quantscope.models import parse_model, resolve
    from quantscope.runner.prompt import prompt_ids
    from quantscope.spec import QualitySpec, RunSpec, WorkloadSpec

    wl = WorkloadSpec(prompt_tokens=prompt, gen_tokens=gen, warmup=1, min_reps=reps, max_reps=reps,
                      threads=threads)
    spec = RunSpec(model=parse_model(gguf), backend="llamacpp", workload=wl,
                   quality=QualitySpec(enabled=False), options={"n_threads": threads})
    backend = LlamaCppBackend()
    reason = backend.supports(spec)
    if reason:
        raise SystemExit(f"quantscope's llamacpp backend cannot run this: {reason}")
    artifact = resolve(spec.model)
    backend.load(spec, artifact)
    ids, _ = prompt_ids(backend, prompt, 1, spec.seed)
    return backend, ids, wl, artifact.path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--llama-bench", required=True, help="path of the llama-bench binary")
    ap.add_argument("--gguf", default=None, help="GGUF file (default: the bundled model)")
    ap.add_argument("--same-libs", action="store_true",
                    help="run llama-bench on llama-cpp-python's libllama/libggml (LD_LIBRARY_PATH): only the "
                         "timing method differs, not the build")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-p", "--prompt", type=int, default=128)
    ap.add_argument("-n", "--gen", type=int, default=64)
    ap.add_argument("-r", "--reps", type=int, default=5, help="repetitions per side per round")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (drift hits both sides)")
    ap.add_argument("--criterion", choices=("median", "best", "mean"), default="median",
                    help="judge the ratio of the medians, of the fastest repetitions (best) or of the means")
    args = ap.parse_args()

    from quantscope.metrics.stats import describe
    from quantscope.runner.timing import timed_workload

    backend, ids, wl, path = quantscope_side(args.gguf, args.threads, args.prompt, args.gen, args.reps)
    theirs: dict[str, list[float]] = {"pp": [], "tg": []}
    ours: dict[str, list[float]] = {"pp": [], "tg": []}
    for r in range(args.rounds):
        got = llama_bench(args.llama_bench, path, args.threads, args.prompt, args.gen, args.reps, args.same_libs)
        runs = timed_workload(backend, ids, wl)
        theirs["pp"] += got["pp"]
        theirs["tg"] += got["tg"]
        ours["pp"] += runs.prefill_tps(1, args.prompt)
        ours["tg"] += runs.decode_tps(1)
        mean = {k: describe(v).mean for k, v in
                (("lpp", got["pp"]), ("ltg", got["tg"]), ("qpp", runs.prefill_tps(1, args.prompt)),
                 ("qtg", runs.decode_tps(1)))}
        print(f"round {r + 1}: llama-bench pp {mean['lpp']:.1f} tg {mean['ltg']:.1f}; "
              f"quantscope pp {mean['qpp']:.1f} tg {mean['qtg']:.1f} t/s", file=sys.stderr, flush=True)
    backend.close()

    print(f"\n{os.path.basename(path)}, {args.threads} threads, P={args.prompt}, G={args.gen}, "
          f"{args.rounds} rounds x {args.reps} reps per side\n")
    print("| test | llama-bench t/s ± SD (median, best) | quantscope t/s ± SD (median, best) | "
          "ratio of means (95 % CI) | ratio of medians | ratio of best | pass |")
    print("|---|---|---|---|---|---|---|")
    ok = True
    tests = (("pp", f"prefill pp{args.prompt}"), ("tg", f"decode tg{args.gen} @ depth {args.prompt}"))
    for key, name in tests:
        a, b = describe(theirs[key]), describe(ours[key])
        ratio, lo, hi = ratio_ci95(ours[key], theirs[key])
        best = b.max / a.max
        median = statistics.median(ours[key]) / statistics.median(theirs[key])
        judged = {"best": best, "mean": ratio, "median": median}[args.criterion]
        passed = PASS_BAND[0] <= judged <= PASS_BAND[1]
        ok = ok and passed
        print(f"| {name} | {a.mean:.1f} ± {a.sd:.1f} ({statistics.median(theirs[key]):.1f}, {a.max:.1f}) | "
              f"{b.mean:.1f} ± {b.sd:.1f} ({statistics.median(ours[key]):.1f}, {b.max:.1f}) | "
              f"{ratio:.3f} ({lo:.3f}-{hi:.3f}) | {median:.3f} | {best:.3f} | {'yes' if passed else 'NO'} |")
    print(f"\npass band {PASS_BAND[0]}-{PASS_BAND[1]} on the ratio of {args.criterion} t/s: "
          f"{'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
