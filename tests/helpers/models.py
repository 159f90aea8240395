"""Helpers shared by the model-source tests."""

from pathlib import Path

import pytest


def one_line(exc: pytest.ExceptionInfo) -> str:
    """The exception's message, asserted to be a single non-empty line."""
    msg = str(exc.value)
    assert msg and "\n" not in msg, f"error message is not one line: {msg!r}"
    return msg


def copy_head(src: Path, dst: Path, n: int) -> Path:
    """Write the first n bytes of src to dst (a truncated copy)."""
    with open(src, "rb") as f:
        dst.write_bytes(f.read(n))
    return dst
