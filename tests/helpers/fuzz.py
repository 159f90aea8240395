"""Mutated GGUF and safetensors headers, and the checks quantscope runs on untrusted files, case by case.

`python -m helpers.fuzz OUT_DIR N SEED` (with tests/ on sys.path) writes two tiny valid files with the
`gguf` and `safetensors` packages, mutates them N times each (truncations, counts, lengths, offsets,
types: structure-aware, every field found by walking the valid file), runs the checks on every mutant
and appends one JSON line per case to OUT_DIR/cases.jsonl as soon as it is done, so that the parent
(tests/models/test_fuzz_headers.py) knows which case hung or crashed the process if one does.

Outcome of a case: "ok" (the mutant is still a valid file), the exception's type name for quantscope's
FormatError / UnsafeArtifactError (the message must be one line), or "bug" with the traceback's last
line for anything else.
"""

from __future__ import annotations

import json
import os
import random
import struct
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

U64_EDGES = (0, 1, 2, 3, 7, 8, 255, 256, 2**16, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**62, 2**63 - 1, 2**63,
             2**64 - 1)
U32_EDGES = (0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 12, 13, 31, 255, 2**16, 2**31 - 1, 2**31, 2**32 - 1)


# --- valid seeds -------------------------------------------------------------------------------------


def valid_gguf(path: Path) -> Path:
    """A small llama GGUF: a few metadata keys of each kind (string, int, float, arrays) and three tensors."""
    import gguf
    import numpy as np

    rng = np.random.default_rng(0)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(256)
    w.add_block_count(1)
    w.add_name("fuzz")
    w.add_rope_freq_base(10000.0)
    w.add_tokenizer_model("llama")
    w.add_token_list(["<s>", "</s>", "a", "b"])
    w.add_token_scores([0.0, 0.0, -1.0, -2.0])
    w.add_tensor("token_embd.weight", rng.standard_normal((4, 32), dtype=np.float32))
    w.add_tensor("blk.0.attn_q.weight", rng.standard_normal((32, 32)).astype(np.float16))
    w.add_tensor("output_norm.weight", np.ones(32, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def valid_safetensors(path: Path) -> Path:
    import numpy as np
    from safetensors.numpy import save_file

    save_file({"a.weight": np.arange(12, dtype=np.float32).reshape(3, 4), "b.bias": np.ones(4, dtype=np.float16)},
              str(path), metadata={"format": "np"})
    return path


# --- where the fields are ----------------------------------------------------------------------------


def gguf_fields(data: bytes) -> list[tuple[int, str, str]]:
    """(offset, struct format, what) of every count, length, type and offset in a valid little-endian GGUF."""
    fields = [(4, "<I", "version"), (8, "<Q", "tensor_count"), (16, "<Q", "kv_count")]
    _, _, n_tensors, n_kv = struct.unpack_from("<4sIQQ", data, 0)
    pos = 24
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def string(what: str) -> None:
        nonlocal pos
        fields.append((pos, "<Q", f"{what} length"))
        (n,) = struct.unpack_from("<Q", data, pos)
        pos += 8 + n

    for i in range(n_kv):
        string(f"kv {i} key")
        fields.append((pos, "<I", f"kv {i} type"))
        (vtype,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if vtype == 8:
            string(f"kv {i} value")
        elif vtype == 9:
            fields.append((pos, "<I", f"kv {i} array type"))
            fields.append((pos + 4, "<Q", f"kv {i} array count"))
            itype, count = struct.unpack_from("<IQ", data, pos)
            pos += 12
            for j in range(count):
                if itype == 8:
                    string(f"kv {i} item {j}")
                else:
                    pos += sizes[itype]
        else:
            pos += sizes[vtype]
    for i in range(n_tensors):
        string(f"tensor {i} name")
        fields.append((pos, "<I", f"tensor {i} n_dims"))
        (n_dims,) = struct.unpack_from("<I", data, pos)
        pos += 4
        for d in range(n_dims):
            fields.append((pos, "<Q", f"tensor {i} dim {d}"))
            pos += 8
        fields.append((pos, "<I", f"tensor {i} type"))
        fields.append((pos + 4, "<Q", f"tensor {i} offset"))
        pos += 12
    return fields


# --- mutators ------------------------------------------------------------------------------------------


def _set(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value % (1 << (8 * struct.calcsize(fmt))))
    return bytes(out)


def mutate_gguf(data: bytes, fields: list[tuple[int, str, str]], rng: random.Random) -> tuple[str, bytes]:
    kind = rng.choice(("field", "field", "field", "truncate", "flip", "two_fields"))
    if kind == "truncate":
        n = rng.choice((rng.randrange(0, 64), rng.randrange(0, len(data))))
        return f"truncate to {n}", data[:n]
    if kind == "flip":
        i = rng.randrange(0, min(len(data), fields[-1][0] + 12))  # somewhere in the header and tensor infos
        return f"flip byte {i}", data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:]
    picks = rng.sample(fields, 2 if kind == "two_fields" else 1)
    out, what = data, []
    for offset, fmt, name in picks:
        (orig,) = struct.unpack_from(fmt, data, offset)
        edges = U64_EDGES if fmt == "<Q" else U32_EDGES
        value = rng.choice((*edges, orig + 1, orig - 1, orig * 2, orig + 32, rng.getrandbits(8 * struct.calcsize(fmt))))
        out = _set(out, offset, fmt, value)
        what.append(f"{name}={value}")
    return "set " + ", ".join(what), out


def _json_variants(header: dict, rng: random.Random) -> tuple[str, object]:
    tensors = [k for k in header if k != "__metadata__"]
    name = rng.choice(tensors)
    info = dict(header[name])
    choice = rng.randrange(12)
    if choice == 0:
        info["data_offsets"] = rng.choice(([-1, 4], [0, 2**64], [8, 4], [0], [0, 1, 2], "0,4", [0.0, 4.0],
                                           [True, False], None, [0, 2**31], [2**63, 2**63 + 4]))
        return f"{name}.data_offsets={info['data_offsets']!r}", {**header, name: info}
    if choice == 1:
        info["dtype"] = rng.choice(("F99", "", 7, None, "I4", "BOOL", "F8_E4M3", "f32"))
        return f"{name}.dtype={info['dtype']!r}", {**header, name: info}
    if choice == 2:
        info["shape"] = rng.choice(([], [2**40, 2**40], [-1], [3, 5], "3x4", None, [0], [2**64]))
        return f"{name}.shape={info['shape']!r}", {**header, name: info}
    if choice == 3:
        del info[rng.choice(sorted(info))]
        return f"{name} missing a key", {**header, name: info}
    if choice == 4:
        return f"{name} is not an object", {**header, name: rng.choice(([0, 4], "x", 3, None))}
    if choice == 5:
        return "metadata not a string map", {**header, "__metadata__": rng.choice(({"a": 1}, [1], "x", None))}
    if choice == 6:
        return "header is not an object", rng.choice(([], "x", 1, None, [header]))
    if choice == 7:
        return "no tensors", {"__metadata__": {"format": "np"}}
    if choice == 8:
        return "overlapping tensors", {k: ({**v, "data_offsets": [0, v["data_offsets"][1] - v["data_offsets"][0]]}
                                           if isinstance(v, dict) and "data_offsets" in v else v)
                                       for k, v in header.items()}
    if choice == 9:
        return "extra key", {**header, name: {**info, "extra": 1}}
    if choice == 10:
        return "many tensors", {**header, **{f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}
                                              for i in range(rng.choice((10, 1000)))}}
    return "name with a NUL and non-ASCII", {**{k: v for k, v in header.items() if k != name}, "a\u0000\u00e9": info}


def mutate_safetensors(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    (n,) = struct.unpack_from("<Q", data, 0)
    header, body = json.loads(data[8:8 + n]), data[8 + n:]
    kind = rng.choice(("length", "truncate", "flip", "json", "json", "json", "raw"))
    if kind == "length":
        value = rng.choice((*U64_EDGES, n + 1, n - 1, len(data) - 8, len(data) - 7, 100_000_001))
        return f"header length={value}", _set(data, 0, "<Q", value)
    if kind == "truncate":
        cut = rng.choice((rng.randrange(0, 16), rng.randrange(0, len(data))))
        return f"truncate to {cut}", data[:cut]
    if kind == "flip":
        i = rng.randrange(0, 8 + n)
        return f"flip byte {i}", data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:]
    if kind == "raw":
        raw = rng.choice((b"\xff\xfe{}", b"{" * 5000, b'{"a": 1e999999}', b"[" * 100_000, b'{"a":', b"\x00" * 16))
        return f"raw header {raw[:12]!r}", struct.pack("<Q", len(raw)) + raw + body
    what, new = _json_variants(header, rng)
    raw = json.dumps(new).encode()
    return what, struct.pack("<Q", len(raw)) + raw + body


# --- running the checks ------------------------------------------------------------------------------


def gguf_checks(path: Path) -> None:
    """What quantscope runs on a GGUF it is given: the parent's cheap checks, then the worker's full one."""
    from quantscope.models.context import gguf_context
    from quantscope.models.gguf import read_header, validate_gguf

    read_header(str(path))
    gguf_context(str(path))
    validate_gguf(str(path))


def safetensors_checks(path: Path) -> None:
    from quantscope.models.safety import check_safetensors

    check_safetensors(path)


def run_case(check: Callable[[Path], None], path: Path) -> dict:
    from quantscope.errors import FormatError, UnsafeArtifactError

    t0 = time.perf_counter()
    try:
        check(path)
        outcome, message = "ok", ""
    except (FormatError, UnsafeArtifactError) as e:
        outcome, message = type(e).__name__, str(e)
    except Exception as e:  # the finding: anything else escaping a check is a bug
        tb = traceback.format_exception(e)
        outcome, message = "bug", f"{type(e).__name__}: {e} | {tb[-2].strip() if len(tb) > 1 else ''}"
    return {"outcome": outcome, "message": message, "seconds": time.perf_counter() - t0}


def main(out_dir: str, n: int, seed: int) -> int:
    out = Path(out_dir)
    rng = random.Random(seed)
    gguf_seed = valid_gguf(out / "seed.gguf").read_bytes()
    st_seed = valid_safetensors(out / "seed.safetensors").read_bytes()
    fields = gguf_fields(gguf_seed)
    with open(out / "cases.jsonl", "a") as log:
        for i in range(n):
            for fmt, check in (("gguf", gguf_checks), ("safetensors", safetensors_checks)):
                what, data = (mutate_gguf(gguf_seed, fields, rng) if fmt == "gguf"
                              else mutate_safetensors(st_seed, rng))
                path = out / f"case.{fmt}"
                path.write_bytes(data)
                log.write(json.dumps({"case": i, "format": fmt, "mutation": what, "started": True}) + "\n")
                log.flush()
                record = {"case": i, "format": fmt, "mutation": what, **run_case(check, path)}
                log.write(json.dumps(record) + "\n")
                log.flush()
                os.unlink(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
