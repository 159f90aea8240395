"""Per-tensor quantization policies for llama.cpp: a GGUF with one type per tensor, made and cached here.

A RunSpec whose quant has overrides (`run --backend llamacpp --quant q8_0 --override
're:blk\\.0\\..*=q4_0'`, or a `--policy` file that `quantscope search --export` writes) names GGUF
tensors (blk.N.attn_q.weight, ...): each 2-D weight gets the first matching rule's type, else the
default. The file is rewritten from the F32 GGUF (convert.py's write_gguf) by
methods/haq/export.py's writer — the `gguf` package's quantizers, so the types are those it writes
(F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: llama-quantize --tensor-type is not built here) — in a child
process, cached by the artifact cache under the F32 file's key and the resolved per-tensor types.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quantscope.artifacts.cache import ArtifactCache, Cached, Recipe, conversion_facts, tool_versions
from quantscope.models.base import ModelArtifact
from quantscope.models.materialize import artifact_to_dict, model_label
from quantscope.spec import QuantSpec

POLICY_TYPES = ("q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "f16", "f32")
POLICY_WRITER = 1  # history: 1 (2026-11-29) gguf-package quantizers from the F32 file


def policy_reason(quant: QuantSpec) -> str | None:
    """Why llama.cpp cannot run this per-tensor policy here, or None."""
    methods = [quant.method.lower()] + [o.method.lower() for o in quant.overrides]
    bad = sorted({m for m in methods if m not in POLICY_TYPES})
    if bad:
        return (f"per-tensor llama.cpp types here are {', '.join(POLICY_TYPES)} (the gguf package's writers); "
                f"{', '.join(bad)} needs llama-quantize --tensor-type, not built here")
    if any(o.params for o in quant.overrides) or quant.params:
        return "per-tensor llama.cpp types take no parameters"
    return None


def resolve_types(quant: QuantSpec, names: list[str]) -> dict[str, str]:
    """Each 2-D tensor name -> its type (first matching rule, else the default); a rule that matches no
    tensor is a UserError, as for torchao policies (methods/policy.py)."""
    from quantscope.methods import resolve_policy

    plan = resolve_policy(QuantSpec(method=quant.method.lower(), overrides=tuple(
        type(o)(o.pattern, o.method.lower()) for o in quant.overrides)), "llamacpp", names)
    return {n: (c.method if c is not None else "f32") for n, c in plan.items()}


def write_policy_child(out_dir: str, src_path: str, quant: dict[str, Any]) -> dict[str, Any]:
    """Child side: resolve the policy against the F32 file's tensors and write out_dir/model.gguf."""
    import gguf

    from quantscope.backends.llamacpp.convert import FILE, gguf_summary
    from quantscope.methods.haq.export import write_policy_gguf
    from quantscope.spec import Override

    q = QuantSpec(method=quant["method"], overrides=tuple(Override.from_dict(o) for o in quant["overrides"]))
    names = [t.name for t in gguf.GGUFReader(src_path).tensors if len(t.shape) >= 2]
    types = resolve_types(q, names)
    dst = Path(out_dir) / FILE
    write_policy_gguf(src_path, types, q.method.lower(), dst)
    return {"type": "policy", "policy_types": types, **gguf_summary(dst)}


def ensure_policy_gguf(artifact: ModelArtifact, seed: int, quant: QuantSpec,
                       cache: ArtifactCache | None = None) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """(path, conversion facts, file facts) of the policy's GGUF, built from the cached F32 GGUF."""
    from quantscope.artifacts.child import run_child
    from quantscope.backends.base import Unsupported
    from quantscope.backends.llamacpp.convert import FILE, writer_recipe

    cache = cache or ArtifactCache()
    writer = writer_recipe(artifact, seed, "f32")  # the same entry ensure_gguf(..., "f32") makes

    def write(out: Path, _prev: Cached | None) -> dict[str, Any]:
        return run_child("quantscope.backends.llamacpp.convert:write_gguf",
                         {"out_dir": str(out), "artifact": artifact_to_dict(artifact), "seed": seed,
                          "out_type": "f32"}, raises=(Unsupported,))
    rules = [{"pattern": o.pattern, "method": o.method.lower()} for o in quant.overrides]

    def build(out: Path, base: Cached | None) -> dict[str, Any]:
        assert base is not None
        inherit = {k: base.meta.get(k) for k in ("bos_token_id", "vocab", "arch")}
        return {**inherit, **run_child("quantscope.backends.llamacpp.policy:write_policy_child",
                                       {"out_dir": str(out), "src_path": str(base.file(FILE)),
                                        "quant": {"method": quant.method.lower(), "overrides": rules}},
                                       raises=(Unsupported,))}

    recipe = Recipe("gguf-policy", writer.key(), {"default": quant.method.lower(), "rules": rules,
                                                  "writer": POLICY_WRITER},
                    tool_versions("gguf"), label=f"{model_label(artifact)}-policy")
    done = cache.get_chain([(writer, write), (recipe, build)])
    return done[-1].file(FILE), conversion_facts(done), done[-1].meta
