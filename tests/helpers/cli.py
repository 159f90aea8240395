"""The CLI in a subprocess, as a user runs it: `qs(...)` and the one-line error check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def qs(*args: str, store: Path, timeout: float = 240, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m quantscope.cli ARGS` with its own store; text output captured."""
    full_env = {**os.environ, "QUANTSCOPE_STORE": str(store), **(env or {})}
    return subprocess.run([sys.executable, "-m", "quantscope.cli", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout)


def assert_one_line_error(p: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    """The run ended with `code` and exactly one line on stderr containing every needle; that line."""
    assert p.returncode == code, (p.returncode, p.stderr, p.stdout[-2000:])
    err = p.stderr.strip()
    assert "Traceback" not in err and "internal error" not in err, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("quantscope: error: "), err
    for n in needles:
        assert n in err, err
    return err
