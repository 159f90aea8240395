"""What a run is: RunSpec and its parts. `RunSpec.key()` names what makes two runs comparable.

Records are frozen, JSON round-trip through to_dict/from_dict, and hold no torch objects.

>>> spec = RunSpec(model=ModelSpec("synthetic", "tiny-llama"), quant=QuantSpec(dtype="bf16"))
>>> RunSpec.from_dict(spec.to_dict()) == spec
True
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from quantscope.errors import UserError

DTYPES = ("fp32", "bf16", "fp16")
SOURCES = ("bundled", "hf", "gguf", "hub", "synthetic")
DEVICES = ("cpu", "cuda")
QUALITY_TOKENS = ("model", "llama.cpp")
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
class Override:
    """One rule of a quantization policy: Linear modules whose name matches `pattern` get `method`.

    `pattern` is a glob on the module's full name (fnmatch: `lm_head`, `*.mlp.*`) or, after `re:`, a
    regular expression that must match the whole name. Method "none" keeps the module unquantized.
    Text form (`--override`): PATTERN=METHOD or PATTERN=METHOD(k=v,...).

    >>> Override.parse("re:.*mlp.*=int4-weight-only(group_size=32)")
    Override(pattern='re:.*mlp.*', method='int4-weight-only', params=(('group_size', 32),))
    >>> Override.parse("lm_head=none").matches("lm_head"), Override("*.mlp.*").matches("model.mlp.up")
    (True, True)
    """

    pattern: str
    method: str = "none"
    params: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        _check(bool(self.pattern) and bool(self.method), f"override {self.pattern!r}: empty pattern or method")
        if self.pattern.startswith("re:"):
            try:
                re.compile(self.pattern[3:])
            except re.error as e:
                raise UserError(f"override pattern {self.pattern!r} is not a regular expression ({e})") from None
        _check(not (self.method == "none" and self.params), f"override {self.pattern}=none takes no parameters")
        object.__setattr__(self, "params", _options(self.params))

    def matches(self, name: str) -> bool:
        if self.pattern.startswith("re:"):
            return re.fullmatch(self.pattern[3:], name) is not None
        return fnmatch.fnmatchcase(name, self.pattern)

    @property
    def label(self) -> str:
        args = ",".join(f"{k}={v}" for k, v in self.params)
        return f"{self.pattern}={self.method}" + (f"({args})" if args else "")

    @classmethod
    def parse(cls, text: str) -> Override:
        """PATTERN=METHOD[(k=v,...)]; values are JSON scalars where they parse as such."""
        body, params = text.strip(), {}
        if body.endswith(")") and "(" in body:
            body, _, args = body[:-1].rpartition("(")
            for item in filter(None, (a.strip() for a in args.split(","))):
                key, sep, raw = item.partition("=")
                _check(bool(sep and key), f"override {text!r}: parameter {item!r} is not KEY=VALUE")
                try:
                    params[key.strip()] = json.loads(raw)
                except json.JSONDecodeError:
                    params[key.strip()] = raw.strip()
        pattern, sep, method = body.rpartition("=")
        _check(bool(sep and pattern and method), f"override {text!r} is not PATTERN=METHOD "
               "(e.g. lm_head=none or 're:.*mlp.*=int8-weight-only')")
        return cls(pattern, method.strip(), tuple(params.items()))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Override:
        return cls(d["pattern"], d.get("method", "none"), tuple(tuple(p) for p in d.get("params", ())))


@dataclass(frozen=True)
class QuantSpec:
    """Precision and the quantization policy: a default method (with its `params`, validated by the
    method's own config class) and ordered per-module `overrides`, the first match winning (torchao's
    per-FQN configs). Without overrides it serialises exactly as before they existed."""

    dtype: str = "fp32"
    method: str = "none"
    params: tuple[tuple[str, Any], ...] = ()
    overrides: tuple[Override, ...] = ()

    def __post_init__(self) -> None:
        _check(self.dtype in DTYPES, f"dtype {self.dtype!r} is not one of {', '.join(DTYPES)}")
        object.__setattr__(self, "params", _options(self.params))
        rules = tuple(o if isinstance(o, Override) else Override.from_dict(o) for o in self.overrides)
        object.__setattr__(self, "overrides", rules)

    def method_for(self, name: str) -> tuple[str, tuple[tuple[str, Any], ...], Override | None]:
        """(method, params, the override that chose them or None) for a module name: first match wins."""
        for rule in self.overrides:
            if rule.matches(name):
                return rule.method, rule.params, rule
        return self.method, self.params, None

    @property
    def label(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in self.params)
        name = self.dtype if self.method == "none" else f"{self.method}/{self.dtype}"
        name = f"{name}[{extra}]" if extra else name
        if self.overrides:
            name += " +{" + "; ".join(o.label for o in self.overrides) + "}"
        return name

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if not self.overrides:
            del d["overrides"]  # specs without a policy keep their stored form and key hash
        return d


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
    # Who cuts the text into tokens: "model", the model's own tokenizer through transformers (for a GGUF
    # source, transformers' conversion of its vocabulary); "llama.cpp", llama.cpp's tokenizer on the GGUF
    # file, so that the perplexity is llama-perplexity's on the same tokens (issue 16: transformers'
    # conversion splits runs like "\n\n  " differently). Part of the key: the two score different tokens.
    tokens: str = "model"
    # A compared run's pass ends after the window that crosses this many seconds (whole windows, at
    # least one; the reference is never cut). None: every planned window. A sweep's time budget.
    max_seconds: float | None = None

    def __post_init__(self) -> None:
        _check(self.recipe in RECIPES, f"recipe {self.recipe!r} is not one of {', '.join(RECIPES)}")
        _check(self.tokens in QUALITY_TOKENS, f"quality tokens {self.tokens!r} is not one of "
               f"{', '.join(QUALITY_TOKENS)}")
        _check(self.ctx >= 8, "ctx must be >= 8")
        _check(self.max_tokens >= 1, "max_tokens must be >= 1")
        _check(self.max_seconds is None or self.max_seconds > 0, "quality max_seconds must be > 0")


@dataclass(frozen=True)
class TaskSpec:
    """Downstream tasks evaluated by lm-evaluation-harness after the timed work (quality/tasks/).

    `names` are lm-eval task names (our offline `quantscope_cloze` among them); `limit` takes the first N
    documents of each task, as lm-eval's --limit does. Empty names: no task pass, and the spec's stored
    form (and key hash) is what it was before tasks existed.

    >>> TaskSpec.parse("quantscope_cloze, arc_easy", 200)
    TaskSpec(names=('quantscope_cloze', 'arc_easy'), limit=200)
    """

    names: tuple[str, ...] = ()
    limit: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(self.names))
        _check(all(n and n.strip() == n and "," not in n for n in self.names),
               f"task names {list(self.names)} must be non-empty, without spaces or commas")
        _check(len(set(self.names)) == len(self.names), f"task names {list(self.names)} repeat a task")
        _check(self.limit is None or self.limit >= 1, f"task limit must be >= 1, got {self.limit}")
        _check(self.limit is None or bool(self.names), "a task limit needs --tasks")

    @classmethod
    def parse(cls, text: str | None, limit: int | None = None) -> TaskSpec:
        """`--tasks a,b` (comma-separated, as lm_eval's CLI takes them) and `--task-limit N`."""
        names = tuple(dict.fromkeys(n.strip() for n in (text or "").split(",") if n.strip()))
        return cls(names, limit)


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
    tasks: TaskSpec = field(default_factory=TaskSpec)

    def __post_init__(self) -> None:
        _check(self.device in DEVICES, f"device {self.device!r} is not one of {', '.join(DEVICES)}")
        object.__setattr__(self, "options", _options(self.options))

    def option(self, name: str, default: Any = None) -> Any:
        return dict(self.options).get(name, default)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["quant"] = self.quant.to_dict()
        if not self.tasks.names:
            del d["tasks"]  # specs without a task pass keep their stored form and key hash
        if self.quality.tokens == "model":
            del d["quality"]["tokens"]  # nor do specs tokenized as before
        if self.quality.max_seconds is None:
            del d["quality"]["max_seconds"]  # nor those without a quality time cap
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        q = dict(d["quant"])
        q["params"] = tuple(tuple(p) for p in q.get("params", ()))
        q["overrides"] = tuple(Override.from_dict(o) for o in q.get("overrides", ()))
        return cls(
            model=ModelSpec(**d["model"]),
            quant=QuantSpec(**q),
            backend=d["backend"],
            device=d["device"],
            workload=WorkloadSpec(**d["workload"]),
            quality=QualitySpec(**d["quality"]),
            options=tuple(tuple(o) for o in d.get("options", ())),
            seed=d.get("seed", 0),
            tasks=TaskSpec(**d.get("tasks", {})),
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
        from quantscope.present.labels import run_label  # the one place a configuration is named

        return run_label(self)


def reference_spec(spec: RunSpec) -> RunSpec:
    """The unquantized reference of `spec`: the same model through PyTorch at FP32 on the same device.

    Every other configuration's KLD is measured against this run's log-probs.
    """
    return RunSpec(model=spec.model, quant=QuantSpec(dtype="fp32"), backend="torch", device=spec.device,
                   workload=spec.workload, quality=spec.quality, seed=spec.seed, tasks=spec.tasks)
