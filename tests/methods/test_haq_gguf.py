"""An exported policy GGUF loads in llama.cpp and holds exactly the policy's per-tensor types (issue 13),
both when `search --export` writes it and when the llamacpp backend builds it from a RunSpec's overrides."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("gguf")

from quantscope.backends.llamacpp.convert import ensure_gguf  # noqa: E402
from quantscope.methods.haq.export import check_writable, policy_quant, tensor_types, write_policy_gguf  # noqa: E402
from quantscope.methods.haq.space import LLAMACPP_FORMATS, layers_from_shape  # noqa: E402
from quantscope.models import resolve  # noqa: E402
from quantscope.models.shape import shape_from_config  # noqa: E402
from quantscope.models.synthetic import config_for  # noqa: E402
from quantscope.spec import ModelSpec, QualitySpec, RunSpec  # noqa: E402

pytestmark = pytest.mark.integration
MODEL = ModelSpec("synthetic", "tiny-llama")


@pytest.fixture(scope="module")
def f32_gguf():
    path, _, _ = ensure_gguf(resolve(MODEL), 0, "f32")
    return path


def _policy() -> dict[str, str]:
    layers = layers_from_shape(shape_from_config(config_for("tiny-llama")))
    return {lay.name: LLAMACPP_FORMATS[i % len(LLAMACPP_FORMATS)] for i, lay in enumerate(layers)}


def test_an_exported_gguf_loads_in_llama_cpp_and_holds_exactly_the_policys_types(f32_gguf, tmp_path):
    from quantscope.methods.haq.measure import time_files

    policy = _policy()
    assert set(policy.values()) == set(LLAMACPP_FORMATS)  # every writable type appears
    out = tmp_path / "policy.gguf"
    write_policy_gguf(f32_gguf, policy, "q8_0", out)
    types = tensor_types(out)
    assert {n: types[n] for n in policy} == policy
    assert types["token_embd.weight"] == "q8_0"
    assert all(t == "f32" for n, t in types.items() if n.endswith("norm.weight"))
    timed = time_files([str(out)], tokens=2, reps=1, threads=1)  # llama.cpp loads and decodes it (a child)
    assert len(timed[0]["step_s"]) == 1 and timed[0]["step_s"][0] > 0


def test_the_llamacpp_backend_runs_a_per_tensor_policy_from_a_runspec():
    from quantscope.backends.llamacpp.backend import LlamaCppBackend

    policy = _policy()
    spec = RunSpec(model=MODEL, quant=policy_quant(policy, "q8_0"), backend="llamacpp",
                   quality=QualitySpec(enabled=False))
    backend = LlamaCppBackend()
    assert backend.supports(spec) is None
    try:
        facts = backend.load(spec, resolve(MODEL))
        assert facts["gguf_type"] == "policy"
        types = tensor_types(facts["gguf_file"])
        assert {n: types[n] for n in policy} == policy
        assert backend.decode(np.array([3])).shape == (1,)
    finally:
        backend.close()


def test_a_policy_with_a_type_the_writer_cannot_make_is_unsupported_with_the_reason():
    from quantscope.backends.llamacpp.backend import LlamaCppBackend

    quant = policy_quant({"blk.0.attn_q.weight": "q6_k"}, "q8_0")
    reason = LlamaCppBackend().supports(RunSpec(model=MODEL, quant=quant, backend="llamacpp"))
    assert reason is not None and "q6_k needs llama-quantize --tensor-type" in reason


def test_an_unwritable_export_path_is_refused_before_any_work(tmp_path):
    from quantscope.errors import UserError

    with pytest.raises(UserError, match="does not exist"):
        check_writable(tmp_path / "missing" / "p.gguf")
    with pytest.raises(UserError, match="is a folder"):
        check_writable(tmp_path)
    assert check_writable(tmp_path / "p.gguf") == tmp_path / "p.gguf"
