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
