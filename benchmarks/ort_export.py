"""What the ORT export costs through torch.onnx's tracer and through torch.export (dynamo, with and
without its graph optimizer), and what each graph runs at.

backends/ort/convert.py exports once per model (the no-cache rows run the same graph with an empty
past) with the tracer: this script is the measurement behind that choice. For each exporter, in a
fresh process: the export's wall time, the save and the transpose folding, the ORT session's start, a
128-token prefill (mean of 5 after 2 warm-ups) on the bundled model, and the largest difference of the
graph's logits from PyTorch's over that prefill, five greedy decode steps on the graph's own cache and a
16-token chunk on the filled cache.

    .venv/bin/python benchmarks/ort_export.py            # tracer, dynamo optimize on, dynamo optimize off
    .venv/bin/python benchmarks/ort_export.py tracer     # one of them
"""

from __future__ import annotations

import subprocess
import sys
import tempfile

CHILD = """
import sys, time, tempfile, shutil
from pathlib import Path
import numpy as np, torch
from torch.export import Dim
import onnxruntime as ort
from quantscope.models import parse_model, resolve
from quantscope.backends.torch.reference import reference_model
from quantscope.backends.ort.convert import _with_cache, shape_facts, kv_names, fold_weight_transposes
mode = sys.argv[1]
t0 = time.perf_counter()
model = reference_model(resolve(parse_model(None)), 0)
f = shape_facts(model.config); n, hkv, hd = f["n_layers"], f["n_kv_heads"], f["head_dim"]
batch, seq = Dim("batch", min=1, max=64), Dim("seq", min=1, max=32768)
past_len, keep = Dim("past", min=0, max=32768), Dim("keep", min=1, max=32768)
args = (torch.zeros((2, 5), dtype=torch.int64), torch.tensor([3, 4]),
        *(torch.zeros((2, hkv, 3, hd)) for _ in range(2 * n)))
shapes = {"input_ids": {0: batch, 1: seq}, "logits_index": {0: keep},
          "past": tuple({0: batch, 2: past_len} for _ in range(2 * n))}
t1 = time.perf_counter()
out = Path(tempfile.mkdtemp()); (out / "raw").mkdir()
names = ["input_ids", "logits_index", *kv_names(n, "past")], ["logits", *kv_names(n, "present")]
with torch.no_grad():
    if mode == "tracer":
        axes = {"input_ids": {0: "batch", 1: "seq"}, "logits_index": {0: "keep"}, "logits": {0: "batch", 1: "keep"}}
        axes.update({k: {0: "batch", 2: "past"} for k in kv_names(n, "past")})
        axes.update({k: {0: "batch", 2: "total"} for k in kv_names(n, "present")})
        torch.onnx.export(_with_cache(model, n), args, str(out / "raw" / "model.onnx"), dynamo=False,
                          input_names=names[0], output_names=names[1], dynamic_axes=axes, opset_version=18)
    else:
        program = torch.onnx.export(_with_cache(model, n), args, dynamic_shapes=shapes, dynamo=True,
                                    input_names=names[0], output_names=names[1], optimize=mode == "dynamo-on")
        program.save(str(out / "raw" / "model.onnx"), external_data=True)
t2 = time.perf_counter()
fold_weight_transposes(out / "raw" / "model.onnx", out / "model.onnx")
t3 = time.perf_counter()
s = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
t4 = time.perf_counter()
feed = {"input_ids": np.arange(1, 129, dtype=np.int64)[None], "logits_index": np.array([127], dtype=np.int64)}
feed.update({k: np.zeros((1, hkv, 0, hd), dtype=np.float32) for k in kv_names(n, "past")})
for _ in range(2):
    s.run(None, feed)
t = time.perf_counter()
for _ in range(5):
    s.run(None, feed)
prefill_ms = (time.perf_counter() - t) / 5 * 1000
with torch.no_grad():
    ref = model(input_ids=torch.from_numpy(feed["input_ids"])).logits[0, -1].numpy()
out0 = s.run(None, feed)
diff = float(np.abs(out0[0][0, -1] - ref).max())
# five greedy decode steps on the graph's own cache, then a 16-token chunk on the filled cache, against torch
names = kv_names(n, "past")
present, tok = out0[1:], int(ref.argmax())
with torch.no_grad():
    cache = model(input_ids=torch.from_numpy(feed["input_ids"]), use_cache=True).past_key_values
    for _ in range(5):
        step = s.run(None, {"input_ids": np.array([[tok]], dtype=np.int64),
                            "logits_index": np.array([0], dtype=np.int64), **dict(zip(names, present))})
        present = step[1:]
        o = model(input_ids=torch.tensor([[tok]]), past_key_values=cache, use_cache=True)
        cache = o.past_key_values
        diff = max(diff, float(np.abs(step[0][0, -1] - o.logits[0, -1].numpy()).max()))
        tok = int(o.logits[0, -1].argmax())
    chunk = np.arange(200, 216, dtype=np.int64)[None]
    got = s.run(None, {"input_ids": chunk, "logits_index": np.arange(16, dtype=np.int64),
                       **dict(zip(names, present))})[0][0]
    want = model(input_ids=torch.from_numpy(chunk), past_key_values=cache, use_cache=True).logits[0].numpy()
    diff = max(diff, float(np.abs(got - want).max()))
shutil.rmtree(out)
print(f"RESULT load {t1 - t0:.1f} s, export+save {t2 - t1:.1f} s, fold {t3 - t2:.1f} s, "
      f"session {t4 - t3:.1f} s, prefill 128 tokens {prefill_ms:.1f} ms, max |logit - torch| {diff:.1e} "
      "(prefill, 5 cached decode steps, a 16-token chunk on the cache)")
"""


def main() -> int:
    modes = ("tracer", "dynamo-on", "dynamo-off")
    chosen = sys.argv[1:] or list(modes)
    if set(chosen) - set(modes):
        print(f"ort_export.py: modes are {', '.join(modes)}", file=sys.stderr)
        return 2
    for setting in chosen:
        done = subprocess.run([sys.executable, "-c", CHILD, setting], capture_output=True, text=True,
                              cwd=tempfile.gettempdir())
        line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
        print(f"{setting}: {line[7:] if line else 'failed: ' + done.stderr.strip()[-300:]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
