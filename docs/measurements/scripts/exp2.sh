#!/bin/bash
# fresh clone at HEAD: install, make run until nothing is deferred (at most 4), quantscope run x2, issue-16 must-shows
set -u
D=/tmp/f2; rm -rf $D /tmp/f2-data /tmp/f2-cache; git clone -q /work/main $D; cd $D
export PIP_CACHE_DIR=/root/.cache/pip XDG_DATA_HOME=/tmp/f2-data XDG_CACHE_HOME=/tmp/f2-cache
unset PYTHONDONTWRITEBYTECODE
echo "commit $(git log --oneline -1 | cut -c1-70)"; lscpu | grep -i "model name"; grep -o 'avx512[a-z_]*\|avx2\|fma' /proc/cpuinfo | sort -u | tr '\n' ' '; echo
t=$(date +%s.%N); make install > /work/runs/f2-install.log 2>&1; echo "make install rc $? wall $(echo "$(date +%s.%N) - $t" | bc) s"
for i in 1 2 3 4; do
  t=$(date +%s.%N); make run > /work/runs/f2-run$i.log 2>&1; echo "make run $i rc $? wall $(echo "$(date +%s.%N) - $t" | bc) s: $(grep 'sweep done' /work/runs/f2-run$i.log)"
  grep -q deferred /work/runs/f2-run$i.log || break
done
t=$(date +%s.%N); .venv/bin/quantscope run --store /tmp/f2-run.sqlite > /work/runs/f2-qrun-fp32.log 2>&1; echo "quantscope run (fp32) rc $? wall $(echo "$(date +%s.%N) - $t" | bc) s"
t=$(date +%s.%N); .venv/bin/quantscope run --store /tmp/f2-run.sqlite --backend llamacpp --quant q8_0 > /work/runs/f2-qrun-q8.log 2>&1; echo "quantscope run llamacpp q8_0 rc $? wall $(echo "$(date +%s.%N) - $t" | bc) s"
date
XDG_DATA_HOME=/tmp/f2-data XDG_CACHE_HOME=/tmp/f2-cache /work/runs/must16.sh $D > /work/runs/f2-must16.log 2>&1
echo "must16 rc $?"; date
