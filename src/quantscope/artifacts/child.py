"""Run a conversion in a child process, so its memory and imports never count against the measured run.

A conversion (ONNX export, GGUF writing, quantization) loads the model once more in full
precision; in the measuring worker that would raise the run's peak RSS (measured as VmHWM, which
never goes down) and drag torch into a process that times onnxruntime or llama.cpp. The child gets
the function as "module:attr" and JSON keyword arguments; it writes a JSON result file.

The target is a string the caller (a runtime's converter) names, so this generic module imports no
runtime; the runtime also names the exception types of its own that should cross back as themselves
(`raises=(Unsupported,)`), beside quantscope.errors' types, which always do.

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

from quantscope import errors, paths

TAIL_CHARS = 2000


class ChildFailed(RuntimeError):
    """The conversion raised in the child; `kind` is the exception's class name there."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


# quantscope's user-facing errors, raised again in the parent as themselves (by class name).
KNOWN_ERRORS: tuple[type[Exception], ...] = (errors.UserError, errors.FormatError, errors.UnsafeArtifactError)


def _as_parent_error(kind: str, message: str, raises: tuple[type[Exception], ...] = ()) -> Exception:
    """The child's exception as the same type here when it is known or named in `raises`."""
    known = {cls.__name__: cls for cls in (*KNOWN_ERRORS, *raises)}
    if kind in known:
        try:
            return known[kind](message)
        except TypeError:  # a type whose constructor wants more than one message
            pass
    return ChildFailed(message, kind)


def echo(**kwargs: Any) -> dict[str, Any]:
    """For tests: returns its arguments."""
    return kwargs


def run_child(target: str, kwargs: dict[str, Any], timeout_s: float | None = None,
              raises: tuple[type[Exception], ...] = ()) -> dict[str, Any]:
    """Call `target(**kwargs)` ("module:attr") in a fresh Python process and return its (JSON) result.

    quantscope's user-facing errors and the types in `raises` (a runtime's Unsupported) raised in the
    child are raised again here as the same type; any other exception becomes ChildFailed with its
    class name and message, and a crash ChildFailed with the last line of the child's output.
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
            raise _as_parent_error(out.get("kind", "Exception"), out["error"], raises)
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
    # Atomic: a child killed while writing leaves no result (a crash), never half a JSON file.
    paths.write_text(result_path, json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
