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
    accelerator = "H100"             # --executor ray: only on nodes with this accelerator_type

    [[config.override]]              # per-module overrides, in order: the first match wins
    pattern = "lm_head"              # a glob on the module name, or "re:REGEX" (whole name)
    quant = "none"                   # "none" keeps the module unquantized
    [[config.override]]
    pattern = "re:.*mlp.*"
    quant = "int8-weight-only"
    params = { granularity = "per-row" }

    [tasks]                          # optional: lm-eval tasks for every row (as sweep --tasks)
    names = ["quantscope_cloze"]
    limit = 200

A policy file (`run --policy FILE.toml`) holds the same keys at the top level: an optional default
`quant` and `params`, and [[override]] tables.

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
from quantscope.spec import Override, QuantSpec, RunSpec, TaskSpec, _options


@dataclass(frozen=True)
class Entry:
    """One configuration of a sweep: what differs from the other rows."""

    backend: str
    dtype: str = "fp32"
    quant: str = "none"
    params: tuple[tuple[str, Any], ...] = ()
    options: tuple[tuple[str, Any], ...] = ()
    overrides: tuple[Override, ...] = ()  # the quantization policy's per-module rules, in order
    accelerator: str | None = None  # where it must run (Ray's accelerator_type, e.g. "H100"); not in its key

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", _options(self.params))
        object.__setattr__(self, "options", _options(self.options))
        QuantSpec(dtype=self.dtype, method=self.quant, params=self.params)  # a bad dtype is a UserError now

    @property
    def quant_spec(self) -> QuantSpec:
        return QuantSpec(dtype=self.dtype, method=self.quant, params=self.params, overrides=self.overrides)

    @property
    def label(self) -> str:
        from quantscope.methods.configs import pin_defaults
        from quantscope.present.labels import config_label  # the one place a configuration is named

        # named as its spec will be: with the method's pinned key params (e.g. ort int8's scheme)
        return config_label(self.backend, pin_defaults(self.backend, self.quant_spec).label, self.options)

    def spec(self, base: RunSpec) -> RunSpec:
        """The RunSpec of this entry on the sweep's shared model, workload and quality recipe.

        Options and method parameters are checked here, before any work: a typo is a UserError naming
        the near name. A method of another backend stays (it becomes an unsupported row, with why).
        """
        from quantscope.methods.configs import pin_defaults

        check_entry(self.backend, self.quant_spec, self.options)
        quant = pin_defaults(self.backend, self.quant_spec)  # a changed default gets a key of its own
        return replace(base, backend=self.backend, quant=quant, options=self.options)


def check_entry(backend: str, quant: QuantSpec, options: tuple[tuple[str, Any], ...]) -> None:
    """The backend's typed options and the policy's names and parameters, for a registered backend."""
    from quantscope.backends import BACKENDS, parse_options
    from quantscope.methods import check_quant

    if backend not in BACKENDS:  # a typo is refused before any run, not stored as an unsupported row
        raise UserError(BACKENDS.unknown_message(backend))
    parse_options(backend, options)
    check_quant(backend, quant)


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
    Entry("ortgenai", "fp32", "none"),  # onnxruntime-genai's model builder: FP32, then weight-only int8/int4
    Entry("ortgenai", "fp32", "int8"),
    Entry("ortgenai", "fp32", "int4"),
    Entry("llamacpp", "fp32", "q8_0"),
    Entry("llamacpp", "fp32", "q4_k_m"),
    Entry("llamacpp", "fp32", "q4_0"),
)

# Registered methods the quick default sweep leaves out, each with the reason (a test holds that every
# other torchao and bnb method is in DEFAULT_MATRIX). Run them by name: `sweep --quant w8a8 ...`.
LEFT_OUT_OF_DEFAULT: dict[tuple[str, str], str] = {
    ("torchao", "w8a8"): "calibrated W8A8: on CPUs without VNNI its int8 kernel (torch._int_mm) ran 20-30x "
                         "slower than FP32 here, so its quality pass alone would take hours; "
                         "see benchmarks/smoothquant_table.py",
    ("torchao", "smoothquant-w8a8"): "as w8a8, plus a calibration pass; see benchmarks/smoothquant_table.py",
}

ENTRY_KEYS = {"backend", "dtype", "quant", "params", "options", "override", "accelerator"}
OVERRIDE_KEYS = {"pattern", "quant", "params"}
POLICY_KEYS = {"quant", "params", "override"}


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
    from quantscope.backends import BACKENDS

    if d["backend"] not in BACKENDS:  # say which entry of the file holds the typo
        raise UserError(f"{where}: {BACKENDS.unknown_message(d['backend'])}")
    for name in ("dtype", "quant", "accelerator"):
        if name in d and not isinstance(d[name], str):
            raise FormatError(f"{where}: {name} must be a string")
    return Entry(backend=d["backend"], dtype=d.get("dtype", "fp32"), quant=d.get("quant", "none"),
                 params=_table(d.get("params", {}), f"{where}.params"),
                 options=_table(d.get("options", {}), f"{where}.options"),
                 overrides=overrides_from(d.get("override", []), f"{where}.override"),
                 accelerator=d.get("accelerator") or None)


def accelerators(entries: list[Entry]) -> dict[str, str]:
    """Configuration label -> the accelerator its matrix entry asks for (only entries that name one).

    >>> accelerators([Entry("torch", "bf16", accelerator="H100"), Entry("torch")])
    {'torch/bf16': 'H100'}
    """
    return {e.label: e.accelerator for e in entries if e.accelerator}


def overrides_from(value: Any, where: str) -> tuple[Override, ...]:
    """[[override]] tables (pattern, quant, params) as Overrides, in file order."""
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise FormatError(f"{where} must be an array of tables: [[...override]] with pattern and quant")
    out = []
    for i, table in enumerate(value):
        at = f"{where} #{i + 1}"
        unknown = sorted(set(table) - OVERRIDE_KEYS)
        if unknown:
            raise FormatError(f"{at}: unknown key(s) {', '.join(unknown)}; an override takes "
                              f"{', '.join(sorted(OVERRIDE_KEYS))}")
        if not isinstance(table.get("pattern"), str) or not isinstance(table.get("quant", "none"), str):
            raise FormatError(f"{at}: needs pattern = \"NAME or re:REGEX\" and quant = \"METHOD\" (or \"none\")")
        out.append(Override(table["pattern"], table.get("quant", "none"),
                            _table(table.get("params", {}), f"{at}.params")))
    return tuple(out)


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    import tomllib

    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError as e:
        raise UserError(f"{what} file {path} does not exist") from e
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise FormatError(f"{what} file {path} is not valid TOML ({e}): fix it and rerun") from e


def policy_from_toml(path: Path) -> tuple[str | None, tuple[tuple[str, Any], ...], tuple[Override, ...]]:
    """(default method or None, its params, overrides) from a policy file (see the module docstring)."""
    data = _read_toml(path, "policy")
    unknown = sorted(set(data) - POLICY_KEYS)
    if unknown:
        raise FormatError(f"policy file {path}: unknown key(s) {', '.join(unknown)}; it takes "
                          f"{', '.join(sorted(POLICY_KEYS))}")
    quant = data.get("quant")
    if quant is not None and not isinstance(quant, str):
        raise FormatError(f"policy file {path}: quant must be a string")
    return (quant, _table(data.get("params", {}), f"{path}: params"),
            overrides_from(data.get("override", []), f"{path}: override"))


def from_toml(path: Path) -> list[Entry]:
    """Entries from a TOML file's [[config]] array (see the module docstring)."""
    data = _read_toml(path, "matrix")
    extra = sorted(set(data) - {"config", "tasks"})
    if extra:
        raise FormatError(f"matrix file {path}: unknown top-level key(s) {', '.join(extra)}; "
                          "it holds [[config]] entries and an optional [tasks] table")
    configs = data.get("config")
    if not isinstance(configs, list) or not configs:
        raise FormatError(f"matrix file {path} has no [[config]] entries: add at least one")
    entries = [entry_from_dict(c, f"{path}: config #{i + 1}") for i, c in enumerate(configs)]
    return dedupe(entries)


def tasks_from_toml(path: Path) -> TaskSpec | None:
    """The matrix file's optional [tasks] table (names, limit), shared by every row like sweep --tasks."""
    table = _read_toml(path, "matrix").get("tasks")
    if table is None:
        return None
    unknown = sorted(set(table) - {"names", "limit"}) if isinstance(table, dict) else ["(not a table)"]
    names = table.get("names") if isinstance(table, dict) else None
    if unknown or not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise FormatError(f"matrix file {path}: [tasks] takes names = [\"task\", ...] and limit = N"
                          + (f"; unknown key(s) {', '.join(unknown)}" if unknown else ""))
    return TaskSpec(tuple(names), table.get("limit"))


def dedupe(entries: list[Entry]) -> list[Entry]:
    """Entries in order, each configuration once."""
    return list(dict.fromkeys(entries))


def reference_first(specs: list[RunSpec]) -> list[RunSpec]:
    """Put the KLD reference (torch FP32 of the sweep's model) first, adding it if the matrix lacks it.

    Every other row's quality pass compares against the reference's log-probs, so it must exist first.
    Without a quality pass the order is left as it is, unless the rows evaluate tasks: their accuracy
    drop is measured against the reference's on the same documents.
    """
    from quantscope.spec import reference_spec

    if not specs or specs[0].model.synthetic or not (specs[0].quality.enabled or specs[0].tasks.names):
        return specs
    ref = reference_spec(specs[0])
    return [ref, *(s for s in specs if s != ref)]
