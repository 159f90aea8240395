#!/bin/bash
set -x
unset PYTHONDONTWRITEBYTECODE
export PIP_CACHE_DIR=/root/.cache/pip
export XDG_DATA_HOME=/tmp/s7-data XDG_CACHE_HOME=/tmp/s7-cache
rm -rf /tmp/s7 /tmp/s7-data /tmp/s7-cache
git clone -q /work/main /tmp/s7 && cd /tmp/s7 && git log --oneline -1
lscpu | grep -E "Model name|Flags" | sed 's/Flags:.*/&/' | cut -c1-200
grep -o -w -E "avx512[a-z_]*|avx_vnni|avx2|fma" /proc/cpuinfo | sort -u | tr '\n' ' '; echo
T0=$(date +%s)
make install > /work/runs7/s7-install.log 2>&1; echo "install rc=$? $(( $(date +%s) - T0 )) s"
T1=$(date +%s)
.venv/bin/python benchmarks/smoothquant_table.py --outliers 64 --cross-check --quality-on simulated \
   --prompt-tokens 32 --gen-tokens 16 --quality-tokens 8192 --outlier-dir /tmp/s7-outliers \
   --store /work/runs7/sq.sqlite > /work/runs7/sq-table.md 2> /work/runs7/sq-table.log
echo "table rc=$? $(( $(date +%s) - T1 )) s"
.venv/bin/python benchmarks/smoothquant_table.py --moved /work/runs7/sq-table.log /work/runs7/sq-table.log > /dev/null; echo moved-rc=$?
T2=$(date +%s)
.venv/bin/python benchmarks/profile_decode.py torch:fp32 torch:bf16 torchao:fp32:w8a8 > /work/runs7/profile.txt 2>&1
echo "profile rc=$? $(( $(date +%s) - T2 )) s"
