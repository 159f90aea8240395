"""The sweep matrix: which configurations to measure, from the default list, a TOML file or flag lists.

A matrix entry names only what varies between configurations (backend, dtype, method and its
parameters, backend options); the model, workload and quality recipe are shared by the whole sweep,
so every row of one sweep is comparable with every other (compare-llama-bench's KEY_PROPERTIES).

TOML layout (read with the standard library's tomllib; unknown keys are refused, never ignored):

    [[config]]
    backend = "torchao"
    dtype = "bf16"
    quant = "int4-weight-only"
    params = { group_size = 64 }     # the method's options (--qparam)
    options = { kv_cache = false }   # the backend's options (--opt), part of the run's key

>>> [e.label for e in DEFAULT_MATRIX][:2]
['torch/fp32', 'torch/bf16']
>>> from_flags(["torch"], [], ["fp32", "bf16"])[1].label
'torch/bf16'
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from quantscope.errors import FormatError, UserError
from quantscope.spec import QuantSpec, RunSpec, _options


@dataclass(frozen=True)
class Entry:
    """One configuration of a sweep: what differs from the other rows."""

    backend: str
    dtype: str = "fp32"
    quant: str = "none"
    params: tuple[tuple[str, Any], ...] = ()
    options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", _options(self.params))
        object.__setattr__(self, "options", _options(self.options))
        QuantSpec(dtype=self.dtype, method=self.quant, params=self.params)  # a bad dtype is a UserError now

    @property
    def label(self) -> str:
        quant = QuantSpec(dtype=self.dtype, method=self.quant, params=self.params).label
        opts = "".join(f" {k}={v}" for k, v in self.options)
        return f"{self.backend}/{quant}{opts}"

    def spec(self, base: RunSpec) -> RunSpec:
        """The RunSpec of this entry on the sweep's shared model, workload and quality recipe."""
        quant = QuantSpec(dtype=self.dtype, method=self.quant, params=self.params)
        return replace(base, backend=self.backend, quant=quant, options=self.options)


# Every configuration the code knows, on the bundled model. The dtypes follow what each method runs
# in on a CPU (../shared/FACTS.md): torchao's CPU int4 path runs in bf16 (its fp32 prefill is
# pathologically slow); ORT quantizes from FP32 graphs; llama.cpp types carry their own precision.
# Combinations that cannot run here (float8 needs CUDA sm >= 8.9) stay listed: they become rows with
# status "unsupported" and the library's reason, which is an answer too.
DEFAULT_MATRIX: tuple[Entry, ...] = (
    Entry("torch", "fp32"),  # the reference: every other row's KLD is measured against it
    Entry("torch", "bf16"),
    Entry("torchao", "fp32", "int8-weight-only"),
    Entry("torchao", "fp32", "int8-dynamic"),
    Entry("torchao", "bf16", "int4-weight-only"),
    Entry("torchao", "bf16", "float8-dynamic"),
    Entry("torchao", "bf16", "float8-weight-only"),
    Entry("torchao", "fp32", "intx-weight-only"),
    Entry("torchao", "fp32", "int8-dynamic-intx"),
    Entry("torchao", "fp32", "int8-dynamic-int4"),
    Entry("bnb", "fp32", "int8"),
    Entry("bnb", "fp32", "nf4"),
    Entry("bnb", "fp32", "fp4"),
    Entry("ort", "fp32", "none"),  # the ort backend's default keeps a KV cache
    Entry("ort", "fp32", "none", options=(("kv_cache", False),)),
    Entry("ort", "fp32", "int8"),
    Entry("ort", "fp32", "int4"),
    Entry("llamacpp", "fp32", "q8_0"),
    Entry("llamacpp", "fp32", "q4_k_m"),
    Entry("llamacpp", "fp32", "q4_0"),
)

ENTRY_KEYS = {"backend", "dtype", "quant", "params", "options"}


def from_flags(backends: list[str], quants: list[str], dtypes: list[str]) -> list[Entry]:
    """Every combination of the given lists (a missing list means torch / none / fp32).

    Combinations a backend cannot run are kept: they become unsupported rows with the reason.
    """
    combos = itertools.product(backends or ["torch"], quants or ["none"], dtypes or ["fp32"])
    return [Entry(backend=b, dtype=d, quant=q) for b, q, d in combos]


def _table(value: Any, where: str) -> tuple[tuple[str, Any], ...]:
    if not isinstance(value, dict):
        raise FormatError(f"{where} must be a TOML table like {{ group_size = 64 }}, got {value!r}")
    for k, v in value.items():
        if isinstance(v, dict | list):
            raise FormatError(f"{where}.{k} must be a plain value (string, number or boolean)")
    return tuple(value.items())


def entry_from_dict(d: dict[str, Any], where: str) -> Entry:
    unknown = sorted(set(d) - ENTRY_KEYS)
    if unknown:
        raise FormatError(f"{where}: unknown key(s) {', '.join(unknown)}; an entry takes "
                          f"{', '.join(sorted(ENTRY_KEYS))}")
    if not isinstance(d.get("backend"), str):
        raise FormatError(f"{where}: every [[config]] needs backend = \"NAME\"")
    for name in ("dtype", "quant"):
        if name in d and not isinstance(d[name], str):
            raise FormatError(f"{where}: {name} must be a string")
    return Entry(backend=d["backend"], dtype=d.get("dtype", "fp32"), quant=d.get("quant", "none"),
                 params=_table(d.get("params", {}), f"{where}.params"),
                 options=_table(d.get("options", {}), f"{where}.options"))


def from_toml(path: Path) -> list[Entry]:
    """Entries from a TOML file's [[config]] array (see the module docstring)."""
    import tomllib

    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as e:
        raise UserError(f"matrix file {path} does not exist") from e
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise FormatError(f"matrix file {path} is not valid TOML ({e}): fix it and rerun") from e
    extra = sorted(set(data) - {"config"})
    if extra:
        raise FormatError(f"matrix file {path}: unknown top-level key(s) {', '.join(extra)}; "
                          "it holds only [[config]] entries")
    configs = data.get("config")
    if not isinstance(configs, list) or not configs:
        raise FormatError(f"matrix file {path} has no [[config]] entries: add at least one")
    entries = [entry_from_dict(c, f"{path}: config #{i + 1}") for i, c in enumerate(configs)]
    return dedupe(entries)


def dedupe(entries: list[Entry]) -> list[Entry]:
    """Entries in order, each configuration once."""
    return list(dict.fromkeys(entries))


def reference_first(specs: list[RunSpec]) -> list[RunSpec]:
    """Put the KLD reference (torch FP32 of the sweep's model) first, adding it if the matrix lacks it.

    Every other row's quality pass compares against the reference's log-probs, so it must exist first.
    Without a quality pass the order is left as it is.
    """
    from quantscope.spec import reference_spec

    if not specs or not specs[0].quality.enabled or specs[0].model.synthetic:
        return specs
    ref = reference_spec(specs[0])
    return [ref, *(s for s in specs if s != ref)]
