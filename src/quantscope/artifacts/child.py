"""Run a conversion in a child process, so its memory and imports never count against the measured run.

A conversion (ONNX export, GGUF writing, quantization) loads the model once more in full
precision; in the measuring worker that would raise the run's peak RSS (measured as VmHWM, which
never goes down) and drag torch into a process that times onnxruntime or llama.cpp. The child gets
the function as "module:attr" and JSON keyword arguments; it writes a JSON result file.

>>> run_child("quantscope.artifacts.child:echo", {"x": 1})          # doctest: +SKIP
{'x': 1}
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

TAIL_CHARS = 2000


class ChildFailed(RuntimeError):
    """The conversion raised in the child; `kind` is the exception's class name there."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def _as_parent_error(kind: str, message: str) -> Exception:
    """The child's exception as the same quantscope type here (Unsupported stays Unsupported)."""
    from quantscope import errors
    from quantscope.backends.base import Unsupported

    known = {"Unsupported": Unsupported, "UserError": errors.UserError, "FormatError": errors.FormatError,
             "UnsafeArtifactError": errors.UnsafeArtifactError}
    return known[kind](message) if kind in known else ChildFailed(message, kind)


def echo(**kwargs: Any) -> dict[str, Any]:
    """For tests: returns its arguments."""
    return kwargs


def run_child(target: str, kwargs: dict[str, Any], timeout_s: float | None = None) -> dict[str, Any]:
    """Call `target(**kwargs)` in a fresh Python process and return its (JSON) result.

    Unsupported and quantscope's user-facing errors raised in the child are raised again here as
    the same type; any other exception becomes ChildFailed with its class name and message, and a
    crash ChildFailed with the last line of the child's output.
    """
    with tempfile.TemporaryDirectory(prefix="quantscope-child-") as tmp:
        args, result = Path(tmp) / "args.json", Path(tmp) / "result.json"
        args.write_text(json.dumps({"target": target, "kwargs": kwargs}))
        proc = subprocess.run([sys.executable, "-m", "quantscope.artifacts.child", str(args), str(result)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=timeout_s, check=False)
        if result.is_file():
            out = json.loads(result.read_text())
            if "error" not in out:
                return out["value"]
            raise _as_parent_error(out.get("kind", "Exception"), out["error"])
        tail = proc.stdout.decode(errors="replace")[-TAIL_CHARS:].strip().splitlines()
        last = tail[-1] if tail else "no output"
        raise ChildFailed(f"conversion process for {target} exited with code {proc.returncode}: {last}",
                          "Crashed")


def main(args_path: str, result_path: str) -> int:
    job = json.loads(Path(args_path).read_text())
    module, _, attr = job["target"].partition(":")
    try:
        value = getattr(importlib.import_module(module), attr)(**job["kwargs"])
        out = {"value": value}
    except Exception as e:  # reported to the parent, which raises it there
        out = {"error": str(e) or e.__class__.__name__, "kind": e.__class__.__name__}
    Path(result_path).write_text(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
