#!/bin/bash
# issue 11 must-shows on a fresh clone ($1): estimate tables + json, fit, projection_error on the default-sweep store
set -u
cd $1; unset PYTHONDONTWRITEBYTECODE; Q=.venv/bin/quantscope
echo "commit $(git log --oneline -1 | cut -c1-60)"; date
for m in "" "-m synthetic:llama3-8b"; do
  echo "== estimate ${m:-bundled} on t4, a100-80gb-sxm, h200"
  $Q estimate $m --hw t4,a100-80gb-sxm,h200 --backend torch --dtype fp16 2>&1
  $Q estimate $m --hw t4,a100-80gb-sxm,h200 --backend torchao --quant int8-weight-only --dtype bf16 2>&1
  $Q estimate $m --hw t4,a100-80gb-sxm,h200 --backend torchao --quant int4-weight-only --dtype bf16 2>&1
done
echo "== estimate --format json"
$Q estimate -m synthetic:llama3-8b --hw h200 --backend llamacpp --quant q4_0 --format json 2>&1
echo "== fit"
$Q fit --hw t4,a100-80gb-sxm,h100-sxm,h200 -m synthetic:distilgpt2,synthetic:dialogpt-small,synthetic:tinyllama-1.1b,synthetic:llama-1b,synthetic:llama2-7b,synthetic:llama2-13b,synthetic:llama2-70b --quant fp16,int8,int4 2>&1
echo "== projection_error on the default-sweep store of the fresh clone /tmp/f2 (74c56cf)"
.venv/bin/python benchmarks/projection_error.py /tmp/f2-data/quantscope/results.sqlite --kernels 2>&1 | grep -v "Warn\|Failed to load"
date
