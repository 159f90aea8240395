#!/usr/bin/env bash
# One session on a lent GPU (the `device` tool), in the repository root, as one prepared command:
#   bash benchmarks/gpu/session.sh "$OUT"
# 1. the GPU's ceilings (benchmarks/gpu_ceilings.py): copy bandwidth and matrix throughput per dtype;
# 2. `quantscope sweep --device "$DEVICE"` on synthetic llama-1b and llama-8b shapes (random weights: speed,
#    memory and NVML telemetry only), the configurations of benchmarks/gpu/*.toml, into one store.
# The device image has torch, transformers and nvidia-ml-py but not torchao, bitsandbytes or gguf:
# they travel as wheels in .whl/ (carry it), installed into /tmp/site. quantscope runs from src/
# (python -m quantscope). Each step has its own time limit, so a hang costs that step only, and every
# file is written under $OUT as it goes: what finished comes back even if the call is cut short.
set -u
OUT=${1:?usage: session.sh OUTDIR}
# A dry run elsewhere: PY=.venv/bin/python DEVICE=cpu SHAPES="tiny-llama:llama-1b" bash benchmarks/gpu/session.sh /tmp/o
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
SHAPES=${SHAPES:-llama-1b:llama-1b llama-8b:llama-8b}  # synthetic shape:matrix file
export PYTHONUNBUFFERED=1
SITE=/tmp/site
if ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl
fi
export PYTHONPATH="$PWD/src:$SITE${PYTHONPATH:+:$PYTHONPATH}"
qs() { "$PY" -m quantscope "$@"; }
step() { echo; echo "== $(date -u +%T) $*"; }
SWEEP=(--device "$DEVICE" --no-quality --no-report --prompt-tokens 128 --gen-tokens 64 --min-reps 3 --max-reps 4
       --max-seconds 5 --timeout 150 --store "$OUT/gpu.sqlite")
{
  step machine
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem,power.limit,temperature.gpu \
    --format=csv
  "$PY" -c "import torch, transformers, torchao, bitsandbytes; print('torch', torch.__version__, 'cuda', torch.version.cuda,
  'transformers', transformers.__version__, 'torchao', torchao.__version__, 'bitsandbytes', bitsandbytes.__version__)"
  qs env
  step ceilings
  timeout 120 "$PY" benchmarks/gpu_ceilings.py --out "$OUT/ceilings.json"
  for pair in $SHAPES; do
    step "sweep synthetic:${pair%%:*}"
    timeout 420 "$PY" -m quantscope sweep -m "synthetic:${pair%%:*}" --matrix "benchmarks/gpu/${pair##*:}.toml" "${SWEEP[@]}" --wide
  done
  step results
  qs results --store "$OUT/gpu.sqlite" --limit 20
  step done
} 2>&1 | tee "$OUT/session.log"
