"""The model's context, read without loading weights: synthetic configs, HF folders, GGUF metadata."""

from __future__ import annotations

import json

import pytest

from quantscope.errors import UserError
from quantscope.models import parse_model, resolve
from quantscope.models.base import ModelArtifact
from quantscope.models.context import check_fits, context_from_config, context_length, gguf_context
from quantscope.spec import QualitySpec, RunSpec, WorkloadSpec

pytestmark = pytest.mark.unit


def write_gguf(path, arch: str = "llama", n_ctx: int | None = 1024) -> None:
    import gguf
    import numpy as np

    w = gguf.GGUFWriter(str(path), arch)
    if n_ctx is not None:
        w.add_context_length(n_ctx)
    w.add_tensor("t", np.zeros(32, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_gguf_context_comes_from_the_architecture_key(tmp_path):
    write_gguf(tmp_path / "a.gguf", "llama", 1024)
    write_gguf(tmp_path / "b.gguf", "qwen2", None)
    assert gguf_context(str(tmp_path / "a.gguf")) == 1024
    assert gguf_context(str(tmp_path / "b.gguf")) is None  # a file that does not say: no check


def test_hf_folder_context_is_read_from_config_json(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_positions": 512}))
    assert context_length(ModelArtifact(format="hf", path=str(tmp_path))) == 512
    assert context_from_config({"max_position_embeddings": True}) is None  # a bool is not a length


def test_check_fits_counts_prompt_plus_generated_tokens_and_the_quality_window():
    artifact = resolve(parse_model("synthetic:tiny-llama"))  # 2048 positions
    base = RunSpec(model=parse_model("synthetic:tiny-llama"), quality=QualitySpec(enabled=False))
    check_fits(RunSpec(model=base.model, workload=WorkloadSpec(prompt_tokens=1984, gen_tokens=64),
                       quality=base.quality), artifact)  # exactly full: allowed
    with pytest.raises(UserError, match="1985 \\+ --gen-tokens 64 = 2049 tokens .* 2048 tokens"):
        check_fits(RunSpec(model=base.model, workload=WorkloadSpec(prompt_tokens=1985, gen_tokens=64),
                           quality=base.quality), artifact)
    with pytest.raises(UserError, match="--ctx 4096 is longer than the context"):
        check_fits(RunSpec(model=base.model, quality=QualitySpec(enabled=True, ctx=4096)), artifact)
