"""Task accuracy by hand, without quantscope's harness: the check that `run --tasks` gives lm-eval's number.

Loads the HF folder with plain transformers (optionally torchao int4 weight-only, the same torchao
config quantscope's `int4-weight-only` uses on CPU: PrototypeInt4WeightOnlyConfig, group 64, lm_head
left as is), wraps it in lm-eval's own HFLM and calls lm_eval.simple_evaluate; prints accuracy ± SE
and, with --store and --run, compares every document's outcome with the stored run's.

For FP32 the lm_eval CLI does the same (quoted in the issue's note); int4 needs this script because
the CLI cannot apply a torchao config to a checkpoint.

    .venv/bin/python benchmarks/lm_eval_by_hand.py HF_FOLDER --include-path TASK_DIR --limit 100 \\
        [--int4] [--store results.sqlite --run 2]
"""

from __future__ import annotations

import argparse
import os


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", help="an HF model folder (quantscope's hf-dequant cache of the bundled GGUF)")
    ap.add_argument("--include-path", required=True, help="the folder holding our task's YAML and JSONL")
    ap.add_argument("--task", default="quantscope_cloze")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--int4", action="store_true", help="bf16 + torchao int4 weight-only (group 64)")
    ap.add_argument("--store", help="a quantscope store holding the run to compare with")
    ap.add_argument("--run", type=int, help="that run's id")
    args = ap.parse_args()

    import torch
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    dtype = torch.bfloat16 if args.int4 else torch.float32
    model = AutoModelForCausalLM.from_pretrained(args.folder, dtype=dtype).eval()
    if args.int4:
        from torchao.prototype.quantization.int4.inference_workflow import PrototypeInt4WeightOnlyConfig
        from torchao.quantization import quantize_

        quantize_(model, PrototypeInt4WeightOnlyConfig(group_size=64),
                  filter_fn=lambda m, fqn: isinstance(m, torch.nn.Linear) and fqn != "lm_head")
    lm = HFLM(pretrained=model, tokenizer=AutoTokenizer.from_pretrained(args.folder), batch_size=1, device="cpu")
    out = simple_evaluate(model=lm, tasks=[args.task], limit=args.limit, log_samples=True,
                          task_manager=TaskManager(include_path=[args.include_path], include_defaults=False))
    fig = out["results"][args.task]
    docs = sorted(out["samples"][args.task], key=lambda s: s["doc_id"])
    mine = [float(s["acc"]) for s in docs]
    print(f"by hand: {args.task} acc {fig['acc,none']:.4f} ± {fig['acc_stderr,none']:.4f} (SE), "
          f"{len(docs)} documents, torch threads {torch.get_num_threads()}, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', '-')}")
    if args.store and args.run:
        from quantscope.store import open_store

        with open_store(args.store, readonly=True) as st:
            stored = st.get(args.run).get(f"task:{args.task}:acc")
        if stored is None or len(stored.samples) != len(mine):
            print(f"stored run {args.run}: no task:{args.task}:acc of {len(mine)} documents to compare with")
            return
        differ = [i for i, (a, b) in enumerate(zip(stored.samples, mine, strict=True)) if a != b]
        print(f"stored run {args.run}: acc {stored.value}; per document "
              f"{f'DIFFERENT at documents {differ[:20]}' if differ else 'identical'}")


if __name__ == "__main__":
    main()
