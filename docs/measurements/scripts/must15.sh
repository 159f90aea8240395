#!/bin/bash
# issue 15 must-shows on a fresh clone ($1) + ORT INT8 reduce_range on this CPU
set -u
cd $1; unset PYTHONDONTWRITEBYTECODE
Q=.venv/bin/quantscope; S=/tmp/must15.sqlite; rm -f $S
echo "commit $(git log --oneline -1 | cut -c1-60)"; date
lscpu | grep -i "model name"; grep -o 'avx512_vnni\|avx_vnni\|avx512f\|avx2' /proc/cpuinfo | sort -u | tr '\n' ' '; echo
show() { grep -E "ok in|unsupported|failed|decode  |prefill  |memory  |quality  |KLD|same top-1" ; }
$Q run --store $S 2>&1 | show
for q in int4 int8; do echo "== ortgenai $q"; $Q run --backend ortgenai --quant $q --store $S 2>&1 | show; done
echo "== ort int8 (default: blockwise)"; $Q run --backend ort --quant int8 --store $S 2>&1 | show
for scheme in dynamic static; do for rr in false true; do
  echo "== ort int8 scheme=$scheme reduce_range=$rr"
  $Q run --backend ort --quant int8 --qparam scheme=$scheme --qparam reduce_range=$rr --store $S 2>&1 | show
done; done
for b in 1 4; do echo "== llamacpp q4_0 batch $b (no quality)"; $Q run --backend llamacpp --quant q4_0 --batch $b --no-quality --store $S 2>&1 | show; done
date
echo "== vs_llama_bench, same libraries, 5 rounds"
.venv/bin/python benchmarks/vs_llama_bench.py --llama-bench /tmp/llb/bin/llama-bench --same-libs --rounds 5 2>&1 | tail -12
date
