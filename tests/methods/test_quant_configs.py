"""Quantization configs: typed, validated, round-trip with a type tag, one handler per type."""

import subprocess
import sys
from dataclasses import dataclass

import pytest

from quantscope.errors import FormatError, UserError
from quantscope.methods import METHODS, config_from_dict, config_from_spec, handler_for
from quantscope.methods.bnb_configs import NF4, BnbConfig, LLMInt8
from quantscope.methods.configs import check_group_size, register_handler, register_method
from quantscope.methods.torchao_configs import Int4WeightOnly, IntxWeightOnly
from quantscope.spec import QuantSpec

pytestmark = pytest.mark.unit

ALL = [(backend, name) for backend, name, _ in METHODS.items()]
WITH_HANDLERS = [(b, n) for b, n in ALL if b in ("torchao", "bnb")]  # ORT/llama.cpp configs feed converters


def spec(method, **params):
    return QuantSpec(method=method, params=tuple(params.items()))


def builtin(backend: str | None = None) -> set[str]:
    """Registered method names without those a test plug-in added in this process (tests/helpers)."""
    return {n for b, n, cls in METHODS.items()
            if not cls.__module__.startswith("helpers.") and backend in (None, b)}


def test_the_requested_methods_exist_and_split_by_backend():
    torchao, bnb = builtin("torchao"), builtin("bnb")
    assert {"int8-weight-only", "int8-dynamic", "int4-weight-only", "float8-dynamic"} <= torchao
    assert bnb == {"int8", "nf4", "fp4"}
    assert builtin("ort") == {"int8", "int4"}
    assert {"q8_0", "q4_k_m", "q4_0", "f16"} <= builtin("llamacpp")
    assert torchao.isdisjoint(bnb) and {n for _, n in ALL} == builtin()


def test_the_same_name_under_two_backends_is_two_configs():
    bnb, ort = config_from_spec(spec("int8"), "bnb"), config_from_spec(spec("int8"), "ort")
    assert type(bnb).__name__ == "LLMInt8" and type(ort).__name__ == "OrtInt8"
    assert config_from_dict(ort.to_dict()) == ort and config_from_dict(bnb.to_dict()) == bnb
    with pytest.raises(UserError, match=r"exists under several backends \(bnb, ort, ortgenai\)"):
        config_from_spec(spec("int8"))
    with pytest.raises(UserError, match="unknown parameter 'threshold'"):
        config_from_spec(spec("int8", threshold=6), "ort")


@pytest.mark.parametrize("backend, method", ALL)
def test_every_config_round_trips_with_its_type_tag(backend, method):
    cfg = config_from_spec(spec(method), backend)
    d = cfg.to_dict()
    assert (d["type"], d["backend"], d["version"]) == (method, backend, type(cfg).version)
    assert config_from_dict(d) == cfg
    assert type(config_from_dict(d)) is type(cfg)


def test_a_dict_written_before_backends_keyed_methods_still_loads():
    assert config_from_dict({"type": "int4-weight-only", "version": 1, "params": {"group_size": 32}}).group_size == 32
    with pytest.raises(FormatError, match="add \"backend\""):
        config_from_dict({"type": "int8", "version": 1, "params": {}})


@pytest.mark.parametrize("backend, method", WITH_HANDLERS)
def test_every_config_type_has_exactly_its_handler(backend, method):
    cfg = config_from_spec(spec(method), backend)
    handler = handler_for(cfg)
    # a calibrated method's handler is an object with prepare/convert hooks (methods/calibrated.py)
    assert callable(handler) or (callable(handler.prepare) and callable(handler.convert))
    with pytest.raises(ValueError, match="already registered"):
        register_handler(type(cfg))(lambda *a: None)


def test_changed_params_round_trip_and_show_in_the_description():
    cfg = config_from_spec(spec("int4-weight-only", group_size=32, packing="opaque"))
    assert config_from_dict(cfg.to_dict()) == cfg
    assert cfg.describe() == "int4-weight-only(group_size=32, packing=opaque)"


def test_cli_strings_are_coerced_to_the_declared_types():
    assert config_from_spec(spec("int4-weight-only", group_size="64")).group_size == 64
    assert config_from_spec(spec("nf4", double_quant="true")).double_quant is True
    assert config_from_spec(spec("int8", threshold="4.5"), "bnb").threshold == 4.5
    assert config_from_spec(spec("intx-weight-only", group_size="none")).group_size is None


def test_nf4_and_fp4_are_one_family_with_the_type_fixed_by_name():
    assert config_from_spec(spec("nf4")).quant_type == "nf4"
    assert config_from_spec(spec("fp4")).quant_type == "fp4"
    assert NF4().resolved_compute_dtype("bf16") == "bf16"
    assert NF4(compute_dtype="fp32").resolved_compute_dtype("bf16") == "fp32"


@pytest.mark.parametrize("method, params, message", [
    ("int4-weight-only", {"group_size": 48}, "group_size=48 is not one of 32, 64, 128, 256"),
    ("int4-weight-only", {"packing": "zip"}, "packing='zip' is not one of auto, opaque"),
    ("int4-weight-only", {"qparams": "hqq", "packing": "plain"}, "qparams=hqq needs packing=tile-packed"),
    ("int4-weight-only", {"group_size": "sixty"}, "'sixty' is not an int"),
    ("int4-weight-only", {"group_size": 64.5}, "64.5 is not an integer"),
    ("intx-weight-only", {"bits": 9}, "bits=9 must be between 1 and 8"),
    ("int8", {"threshold": -1}, "threshold=-1.0 must be >= 0"),
    ("nf4", {"double_quant": "maybe"}, "is not a boolean"),
    ("nf4", {"compute_dtype": "int8"}, "compute_dtype='int8' is not one of auto, fp32, bf16, fp16"),
    ("int8-dynamic-int4", {"group_size": 256}, "group_size=256 is not one of 32, 64, 128"),
    ("int4", {"block_size": 48}, "block_size=48 must be a power of two >= 16"),
    ("int4", {"accuracy_level": 5}, "accuracy_level=5 is not one of 0, 1, 2, 3, 4"),
    ("q4_k_m", {"requantize": "perhaps"}, "requantize='perhaps' is not a boolean"),
    ("q4_0", {"group_size": 32}, "q4_0: unknown parameter 'group_size'. Valid: requantize"),
])
def test_bad_values_are_one_line_user_errors(method, params, message):
    backend = {"int8": "bnb", "int4": "ort"}.get(method)
    with pytest.raises(UserError, match=message) as err:
        config_from_spec(spec(method, **params), backend)
    assert "\n" not in str(err.value)


def test_unknown_param_is_a_user_error_naming_the_near_one():
    message = r"unknown parameter 'groupsize'\. Did you mean 'group_size'\?"
    with pytest.raises(UserError, match=message) as err:
        config_from_spec(spec("int4-weight-only", groupsize=64))
    assert "Valid: lm_head, group_size, packing, qparams" in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_method_suggests_the_near_name():
    with pytest.raises(UserError, match="Did you mean 'int4-weight-only'"):
        config_from_spec(spec("int4-weight-olny"))


def test_a_method_name_cannot_be_registered_twice():
    with pytest.raises(ValueError, match="already registered"):
        @register_method("nf4")
        @dataclass(frozen=True)
        class Another(BnbConfig):
            pass


def test_from_dict_loads_only_registered_types_at_their_version():
    with pytest.raises(FormatError, match="is not one of"):
        config_from_dict({"type": "os.system", "version": 1, "params": {}})
    with pytest.raises(FormatError, match="is not one of"):
        config_from_dict({"type": "nf4", "backend": "ort", "version": 1, "params": {}})
    with pytest.raises(FormatError, match="version 99"):
        config_from_dict({"type": "nf4", "version": 99, "params": {}})
    with pytest.raises(UserError, match="unknown parameter 'evil'"):
        config_from_dict({"type": "nf4", "version": 1, "params": {"evil": 1}})


def test_group_size_must_divide_every_in_features_and_the_error_names_one_that_fits():
    # SmolLM2's width 576 = 9 x 64 is not a multiple of 128 (FACTS.md).
    shapes = {"layers.0.q_proj": 576, "layers.0.down_proj": 1536}
    Int4WeightOnly(group_size=64).check_model(shapes)
    message = (r"group_size=128 does not divide in_features=576 of layers\.0\.q_proj "
               r"\(1 layer\(s\) affected\); use group_size=64")
    with pytest.raises(UserError, match=message):
        Int4WeightOnly(group_size=128).check_model(shapes)
    IntxWeightOnly(group_size=None).check_model(shapes)  # per-channel: any width
    with pytest.raises(UserError, match="no power-of-two group fits"):
        check_group_size("x", 64, {"a": 100})


def test_threshold_is_stored_as_float():
    assert LLMInt8.from_params({"threshold": 6}).to_dict()["params"] == {"threshold": 6.0}


def test_methods_registry_is_the_allowlist():
    assert builtin() == {n for _, n in ALL}


def test_configs_import_no_heavy_library():
    code = ("import sys; from quantscope.methods import METHODS, config_from_spec; "
            "from quantscope.spec import QuantSpec; "
            "[config_from_spec(QuantSpec(method=m), b) for b, m, _ in METHODS.items()]; "
            "heavy = ('torch', 'torchao', 'transformers', 'bitsandbytes'); "
            "print(' '.join(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
