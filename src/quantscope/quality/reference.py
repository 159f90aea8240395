"""The reference store: a reference model's log-probabilities, computed once and reused across processes.

Why not llama.cpp's format: `--kl-divergence-base` keeps a full-vocabulary uint16 row per token
(2*V + 8 bytes: 98 KB per token for a 49k vocab, 1.6 GB for 16k tokens). We keep, per scored token, its
nll (float32), the log of the probability not stored (float32), a count (int32), and the reference's most
probable entries as (id uint16, log-prob float16) pairs, 1024 per token on average, chosen across each
block of tokens (kld.compact_rows). For a 49,152-token vocab that is 4 * 1024 + 12 = 4,108 bytes per
token, 1/24 of the uint16 row (67 MB for 16k tokens). KLD from it is the stored-entries + tail
approximation in kld.py (within 1-2 % of the exact value between fp32 and bf16 weights, the hardest
case: the divergence is spread over the whole vocabulary); same-top-1, Δp and the paired
ln(PPL/PPL_ref) are exact.

File: $XDG_CACHE_HOME/quantscope/reference/<sha256 of the key>.npz (numpy's zip of .npy arrays, read with
allow_pickle=False), written with paths.atomic_file (a temporary file in the same folder, fsynced, then
os.replace'd), so a reader sees a whole file or none.

Format history (bump FORMAT_VERSION when a stored field changes meaning; older files are recomputed):
  1  2026-11-24  windows, nll, counts, ids, logp, tail_logp + JSON header (key, first, vocab, ...).
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from quantscope import paths
from quantscope.errors import FormatError

FORMAT_VERSION = 1
ENTRIES_PER_TOKEN = 1024  # average; capped by kld.entry_budget for small vocabularies
ARRAYS = ("windows", "nll", "counts", "ids", "logp", "tail_logp")


@dataclass(frozen=True)
class ReferenceKey:
    """What makes two reference computations interchangeable (the budget is not: a prefix is reused)."""

    model_digest: str  # sha256 of the reference model's weight file(s)
    text_sha256: str
    recipe: str
    ctx: int
    tokenizer: str
    bos: str  # the BOS policy as applied (recipes.Plan.bos)

    def digest(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def same_eval(self, other: ReferenceKey) -> bool:
        """Same text, recipe, ctx, tokenizer and BOS: a model may be compared with `other`'s reference."""
        mine, theirs = asdict(self), asdict(other)
        mine.pop("model_digest"), theirs.pop("model_digest")
        return mine == theirs


@dataclass(frozen=True, eq=False)
class ReferenceData:
    """Per scored token (row-major over windows, then positions first..ctx-2): nll and stored entries.

    The stored entries are ragged: token t owns ids/logp[starts[t] : starts[t] + counts[t]], most
    probable first.
    """

    key: ReferenceKey
    first: int  # first scored logit position in each window
    vocab_size: int
    windows_available: int  # windows the whole text gives (to tell "covers the budget" when text is short)
    windows: np.ndarray  # [n_windows, ctx] int32, the tokens fed (BOS substitution applied)
    nll: np.ndarray  # [N] float32
    counts: np.ndarray  # [N] int32, stored entries per token (>= 1: its argmax)
    ids: np.ndarray  # [E] uint16 (int32 for vocabularies over 65,536)
    logp: np.ndarray  # [E] float16
    tail_logp: np.ndarray  # [N] float32, log(1 - stored probability); -inf when none is left
    meta: dict[str, Any] = field(default_factory=dict)  # provenance: text source, timing, created_at

    def __post_init__(self) -> None:
        n = self.n_windows * self.scored_per_window
        ok = (
            self.windows.ndim == 2
            and self.windows.shape[1] == self.key.ctx
            and self.nll.shape == self.counts.shape == self.tail_logp.shape == (n,)
            and self.ids.shape == self.logp.shape == (int(self.counts.sum()),)
        )
        if not ok:
            raise FormatError(
                f"reference data is inconsistent: windows {self.windows.shape}, ctx {self.key.ctx},"
                f" first {self.first}, nll {self.nll.shape}, counts {self.counts.shape} "
                f"(sum {int(self.counts.sum())}), ids {self.ids.shape}: delete it to recompute"
            )

    @property
    def n_windows(self) -> int:
        return int(self.windows.shape[0])

    @property
    def scored_per_window(self) -> int:
        return self.key.ctx - 1 - self.first

    @property
    def tokens_scored(self) -> int:
        return int(self.nll.shape[0])

    @property
    def entries_per_token(self) -> float:
        return self.ids.shape[0] / max(1, self.tokens_scored)

    @property
    def bytes_per_token(self) -> float:
        """Stored bytes per scored token (entries, counts, tail, nll; the windows' tokens not counted)."""
        total = sum(getattr(self, name).nbytes for name in ("nll", "counts", "ids", "logp", "tail_logp"))
        return total / max(1, self.tokens_scored)

    def rows(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """nll, counts, ids, logp and tail_logp of scored tokens start..stop-1."""
        lo, hi = int(self.counts[:start].sum()), int(self.counts[:stop].sum())
        return {
            "nll": self.nll[start:stop],
            "counts": self.counts[start:stop],
            "ids": self.ids[lo:hi],
            "logp": self.logp[lo:hi],
            "tail_logp": self.tail_logp[start:stop],
        }

    def windows_for(self, max_tokens: int) -> int:
        """Windows a run with this scored-token budget uses (the same rule as recipes.make_plan)."""
        wanted = max(1, math.ceil(max_tokens / self.scored_per_window))
        return min(wanted, self.windows_available)

    def covers(self, max_tokens: int) -> bool:
        return self.n_windows >= self.windows_for(max_tokens)

    def head(self, n_windows: int) -> ReferenceData:
        """The first `n_windows` windows (a smaller budget is a prefix of a larger one)."""
        if n_windows > self.n_windows:
            raise ValueError(f"reference has {self.n_windows} windows, {n_windows} asked")
        part = self.rows(0, n_windows * self.scored_per_window)
        return ReferenceData(
            self.key,
            self.first,
            self.vocab_size,
            self.windows_available,
            self.windows[:n_windows],
            meta=dict(self.meta),
            **part,
        )


# --- the store ------------------------------------------------------------------------------------


def reference_path(key: ReferenceKey, root: Path | str | None = None) -> Path:
    # The file name is a hash: no part of a model name or path ever reaches the file system.
    return Path(root or paths.cache_root("reference")) / f"{key.digest()[:32]}.npz"


def _header(data: ReferenceData) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "key": asdict(data.key),
        "first": data.first,
        "vocab_size": data.vocab_size,
        "windows_available": data.windows_available,
        "meta": data.meta,
    }


def save_reference(data: ReferenceData, root: Path | str | None = None) -> Path:
    """Write atomically; a concurrent writer of the same key leaves one whole file (the last replace)."""
    path = reference_path(data.key, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = np.frombuffer(json.dumps(_header(data), sort_keys=True).encode(), dtype=np.uint8)
    arrays = {name: getattr(data, name) for name in ARRAYS}
    with paths.atomic_file(path) as f:
        np.savez(f, header=header, **arrays)
    return path


def read_reference(path: Path | str) -> ReferenceData:
    """Read one stored reference file; FormatError (one line) when it is not one."""
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(bytes(z["header"]).decode())
            arrays = {name: z[name] for name in ARRAYS}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise FormatError(
            f"reference file {path} is unreadable ({type(exc).__name__}: {exc}): "
            "delete it and the next run recomputes it"
        ) from None
    if header.get("format_version") != FORMAT_VERSION:
        raise FormatError(
            f"reference file {path} has format {header.get('format_version')}, this quantscope "
            f"reads {FORMAT_VERSION}: delete it and the next run recomputes it"
        )
    return ReferenceData(
        ReferenceKey(**header["key"]),
        int(header["first"]),
        int(header["vocab_size"]),
        int(header["windows_available"]),
        meta=header.get("meta", {}),
        **arrays,
    )


def load_reference(
    key: ReferenceKey, *, max_tokens: int | None = None, root: Path | str | None = None
) -> ReferenceData | None:
    """The stored reference for `key`, or None when there is none or it scores fewer tokens than asked."""
    path = reference_path(key, root)
    if not path.exists():
        return None
    data = read_reference(path)
    if data.key != key:
        raise FormatError(f"reference file {path} holds another key ({data.key}): delete it to recompute")
    if max_tokens is not None and not data.covers(max_tokens):
        return None
    return data
