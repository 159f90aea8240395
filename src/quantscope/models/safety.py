"""What a weight file is, decided by its bytes, never by its name; and content digests, cached.

Untrusted files are checked before any library parses them: a safetensors header is bounded by the
file size before its JSON is read, a pickle checkpoint is recognised by its opcodes or its zip entry
(a pickle can run code when loaded, so it is refused unless the user allows it).

>>> looks_like_pickle(__file__)
False
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zipfile
from collections.abc import Iterable
from pathlib import Path

from quantscope import paths
from quantscope.errors import FormatError

# safetensors format: 8-byte little-endian header length N, N bytes of JSON, then the data buffer
# (https://github.com/huggingface/safetensors#format). The reference reader caps N at 100 MB.
SAFETENSORS_MAX_HEADER = 100_000_000
ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTO = 0x80  # PROTO opcode: every pickle of protocol >= 2 starts with it
HASH_CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, cached by (real path, size, mtime_ns) so a 100 MB model is hashed once.

    The cache is a small JSON in the cache folder; a stale or unreadable cache is recomputed, never
    trusted, and two processes writing it at once only cost a recomputation.
    """
    real = os.path.realpath(path)
    st = os.stat(real)
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    index = paths.cache_root() / "digests.json"
    try:
        known = json.loads(index.read_text())
        if not isinstance(known, dict):
            known = {}
    except (OSError, ValueError):
        known = {}
    hit = known.get(real)
    fresh = isinstance(hit, dict) and {k: hit.get(k) for k in stamp} == stamp
    if fresh and isinstance(hit.get("sha256"), str):
        return hit["sha256"]
    h = hashlib.sha256()
    with open(real, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            h.update(chunk)
    digest = h.hexdigest()
    known[real] = {**stamp, "sha256": digest}
    try:
        index.parent.mkdir(parents=True, exist_ok=True)
        paths.write_text(index, json.dumps(known, indent=0, sort_keys=True))
    except OSError:
        pass  # a read-only cache only costs a re-hash next time
    return digest


def combined_digest(files: Iterable[Path], root: Path) -> str:
    """One sha256 over several files: their paths relative to `root` and their own digests, sorted."""
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(f"{f.relative_to(root).as_posix()}\0{file_sha256(f)}\n".encode())
    return h.hexdigest()


def head(path: str | os.PathLike, n: int) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def looks_like_pickle(path: str | os.PathLike) -> bool:
    """True when the file is a pickle or a torch zip checkpoint holding one (decided by content).

    torch.save writes a zip whose entry `<name>/data.pkl` is the pickle (torch/serialization.py);
    the legacy format and plain pickles (protocol >= 2) start with the PROTO opcode 0x80.
    """
    start = head(path, 4)
    if start.startswith(ZIP_MAGIC):
        try:
            with zipfile.ZipFile(path) as z:
                return any(n == "data.pkl" or n.endswith("/data.pkl") for n in z.namelist())
        except (zipfile.BadZipFile, OSError):
            return False
    return len(start) >= 2 and start[0] == PICKLE_PROTO and 2 <= start[1] <= 5


def check_safetensors(path: str | os.PathLike) -> dict:
    """Validate a safetensors file's header against its size; return the parsed header.

    By hand (a few struct reads) so the message names the first bad tensor; then the safetensors
    library opens it as the final word (it also checks dtypes against byte lengths).
    """
    name = os.fspath(path)
    size = os.path.getsize(name)
    if size < 8:
        raise FormatError(f"safetensors file {name} is truncated: {size} bytes, shorter than its 8-byte "
                          "header length; re-copy or re-convert it")
    (n,) = struct.unpack("<Q", head(name, 8))
    if n > SAFETENSORS_MAX_HEADER or 8 + n > size:
        raise FormatError(f"safetensors file {name} is corrupt: its header claims {n} bytes but the file has "
                          f"{size} bytes; re-copy or re-convert it")
    with open(name, "rb") as f:
        f.seek(8)
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # RecursionError: "[[[[…" nested too deep
        raise FormatError(f"safetensors file {name} has a header that is not valid JSON ({e}); "
                          "re-copy or re-convert it") from None
    if not isinstance(header, dict):
        raise FormatError(f"safetensors file {name} has a header that is not a JSON object; re-convert it")
    data_bytes = size - 8 - n
    for tensor, info in header.items():
        if tensor == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
                and 0 <= offsets[0] <= offsets[1]):
            raise FormatError(f"safetensors file {name} is corrupt: tensor {tensor!r} has no valid "
                              "data_offsets; re-convert it")
        if offsets[1] > data_bytes:
            raise FormatError(f"safetensors file {name} is truncated: tensor {tensor!r} ends at byte "
                              f"{8 + n + offsets[1]} but the file has {size} bytes; re-copy it")
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(name, framework="np") as f:
            f.keys()
    except SafetensorError as e:
        msg = " ".join(str(e).split())
        raise FormatError(f"safetensors file {name} is corrupt: {msg}; re-copy or re-convert it") from None
    return header
