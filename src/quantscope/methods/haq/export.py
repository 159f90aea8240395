"""A policy as files: a GGUF with one type per tensor (llama.cpp runs it as it is), and a policy TOML.

The GGUF is rewritten from the F32 GGUF that backends/llamacpp/convert.py writes from the reference
weights: every metadata key is copied, every 2-D weight is quantized to its policy type with the
`gguf` package's own quantizers (numpy ports of ggml's reference quantize_row_*: FACTS.md), and 1-D
tensors (norms) stay F32 as llama-quantize leaves them. A policy is `{tensor name: type}`; 2-D
tensors it does not name (token_embd, output) get `default`.

The TOML is `run --policy`'s format (sweep/matrix.py): the default as `quant` and one [[override]]
per format whose pattern lists that format's tensors, so `run`, `sweep` and the store treat the
policy like any configuration.

>>> quant = policy_quant({"blk.0.attn_q.weight": "q4_0", "blk.1.attn_q.weight": "q8_0"}, "q8_0")
>>> quant.method, [o.label for o in quant.overrides]
('q8_0', ['re:blk\\\\.0\\\\.attn_q\\\\.weight=q4_0'])
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from quantscope.errors import UserError
from quantscope.spec import Override, QuantSpec


def policy_quant(policy: dict[str, str], default: str) -> QuantSpec:
    """The QuantSpec of a policy: `default` plus one regex override per other format (sorted, stable)."""
    by_fmt: dict[str, list[str]] = {}
    for name, fmt in sorted(policy.items()):
        if fmt != default:
            by_fmt.setdefault(fmt, []).append(name)
    rules = []
    for fmt, names in sorted(by_fmt.items()):
        parts = _compact(names)
        alt = "|".join(parts)
        rules.append(Override(f"re:{alt}" if len(parts) == 1 else f"re:(?:{alt})", fmt))
    return QuantSpec(method=default, overrides=tuple(rules))


def _compact(names: list[str]) -> list[str]:
    """Regexes matching exactly `names`: GGUF block tensors grouped by kind (blk\\.(?:0|7)\\.attn_q\\.weight),
    so a 210-tensor policy stays a readable label."""
    blocks: dict[str, list[int]] = {}
    out = []
    for n in names:
        m = re.fullmatch(r"blk\.(\d+)\.(.+)", n)
        if m:
            blocks.setdefault(m.group(2), []).append(int(m.group(1)))
        else:
            out.append(re.escape(n))
    for rest, ids in sorted(blocks.items()):
        ids = sorted(set(ids))
        num = str(ids[0]) if len(ids) == 1 else "(?:" + "|".join(map(str, ids)) + ")"
        out.append(rf"blk\.{num}\.{re.escape(rest)}")
    return out


def policy_toml(quant: QuantSpec, comment: str = "") -> str:
    """`run --policy` text of a QuantSpec (quant = default, [[override]] pattern/quant)."""
    def s(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [f"# {line}" for line in comment.splitlines()] + [f"quant = {s(quant.method)}", ""]
    for rule in quant.overrides:
        lines += ["[[override]]", f"pattern = {s(rule.pattern)}", f"quant = {s(rule.method)}", ""]
    return "\n".join(lines)


def check_writable(path: Path) -> Path:
    """An export path whose folder exists and can be written, or a one-line UserError."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UserError(f"export path {path} is a folder: give a file name (e.g. {path / 'policy.gguf'})")
    if not folder.is_dir():
        raise UserError(f"export path {path}: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise UserError(f"export path {path}: folder {folder} is not writable; choose another --export")
    return path


def ggml_type(fmt: str) -> Any:
    from gguf import GGMLQuantizationType

    try:
        return GGMLQuantizationType[fmt.upper()]
    except KeyError:
        raise UserError(f"{fmt!r} is not a ggml type") from None


class Quantized:
    """Quantized tensors by (name, format), kept in memory so many policy files share the work."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], Any] = {}

    def get(self, name: str, fmt: str, weights: Any) -> Any:
        from gguf import quants

        key = (name, fmt)
        if key not in self.data:
            self.data[key] = quants.quantize(weights, ggml_type(fmt))
        return self.data[key]


def write_policy_gguf(src: str | Path, policy: dict[str, str], default: str, out: str | Path,
                      cache: Quantized | None = None) -> dict[str, Any]:
    """Write `out` from the F32 GGUF `src` with each 2-D tensor in its policy type; returns the facts.

    A policy name that is not a 2-D tensor of `src` is a UserError (it would silently do nothing).
    """
    import gguf
    import numpy as np

    reader = gguf.GGUFReader(str(src))
    mats = {t.name for t in reader.tensors if len(t.shape) >= 2}
    unknown = sorted(set(policy) - mats)
    if unknown:
        raise UserError(f"policy names {len(unknown)} tensor(s) the model lacks, e.g. {unknown[0]}")
    arch = reader.get_field("general.architecture").contents()
    w = gguf.GGUFWriter(str(out), arch)
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name in ("general.architecture", "general.file_type"):
            continue  # the writer adds the header and the architecture; the file type no longer applies
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(field.name, field.contents(), vtype, sub_type=sub)
    cache = cache or Quantized()
    types: dict[str, str] = {}
    for t in reader.tensors:
        data = np.asarray(t.data)
        if t.name not in mats:
            w.add_tensor(t.name, np.ascontiguousarray(data.astype(np.float32)))
            continue
        if t.tensor_type != gguf.GGMLQuantizationType.F32:
            raise UserError(f"{src}: tensor {t.name} is {t.tensor_type.name}; the policy writer starts from F32")
        fmt = policy.get(t.name, default)
        q = cache.get(t.name, fmt, data.reshape(tuple(int(x) for x in reversed(t.shape))))
        w.add_tensor(t.name, q, raw_dtype=ggml_type(fmt))
        types[t.name] = fmt
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return {"file_bytes": Path(out).stat().st_size, "types": types}


def tensor_types(path: str | Path) -> dict[str, str]:
    """Each tensor's type as the file says it (lower case), read back with the gguf package."""
    import gguf

    return {t.name: t.tensor_type.name.lower() for t in gguf.GGUFReader(str(path)).tensors}
