import json

import pytest

from quantscope.errors import UserError
from quantscope.result import EnvFingerprint, Measurement, Result
from quantscope.spec import ModelSpec, QualitySpec, QuantSpec, RunSpec, WorkloadSpec

pytestmark = pytest.mark.unit


def env() -> EnvFingerprint:
    return EnvFingerprint(machine_id="m1", cpu_model="cpu", cpu_flags=("avx2",), cores_physical=1,
                          cores_logical=2, ram_bytes=1 << 30, gpu=None, gpu_driver=None, os="linux",
                          python="3.11", packages={"torch": "2.13.0"}, quantscope_version="0.1.0", git_sha=None)


def spec() -> RunSpec:
    return RunSpec(model=ModelSpec("synthetic", "tiny-llama"), quant=QuantSpec("bf16", "int8", {"group": 64}),
                   workload=WorkloadSpec(prompt_tokens=8, gen_tokens=4), quality=QualitySpec(enabled=False),
                   options={"compile": True})


def test_runspec_round_trips_through_json():
    s = spec()
    back = RunSpec.from_dict(json.loads(json.dumps(s.to_dict())))
    assert back == s
    assert back.key_hash() == s.key_hash()


def test_key_changes_with_identifying_fields_only():
    a = spec()
    b = RunSpec.from_dict({**a.to_dict(), "device": "cuda"})
    assert a.key_hash() != b.key_hash()
    # option order does not matter
    c = RunSpec(model=a.model, quant=QuantSpec("bf16", "int8", (("group", 64),)), workload=a.workload,
                quality=a.quality, options=(("compile", True),))
    assert c.key_hash() == a.key_hash()


def test_result_round_trips_with_samples():
    r = Result(spec=spec(), env=env(), status="ok",
               measurements=(Measurement("decode_tps", "tok/s", (1.0, 2.0, 3.0), True, {"stop_rule": "ci"}),),
               info={"reps": 3})
    back = Result.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r
    assert back.get("decode_tps").samples == (1.0, 2.0, 3.0)
    assert back.get("decode_tps").meta == {"stop_rule": "ci"}


@pytest.mark.parametrize("bad", [
    lambda: QuantSpec(dtype="fp8x"),
    lambda: WorkloadSpec(prompt_tokens=0),
    lambda: WorkloadSpec(min_reps=5, max_reps=3),
    lambda: RunSpec(device="tpu"),
    lambda: ModelSpec(source="ftp"),
    lambda: QualitySpec(recipe="wiki"),
])
def test_invalid_specs_are_refused_with_one_line(bad):
    with pytest.raises(UserError) as e:
        bad()
    assert "\n" not in str(e.value)


def test_unknown_status_is_refused():
    with pytest.raises(ValueError):
        Result(spec=spec(), env=env(), status="great")


# --- quantization policies -------------------------------------------------------------------------
from quantscope.spec import Override  # noqa: E402

# Key hashes computed at 832e660, before policies existed: stored rows must keep them.
PINNED = {
    "default": ("36397073c416da9c", RunSpec()),
    "torchao-int4-g64": ("9139a49c5aa14ea8", RunSpec(backend="torchao", quant=QuantSpec(
        dtype="bf16", method="int4-weight-only", params=(("group_size", 64),)))),
    "torchao-int4": ("b5fc12e4df92b111", RunSpec(backend="torchao", quant=QuantSpec(
        dtype="bf16", method="int4-weight-only"))),
}


@pytest.mark.parametrize("name", PINNED)
def test_a_spec_without_a_policy_keeps_its_key_hash(name):
    want, s = PINNED[name]
    assert s.key_hash() == want
    assert "overrides" not in s.to_dict()["quant"]


def policy_spec() -> RunSpec:
    rules = (Override("lm_head", "none"), Override("re:.*mlp.*", "int4-weight-only", (("group_size", 32),)))
    return RunSpec(model=ModelSpec("synthetic", "tiny-llama"), backend="torchao",
                   quant=QuantSpec("bf16", "int8-weight-only", overrides=rules))


def test_a_policy_round_trips_through_json_and_is_part_of_the_key():
    s = policy_spec()
    back = RunSpec.from_dict(json.loads(json.dumps(s.to_dict())))
    assert back == s and back.key_hash() == s.key_hash()
    assert s.to_dict()["quant"]["overrides"][1] == {"pattern": "re:.*mlp.*", "method": "int4-weight-only",
                                                    "params": (("group_size", 32),)}
    plain = RunSpec(model=s.model, backend="torchao", quant=QuantSpec("bf16", "int8-weight-only"))
    assert s.key_hash() != plain.key_hash()
    reordered = RunSpec(model=s.model, backend="torchao",
                        quant=QuantSpec("bf16", "int8-weight-only", overrides=s.quant.overrides[::-1]))
    assert reordered.key_hash() != s.key_hash()  # order decides which rule wins, so it is identity


def test_a_policy_shows_in_the_label():
    assert policy_spec().quant.label == \
        "int8-weight-only/bf16 +{lm_head=none; re:.*mlp.*=int4-weight-only(group_size=32)}"
    assert QuantSpec("bf16", "int8-weight-only").label == "int8-weight-only/bf16"
