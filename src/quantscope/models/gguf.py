"""Source: a local GGUF file. A cheap header check in the parent, a full bounded check in the worker.

GGUF layout (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md): magic "GGUF", u32 version,
u64 tensor count, u64 key/value count, the key/values, the tensor infos (name, n_dims, dims, type,
offset), padding to `general.alignment`, then the tensor data.

llama.cpp's parser has had memory-safety bugs with crafted files, and gguf.GGUFReader loops over
whatever counts a file claims, so every count and length here is bounded by the file's size before
it is trusted; the checks follow llama.cpp's own (ggml/src/gguf.cpp, gguf_init_from_file_impl).

>>> read_header(os.devnull)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
quantscope.errors.FormatError: GGUF file /dev/null is truncated: 0 bytes, shorter than the 24-byte header; ...
"""

from __future__ import annotations

import mmap
import os
import struct
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from quantscope.errors import FormatError
from quantscope.models.base import ModelArtifact
from quantscope.spec import ModelSpec

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)  # v1 is refused by llama.cpp and by gguf.GGUFReader alike
HEADER_BYTES = 24
MAX_TENSORS = 1 << 17  # generous: the largest published models have a few thousand tensors
MAX_KV = 1 << 16  # real files have tens of keys
MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8  # name length, n_dims, type, offset
MIN_KV_BYTES = 8 + 4 + 1  # key length, value type, smallest value
GGML_MAX_DIMS = 4
GGML_MAX_NAME = 64
DEFAULT_ALIGNMENT = 32
# GGUF value types (gguf.constants.GGUFValueType) and the byte size of the fixed-size ones.
T_STRING, T_ARRAY = 8, 9
# Bump when validate_gguf checks more: a summary kept by checked_gguf under an older version is redone.
CHECK_VERSION = 1
SCALAR_FORMATS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


@dataclass(frozen=True)
class Header:
    version: int
    tensor_count: int
    kv_count: int
    endian: str  # "<" or ">" for struct
    file_bytes: int


def read_header(path: str) -> Header:
    """Read and bound-check the fixed 24-byte header (magic, version, counts) with a few bytes of I/O."""
    size = os.path.getsize(path)
    if size < HEADER_BYTES:
        raise FormatError(f"GGUF file {path} is truncated: {size} bytes, shorter than the "
                          f"{HEADER_BYTES}-byte header; re-copy it")
    with open(path, "rb") as f:
        raw = f.read(HEADER_BYTES)
    if raw[:4] != GGUF_MAGIC:
        raise FormatError(f"{path} is not a GGUF file: it starts with {raw[:4]!r}, not {GGUF_MAGIC!r}")
    endian = "<"
    (version,) = struct.unpack_from("<I", raw, 4)
    if version & 0xFFFF == 0:  # a big-endian file read on a little-endian host (llama.cpp does the same test)
        endian = ">"
        (version,) = struct.unpack_from(">I", raw, 4)
    if version not in SUPPORTED_VERSIONS:
        known = ", ".join(map(str, SUPPORTED_VERSIONS))
        raise FormatError(f"GGUF file {path} has version {version}; only versions {known} are supported: "
                          "re-convert it with a current llama.cpp")
    n_tensors, n_kv = struct.unpack_from(endian + "QQ", raw, 8)
    room = size - HEADER_BYTES
    if n_tensors > MAX_TENSORS or n_tensors * MIN_TENSOR_INFO_BYTES > room:
        raise FormatError(f"GGUF file {path} is corrupt: it claims {n_tensors} tensors, impossible in "
                          f"{size} bytes; re-copy it")
    if n_kv > MAX_KV or n_kv * MIN_KV_BYTES + n_tensors * MIN_TENSOR_INFO_BYTES > room:
        raise FormatError(f"GGUF file {path} is corrupt: it claims {n_kv} metadata keys, impossible in "
                          f"{size} bytes; re-copy it")
    return Header(version, n_tensors, n_kv, endian, size)


def resolve(spec: ModelSpec) -> ModelArtifact:
    return artifact_for(spec.ref, spec)


def artifact_for(path: str, spec: ModelSpec | None = None) -> ModelArtifact:
    """A GGUF artifact after the cheap check; the full parse waits for the worker (validate_gguf)."""
    from quantscope.models.safety import file_sha256

    path = os.path.abspath(path)
    header = read_header(path)
    return ModelArtifact(
        format="gguf",
        path=path,
        digest=file_sha256(path),
        file_bytes=header.file_bytes,
        revision=spec.revision if spec else None,
    )


class _Cursor:
    """Reads little structs from a memory map, refusing to step past the end of the file."""

    def __init__(self, path: str, buf: Any, endian: str, size: int) -> None:
        self.path, self.buf, self.e, self.size, self.pos = path, buf, endian, size, HEADER_BYTES
        self.what = "the header"

    def need(self, n: int) -> None:
        if self.pos + n > self.size:
            raise FormatError(f"GGUF file {self.path} is truncated: {self.what} ends past byte "
                              f"{self.pos + n} but the file has {self.size} bytes; re-copy it")

    def unpack(self, fmt: str) -> Any:
        n = struct.calcsize(fmt)
        self.need(n)
        values = struct.unpack_from(self.e + fmt, self.buf, self.pos)
        self.pos += n
        return values[0] if len(values) == 1 else values

    def string(self) -> bytes:
        n = self.unpack("Q")
        self.need(n)
        s = self.buf[self.pos:self.pos + n]
        self.pos += n
        return s

    def value(self, vtype: int, key: str, nested: bool = False) -> Any:
        if vtype == T_STRING:
            return self.string()
        if vtype in SCALAR_FORMATS:
            return self.unpack(SCALAR_FORMATS[vtype])
        if vtype == T_ARRAY and not nested:
            itype, n = self.unpack("I"), self.unpack("Q")
            if itype in SCALAR_FORMATS:
                self.need(n * struct.calcsize(SCALAR_FORMATS[itype]))
                self.pos += n * struct.calcsize(SCALAR_FORMATS[itype])
            elif itype == T_STRING:
                self.need(n * 8)  # each string is at least its 8-byte length
                for _ in range(n):
                    self.string()
            else:  # llama.cpp refuses arrays of arrays and unknown types
                raise FormatError(f"GGUF file {self.path} is corrupt: key {key!r} is an array of type "
                                  f"{itype}; re-convert it")
            return None
        raise FormatError(f"GGUF file {self.path} is corrupt: key {key!r} has unknown value type {vtype}; "
                          "re-convert it")


def _scan(path: str, header: Header, buf: Any) -> tuple[dict[str, Any], list[tuple[str, int, int, int]], int]:
    """Walk key/values and tensor infos with every length bounded; returns (keys, tensors, data_start).

    Written by hand because gguf.GGUFReader trusts the counts it reads (a claimed 2**60-element array
    makes it loop for ever); only the few keys needed here are decoded.
    """
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    cur = _Cursor(path, buf, header.endian, header.file_bytes)
    keys: dict[str, Any] = {}
    for i in range(header.kv_count):
        cur.what = f"metadata key #{i}"
        key = cur.string().decode("utf-8", "replace")
        cur.what = f"metadata key {key!r}"
        keys[key] = cur.value(cur.unpack("I"), key)
    tensors: list[tuple[str, int, int, int]] = []  # name, type, n_elements, offset
    seen: set[str] = set()
    for i in range(header.tensor_count):
        cur.what = f"tensor info #{i}"
        name = cur.string().decode("utf-8", "replace")
        cur.what = f"tensor info {name!r}"
        bad = f"GGUF file {path} is corrupt: tensor {name!r}"
        if len(name.encode()) >= GGML_MAX_NAME or name in seen:
            raise FormatError(f"{bad} has a name that is too long or repeated; re-convert it")
        seen.add(name)
        n_dims = cur.unpack("I")
        if n_dims > GGML_MAX_DIMS:
            raise FormatError(f"{bad} has {n_dims} dimensions (at most {GGML_MAX_DIMS}); re-convert it")
        dims = [cur.unpack("Q") for _ in range(n_dims)]
        ttype, offset = cur.unpack("I"), cur.unpack("Q")
        try:
            qtype = GGMLQuantizationType(ttype)
            block, _ = GGML_QUANT_SIZES[qtype]
        except (ValueError, KeyError):
            raise FormatError(f"{bad} has unknown type {ttype}; a newer llama.cpp may read it") from None
        n_elements = 1
        for d in dims:
            n_elements *= d
        if n_elements > header.file_bytes * 8 or (dims and dims[0] % block):
            raise FormatError(f"{bad} has an impossible shape {dims} for type {qtype.name}; re-convert it")
        tensors.append((name, ttype, n_elements, offset))
    alignment = keys.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise FormatError(f"GGUF file {path} is corrupt: general.alignment {alignment!r} is not a power of 2")
    keys["general.alignment"] = alignment
    data_start = -(-cur.pos // alignment) * alignment
    return keys, tensors, data_start


def _check_ranges(path: str, tensors: list[tuple[str, int, int, int]], data_start: int, size: int,
                  alignment: int) -> None:
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    spans = []
    for name, ttype, n_elements, offset in tensors:
        block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ttype)]
        start = data_start + offset
        end = start + n_elements // block * type_size
        if offset % alignment:
            raise FormatError(f"GGUF file {path} is corrupt: tensor {name!r} starts at offset {offset}, "
                              f"not a multiple of the alignment {alignment}; re-convert it")
        if end > size:
            raise FormatError(f"GGUF file {path} is truncated: tensor {name!r} ends at byte {end} but the "
                              f"file has {size} bytes; re-copy it")
        spans.append((start, end, name))
    spans.sort()
    for (_, end_a, a), (start_b, _, b) in zip(spans, spans[1:], strict=False):
        if start_b < end_a:
            raise FormatError(f"GGUF file {path} is corrupt: tensors {a!r} and {b!r} overlap; re-convert it")


def vocab_adds_bos(field: Any) -> bool:
    """Whether llama.cpp adds BOS for this vocab (llama_vocab_get_add_bos), from a GGUF metadata getter:
    tokenizer.ggml.add_bos_token, else the vocab type's default (SPM "llama" vocabularies add it, BPE
    ones do not)."""
    explicit = field("tokenizer.ggml.add_bos_token")
    return bool(explicit) if explicit is not None else field("tokenizer.ggml.model") == "llama"


def validate_gguf(path: str) -> dict[str, Any]:
    """Check a GGUF file fully (run this in the worker) and summarise it.

    Sizes and counts are bounded before parsing; then gguf.GGUFReader parses it and every tensor's
    data must lie inside the file. Any problem is a one-line FormatError within seconds.

    >>> info = validate_gguf(bundled_path())                       # doctest: +SKIP
    >>> info["architecture"], info["tensor_count"]                 # doctest: +SKIP
    ('llama', 272)
    """
    t0 = time.perf_counter()
    path = os.path.abspath(path)
    header = read_header(path)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        keys, tensors, data_start = _scan(path, header, buf)
    alignment = keys["general.alignment"]
    _check_ranges(path, tensors, data_start, header.file_bytes, alignment)

    from gguf import GGUFReader

    try:
        reader = GGUFReader(path)
    except (ValueError, IndexError, KeyError, TypeError, OverflowError) as e:
        msg = " ".join(str(e).split())
        raise FormatError(f"GGUF file {path} could not be parsed ({type(e).__name__}: {msg}); re-copy or "
                          "re-convert it") from None
    for t in reader.tensors:  # the library's own view of the ranges, checked again
        end = int(t.data_offset) + int(t.n_bytes)
        if end > header.file_bytes:
            raise FormatError(f"GGUF file {path} is truncated: tensor {t.name!r} ends at byte {end} but the "
                              f"file has {header.file_bytes} bytes; re-copy it")

    def field(key: str) -> Any:
        f = reader.get_field(key)
        try:
            return f.contents() if f is not None else None
        except (ValueError, IndexError) as e:  # UnicodeDecodeError: a string value that is not UTF-8
            raise FormatError(f"GGUF file {path} is corrupt: metadata key {key!r} cannot be read "
                              f"({type(e).__name__}); re-copy or re-convert it") from None

    arch = field("general.architecture")
    return {
        "version": header.version,
        "architecture": arch,
        "name": field("general.name"),
        "tensor_count": len(reader.tensors),
        "kv_count": header.kv_count,
        "parameter_count": int(sum(int(t.n_elements) for t in reader.tensors)),
        "tensor_types": dict(Counter(t.tensor_type.name for t in reader.tensors).most_common()),
        "rope_freq_base": field(f"{arch}.rope.freq_base") if arch else None,
        "add_bos": vocab_adds_bos(field),
        "alignment": int(alignment),
        "data_offset": int(reader.data_offset),
        "file_bytes": header.file_bytes,
        "validate_s": round(time.perf_counter() - t0, 3),
    }


def checked_gguf(path: str, digest: str | None) -> dict[str, Any]:
    """validate_gguf once per file content: its summary is kept under the cache by the file's sha256
    (computed from the whole file) and CHECK_VERSION, and read back by later runs of the same file.

    gguf.GGUFReader's parse is 5-7 s of the bundled model's 49,152-token vocabulary on the 2-core
    machines, and every row of a sweep of that model is a new worker that validated it again: about
    2 minutes of a 23-row sweep. The same bytes give the same verdict, so one check per content is
    the same safety. A file that fails is never kept: it fails again, with its error, each time.
    """
    import json

    from quantscope.paths import cache_root, write_text

    if not digest:
        return validate_gguf(path)
    kept = cache_root("gguf-checked") / f"{digest}-v{CHECK_VERSION}.json"
    try:
        summary = json.loads(kept.read_text())
        if isinstance(summary, dict) and summary.get("file_bytes") == os.path.getsize(path):
            return {**summary, "validate_s": 0.0, "checked": "earlier (same sha256)"}
    except (OSError, ValueError):
        pass
    summary = validate_gguf(path)
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
        write_text(kept, json.dumps(summary, sort_keys=True))
    except OSError:
        pass  # a read-only cache: check again next time
    return summary
