"""The sweep matrix: the default covers every configuration the code knows; TOML and flags build it."""

import pytest

from quantscope.errors import FormatError, UserError
from quantscope.spec import ModelSpec, QualitySpec, RunSpec, reference_spec
from quantscope.sweep.matrix import DEFAULT_MATRIX, Entry, from_flags, from_toml, reference_first

pytestmark = pytest.mark.unit


def test_default_matrix_covers_every_runtime_and_method_named_in_the_issue():
    have = {(e.backend, e.dtype, e.quant, e.options) for e in DEFAULT_MATRIX}
    want = {
        ("torch", "fp32", "none", ()), ("torch", "bf16", "none", ()),
        ("torchao", "fp32", "int8-weight-only", ()), ("torchao", "fp32", "int8-dynamic", ()),
        ("torchao", "bf16", "int4-weight-only", ()), ("torchao", "bf16", "float8-dynamic", ()),
        ("bnb", "fp32", "int8", ()), ("bnb", "fp32", "nf4", ()), ("bnb", "fp32", "fp4", ()),
        ("ort", "fp32", "none", ()), ("ort", "fp32", "none", (("kv_cache", False),)),
        ("ort", "fp32", "int8", ()), ("ort", "fp32", "int4", ()),
        ("llamacpp", "fp32", "q8_0", ()), ("llamacpp", "fp32", "q4_k_m", ()), ("llamacpp", "fp32", "q4_0", ()),
    }
    assert want <= have
    assert len(DEFAULT_MATRIX) == len(have)  # no duplicates


def test_default_matrix_holds_every_registered_torchao_and_bnb_method_or_says_why_not():
    from quantscope.methods import METHODS
    from quantscope.sweep.matrix import LEFT_OUT_OF_DEFAULT

    for backend in ("torchao", "bnb"):
        listed = {e.quant for e in DEFAULT_MATRIX if e.backend == backend}
        left_out = {m for b, m in LEFT_OUT_OF_DEFAULT if b == backend}
        # a method a test plug-in registered in this process (tests/helpers) is no built-in
        registered = {n for b, n, cls in METHODS.items() if b == backend and not cls.__module__.startswith("helpers.")}
        assert not listed & left_out, backend
        assert listed | left_out == registered, backend
    assert all(len(reason) > 20 for reason in LEFT_OUT_OF_DEFAULT.values())


def test_every_default_backend_is_registered():
    from quantscope.backends import BACKENDS

    assert {e.backend for e in DEFAULT_MATRIX} <= set(BACKENDS.names())


def test_flags_make_every_combination_with_defaults_for_missing_lists():
    entries = from_flags(["torch", "ort"], ["none"], ["fp32", "bf16"])
    assert [e.label for e in entries] == ["torch/fp32", "torch/bf16", "ort/fp32", "ort/bf16"]
    assert [e.label for e in from_flags([], [], [])] == ["torch/fp32"]


def test_flags_reject_a_bad_dtype_up_front():
    with pytest.raises(UserError, match="dtype 'fp8' is not one of"):
        from_flags(["torch"], [], ["fp8"])


def test_toml_matrix_with_params_and_options(tmp_path):
    p = tmp_path / "m.toml"
    p.write_text('[[config]]\nbackend = "torch"\n\n[[config]]\nbackend = "torchao"\ndtype = "bf16"\n'
                 'quant = "int4-weight-only"\nparams = { group_size = 64 }\n\n'
                 '[[config]]\nbackend = "ort"\noptions = { kv_cache = false }\n\n[[config]]\nbackend = "torch"\n')
    entries = from_toml(p)
    assert entries == [Entry("torch"), Entry("torchao", "bf16", "int4-weight-only", (("group_size", 64),)),
                       Entry("ort", options=(("kv_cache", False),))]  # the repeated torch entry once
    assert entries[1].label == "torchao/int4-weight-only/bf16[group_size=64]"
    assert entries[2].label == "ort/fp32 kv_cache=False"


@pytest.mark.parametrize("text, needle", [
    ('[[config]]\nbackend = "torch"\nqaunt = "int8"\n', "unknown key(s) qaunt"),
    ('[[config]]\ndtype = "fp32"\n', 'needs backend = "NAME"'),
    ('[[config]]\nbackend = "torch"\nparams = 3\n', "must be a TOML table"),
    ('[[config]]\nbackend = "torch"\naccelerator = 100\n', "accelerator must be a string"),
    ('backend = "torch"\n', "unknown top-level key(s) backend"),
    ("[[config]\n", "is not valid TOML"),
    ("", "has no [[config]] entries"),
])
def test_bad_toml_is_one_line_format_error(tmp_path, text, needle):
    p = tmp_path / "m.toml"
    p.write_text(text)
    with pytest.raises(FormatError) as e:
        from_toml(p)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_an_entry_may_name_the_accelerator_it_runs_on_outside_its_key(tmp_path):
    from quantscope.sweep.matrix import accelerators

    p = tmp_path / "m.toml"
    p.write_text('[[config]]\nbackend = "torch"\ndtype = "bf16"\naccelerator = "H100"\n\n'
                 '[[config]]\nbackend = "torch"\n')
    entries = from_toml(p)
    assert accelerators(entries) == {"torch/bf16": "H100"}
    base = RunSpec()
    assert entries[0].spec(base).key_hash() == Entry("torch", "bf16").spec(base).key_hash()


def test_missing_toml_is_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        from_toml(tmp_path / "nope.toml")


def test_reference_first_moves_or_adds_the_fp32_reference():
    base = RunSpec(quality=QualitySpec(max_tokens=256))
    specs = [e.spec(base) for e in (Entry("ort", options=(("kv_cache", False),)), Entry("torch", "bf16"))]
    out = reference_first(specs)
    assert out[0] == reference_spec(specs[0]) and out[1:] == specs  # added in front
    again = reference_first([specs[1], out[0]])
    assert again == [out[0], specs[1]]  # moved in front, not duplicated


def test_no_reference_without_a_quality_pass():
    base = RunSpec(model=ModelSpec("synthetic", "tiny-llama"), quality=QualitySpec(enabled=False))
    specs = [Entry("torch", "bf16").spec(base)]
    assert reference_first(specs) == specs


# --- policies, options and parameters checked when the spec is built ----------------------------------
def test_toml_config_takes_override_tables_in_order(tmp_path):
    from quantscope.spec import Override

    p = tmp_path / "m.toml"
    p.write_text('[[config]]\nbackend = "torchao"\nquant = "int8-weight-only"\n'
                 '[[config.override]]\npattern = "lm_head"\nquant = "none"\n'
                 '[[config.override]]\npattern = "re:.*mlp.*"\nquant = "int4-weight-only"\n'
                 'params = { group_size = 32 }\n')
    (entry,) = from_toml(p)
    assert entry.overrides == (Override("lm_head"), Override("re:.*mlp.*", "int4-weight-only", (("group_size", 32),)))
    assert entry.label == "torchao/int8-weight-only/fp32 +{lm_head=none; re:.*mlp.*=int4-weight-only(group_size=32)}"
    spec = entry.spec(RunSpec(model=ModelSpec("synthetic", "tiny-llama")))
    assert spec.quant.overrides == entry.overrides


@pytest.mark.parametrize("body, message", [
    ('[[config.override]]\npattern = "lm_head"\nmethod = "none"\n', "unknown key"),
    ('override = { pattern = "lm_head" }\n', "must be an array of tables"),
    ('[[config.override]]\nquant = "none"\n', "needs pattern"),
])
def test_bad_override_tables_are_format_errors(tmp_path, body, message):
    p = tmp_path / "m.toml"
    p.write_text('[[config]]\nbackend = "torchao"\nquant = "int8-weight-only"\n' + body)
    with pytest.raises(FormatError, match=message):
        from_toml(p)


@pytest.mark.parametrize("entry, message", [
    (Entry("torch", options=(("bogus", 1),)), "torch: unknown option 'bogus'. Valid: compile"),
    (Entry("torchao", quant="int8-weight-only", options=(("compil", True),)), "Did you mean 'compile'"),
    (Entry("ort", options=(("kvcache", False),)), "Did you mean 'kv_cache'"),
    (Entry("ort", options=(("opt_level", "max"),)), "opt_level='max' is not one of all, extended"),
    (Entry("llamacpp", quant="q4_0", options=(("nbatch", 512),)), "Did you mean 'n_batch'"),
    (Entry("llamacpp", quant="q4_0", options=(("n_batch", 0),)), "n_batch must be a positive integer"),
    (Entry("torch", params=(("group_size", 32),)), "--quant none takes no --qparam"),
    (Entry("ort", quant="int4", params=(("blocksize", 32),)), "Did you mean 'block_size'"),
])
def test_unknown_options_and_params_are_refused_when_the_spec_is_built(entry, message):
    with pytest.raises(UserError, match=message) as err:
        entry.spec(RunSpec(model=ModelSpec("synthetic", "tiny-llama")))
    assert "\n" not in str(err.value)


def test_a_policy_file_gives_the_default_and_the_overrides(tmp_path):
    from quantscope.spec import Override
    from quantscope.sweep.matrix import policy_from_toml

    p = tmp_path / "policy.toml"
    p.write_text('quant = "int8-weight-only"\n[[override]]\npattern = "lm_head"\nquant = "none"\n')
    assert policy_from_toml(p) == ("int8-weight-only", (), (Override("lm_head"),))
    p.write_text('quant = "int8-weight-only"\nmethods = 1\n')
    with pytest.raises(FormatError, match="unknown key"):
        policy_from_toml(p)
