import json

import numpy as np
import pytest
from helpers.models import one_line

from quantscope.errors import UserError
from quantscope.models import hub
from quantscope.spec import ModelSpec

pytestmark = pytest.mark.unit

REPO = "acme/tiny"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def fake_cache(root):
    """The hub cache layout huggingface_hub reads: refs/main names a snapshot folder."""
    from safetensors.numpy import save_file

    repo = root / "models--acme--tiny"
    snap = repo / "snapshots" / COMMIT
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama"}
    (snap / "config.json").write_text(json.dumps(config))
    save_file({"w": np.zeros(4, dtype=np.float32)}, str(snap / "model.safetensors"))
    return snap


def test_cached_hub_model_resolves_as_a_folder(tmp_path):
    snap = fake_cache(tmp_path)
    a = hub.resolve(ModelSpec("hub", REPO), cache_dir=tmp_path)
    assert a.format == "hf" and a.path == str(snap.resolve()) and a.arch == "LlamaForCausalLM"
    assert hub.resolve(ModelSpec("hub", REPO, revision=COMMIT), cache_dir=tmp_path).path == a.path


def test_uncached_hub_model_is_a_one_line_offline_error(tmp_path):
    with pytest.raises(UserError) as e:
        hub.resolve(ModelSpec("hub", "acme/absent"), cache_dir=tmp_path)
    assert one_line(e) == ("model acme/absent is not in the local Hugging Face cache and this machine "
                           "is offline: download it elsewhere and copy it into ~/.cache/huggingface/hub, or "
                           "pass a local folder")


def test_uncached_revision_is_named(tmp_path):
    fake_cache(tmp_path)
    with pytest.raises(UserError) as e:
        hub.resolve(ModelSpec("hub", REPO, revision="f" * 40), cache_dir=tmp_path)
    assert f"at revision {'f' * 40}" in one_line(e)
