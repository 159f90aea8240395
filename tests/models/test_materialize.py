import json
from pathlib import Path

import pytest

from quantscope import paths
from quantscope.artifacts.cache import MANIFEST, ArtifactCache, tool_versions
from quantscope.models import parse_model, resolve
from quantscope.models.base import ModelArtifact
from quantscope.models.materialize import PROVENANCE, dequant_recipe, dequantized, legacy_dequant_dir


@pytest.mark.integration
def test_hf_from_gguf_round_trips_rope_theta_and_caches(bundled):
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")  # transformers needs it to read a GGUF
    from transformers import AutoConfig, AutoTokenizer

    from quantscope.models.materialize import hf_from_gguf

    artifact = resolve(parse_model(None))
    folder = Path(hf_from_gguf(artifact))
    # One more entry of the artifact cache, keyed by the file's sha256 and the transformers version.
    assert folder.parent == paths.cache_root("artifacts", "hf-dequant")
    assert folder.name.endswith(dequant_recipe(artifact).key()[:16])
    assert dequant_recipe(artifact).tools == tool_versions("transformers")
    assert (folder / MANIFEST).is_file()
    assert not [p for p in folder.parent.iterdir() if p.name.endswith(".tmp")]  # no half-written leftovers
    config = AutoConfig.from_pretrained(folder)
    assert config.rope_parameters["rope_theta"] == 100000.0
    assert (config.hidden_size, config.num_hidden_layers, config.vocab_size) == (576, 30, 49152)
    assert json.loads((folder / PROVENANCE).read_text())["source_sha256"] == artifact.digest
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert len(tokenizer("def main():")["input_ids"]) > 0

    again = dequantized(artifact)
    assert again.cache_hit and str(again.path) == str(folder)  # a verified hit, not another dequantization


@pytest.mark.unit
def test_a_folder_dequantized_by_an_earlier_version_is_adopted_not_redone(tmp_path):
    """Before the artifact cache held it, the folder lived at dequant/<sha16>-tf<version>/; an upgrade
    finds it there (same sha256, same transformers) instead of dequantizing for ~17 s again."""
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF not read: the legacy folder answers")
    artifact = ModelArtifact(format="gguf", path=str(gguf), digest="ab" * 32)
    recipe = dequant_recipe(artifact)
    legacy = legacy_dequant_dir(recipe.source_digest, recipe.tools["transformers"])
    legacy.mkdir(parents=True)
    (legacy / "model.safetensors").write_bytes(b"weights")
    (legacy / PROVENANCE).write_text(json.dumps({"source_sha256": "ab" * 32, "rope_theta": 100000.0}))

    entry = dequantized(artifact, ArtifactCache(tmp_path / "artifacts"))
    assert not entry.cache_hit and entry.meta["adopted_from"] == str(legacy)
    assert (entry.path / "model.safetensors").read_bytes() == b"weights"
    assert dequantized(artifact, ArtifactCache(tmp_path / "artifacts")).cache_hit


@pytest.mark.unit
def test_a_legacy_folder_for_another_file_is_not_adopted(tmp_path, monkeypatch):
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"x")
    artifact = ModelArtifact(format="gguf", path=str(gguf), digest="cd" * 32)
    recipe = dequant_recipe(artifact)
    legacy = legacy_dequant_dir(recipe.source_digest, recipe.tools["transformers"])
    legacy.mkdir(parents=True)
    (legacy / PROVENANCE).write_text(json.dumps({"source_sha256": "ef" * 32}))  # a 16-char prefix clash
    calls = []

    def fake_child(target, kwargs, **_):
        calls.append(target)
        (Path(kwargs["out_dir"]) / PROVENANCE).write_text("{}")
        return {"built": True}

    monkeypatch.setattr("quantscope.artifacts.child.run_child", fake_child)
    entry = dequantized(artifact, ArtifactCache(tmp_path / "artifacts"), isolated=True)
    assert calls == ["quantscope.models.materialize:write_dequantized"] and entry.meta == {"built": True}
