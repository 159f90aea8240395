"""Shapes from config.json without weights; a malformed config names the field."""

import json

import pytest

from quantscope.errors import FormatError, UserError
from quantscope.models.shape import model_shape, shape_from_config
from quantscope.models.synthetic import config_for

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("name", "billions"), [
    ("distilgpt2", 0.082), ("gpt2", 0.124), ("tinyllama-1.1b", 1.10), ("llama-1b", 1.24), ("llama2-7b", 6.74),
    ("llama2-13b", 13.0), ("llama2-70b", 69.0), ("llama3-8b", 8.03), ("llama3-70b", 70.6), ("mistral-7b", 7.24),
    ("qwen2.5-7b", 7.62), ("qwen2-0.5b", 0.494),
])
def test_parameter_counts_match_the_published_sizes(name, billions):
    assert shape_from_config(config_for(name)).total_params / 1e9 == pytest.approx(billions, rel=0.01)


def test_config_json_file_and_folder(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(config_for("llama2-7b")))
    assert model_shape(str(tmp_path / "config.json")).layers == 32
    assert model_shape(str(tmp_path)).kv_heads == 32


def test_missing_field_is_named(tmp_path):
    cfg = config_for("llama3-8b")
    del cfg["num_hidden_layers"]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(FormatError, match="num_hidden_layers"):
        model_shape(str(tmp_path / "config.json"))


def test_malformed_field_and_json_are_named(tmp_path):
    cfg = config_for("llama3-8b")
    cfg["hidden_size"] = "4096"
    with pytest.raises(FormatError, match="'hidden_size' is '4096'"):
        shape_from_config(cfg)
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(FormatError, match="not valid JSON"):
        model_shape(str(bad))
    with pytest.raises(UserError, match="model_type 'bert'"):
        shape_from_config({"model_type": "bert"})
