"""What a run is: RunSpec and its parts. `RunSpec.key()` names what makes two runs comparable.

Records are frozen, JSON round-trip through to_dict/from_dict, and hold no torch objects.

>>> spec = RunSpec(model=ModelSpec("synthetic", "tiny-llama"), quant=QuantSpec(dtype="bf16"))
>>> RunSpec.from_dict(spec.to_dict()) == spec
True
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from quantscope.errors import UserError

DTYPES = ("fp32", "bf16", "fp16")
SOURCES = ("bundled", "hf", "gguf", "hub", "synthetic")
DEVICES = ("cpu", "cuda")
RECIPES = ("llama", "gptq")


def _options(items: dict[str, Any] | tuple | None) -> tuple[tuple[str, Any], ...]:
    """Options as a sorted tuple of pairs, so specs hash and compare by value."""
    if not items:
        return ()
    pairs = items.items() if isinstance(items, dict) else items
    return tuple(sorted((str(k), v) for k, v in pairs))


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(message)


@dataclass(frozen=True)
class ModelSpec:
    """Where the weights come from. `ref` is a path, a hub id or a synthetic architecture name."""

    source: str = "bundled"
    ref: str = "SmolLM2-135M-Instruct"
    allow_pickle: bool = False
    trust_remote_code: bool = False
    revision: str | None = None

    def __post_init__(self) -> None:
        _check(self.source in SOURCES, f"model source {self.source!r} is not one of {', '.join(SOURCES)}")
        _check(bool(self.ref), "model reference is empty")

    @property
    def synthetic(self) -> bool:
        return self.source == "synthetic"

    @property
    def label(self) -> str:
        return self.ref if self.source in ("bundled", "hub") else f"{self.source}:{self.ref}"


@dataclass(frozen=True)
class QuantSpec:
    """Precision and quantization method. `params` are validated by the method's own config class."""

    dtype: str = "fp32"
    method: str = "none"
    params: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        _check(self.dtype in DTYPES, f"dtype {self.dtype!r} is not one of {', '.join(DTYPES)}")
        object.__setattr__(self, "params", _options(self.params))

    @property
    def label(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in self.params)
        name = self.dtype if self.method == "none" else f"{self.method}/{self.dtype}"
        return f"{name}[{extra}]" if extra else name


@dataclass(frozen=True)
class WorkloadSpec:
    """The timed work: a P-token prompt, G greedy new tokens, batch B, repeated until stable."""

    prompt_tokens: int = 128
    gen_tokens: int = 64
    batch: int = 1
    warmup: int = 1
    min_reps: int = 3
    max_reps: int = 10
    max_seconds: float = 30.0
    ci_target: float = 0.02  # stop when the 95 % CI half-width of decode t/s is <= this fraction of its mean
    threads: int | None = None  # None: the runtime's default (all cores)

    def __post_init__(self) -> None:
        for name in ("prompt_tokens", "gen_tokens", "batch", "min_reps", "max_reps"):
            _check(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        _check(self.warmup >= 0, "warmup must be >= 0")
        _check(self.max_reps >= self.min_reps, "max_reps must be >= min_reps")
        _check(self.max_seconds > 0, "max_seconds must be > 0")
        _check(0 < self.ci_target < 1, "ci_target is a fraction of the mean, between 0 and 1")
        _check(self.threads is None or self.threads >= 1, "threads must be >= 1")


@dataclass(frozen=True)
class QualitySpec:
    """The quality pass: which recipe, on which text, with how many scored tokens."""

    enabled: bool = True
    recipe: str = "llama"
    ctx: int = 512
    max_tokens: int = 16384  # scored tokens budget
    text: str = "pydoc"  # "pydoc" | "file:<path>" | "dataset:wikitext-2"
    reference: str | None = None  # key hash of the reference run; None = same model, torch fp32

    def __post_init__(self) -> None:
        _check(self.recipe in RECIPES, f"recipe {self.recipe!r} is not one of {', '.join(RECIPES)}")
        _check(self.ctx >= 8, "ctx must be >= 8")
        _check(self.max_tokens >= 1, "max_tokens must be >= 1")


@dataclass(frozen=True)
class RunSpec:
    model: ModelSpec = field(default_factory=ModelSpec)
    quant: QuantSpec = field(default_factory=QuantSpec)
    backend: str = "torch"
    device: str = "cpu"
    workload: WorkloadSpec = field(default_factory=WorkloadSpec)
    quality: QualitySpec = field(default_factory=QualitySpec)
    options: tuple[tuple[str, Any], ...] = ()  # backend options (compile, threads, session options)
    seed: int = 0

    def __post_init__(self) -> None:
        _check(self.device in DEVICES, f"device {self.device!r} is not one of {', '.join(DEVICES)}")
        object.__setattr__(self, "options", _options(self.options))

    def option(self, name: str, default: Any = None) -> Any:
        return dict(self.options).get(name, default)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        q = dict(d["quant"])
        q["params"] = tuple(tuple(p) for p in q.get("params", ()))
        return cls(
            model=ModelSpec(**d["model"]),
            quant=QuantSpec(**q),
            backend=d["backend"],
            device=d["device"],
            workload=WorkloadSpec(**d["workload"]),
            quality=QualitySpec(**d["quality"]),
            options=tuple(tuple(o) for o in d.get("options", ())),
            seed=d.get("seed", 0),
        )

    def key(self) -> dict[str, Any]:
        """The properties that identify a run (compare-llama-bench's KEY_PROPERTIES).

        The quality budget is part of it: a PPL over 4k tokens does not compare with one over 16k.
        """
        return self.to_dict()

    def key_hash(self) -> str:
        blob = json.dumps(self.key(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        opts = "".join(f" {k}={v}" for k, v in self.options)
        return f"{self.model.label} {self.backend}/{self.quant.label} {self.device}{opts}"


def reference_spec(spec: RunSpec) -> RunSpec:
    """The unquantized reference of `spec`: the same model through PyTorch at FP32 on the same device.

    Every other configuration's KLD is measured against this run's log-probs.
    """
    return RunSpec(model=spec.model, quant=QuantSpec(dtype="fp32"), backend="torch", device=spec.device,
                   workload=spec.workload, quality=spec.quality, seed=spec.seed)
