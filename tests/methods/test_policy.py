"""Quantization policies: a default method plus ordered per-module overrides, first match wins."""

import pytest

from quantscope.errors import UserError
from quantscope.methods import check_quant, resolve_policy
from quantscope.spec import Override, QuantSpec

pytestmark = pytest.mark.unit

NAMES = ["model.layers.0.self_attn.q_proj", "model.layers.0.mlp.up_proj", "model.layers.1.mlp.up_proj", "lm_head"]


def policy(method="int8-weight-only", *rules, **params):
    return QuantSpec(method=method, params=tuple(params.items()), overrides=tuple(Override.parse(r) for r in rules))


def methods(plan):
    return {name: (c.describe() if c else "none") for name, c in plan.items()}


def test_first_matching_override_wins_and_the_rest_get_the_default():
    q = policy("int8-weight-only", "lm_head=none", "re:.*layers\\.0\\.mlp.*=int4-weight-only(group_size=32)",
               "*.mlp.*=none")
    assert methods(resolve_policy(q, "torchao", NAMES)) == {
        "model.layers.0.self_attn.q_proj": "int8-weight-only",
        "model.layers.0.mlp.up_proj": "int4-weight-only(group_size=32)",
        "model.layers.1.mlp.up_proj": "none",
        "lm_head": "none",
    }


def test_a_pattern_that_matches_nothing_is_an_error_showing_the_names():
    with pytest.raises(UserError, match=r"override 'mlp' matches no quantizable module .*model\.layers\.0"
                       r".*for a substring use '\*mlp\*'"):
        resolve_policy(policy("int8-weight-only", "mlp=none"), "torchao", NAMES)


def test_an_override_shadowed_by_an_earlier_one_is_an_error():
    with pytest.raises(UserError, match="takes effect nowhere"):
        resolve_policy(policy("int8-weight-only", "*.mlp.*=none", "*.layers.1.mlp.*=none"), "torchao", NAMES)


@pytest.mark.parametrize("quant, backend, message", [
    (policy("none", group_size=32), "torch", "--quant none takes no --qparam, got group_size"),
    (policy("int8-weight-only", "lm_head=nf4"), "torchao", "override lm_head: 'nf4' is a bnb method"),
    (policy("int8-weight-only", "lm_head=int8-weight-olny"), "torchao", "Did you mean 'int8-weight-only'"),
    (policy("int8-weight-only", "lm_head=int4-weight-only(group=32)"), "torchao",
     "unknown parameter 'group'. Did you mean 'group_size'"),
    (policy("int4-weight-olny"), "torchao", "Did you mean 'int4-weight-only'"),
    (policy("q4_k_m", requant=True), "llamacpp", "unknown parameter 'requant'. Did you mean 'requantize'"),
    (policy("Q4_K_M"), "llamacpp", "method names are lower-case: use --quant q4_k_m"),
])
def test_parent_side_checks_are_one_line_errors_naming_the_near_name(quant, backend, message):
    with pytest.raises(UserError, match=message) as err:
        check_quant(backend, quant)
    assert "\n" not in str(err.value)


def test_a_default_method_of_another_backend_is_left_for_the_backend_to_refuse():
    check_quant("torchao", policy("nf4"))  # a sweep's cross product: an unsupported row, not an error


@pytest.mark.parametrize("text, message", [
    ("lm_head", "is not PATTERN=METHOD"),
    ("re:([=int8-weight-only", "is not a regular expression"),
    ("lm_head=none(x=1)", "none takes no parameters"),
    ("lm_head=int4-weight-only(group_size)", "is not KEY=VALUE"),
])
def test_bad_override_text_is_a_one_line_error(text, message):
    with pytest.raises(UserError, match=message):
        Override.parse(text)


def test_override_text_round_trips_through_its_label():
    for text in ["lm_head=none", "re:.*mlp.*=int4-weight-only(group_size=32)", "*.q_proj=int8-dynamic"]:
        assert Override.parse(text).label == text
        assert Override.parse(Override.parse(text).label) == Override.parse(text)
