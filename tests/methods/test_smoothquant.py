"""SmoothQuant W8A8 on a tiny Llama built here (2 layers, width 64): the fold preserves the function,
the outlier transform shows the paper's effect, alpha=auto stores its choice, bad input is one line.

The model and its inputs are random, so quality is the relative error of the logits against FP32 on
token ids other than the calibration ones; the claims are ratios of those errors."""

from types import SimpleNamespace

import pytest

from quantscope.errors import UserError
from quantscope.methods import config_from_dict, config_from_spec, handler_for
from quantscope.methods.smoothquant import W8A8, SmoothQuantW8A8
from quantscope.methods.smoothquant.mappings import groups_for
from quantscope.spec import QuantSpec

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

VOCAB, CAL_BATCHES, SEQ = 256, 4, 32


def tiny_llama(seed: int = 0):
    config = transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                                      initializer_range=0.1, tie_word_embeddings=True)
    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():  # norms away from 1, as trained ones are
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(0.5 + torch.rand_like(p))
    return model


def ids(seed: int, rows: int = 1):
    return torch.randint(0, VOCAB, (rows, SEQ), generator=torch.Generator().manual_seed(seed))


def logits(model, x):
    with torch.no_grad():
        return model(input_ids=x).logits.float()


def quantize(model, method: str, **params):
    """The calibrated seam as the torchao backend drives it: prepare -> calibration batches -> convert."""
    config = config_from_spec(QuantSpec(method=method, params=tuple(params.items())), "torchao")
    handler = handler_for(config)
    handler.prepare(config, model, None, None)
    with torch.no_grad():
        for i in range(CAL_BATCHES):
            model(input_ids=ids(100 + i))
    return handler.convert(config, model, None, None)


def rel_error(model, reference_logits, x) -> float:
    return float((logits(model, x) - reference_logits).norm() / reference_logits.norm())


def add_outliers(model, k: float, channels=(3, 17)):
    """Function-preserving: norm weight x K on some channels, the Linears reading them / K."""
    with torch.no_grad():
        for g in groups_for(model):
            g.norm.weight[list(channels)] *= k
            for m in g.linears:
                m.weight[:, list(channels)] /= k
    return model


def test_smoothing_alone_keeps_fp32_logits():
    from quantscope.methods.smoothquant.smooth import Observer, smooth_groups

    model, x = tiny_llama(), ids(1)
    before = logits(model, x)
    groups = groups_for(model)
    obs = Observer()
    for g in groups:
        obs.watch_output(g.norm_name, g.norm, keep=False)
    logits(model, ids(2))
    obs.remove()
    chosen = smooth_groups(groups, obs, 0.85, static=False, selected=lambda n: True)
    assert len(chosen) == 4 and set(chosen.values()) == {0.85}
    assert float(groups[0].norm.weight.detach().sub(1).abs().max()) > 0.1  # the fold really changed the weights
    assert rel_error(model, before, x) < 1e-5


def test_outliers_break_naive_static_w8a8_and_smoothquant_undoes_them():
    x = ids(7, rows=2)
    ref = logits(tiny_llama(), x)
    outlier = add_outliers(tiny_llama(), 64.0)
    assert rel_error(outlier, ref, x) < 1e-5  # the transform leaves the function as it was

    err = {}
    for name, outliers, method, params in [
        ("naive", False, "w8a8", {"activation": "static"}),
        ("naive+outliers", True, "w8a8", {"activation": "static"}),
        ("sq", False, "smoothquant-w8a8", {"activation": "static", "alpha": 0.5}),
        ("sq+outliers", True, "smoothquant-w8a8", {"activation": "static", "alpha": 0.5}),
    ]:
        model = add_outliers(tiny_llama(), 64.0) if outliers else tiny_llama()
        facts = quantize(model, method, **params)
        assert facts["quantized_linears"] == 14 and facts["weight_tensor_types"] == ["Int8Tensor", "Parameter"]
        err[name] = rel_error(model, ref, x)
    print(err)
    assert err["naive+outliers"] > 3 * err["naive"]  # per-tensor scales swamped by the outlier channels
    assert err["sq+outliers"] == pytest.approx(err["sq"], rel=0.03)  # smoothing undid the transform
    assert err["sq+outliers"] < err["naive+outliers"] / 3


def test_dynamic_w8a8_runs_through_torch_int_mm(monkeypatch):
    model, x = tiny_llama(), ids(3)
    ref = logits(model, x)
    quantize(model, "smoothquant-w8a8")
    calls = []
    real = torch._int_mm
    monkeypatch.setattr(torch, "_int_mm", lambda a, b: calls.append(a.shape) or real(a, b))
    assert rel_error(model, ref, x) < 0.1
    assert len(calls) == 14  # every quantized Linear, none simulated


def test_auto_alpha_is_chosen_per_group_and_stored():
    model = add_outliers(tiny_llama(), 64.0)
    facts = quantize(model, "smoothquant-w8a8", alpha="auto", activation="static", auto_rows=8)
    sq = facts["smoothquant"]
    assert sq["alpha"] == "auto" and sq["groups"] == 4
    assert set(sq["alpha_per_group"]) == {f"model.layers.{i}.{n}" for i in range(2)
                                          for n in ("input_layernorm", "post_attention_layernorm")}
    assert all(a in [round(0.1 * i, 1) for i in range(11)] for a in sq["alpha_per_group"].values())
    assert sq["fold_logits_rel_change"] < 1e-5
    # with 64x outliers and static scales, no smoothing (alpha = 0 still divides by 1/max|W|) is never best
    assert min(sq["alpha_per_group"].values()) > 0.0


def test_choose_alpha_prefers_smoothing_where_the_activation_has_an_outlier():
    from quantscope.methods.smoothquant.smooth import choose_alpha

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 32, generator=gen)
    x[:, 5] *= 80.0
    lin = torch.nn.Linear(32, 16, bias=False)
    best, errors = choose_alpha(x, x.abs().amax(dim=0), [lin], static=True)
    assert best >= 0.3 and errors[best] < errors[0.0] / 5 and len(errors) == 11


@pytest.mark.parametrize("alpha", ["1.5", "-0.1", "nan", "half"])
def test_alpha_outside_0_1_is_one_line(alpha):
    with pytest.raises(UserError) as e:
        config_from_spec(QuantSpec(method="smoothquant-w8a8", params=(("alpha", alpha),)), "torchao")
    assert "\n" not in str(e.value) and "alpha=" in str(e.value) and "auto" in str(e.value)


def test_activation_names_its_choices():
    with pytest.raises(UserError, match="dynamic, static"):
        config_from_spec(QuantSpec(method="w8a8", params=(("activation", "per-tensor"),)), "torchao")


def test_unknown_architecture_is_refused_in_one_line():
    model = torch.nn.Module()
    model.config = SimpleNamespace(architectures=["GPTNeoXForCausalLM"])
    with pytest.raises(UserError) as e:
        groups_for(model)
    assert "\n" not in str(e.value) and "GPTNeoXForCausalLM" in str(e.value) and "LlamaForCausalLM" in str(e.value)


def test_unmapped_architecture_with_llama_names_falls_back_with_a_log(caplog):
    model = tiny_llama()
    model.config.architectures = ["MyLlamaForCausalLM"]
    with caplog.at_level("WARNING"):
        groups = groups_for(model)
    assert len(groups) == 4 and "MyLlamaForCausalLM is not in the mapping table" in caplog.text


def test_configs_round_trip_and_normalise_alpha():
    a = config_from_spec(QuantSpec(method="smoothquant-w8a8", params=(("alpha", "0.50"),)), "torchao")
    b = config_from_spec(QuantSpec(method="smoothquant-w8a8", params=(("alpha", 0.5),)), "torchao")
    assert a == b and a.alpha == "0.5" and isinstance(a, SmoothQuantW8A8)
    for config in (a, SmoothQuantW8A8(alpha="auto", activation="static"), W8A8(activation="static")):
        assert config_from_dict(config.to_dict()) == config
    assert W8A8().to_dict()["backend"] == "torchao"


def test_calibration_text_shorter_than_asked_is_one_line():
    from quantscope.methods.calibration import calibration_batches

    with pytest.raises(UserError) as e:  # beyond the text's bytes: refused when the config is made
        SmoothQuantW8A8(calib_samples=100_000, calib_seq_len=4096)
    assert "\n" not in str(e.value) and "fewer tokens than" in str(e.value)
    config = SmoothQuantW8A8(calib_samples=10, calib_seq_len=128)  # under it, but the tokenizer cuts 100 tokens
    with pytest.raises(UserError) as e:
        calibration_batches(config.calibration, lambda text: [1] * 100, VOCAB)
    assert "\n" not in str(e.value) and "fewer than" in str(e.value)


def test_simulated_w8a8_gives_the_quality_of_the_real_int8_path():
    """The fake-quant fallback (quality only, where no kernel runs) tracks torchao's int8 kernels."""
    x = ids(9, rows=2)
    ref = logits(tiny_llama(), x)
    for act in ("dynamic", "static"):
        real, sim = tiny_llama(), tiny_llama()
        quantize(real, "smoothquant-w8a8", activation=act)
        config = config_from_spec(QuantSpec(method="smoothquant-w8a8", params=(("activation", act),)), "torchao")
        handler = handler_for(config)
        handler.prepare(config, sim, None, None)
        with torch.no_grad():
            for i in range(CAL_BATCHES):
                sim(input_ids=ids(100 + i))
        facts = handler.convert_simulated(config, sim)
        assert "speed not measured" in facts["kernel"]
        assert all(type(m.weight).__name__ == "Parameter" for m in sim.modules() if isinstance(m, torch.nn.Linear))
        # the same size of error, not the same rounding of every value (measured: within 2 %)
        assert rel_error(sim, ref, x) == pytest.approx(rel_error(real, ref, x), rel=0.05)


def test_cli_refuses_alpha_outside_0_1_with_exit_2_before_running_anything(tmp_path):
    from helpers.cli import assert_one_line_error, qs

    p = qs("run", "--model", "synthetic:tiny-llama", "--backend", "torchao", "--quant", "smoothquant-w8a8",
           "--qparam", "alpha=1.5", "--no-quality", store=tmp_path / "s.sqlite")
    assert_one_line_error(p, 2, "alpha=1.5 is outside [0, 1]")
    assert "stored as run" not in p.stdout  # nothing measured, nothing stored


TINY = {  # a tiny model of every mapped family: LayerNorm biases (OPT, Bloom), Gemma's 1 + w, GPT-2's Conv1D
    "OPTForCausalLM": ("OPTConfig", dict(hidden_size=32, ffn_dim=64, num_hidden_layers=2, num_attention_heads=4,
                                         word_embed_proj_dim=32)),
    "BloomForCausalLM": ("BloomConfig", dict(hidden_size=32, n_layer=2, n_head=4)),
    "GPT2LMHeadModel": ("GPT2Config", dict(n_embd=32, n_layer=2, n_head=4)),
    "GemmaForCausalLM": ("GemmaConfig", dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                             num_attention_heads=4, num_key_value_heads=2, head_dim=8)),
    "Gemma2ForCausalLM": ("Gemma2Config", dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                               num_attention_heads=4, num_key_value_heads=2, head_dim=8)),
    "Qwen2ForCausalLM": ("Qwen2Config", dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                             num_attention_heads=4, num_key_value_heads=2)),
    "Phi3ForCausalLM": ("Phi3Config", dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                           num_attention_heads=4, num_key_value_heads=4, pad_token_id=0)),
}


@pytest.mark.parametrize("arch", sorted(TINY))
def test_every_mapped_architecture_folds_without_changing_the_function(arch):
    from quantscope.methods.smoothquant.mappings import LAYOUTS
    from quantscope.methods.smoothquant.smooth import Observer, smooth_groups

    cls_name, kw = TINY[arch]
    config = getattr(transformers, cls_name)(vocab_size=VOCAB, **kw)
    torch.manual_seed(0)
    model = getattr(transformers, arch)(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():  # norms and biases away from their initial 1 and 0
            if "norm" in name or "ln" in name:
                p.add_(0.5 * torch.rand_like(p))
    x = ids(5)
    before = logits(model, x)
    groups = groups_for(model)
    assert len(groups) == 2 * len(LAYOUTS[arch][1])
    obs = Observer()
    for g in groups:
        obs.watch_output(g.norm_name, g.norm, keep=False)
    logits(model, ids(6))
    obs.remove()
    smooth_groups(groups, obs, 0.5, static=False, selected=lambda n: True)
    assert rel_error(model, before, x) < 1e-5


def test_naive_dynamic_w8a8_takes_no_calibration_pass_and_the_others_do():
    from quantscope.backends.torchao.backend import apply_config

    fed = []

    def feed(config):
        fed.append(config.method)

    for method, params, needs in [("w8a8", {}, False), ("w8a8", {"activation": "static"}, True),
                                  ("smoothquant-w8a8", {}, True)]:
        config = config_from_spec(QuantSpec(method=method, params=tuple(params.items())), "torchao")
        assert config.needs_data is needs
        if not needs:  # converts without a batch: nothing observed, nothing needed
            model = tiny_llama()
            apply_config(config, model, None, None, feed)
            assert fed == [] and torch.isfinite(logits(model, ids(1))).all()
