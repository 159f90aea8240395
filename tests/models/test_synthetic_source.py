import pytest
from helpers.models import one_line

from quantscope.errors import UserError
from quantscope.models import resolve
from quantscope.models.synthetic import ARCHITECTURES
from quantscope.spec import ModelSpec

pytestmark = pytest.mark.unit


def width_and_heads(cfg: dict) -> tuple[int, int, int]:
    """(hidden size, attention heads, KV heads) under either naming: Llama-style or GPT-2's n_embd/n_head."""
    width = cfg.get("hidden_size", cfg.get("n_embd"))
    heads = cfg.get("num_attention_heads", cfg.get("n_head"))
    return width, heads, cfg.get("num_key_value_heads", heads)


def test_every_architecture_has_what_a_backend_needs():
    for name, cfg in ARCHITECTURES.items():
        assert cfg["architectures"] and cfg["model_type"], name
        width, heads, kv_heads = width_and_heads(cfg)
        assert width % heads == 0, name
        assert heads % kv_heads == 0, name


def test_published_shapes():
    keys = ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
            "intermediate_size", "vocab_size")
    one_b = ARCHITECTURES["llama-1b"]
    assert [one_b[k] for k in keys] == [2048, 16, 32, 8, 8192, 128256]
    assert (one_b["rope_theta"], one_b["tie_word_embeddings"]) == (500000.0, True)
    smol = ARCHITECTURES["smollm2-135m"]
    assert [smol[k] for k in keys] == [576, 30, 9, 3, 1536, 49152]


def test_resolve_gives_a_private_copy():
    a = resolve(ModelSpec("synthetic", "tiny-llama"))
    assert a.format == "synthetic" and a.synthetic and a.path is None and a.file_bytes == 0
    assert a.config["model_type"] == "llama" and a.config["architectures"] == ["LlamaForCausalLM"]
    a.config["hidden_size"] = 1
    assert resolve(ModelSpec("synthetic", "tiny-llama")).config["hidden_size"] == 64
    assert a.digest == resolve(ModelSpec("synthetic", "tiny-llama")).digest


def test_typo_suggests_the_near_name():
    with pytest.raises(UserError) as e:
        resolve(ModelSpec("synthetic", "qwen2-05b"))
    assert "Did you mean 'qwen2-0.5b'?" in one_line(e)


def test_configs_build_in_transformers():
    transformers = pytest.importorskip("transformers")
    for name in ARCHITECTURES:
        cfg = resolve(ModelSpec("synthetic", name)).config
        config = transformers.AutoConfig.for_model(cfg.pop("model_type"), **cfg)
        assert config.hidden_size == width_and_heads(ARCHITECTURES[name])[0]
        from quantscope.models.materialize import rope_theta

        if "rope_theta" in ARCHITECTURES[name]:  # GPT-2 has learned positions, no rope
            assert rope_theta(config) == ARCHITECTURES[name]["rope_theta"]
