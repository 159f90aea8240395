"""The calibration source: N samples x seq_len tokens from a text that is never the evaluation text.

The quality pass scores pydoc_data/topics.py (the language reference's topics, quality/text.py).
Calibration reads the docstrings of a fixed list of standard-library modules instead: offline
everywhere, prose about Python like the evaluation text (so activations are in-distribution), yet
other sentences (tests/methods/test_calibration.py checks that no line of one is in the other). The
modules are parsed with `ast` from their source files, never imported, so reading them runs no code.
Their content changes between Python versions, hence both hashes go with the run: the text's and
the calibration token ids' (`Calibration.info`).

>>> text, files = docstrings_text()
>>> len(files), len(text) > 10_000
(8, True)
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from quantscope.errors import UserError

SOURCES = ("stdlib-docstrings",)
# Pure-Python modules with long prose docstrings; none of them is documented in pydoc's topics.
DOCSTRING_MODULES = ("argparse", "difflib", "textwrap", "statistics", "fractions", "calendar", "heapq",
                     "shlex")


@dataclass(frozen=True)
class CalibrationSpec:
    """How many samples of how many tokens, from which source (the fields a calibrated config carries)."""

    samples: int = 8
    seq_len: int = 128
    source: Literal["stdlib-docstrings"] = "stdlib-docstrings"

    def __post_init__(self) -> None:
        if self.samples < 1 or self.seq_len < 2:
            raise UserError(f"calibration needs samples >= 1 and seq_len >= 2, got {self.samples} x {self.seq_len}")
        # Refused here, before any run (and its reference) starts: no tokenizer makes more tokens than the
        # text has UTF-8 bytes (byte-level BPE and SentencePiece's byte fallback cover >= 1 byte a token; the
        # no-tokenizer fallback is one token a byte). A request under this bound is checked again, exactly,
        # once the model's tokenizer has cut the text (calibration_batches).
        if self.samples * self.seq_len > text_bytes():
            raise UserError(f"calibration text has {text_bytes():,} bytes, so fewer tokens than {self.samples} x "
                            f"{self.seq_len}: lower calib_samples or calib_seq_len")


@dataclass(frozen=True)
class Calibration:
    """The token ids fed through the model (samples x seq_len) and what identifies them."""

    batches: list[list[int]]
    info: dict[str, Any] = field(default_factory=dict)


def module_docstrings(path: str) -> list[str]:
    """Every docstring of a Python source file, read with ast (the module is never imported)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    nodes = [tree] + [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef
                                                                 | ast.ClassDef)]
    return [doc for n in nodes if (doc := ast.get_docstring(n))]


@functools.cache
def text_bytes() -> int:
    """The calibration text's length in UTF-8 bytes: an upper bound on its tokens under any tokenizer."""
    return len(docstrings_text()[0].encode("utf-8"))


def docstrings_text() -> tuple[str, list[str]]:
    """The docstrings of DOCSTRING_MODULES in file order, joined by blank lines; and the files read."""
    parts, files = [], []
    for name in DOCSTRING_MODULES:
        found = importlib.util.find_spec(name)  # a top-level module: finding it runs none of its code
        if found is None or not (found.origin or "").endswith(".py"):
            raise UserError(f"calibration text: the standard-library module {name} has no source file here")
        files.append(found.origin)
        parts += module_docstrings(found.origin)
    return "\n\n".join(parts), files


def sha256_ids(ids: list[list[int]]) -> str:
    """sha256 of the token ids as little-endian int64, row after row."""
    h = hashlib.sha256()
    for row in ids:
        h.update(b"".join(int(t).to_bytes(8, "little", signed=True) for t in row))
    return h.hexdigest()


def calibration_batches(cal: CalibrationSpec, tokenize: Callable[[str], list[int] | None],
                        vocab_size: int) -> Calibration:
    """`cal.samples` consecutive non-overlapping windows of `cal.seq_len` tokens of the source text.

    A model without a tokenizer (synthetic weights) gets the text's UTF-8 bytes modulo its vocabulary:
    still this text, deterministic, and its hash is stored like any other.
    """
    text, files = docstrings_text()
    ids = tokenize(text)
    how = "model tokenizer"
    if ids is None:
        ids, how = [b % vocab_size for b in text.encode("utf-8")], "utf-8 bytes mod vocab (no tokenizer)"
    need = cal.samples * cal.seq_len
    if len(ids) < need:
        raise UserError(f"calibration text has {len(ids)} tokens, fewer than {cal.samples} x {cal.seq_len}: "
                        "lower calib_samples or calib_seq_len")
    batches = [list(ids[i * cal.seq_len:(i + 1) * cal.seq_len]) for i in range(cal.samples)]
    info = {"source": cal.source, "samples": cal.samples, "seq_len": cal.seq_len, "tokenizer": how,
            "text_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(), "text_tokens": len(ids),
            "modules": list(DOCSTRING_MODULES), "tokens_sha256": sha256_ids(batches)}
    return Calibration(batches, info)
