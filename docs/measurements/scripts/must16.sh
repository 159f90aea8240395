#!/bin/bash
# issue 16 must-shows on a fresh clone ($1): contention pair, sweep --repeat 3, vs_llama_perplexity on three texts
set -u
cd $1; export XDG_DATA_HOME=${XDG_DATA_HOME:-/tmp/fr-data} XDG_CACHE_HOME=${XDG_CACHE_HOME:-/tmp/fr-cache}
unset PYTHONDONTWRITEBYTECODE
Q=.venv/bin/quantscope; S=/tmp/must16.sqlite; rm -f $S /tmp/must16-repeat.sqlite
echo "commit $(git log --oneline -1 | cut -c1-60)"; date
echo "== contention pair: torch fp32 --no-quality alone, then beside one spinning process"
$Q run --no-quality --store $S 2>&1 | grep -v "^\s*$" | head -12
.venv/bin/python -c "while True: pass" & SPIN=$!
$Q run --no-quality --store $S 2>&1 | grep -v "^\s*$" | head -12
kill $SPIN
$Q compare 1 2 --store $S 2>&1 | tail -12
date
echo "== sweep --repeat 3 on three configurations (no quality)"
cat > /tmp/repeat3.toml <<'T'
[[config]]
backend = "torch"
[[config]]
backend = "llamacpp"
quant = "q8_0"
[[config]]
backend = "ort"
quant = "int4"
T
$Q sweep --matrix /tmp/repeat3.toml --repeat 3 --no-quality --store /tmp/must16-repeat.sqlite --no-report 2>&1 | tail -30
date
echo "== vs_llama_perplexity on three texts"
for t in pydoc file:/usr/share/common-licenses/GPL-3 file:/root/.pyenv/versions/3.11.7/lib/python3.11/argparse.py; do
  .venv/bin/python benchmarks/vs_llama_perplexity.py --llama-perplexity /tmp/llb/bin/llama-perplexity --text $t --max-tokens 8192 2>&1 | tail -9
done
date
