"""Hub models: the local cache first, else a download through huggingface_hub (mocked here: these
tests never touch the network), offline respected, pickle-only repositories refused."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
from helpers.models import one_line

from quantscope.errors import UnsafeArtifactError, UserError
from quantscope.models import hub
from quantscope.spec import ModelSpec

pytestmark = pytest.mark.unit

REPO = "acme/tiny"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def fake_cache(root, repo_id=REPO, commit=COMMIT, ref="main"):
    """The hub cache layout huggingface_hub reads: refs/<ref> names a snapshot folder."""
    from safetensors.numpy import save_file

    repo = root / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / ref).write_text(commit)
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama"}
    (snap / "config.json").write_text(json.dumps(config))
    save_file({"w": np.zeros(4, dtype=np.float32)}, str(snap / "model.safetensors"))
    return snap


def test_cached_hub_model_resolves_as_a_folder(tmp_path):
    snap = fake_cache(tmp_path)
    a = hub.resolve(ModelSpec("hub", REPO), cache_dir=tmp_path)
    assert a.format == "hf" and a.path == str(snap.resolve()) and a.arch == "LlamaForCausalLM"
    assert hub.resolve(ModelSpec("hub", REPO, revision=COMMIT), cache_dir=tmp_path).path == a.path


@pytest.fixture
def hub_api(monkeypatch):
    """huggingface_hub's network calls replaced: model_info answers from `repos`, a download writes
    the cache layout a real one writes (only the files matching allow_patterns); calls are logged."""
    import fnmatch

    import huggingface_hub

    real_snapshot = huggingface_hub.snapshot_download
    state = SimpleNamespace(repos={}, calls=[], fail=None, kept=[])

    def model_info(self, repo_id, revision=None, **kw):
        state.calls.append(("model_info", repo_id, revision))
        if state.fail:
            raise state.fail
        files, sha = state.repos[repo_id]
        return SimpleNamespace(sha=sha, siblings=[SimpleNamespace(rfilename=f) for f in files])

    def snapshot_download(repo_id, revision=None, cache_dir=None, local_files_only=False, allow_patterns=None,
                          **kw):
        if local_files_only:
            return real_snapshot(repo_id, revision=revision, cache_dir=cache_dir, local_files_only=True)
        state.calls.append(("download", repo_id, revision, tuple(allow_patterns or ())))
        files, sha = state.repos[repo_id]
        state.kept = [f for f in files if any(fnmatch.fnmatch(f, p) for p in allow_patterns)]
        return str(fake_cache(cache_dir, repo_id, sha))

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    return state


def test_cached_model_makes_no_network_call(tmp_path, hub_api):
    snap = fake_cache(tmp_path)
    a = hub.resolve(ModelSpec("hub", REPO), cache_dir=tmp_path)
    assert a.path == str(snap.resolve()) and a.revision == COMMIT and hub_api.calls == []


def test_uncached_model_is_downloaded_at_its_resolved_commit(tmp_path, hub_api):
    hub_api.repos["acme/new"] = (["config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json",
                                  "README.md", "onnx/model.onnx"], COMMIT)
    a = hub.resolve(ModelSpec("hub", "acme/new", revision="main"), cache_dir=tmp_path)
    assert hub_api.calls[0] == ("model_info", "acme/new", "main")
    kind, _, revision, patterns = hub_api.calls[1]
    assert (kind, revision) == ("download", COMMIT)  # the commit "main" resolved to, not "main"
    assert sorted(hub_api.kept) == ["config.json", "model.safetensors", "tokenizer.json"]  # no pickle, no onnx
    assert a.format == "hf" and a.revision == COMMIT


def test_pickle_only_repository_is_refused_unless_allowed(tmp_path, hub_api):
    hub_api.repos["acme/old"] = (["config.json", "pytorch_model.bin"], COMMIT)
    with pytest.raises(UnsafeArtifactError, match="--allow-pickle"):
        hub.resolve(ModelSpec("hub", "acme/old"), cache_dir=tmp_path)
    assert [c[0] for c in hub_api.calls] == ["model_info"]  # refused before any download
    assert "*.bin" in hub.allow_patterns(["config.json", "pytorch_model.bin"], "acme/old", allow_pickle=True)


def test_offline_keeps_to_the_cache(tmp_path, hub_api, monkeypatch):
    hub_api.repos["acme/new"] = (["config.json", "model.safetensors"], COMMIT)
    with pytest.raises(UserError, match="offline"):
        hub.resolve(ModelSpec("hub", "acme/new"), cache_dir=tmp_path, offline=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="offline"):
        hub.resolve(ModelSpec("hub", "acme/new"), cache_dir=tmp_path)
    assert hub_api.calls == []


def test_network_failure_is_one_line(tmp_path, hub_api):
    hub_api.fail = OSError("Connection refused\nsecond line")
    with pytest.raises(UserError) as e:
        hub.resolve(ModelSpec("hub", "acme/new"), cache_dir=tmp_path)
    assert one_line(e).startswith("could not download hub model acme/new (Connection refused); check the network")


def test_uncached_hub_model_is_a_one_line_offline_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError) as e:
        hub.resolve(ModelSpec("hub", "acme/absent"), cache_dir=tmp_path)
    assert one_line(e) == ("model acme/absent is not in the local Hugging Face cache and this machine "
                           "is offline: download it elsewhere and copy it into ~/.cache/huggingface/hub, or "
                           "pass a local folder")


def test_uncached_revision_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    fake_cache(tmp_path)
    with pytest.raises(UserError) as e:
        hub.resolve(ModelSpec("hub", REPO, revision="f" * 40), cache_dir=tmp_path)
    assert f"at revision {'f' * 40}" in one_line(e)
